"""The chat being shown, without Qt: its messages, the reply being generated, and what is kept of both.

`ChatSession` owns the open conversation: its transcript (what the window shows), its settings (system
prompt, sampling, context policy, model), the reply streaming into it (request id, row, stored id,
text so far) and the marks the context policy left. It asks the inference thread for replies, takes
the thread's events (`handle`), and keeps the conversation store up to date: every message as it is
sent, a streaming reply at least once a second, its final text and stats. It tells whoever listens
what happened with plain events (`SessionEvent`); the window's Qt model follows the transcript.

It is not thread-safe: one thread (the GUI thread in the window, the test's thread in a test) calls
it and feeds it the inference thread's events. Reads that may take a while (a long conversation) go
through `run`, which the window points at its background tasks; by default they run at once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from app.core.chat.document_context import DocumentContext, Prepared, document_attachments
from app.core.chat.events import (
    Opened,
    ReplyEnded,
    ReplyStateChanged,
    Saved,
    SessionEvent,
    StoreFailed,
    ToolsChanged,
    Trimmed,
    Warned,
)
from app.core.chat.keeper import Keeper
from app.core.chat.messages import Message, Role
from app.core.chat.reply import ActiveReply, Generator, ReplyTarget, Runner, run_now
from app.core.chat.store import Store, StoreError, StoreErrorKind
from app.core.chat.stored import Snapshot, propose_title, to_message
from app.core.chat.tool_turns import MAX_TOOL_ROUNDS, ToolRunner, call_rules, proposed, rounds_before
from app.core.chat.tool_uses import ToolStatus, ToolUse
from app.core.chat.transcript import Transcript
from app.core.inference.context_policy import ContextPolicy
from app.core.inference.events import (
    Chunk,
    ContextTrimmed,
    Event,
    ReplyDone,
    ReplyFailed,
    Started,
)
from app.core.media.attachments import Attachment, with_images
from app.core.media.images import images_as_text
from app.core.tools.calls import ToolCall, ToolSpec
from app.core.tools.grammar import ToolGrammarError
from app.core.tools.json_output import SchemaError, json_grammar
from app.core.tools.mcp_client import ToolResult
from app.core.tools.parsing import read_calls
from app.core.values.replies import ReplyStats, StopReason
from app.core.values.sampling import SamplingParams

log = logging.getLogger(__name__)

#: A streaming reply is written to the database at least this often while text arrives (and when it ends).
SAVE_INTERVAL_S = 1.0


class ChatSession:
    """The open conversation, its reply in progress, and their place in the store."""

    def __init__(self, generator: Generator, store: Store | None = None, *, run: Runner = run_now) -> None:
        self.generator = generator
        self.run = run
        self.transcript = Transcript()
        #: The stored id of each row of the transcript (empty for an unsaved conversation).
        self.ids: list[int] = []
        self.conversation_id: int | None = None
        self.system_prompt = ""
        self.sampling = SamplingParams()
        self.policy = ContextPolicy.DROP_OLDEST
        #: What the conversation chats with: a local model's path or a remote model's key.
        self.model_key: str | None = None
        self.reply: ActiveReply | None = None
        #: The row being edited (Edit and resend): sending makes a new version of it.
        self.editing_row: int | None = None
        #: The tools the conversation lets the model use (by the name it calls them); saved with it.
        self.tool_names: tuple[str, ...] = ()
        #: Those of them available now (their MCP server listed them): what a reply is offered.
        self.tools: list[ToolSpec] = []
        #: The reply to a message must call one of them ("Must use a tool"); the replies after the
        #: results may answer in words.
        self.require_tool = False
        #: Who runs a call the user allowed (None: calls wait, and say no tool can run).
        self.runner: ToolRunner | None = None
        #: JSON mode: replies are JSON of this schema ({}: any JSON object); None for free text.
        self.output_schema: dict[str, Any] | None = None
        #: The LoRA adapters (path, scale) applied to the loaded model for this conversation's
        #: replies (not sent to a remote engine: it has none of them); saved with it.
        self.adapters: tuple[tuple[str, float], ...] = ()
        #: Whether the local model reads images now (the window says); without, the images of earlier
        #: turns go to it as a line of text, so the conversation goes on.
        self.reads_images: Callable[[], bool] = lambda: True
        self._listeners: list[Callable[[SessionEvent], None]] = []
        #: The conversations' documents (None: documents are not read, the window sets it).
        self.documents: DocumentContext | None = None
        #: Set to stop the documents' work while it runs before a reply (None: none runs).
        self._preparing: threading.Event | None = None
        self.keep = Keeper(self._tell, store)
        #: Where the reply goes on once the calls that wait have their results.
        self._waiting_target: ReplyTarget | None = None
        #: Where replies go now (the window's model choice): a result that comes later goes there.
        self.target_of: Callable[[], ReplyTarget] | None = None
        #: The calls of each message (by stored id) with a call running: the one copy until it ends.
        self._live: dict[int, list[ToolUse]] = {}
        #: Counts the conversations shown (new, open): a result knows whether its view is still up.
        self._view = 0

    # ----- listening ----------------------------------------------------------------------------

    def listen(self, listener: Callable[[SessionEvent], None]) -> None:
        """Call `listener` with every SessionEvent from now on."""
        self._listeners.append(listener)

    def _tell(self, event: SessionEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    @property
    def is_generating(self) -> bool:
        """True while a reply is being generated (or waits to be, or its documents are read)."""
        return self.reply is not None or self._preparing is not None

    def prompt(self, draft: str = "", draft_images: Sequence[Attachment] = ()) -> list[dict[str, Any]]:
        """The conversation as the model gets it: the system prompt (if any), the messages, a draft
        (with the images attached to it)."""
        system = self.system_prompt.strip()
        head = [{"role": "system", "content": system}] if system else []
        tail = (
            [{"role": "user", "content": with_images(draft, draft_images)}] if draft or draft_images else []
        )
        expand = self.documents.content if self.documents is not None else None
        return head + self.transcript.prompt_messages(expand) + tail

    # ----- the store ----------------------------------------------------------------------------

    @property
    def store(self) -> Store | None:
        """The conversation store (None until it is open, or when it could not be)."""
        return self.keep.store

    def attach_store(self, store: Store | None) -> None:
        """Use `store` from now on (it is opened off the GUI thread, after the window appears)."""
        self.keep.store = store

    def save_settings(self) -> None:
        """Remember the open conversation's system prompt, sampling, context policy and model."""
        if self.conversation_id is None:
            return
        changes: dict[str, Any] = {
            "system_prompt": self.system_prompt,
            "sampling": self.sampling.to_dict(),
            "context_policy": self.policy.value,
            "tools": {"names": list(self.tool_names), "required": self.require_tool},
            "output_schema": self.output_schema,
            "adapters": self.adapters,
        }
        if self.model_key:
            changes["model"] = self.model_key
        self.keep.settings(self.conversation_id, changes)

    # ----- switching ----------------------------------------------------------------------------

    def new(self) -> None:
        """An empty chat; it is stored when its first message is sent."""
        self.detach()
        self.conversation_id = None
        self.ids = []
        self.editing_row = None
        self.system_prompt = ""
        self.output_schema = None
        self.adapters = ()
        self.require_tool = False
        self._view += 1
        self.transcript.clear()
        self._tell(Opened(None))

    def read(self, conversation_id: int) -> Snapshot:
        """Read a conversation for showing (blocking: give it to `run`)."""
        store = self.store
        if store is None:
            raise StoreError(StoreErrorKind.IO, "The conversation database is not open.")
        branch = store.branch(conversation_id)
        return Snapshot(store.conversation(conversation_id), branch, store.versions([m.id for m in branch]))

    def open(self, conversation_id: int, force: bool = False) -> None:
        """Show a stored conversation as it was left (read through `run`); a reply streaming now
        finishes in the store, not in the next view."""
        if self.store is None or (conversation_id == self.conversation_id and not force):
            return
        self.detach()
        self.run(lambda: self.read(conversation_id), self.show, self._read_failed)

    def _read_failed(self, error: BaseException) -> None:
        message = error.message if isinstance(error, StoreError) else f"{type(error).__name__}: {error}"
        self._tell(StoreFailed(message))

    def show(self, snapshot: Snapshot) -> None:
        """Show a conversation read with `read`."""
        info = snapshot.info
        self.conversation_id = info.id
        self.editing_row = None
        self.ids = [m.id for m in snapshot.branch]
        self._view += 1
        active = self.reply.message_id if self.reply is not None else None
        messages: list[Message] = []
        for stored in snapshot.branch:
            message = to_message(stored)
            message.version = snapshot.versions.get(stored.id)
            # The reply of another conversation, still finishing: not cut off, just not here yet.
            message.streaming = stored.id == active
            if stored.id in self._live:  # a call of it runs: its calls as they stand, not as stored
                message.tool_uses = self._live[stored.id]
            if message.role is Role.ASSISTANT and messages and messages[-1].sources:
                message.sources = messages[-1].sources  # the passages its question was given
            messages.append(message)
        self.transcript.load(messages)
        self.system_prompt = info.system_prompt
        if info.sampling:
            self.sampling = SamplingParams.from_dict(info.sampling)
        self.policy = ContextPolicy.read(info.context_policy)
        self.tool_names, self.require_tool = info.tools, info.require_tool
        self.output_schema = info.output_schema
        self.adapters = info.adapters
        if info.model:
            self.model_key = info.model
        self._tell(Opened(info.id, info.model))

    def detach(self) -> None:
        """Another conversation is about to be shown while a reply streams: stop the reply, save what
        it has, and let it finish in the store only (its row leaves the view)."""
        reply = self.reply
        if reply is None or reply.row < 0:
            return
        self.generator.cancel(reply.request_id)
        self._save_reply(force=True)
        reply.row = -1

    # ----- sending ------------------------------------------------------------------------------

    def send(self, text: str, target: ReplyTarget, attachments: Sequence[Attachment] = ()) -> bool:
        """Send a message (with the files attached to it) and ask for the reply; False (nothing
        done) when empty or while replying."""
        text = text.strip()
        if (not text and not attachments) or self.is_generating:
            return False
        if self.editing_row is not None:  # an edited message is a new version beside the old one
            self.branch_at(self.editing_row)
            self.editing_row = None
        self._deny_waiting()  # the user wrote on instead of answering the cards: that is a no
        row = self.transcript.add(Role.USER, text, attachments=attachments)
        self._store_user_message(text, target, attachments)
        documents = self.documents
        if (
            documents is not None
            and self.conversation_id is not None
            and documents.involved(self.conversation_id, attachments)
        ):
            self._read_documents(row, text, target, documents)
        else:
            self._generate(target)
        return True

    def _read_documents(
        self, row: int, question: str, target: ReplyTarget, documents: DocumentContext
    ) -> None:
        """Index the conversation's documents and find the passages for `question` on a worker,
        then ask for the reply (Stop meanwhile: no reply). A document that cannot be read is
        told, and the reply goes on without it."""
        conversation_id, view, stop = self.conversation_id, self._view, threading.Event()
        assert conversation_id is not None
        message_id = self.ids[-1] if self.ids else None
        self._preparing = stop
        self._tell(ReplyStateChanged(True, 0, target.remote is not None))
        attached = document_attachments(self.transcript.messages())
        length = self.sampling.context_length

        def done(prepared: Prepared) -> None:
            self._preparing = None
            if stop.is_set() or view != self._view:
                self._tell(ReplyStateChanged(False, 0, False))
                return
            if prepared.sources:
                self.transcript.message(row).sources = prepared.sources
                if message_id is not None:
                    self.keep.sources(message_id, prepared.sources)
            self._generate(target)

        def failed(error: BaseException) -> None:
            self._tell(Warned(f"{error} The reply goes on without the documents."))
            done(Prepared())

        self.run(lambda: documents.prepare(conversation_id, question, attached, length, stop), done, failed)

    def regenerate(self, row: int, target: ReplyTarget) -> bool:
        """A new version of the reply at `row`; the old one stays reachable with "< >"."""
        if self.is_generating or row < 1 or row >= len(self.transcript):
            return False
        self.branch_at(row)
        self._generate(target)
        return True

    def continue_reply(self, row: int, target: ReplyTarget) -> bool:
        """Carry on writing the last reply where it stopped (max tokens, or cut off); it grows in place."""
        last = len(self.transcript) - 1
        if (
            self.is_generating
            or row != last
            or row < 1
            or self.transcript.peek(row).role is not Role.ASSISTANT
            # A reply of calls ends in their results, and a grammar would start again mid-text.
            or self.transcript.peek(row).tool_uses
            or self.output_schema is not None
        ):
            return False
        prefix = self.transcript.message(row).content
        self.transcript.resume(row)
        reply = self._start(self.prompt(), self.transcript.prompt_rows(), target, row, continue_last=True)
        reply.prefix = prefix
        reply.saved_length = len(prefix)
        if 0 <= row < len(self.ids):
            reply.message_id = self.ids[row]
            self.keep.unfinished(self.ids[row])
        return True

    def edit(self, row: int) -> str | None:
        """Start editing the message at `row`: its text (for the composer), or None when not possible."""
        if self.is_generating or not 0 <= row < len(self.transcript):
            return None
        self.editing_row = row
        return self.transcript.message(row).content

    def cancel_edit(self) -> None:
        """Sending goes on at the end of the conversation again."""
        self.editing_row = None

    def stop(self) -> None:
        """Stop the reply before its next token; what was generated is kept."""
        if self._preparing is not None:  # still reading the documents: no reply at all
            self._preparing.set()
        if self.reply is not None:
            self.generator.cancel(self.reply.request_id)

    def _store_user_message(
        self, text: str, target: ReplyTarget, attachments: Sequence[Attachment] = ()
    ) -> None:
        if self.store is None:
            return
        if self.conversation_id is None:
            self.conversation_id = self.keep.create(
                propose_title(text or ", ".join(a.name for a in attachments)),
                target.model_key,
                self.system_prompt,
                self.sampling.to_dict(),
                self.policy.value,
            )
            if self.conversation_id is None:
                return
            if self.tool_names or self.require_tool or self.output_schema is not None or self.adapters:
                self.save_settings()  # chosen before the conversation existed
        parent = self.ids[-1] if self.ids else None
        message_id = self.keep.add(self.conversation_id, "user", text, parent, attachments=attachments)
        if message_id is not None:
            self.ids.append(message_id)
        self._tell(Saved(self.conversation_id))

    def _generate(self, target: ReplyTarget) -> None:
        # Before the empty reply row is added: the prompt would leave out the turn it answers.
        prompt, prompt_rows = self.prompt(), self.transcript.prompt_rows()
        question = self.transcript.peek(len(self.transcript) - 1) if len(self.transcript) else None
        row = self.transcript.add(Role.ASSISTANT, "", streaming=True)
        if question is not None and question.role is Role.USER and question.sources:
            self.transcript.message(row).sources = question.sources  # shown under the reply
        reply = self._start(prompt, prompt_rows, target, row)
        if self.conversation_id is not None and self.ids:
            reply.message_id = self.keep.add(
                self.conversation_id, "assistant", "", self.ids[-1], incomplete=True
            )
            if reply.message_id is not None:
                self.ids.append(reply.message_id)

    def _start(
        self,
        prompt: list[dict[str, str]],
        prompt_rows: list[int],
        target: ReplyTarget,
        row: int,
        continue_last: bool = False,
    ) -> ActiveReply:
        self.transcript.set_left_out(set())  # marks from an earlier reply no longer hold
        remote = target.remote
        # No context policy for a remote model: without its tokenizer Fireside cannot count what fits,
        # and the server enforces its own window (its refusal is shown like any other error).
        # The conversation's KV cache is kept for it, in memory and then on disk, under this key.
        key = f"conversation:{self.conversation_id}" if self.conversation_id is not None else None
        tools, grammar, triggers = self._offer(target, row) if not continue_last else ([], None, ())
        if remote is not None and self.output_schema is not None:
            remote = dataclasses.replace(remote, response_format=_response_format(self.output_schema))
        if remote is None and not self.reads_images():
            prompt = images_as_text(prompt)
        request_id = self.generator.generate(
            prompt,
            self.sampling,
            None if remote else self.policy.value,
            continue_last,
            remote=remote,
            cache_key=key,
            grammar=grammar,
            tools=tools or None,
            grammar_triggers=triggers,
            adapters=self.adapters if remote is None else (),
        )
        self.reply = ActiveReply(
            request_id,
            row,
            self.conversation_id,
            None,
            target.model_key,
            remote is not None,
            prompt_rows=prompt_rows,
            saved_at=time.monotonic(),
            target=target,
            tool_names=frozenset(tool.name for tool in tools),
        )
        ahead = 0
        if remote is None:
            # Every sequence busy (API requests): say how many must end before this one starts.
            ahead = self.generator.ahead(request_id)
            self.transcript.set_waiting(row, ahead)
        self._tell(ReplyStateChanged(True, ahead, remote is not None))
        return self.reply

    # ----- the inference thread's events --------------------------------------------------------

    def handle(self, event: Event) -> bool:
        """Take one of the inference thread's events; True when it belonged to this session's reply."""
        reply = self.reply
        if reply is None or event.request_id != reply.request_id:
            return False
        if isinstance(event, Chunk):
            if reply.row >= 0:
                self.transcript.append(reply.row, event.text)
                if time.monotonic() - reply.saved_at >= SAVE_INTERVAL_S:
                    self._save_reply()
        elif isinstance(event, Started):
            if reply.row >= 0 and not reply.remote:
                self.transcript.set_waiting(reply.row, 0)
            self._tell(ReplyStateChanged(True, 0, reply.remote))
        elif isinstance(event, ContextTrimmed):
            if reply.row >= 0:
                rows = {reply.prompt_rows[i] for i in event.dropped if i < len(reply.prompt_rows)}
                self.transcript.set_left_out(rows)
                self._tell(Trimmed(len(event.dropped), event.tokens, self.policy))
        elif isinstance(event, ReplyDone):
            text, calls = reply.prefix + event.text, list(event.calls)
            if reply.tool_names and not calls and not reply.remote:
                text, calls = read_calls(text, reply.tool_names)
            self._finish(reply, text, event.stats, None, "", calls=calls)
        elif isinstance(event, ReplyFailed):
            # A cut stream's text stays in the conversation; its note says it is incomplete.
            kept = (
                f"Incomplete reply: {event.message}"
                if reply.remote and event.code == "cut"
                else event.message
            )
            self._finish(reply, reply.prefix + event.text, None, kept, event.code, event.message)
        return True

    def _save_reply(self, force: bool = False) -> None:
        """Write the streaming reply's text so far (when it grew since the last write)."""
        reply = self.reply
        if reply is None or reply.row < 0 or reply.message_id is None:
            return
        reply.saved_at = time.monotonic()
        text = self.transcript.message(reply.row).content
        if force or len(text) != reply.saved_length:
            self.keep.text(reply.message_id, text)
            reply.saved_length = len(text)

    def _finish(
        self,
        reply: ActiveReply,
        text: str,
        stats: ReplyStats | None,
        error: str | None,
        code: str,
        message: str = "",
        calls: list[ToolCall] | None = None,
    ) -> None:
        self.reply = None
        row = reply.row
        if row < 0 and reply.message_id is not None and reply.message_id in self.ids:
            row = self.ids.index(reply.message_id)  # detached, but its conversation is shown again
        uses = proposed(calls, reply.tool_names) if calls else []
        if row >= 0:
            self.transcript.finish(row, text, stats, error)
            if uses:
                self.transcript.set_tool_uses(row, uses)
        if reply.message_id is not None:
            self.keep.finished(reply.message_id, text, stats, reply.model_key, error)
            if uses:
                self.keep.tool_calls(reply.message_id, uses)
            if reply.row >= 0:
                self.refresh_versions()
            if reply.conversation_id is not None:
                self._tell(Saved(reply.conversation_id))
        self._tell(ReplyStateChanged(False, 0, reply.remote))
        self._tell(
            ReplyEnded(
                reply.request_id, reply.conversation_id, reply.row, text, stats, reply.remote, message, code
            )
        )
        if uses and reply.row >= 0 and reply.target is not None:
            self._tell(ToolsChanged())
            # A reply stopped or cut by max tokens shows its calls, and goes on only once answered.
            if stats is not None and stats.stop_reason is StopReason.END_OF_TURN:
                self._advance(reply.row, reply.target)

    # ----- tool calls ---------------------------------------------------------------------------

    def _offer(self, target: ReplyTarget, row: int) -> tuple[list[ToolSpec], str | None, tuple[str, ...]]:
        """The tools the reply at `row` is offered, and its grammar with what starts it: JSON mode's,
        or the calls' (a remote engine enforces its own). A schema no grammar can hold is said
        (Warned) and left to the model."""
        if self.output_schema is not None:  # JSON mode: the reply is the JSON, no calls
            if target.remote is not None:
                return [], None, ()
            try:
                return [], json_grammar(self.output_schema, "JSON mode's schema"), ()
            except SchemaError as exc:
                self._tell(Warned(f"JSON mode is not enforced for this reply: {exc}"))
                return [], None, ()
        rounds = rounds_before(self.transcript.messages()[:row])
        tools = list(self.tools) if rounds < MAX_TOOL_ROUNDS else []
        if not tools or target.remote is not None:
            return tools, None, ()
        try:
            grammar, triggers = call_rules(tools, target.chat_template, self.require_tool and rounds == 0)
        except ToolGrammarError as exc:
            self._tell(Warned(f"The arguments of {tools[exc.index].name} are not held to its schema: {exc}"))
            return tools, None, ()
        except Exception as exc:  # a server's schema no converter expected: offered, not enforced
            log.warning("tool grammar failed: %s", exc)
            self._tell(Warned(f"The tools' arguments are not held to their schemas: {exc}"))
            return tools, None, ()
        return tools, grammar, triggers

    def pending_call(self) -> tuple[int, int, ToolUse] | None:
        """The first call of the shown conversation waiting for the user: (row, index, call)."""
        for row in range(len(self.transcript)):
            for index, use in enumerate(self.transcript.peek(row).tool_uses):
                if use.status is ToolStatus.PENDING:
                    return row, index, use
        return None

    def decide(self, row: int, index: int, decision: str, target: ReplyTarget) -> bool:
        """The user's answer to a call: "once" (Allow once), "always" (Always allow this tool) or
        "deny". The reply continues once every call of its row has its result."""
        if not 0 <= row < len(self.transcript) or self.is_generating:
            return False
        uses = self.transcript.peek(row).tool_uses
        if not 0 <= index < len(uses) or uses[index].status is not ToolStatus.PENDING:
            return False
        use = uses[index]
        if decision == "deny":
            use.status = ToolStatus.DENIED
            self._tool_settled(row)
        elif decision in ("once", "always"):
            if decision == "always" and self.runner is not None:
                self.runner.allow_always(use.name)
            self._run_tool(row, use)
        else:
            return False
        self._advance(row, target)
        return True

    def toggle_result(self, row: int, index: int) -> None:
        """Fold or unfold a call's result under its card."""
        if 0 <= row < len(self.transcript):
            uses = self.transcript.peek(row).tool_uses
            if 0 <= index < len(uses):
                uses[index].unfolded = not uses[index].unfolded
                self.transcript.tools_changed(row)

    def _run_tool(self, row: int, use: ToolUse) -> None:
        runner = self.runner
        if runner is None:
            use.status, use.result = ToolStatus.FAILED, "No tool can run: no MCP server is set up."
            self._tool_settled(row)
            return
        use.status = ToolStatus.RUNNING
        # The row's list of calls is the one copy while a call runs: a reload of the view (another
        # conversation and back, ‹ ›) shows this list again, not the store's, so the result lands
        # where it is seen and no call's state is lost.
        uses = self.transcript.peek(row).tool_uses
        message_id = self.ids[row] if 0 <= row < len(self.ids) else None
        if message_id is not None:
            self._live[message_id] = uses
        view = self._view
        self._tool_settled(row)

        def answered(result: ToolResult) -> None:
            use.status = (
                ToolStatus.TIMED_OUT
                if result.timed_out
                else ToolStatus.FAILED
                if result.is_error
                else ToolStatus.DONE
            )
            use.result = result.text
            if message_id is not None and not any(u.status is ToolStatus.RUNNING for u in uses):
                self._live.pop(message_id, None)
            shown = self._shown_row(message_id, uses, row if view == self._view else -1)
            if shown < 0:  # its conversation is not shown now: the result is kept in the store
                if message_id is not None:
                    self.keep.tool_calls(message_id, uses)
                return
            self._tool_settled(shown)
            target = self.target_of() if self.target_of is not None else self._waiting_target
            if target is not None:
                self._advance(shown, target)

        runner.run(use.name, _arguments(use), answered)

    def _shown_row(self, message_id: int | None, uses: list[ToolUse], row: int) -> int:
        """The row showing the calls `uses` now, or -1 (the view shows something else)."""
        if message_id is not None:
            row = self.ids.index(message_id) if message_id in self.ids else -1
        if 0 <= row < len(self.transcript) and self.transcript.peek(row).tool_uses is uses:
            return row
        return -1

    def _tool_settled(self, row: int) -> None:
        """A call changed: show it, store it, and tell listeners (the approval bar)."""
        self.transcript.tools_changed(row)
        if 0 <= row < len(self.ids):
            self.keep.tool_calls(self.ids[row], self.transcript.peek(row).tool_uses)
        self._tell(ToolsChanged())

    def _advance(self, row: int, target: ReplyTarget) -> None:
        """Run the calls the user always allows; once every call of `row` has its result and `row` is
        the last, the model goes on with the results."""
        self._waiting_target = target
        uses = self.transcript.peek(row).tool_uses
        for use in uses:
            if (
                use.status is ToolStatus.PENDING
                and self.runner is not None
                and self.runner.always_allowed(use.name)
            ):
                self._run_tool(row, use)
        if (
            all(use.status.settled for use in uses)
            and row == len(self.transcript) - 1
            and not self.is_generating
        ):
            self._waiting_target = None
            self._generate(target)

    def _deny_waiting(self) -> None:
        for row in range(len(self.transcript)):
            uses = self.transcript.peek(row).tool_uses
            if any(use.status is ToolStatus.PENDING for use in uses):
                for use in uses:
                    if use.status is ToolStatus.PENDING:
                        use.status = ToolStatus.DENIED
                self._tool_settled(row)
        self._waiting_target = None

    def close(self) -> None:
        """Save the reply in progress (the window is closing)."""
        self._save_reply(force=True)

    # ----- branches -----------------------------------------------------------------------------

    def branch_at(self, row: int) -> None:
        """The conversation continues from before `row`: an edit or a regeneration makes a new version
        of that message beside the old one, which stays reachable with "< >"."""
        self.transcript.truncate(row)
        self.ids = self.ids[:row]

    def step_version(self, row: int, delta: int) -> None:
        """Show the previous or next version of the message at `row` (and the branch that follows it)."""
        if self.conversation_id is None or not 0 <= row < len(self.ids) or self.is_generating:
            return
        siblings = self.keep.siblings(self.ids[row])
        if self.ids[row] not in siblings:
            return
        target = siblings.index(self.ids[row]) + delta
        if 0 <= target < len(siblings):
            self.keep.switch_branch(siblings[target])
            self.open(self.conversation_id, force=True)

    def delete_message(self, row: int) -> None:
        """Delete a message and what follows it on every branch below it."""
        if self.conversation_id is None or not 0 <= row < len(self.ids) or self.is_generating:
            return
        self.keep.delete(self.ids[row])
        self.open(self.conversation_id, force=True)

    def refresh_versions(self) -> None:
        """Update "< 2/3 >" for the last two rows (after a new version was added)."""
        if not self.ids:
            return
        first = max(0, len(self.ids) - 2)
        versions = self.keep.versions(self.ids[first:])
        self.transcript.set_versions(
            {row: versions[mid] for row, mid in enumerate(self.ids) if row >= first and mid in versions}
        )


def _arguments(use: ToolUse) -> dict[str, Any]:
    """A call's arguments as a dict (checked to be a JSON object when the call was read)."""
    return ToolCall(use.id, use.name, use.arguments or "{}").argument_values()


def _response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """JSON mode as OpenAI's `response_format` (for a remote engine)."""
    if not schema:
        return {"type": "json_object"}
    # Not strict: OpenAI's strict mode refuses schemas without additionalProperties false everywhere.
    return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": False}}
