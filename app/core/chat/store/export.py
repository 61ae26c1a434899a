"""Export and import: JSON with every branch (one conversation or a bundle of several), Markdown of
the shown branch, and OpenAI's fine-tuning JSONL. An import is checked whole before anything is
written, and written in one transaction."""

from __future__ import annotations

import base64
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from app.core.chat.messages import Role
from app.core.chat.store.records import message_from_row, stored_adapters
from app.core.chat.store.tree import MessageTree
from app.core.chat.tool_uses import uses_from_json, uses_to_json
from app.core.media.attachments import Attachment, AttachmentError, attachments_from_json, attachments_to_json
from app.core.values.sources import Source, sources_from_json, sources_to_json
from app.core.values.text import clean_json

log = logging.getLogger(__name__)


class Exports(MessageTree):
    """Conversations to files and back (built on MessageTree: an import adds messages and picks the
    branch that was shown, an export reads branches)."""

    def export_json(self, conversation_id: int) -> dict[str, Any]:
        """The whole conversation, every branch included, as plain data (import_json reads it back)."""
        info = self.conversation(conversation_id)
        rows = self._query("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))
        return {
            "format": "fireside-conversation",
            "version": 1,
            "title": info.title,
            "created_at": info.created_at,
            "model": info.model,
            "system_prompt": info.system_prompt,
            "sampling": info.sampling,
            "context_policy": info.context_policy,
            "tools": {"names": list(info.tools), "required": info.require_tool},
            "output_schema": info.output_schema,
            "adapters": [{"path": path, "scale": scale} for path, scale in info.adapters],
            "current_leaf": info.current_leaf,
            "messages": [
                {
                    "id": m.id, "parent_id": m.parent_id, "role": m.role.value, "content": m.content,
                    "created_at": m.created_at, "incomplete": m.incomplete, "stats": m.stats,
                    "error": m.error, "tool_calls": [u.to_dict() for u in uses_from_json(m.tool_calls)],
                    "attachments": self._exported_files(m.attachments),
                    "sources": [s.to_dict() for s in sources_from_json(m.sources)],
                }
                for m in (message_from_row(r) for r in rows)
            ],
        }  # fmt: skip

    def export_many_json(self, conversation_ids: list[int]) -> dict[str, Any]:
        """Several conversations in one file (import_any reads it back)."""
        return {
            "format": "fireside-conversations",
            "version": 1,
            "conversations": [self.export_json(cid) for cid in conversation_ids],
        }

    def import_bytes(self, raw: bytes) -> list[int]:
        """Import an export file's bytes (see import_any); ValueError, saying why, for bytes that are
        not such a file: not UTF-8, not JSON, or nested too deeply to read."""
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than json reads
            reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ValueError(f"not a readable JSON file ({reason})") from None
        return self.import_any(data)

    def import_any(self, data: Any) -> list[int]:
        """Import one conversation (export_json) or several (export_many_json); the new ids, in order.
        Every conversation is checked before any is written, so a bad file imports nothing. Text that
        is not Unicode (JSON allows a lone "\\ud800") is imported with U+FFFD in its place."""
        data = clean_json(data)
        if isinstance(data, dict) and data.get("format") == "fireside-conversations":
            items = data.get("conversations")
            if not isinstance(items, list):
                raise ValueError("the export has no conversation list")
        else:
            items = [data]
        for item in items:
            self._check_import(item)
        with self._tx():  # one transaction: a failure part-way (a full disk) imports nothing
            return [self.import_json(item) for item in items]

    @staticmethod
    def _check_import(data: Any) -> None:
        if not isinstance(data, dict) or data.get("format") != "fireside-conversation":
            raise ValueError("not a Fireside conversation export")
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise ValueError("the export has no message list")
        seen: set[int] = set()
        try:
            ordered = sorted(messages, key=lambda m: int(m["id"]))
        except (TypeError, KeyError, ValueError, OverflowError):  # OverflowError: an id of 1e400 (inf)
            raise ValueError("a message has no numeric id") from None
        for item in ordered:
            if item.get("role") not in ("user", "assistant"):
                raise ValueError(f"unknown role {item.get('role')!r}")
            if not isinstance(item.get("content", ""), str):
                raise ValueError(f"message {item['id']} has content that is not text")
            if not isinstance(item.get("error"), str | None) or not isinstance(
                item.get("stats"), dict | None
            ):
                raise ValueError(f"message {item['id']} has a malformed error or stats field")
            if not isinstance(item.get("tool_calls") or [], list):
                raise ValueError(f"message {item['id']} has tool calls that are not a list")
            parent = item.get("parent_id")
            if parent is not None and (not isinstance(parent, int) or isinstance(parent, bool)):
                raise ValueError(f"message {item['id']} has a parent id that is not a number")
            if parent is not None and parent not in seen:
                raise ValueError(f"message {item['id']} refers to a missing parent {parent}")
            seen.add(int(item["id"]))
        leaf = data.get("current_leaf")
        if leaf is not None and (not isinstance(leaf, int) or isinstance(leaf, bool)):
            raise ValueError("current_leaf is not a message id")

    def import_json(self, data: dict[str, Any]) -> int:
        """A new conversation from export_json's data (ValueError when it is not such data; then
        nothing is written)."""
        self._check_import(data)
        messages = data["messages"]
        new_id = self.create_conversation(
            title=str(data.get("title") or ""),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            system_prompt=str(data.get("system_prompt") or ""),
            sampling=data.get("sampling") if isinstance(data.get("sampling"), dict) else {},
            context_policy=str(data.get("context_policy") or "stop"),
        )
        tools, schema = data.get("tools"), data.get("output_schema")
        chosen = {
            "tools": tools if isinstance(tools, dict) else {},
            "output_schema": schema if isinstance(schema, dict) else None,
            # Adapters another computer named may be missing here: kept, and refused by name if used.
            "adapters": stored_adapters(json.dumps(data.get("adapters") or [])),
        }
        self.update_conversation(new_id, **chosen)
        mapping: dict[int, int] = {}
        for item in sorted(messages, key=lambda m: int(m["id"])):
            parent = item.get("parent_id")
            mapping[int(item["id"])] = self.add_message(
                new_id, item["role"], str(item.get("content", "")),
                mapping[parent] if parent is not None else None,
                incomplete=bool(item.get("incomplete")), stats=item.get("stats"), error=item.get("error"),
            )  # fmt: skip
            uses = uses_from_json(json.dumps(item.get("tool_calls") or []))
            if uses:
                self.update_message(mapping[int(item["id"])], tool_calls=uses_to_json(uses))
            given = item.get("sources") if isinstance(item.get("sources"), list) else []
            sources = sources_to_json(s for s in map(Source.from_dict, given) if s)
            if sources:
                self.update_message(mapping[int(item["id"])], sources=sources)
            kept = self._imported_files(item.get("attachments"))
            if kept:
                with self._tx() as db:
                    db.execute(
                        "UPDATE messages SET attachments = ? WHERE id = ?",
                        (attachments_to_json(kept), mapping[int(item["id"])]),
                    )
        leaf = data.get("current_leaf")
        if leaf in mapping:
            self.switch_branch(mapping[leaf])
            with self._tx() as db:  # switch_branch follows the latest child; keep the exported leaf exactly
                db.execute("UPDATE conversations SET current_leaf = ? WHERE id = ?", (mapping[leaf], new_id))
        return new_id

    def _exported_files(self, stored: str | None) -> list[dict[str, Any]]:
        """A message's attachments with each file's bytes (base64; None when the file is gone)."""
        items = []
        for attachment in attachments_from_json(stored):
            try:
                data: str | None = base64.b64encode(
                    self.attachment_folder.path(attachment).read_bytes()
                ).decode()
            except OSError:
                data = None
            items.append({**attachment.to_dict(), "data": data})
        return items

    def _imported_files(self, items: Any) -> list[Attachment]:
        """The attachments of an imported message, their files kept in the attachments folder (one
        that is not a readable image is left out: the message's text still comes in)."""
        kept = []
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict) or not isinstance(item.get("data"), str):
                continue
            try:
                data = base64.b64decode(item["data"], validate=True)
                name = item.get("name") if isinstance(item.get("name"), str) else "image"
                if item.get("kind") == "document":
                    kept.append(self._imported_document(data, name or "document.txt"))
                else:
                    kept.append(self.attachment_folder.add_bytes(data, name or "image"))
            except (ValueError, AttachmentError) as exc:  # binascii.Error is a ValueError
                log.warning("an imported attachment was left out: %s", exc)
        return kept

    def _imported_document(self, data: bytes, name: str) -> Attachment:
        """Keep an imported document (checked as one attached would be). Its name is the file's own
        last part only: a name from a file cannot place anything outside the temporary folder."""
        with tempfile.TemporaryDirectory(prefix="fireside-import-") as folder:
            path = Path(folder) / _file_name(name)
            path.write_bytes(data)
            return self.attachment_folder.add_file(path)

    def export_markdown(self, conversation_id: int) -> str:
        """The shown branch as Markdown: a title, the system prompt, then each turn."""
        info = self.conversation(conversation_id)
        lines = [f"# {info.title or 'Conversation'}", ""]
        if info.model:
            lines += [f"*Model: {Path(info.model).name}*", ""]
        if info.system_prompt:
            lines += ["## System", "", info.system_prompt, ""]
        for m in self.branch(conversation_id):
            heading = "User" if m.role is Role.USER else "Assistant"
            note = " (incomplete)" if m.incomplete else ""
            lines += [f"## {heading}{note}", "", m.content, ""]
            for use in uses_from_json(m.tool_calls):
                fence = "`" * max(3, _longest_backticks(use.arguments + use.result_text()) + 1)
                lines += [f"**Tool call:** `{use.name}` ({use.status.value})", ""]
                lines += [f"{fence}json", use.arguments, fence, "", fence, use.result_text(), fence, ""]
        return "\n".join(lines).rstrip() + "\n"

    def export_markdown_many(self, conversation_ids: list[int]) -> str:
        """Several conversations as one Markdown file, separated by rules."""
        return "\n---\n\n".join(self.export_markdown(cid) for cid in conversation_ids)

    def export_finetune_jsonl(self, conversation_ids: list[int]) -> str:
        """OpenAI chat fine-tuning format: one conversation per line, {"messages": [{role, content}...]}.

        Only the shown branch is used; unfinished or failed replies, and turns after them, are left out,
        since a training example must end with a complete assistant reply. A reply that called tools is
        an assistant message with `tool_calls` followed by a `tool` message per result (OpenAI's
        format)."""
        out = []
        for conversation_id in conversation_ids:
            info = self.conversation(conversation_id)
            messages: list[dict[str, Any]] = []
            if info.system_prompt:
                messages.append({"role": "system", "content": info.system_prompt})
            for m in self.branch(conversation_id):
                uses = uses_from_json(m.tool_calls)
                if uses:
                    if m.incomplete or m.error or not all(u.status.settled for u in uses):
                        break
                    messages.append({"role": "assistant", "content": m.content or None,
                                     "tool_calls": [u.call_dict() for u in uses]})  # fmt: skip
                    messages += [u.result_message() for u in uses]
                    continue
                if m.incomplete or m.error or not m.content.strip():
                    break
                messages.append({"role": m.role.value, "content": m.content})
            while messages and messages[-1]["role"] != "assistant":
                messages.pop()
            if any(m["role"] == "assistant" for m in messages):
                out.append(json.dumps({"messages": messages}, ensure_ascii=False))
        return "\n".join(out) + ("\n" if out else "")


#: The most bytes of an imported document's file name (file systems allow 255; the rest is a margin).
MAX_NAME_BYTES = 200


def _file_name(name: str) -> str:
    """A name from an export as one plain file name: its last part only, without control characters
    (NUL included), and shortened, its suffix kept, to what every file system accepts; a name that
    is nothing of the kind becomes "document.txt"."""
    last = "".join(c for c in name.replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable())
    stem, dot, suffix = last.rpartition(".")
    if dot and 0 < len(suffix.encode()) <= 16 and suffix == suffix.strip():
        suffix = "." + suffix
    else:
        stem, suffix = last, ""
    stem = stem.strip(". ")
    while len((stem + suffix).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1].rstrip(". ")
    return (stem or "document") + (suffix or ("" if stem else ".txt"))


def _longest_backticks(text: str) -> int:
    """The longest run of backticks in `text` (a fence around it must be longer)."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest
