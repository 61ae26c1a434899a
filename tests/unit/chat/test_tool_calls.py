"""Tool calls in a chat, through the Qt-free ChatSession: the real model (held to a call by the
grammar when the conversation requires a tool), the real inference thread, real SQLite, and the test
MCP server over stdio through the toolbox. A call waits for the user; allowed, denied, always
allowed, failing; its result goes back to the model, which goes on; everything is stored and
exported in OpenAI's format. A remote engine's calls, arguments that do not parse among them."""

from __future__ import annotations

import json
import queue
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.chat.events import ToolsChanged, Warned
from app.core.chat.messages import Role
from app.core.chat.reply import ReplyTarget
from app.core.chat.tool_uses import DENIED_TEXT, ToolStatus
from app.core.inference.events import Event
from app.core.inference.thread import InferenceThread
from app.core.models.gguf_file import inspect_model
from app.core.remote.client import Endpoint, RemoteClient, RemoteTarget
from app.core.tools.calls import ToolSpec
from app.core.tools.mcp_config import McpServerConfig
from app.core.tools.toolbox import Listing, Toolbox, ToolboxRunner
from app.core.values.sampling import SamplingParams
from tests.fake_openai import FakeOpenAI
from tests.unit.chat.test_session import Chat, loaded  # noqa: F401  (the module's model fixture)

SERVER = str(Path(__file__).resolve().parents[2] / "mcp_server.py")


@pytest.fixture(scope="module")
def toolbox() -> Iterator[Toolbox]:
    """The test MCP server over stdio, its tools listed."""
    box = Toolbox([McpServerConfig("test", command=sys.executable, args=(SERVER,), timeout_s=20)])
    listings: queue.Queue[list[Listing]] = queue.Queue()
    box.list_tools(listings.put)
    listing = listings.get(timeout=60)
    assert listing[0].error == "" and {t.name for t in listing[0].tools} >= {"add", "fail", "sleep"}
    yield box
    box.close()


@pytest.fixture
def chat(loaded: tuple, tmp_path: Path, starter_model: Path, toolbox: Toolbox) -> Iterator[Chat]:  # noqa: F811
    from app.core.chat.store import Store

    worker, events = loaded
    store = Store(tmp_path / "conversations.db")
    made = Chat(worker, events, store, starter_model)
    made.session.sampling = SamplingParams(temperature=0, max_tokens=48, context_length=2048)
    remembered: list[McpServerConfig] = []
    made.session.runner = ToolboxRunner(toolbox, events.put, remembered.append)
    made.remembered = remembered  # type: ignore[attr-defined]
    original = toolbox.configs
    made.target = ReplyTarget(str(starter_model), chat_template=inspect_model(starter_model).chat_template)
    yield made
    if made.session.is_generating:
        made.session.stop()
        made.reply()
    toolbox.configure(original)  # "always" decisions stay in their test
    store.close()


def _offer(chat: Chat, toolbox: Toolbox, *names: str) -> None:
    tools = [toolbox.known(f"test__{name}") for name in names]
    chat.session.tools = [tool.spec for tool in tools if tool is not None]
    chat.session.tool_names = tuple(spec.name for spec in chat.session.tools)
    chat.session.require_tool = True


def _until_waiting(chat: Chat) -> None:
    chat.pump(lambda: not chat.session.is_generating)
    assert chat.session.pending_call() is not None, chat.session.transcript.messages()


def test_a_required_call_waits_for_the_user_then_its_result_goes_back_and_the_reply_goes_on(
    chat: Chat, toolbox: Toolbox
) -> None:
    _offer(chat, toolbox, "add")
    assert chat.session.send("What is 2 plus 3?", chat.target)
    _until_waiting(chat)
    row, index, use = chat.session.pending_call() or (0, 0, None)
    assert use is not None and use.name == "test__add" and index == 0
    arguments = json.loads(use.arguments)
    assert set(arguments) == {"a", "b"} and all(isinstance(v, int) for v in arguments.values())
    assert any(isinstance(e, ToolsChanged) for e in chat.told)
    # Nothing ran: the card waits, and is stored waiting.
    stored = chat.store.branch(chat.session.conversation_id or 0)
    assert json.loads(stored[-1].tool_calls or "[]")[0]["status"] == "pending"

    assert chat.session.decide(row, index, "once", chat.target)
    chat.pump(lambda: len(chat.session.transcript) == 3 and not chat.session.is_generating)
    done = chat.session.transcript.message(row).tool_uses[0]
    assert done.status is ToolStatus.DONE and done.result == str(arguments["a"] + arguments["b"])
    follow = chat.session.transcript.message(2)
    assert follow.role is Role.ASSISTANT and follow.content and not follow.tool_uses
    # The model read the result: the prompt of the reply after it held the call and the tool turn.
    turns = chat.session.prompt()
    assert turns[1]["tool_calls"][0]["function"]["name"] == "test__add"
    assert turns[2] == {"role": "tool", "tool_call_id": done.id, "content": done.result}

    # Stored: reopened, the card and its result are there; exported in OpenAI's tool-call format.
    conversation = chat.session.conversation_id or 0
    chat.session.new()
    chat.session.open(conversation)
    shown = chat.session.transcript.message(1).tool_uses
    assert [(u.name, u.status, u.result) for u in shown] == [("test__add", ToolStatus.DONE, done.result)]
    line = json.loads(chat.store.export_finetune_jsonl([conversation]))
    roles = [m["role"] for m in line["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert line["messages"][1]["tool_calls"][0]["id"] == line["messages"][2]["tool_call_id"] == done.id
    exported = chat.store.export_json(conversation)
    imported = chat.store.import_any(exported)[0]
    assert "tool_calls" in json.dumps(chat.store.export_json(imported))


def test_a_denied_call_tells_the_model_so_and_nothing_runs(chat: Chat, toolbox: Toolbox) -> None:
    _offer(chat, toolbox, "add")
    chat.session.send("Add 1 and 1.", chat.target)
    _until_waiting(chat)
    row, index, _use = chat.session.pending_call() or (0, 0, None)
    assert chat.session.decide(row, index, "deny", chat.target)
    chat.pump(lambda: len(chat.session.transcript) == 3 and not chat.session.is_generating)
    use = chat.session.transcript.message(row).tool_uses[0]
    assert use.status is ToolStatus.DENIED and use.result == ""
    assert chat.session.prompt()[2]["content"] == DENIED_TEXT
    assert not chat.session.decide(row, index, "once", chat.target)  # decided once only


def test_always_allow_runs_the_next_call_of_that_tool_without_asking(chat: Chat, toolbox: Toolbox) -> None:
    _offer(chat, toolbox, "add")
    chat.session.send("Add 4 and 5.", chat.target)
    _until_waiting(chat)
    row, index, _use = chat.session.pending_call() or (0, 0, None)
    chat.session.decide(row, index, "always", chat.target)
    assert [c.always_allowed for c in chat.remembered] == [frozenset({"add"})]  # type: ignore[attr-defined]
    chat.pump(lambda: len(chat.session.transcript) == 3 and not chat.session.is_generating)
    # The next message's call runs at once: no card waits, and the reply goes on by itself.
    chat.session.send("And 6 and 7?", chat.target)
    chat.pump(lambda: len(chat.session.transcript) == 6 and not chat.session.is_generating)
    assert chat.session.pending_call() is None
    assert chat.session.transcript.message(4).tool_uses[0].status is ToolStatus.DONE


def test_a_failing_tool_is_shown_and_the_model_told_the_error(chat: Chat, toolbox: Toolbox) -> None:
    _offer(chat, toolbox, "fail")
    chat.session.send("Try the tool.", chat.target)
    _until_waiting(chat)
    row, index, _use = chat.session.pending_call() or (0, 0, None)
    chat.session.decide(row, index, "once", chat.target)
    chat.pump(lambda: len(chat.session.transcript) == 3 and not chat.session.is_generating)
    use = chat.session.transcript.message(row).tool_uses[0]
    assert use.status is ToolStatus.FAILED and "Error executing tool fail" in use.result
    assert chat.session.prompt()[2]["content"].startswith("Error: ")


def test_writing_on_instead_of_answering_a_card_denies_it(chat: Chat, toolbox: Toolbox) -> None:
    _offer(chat, toolbox, "add")
    chat.session.send("Add 2 and 2.", chat.target)
    _until_waiting(chat)
    chat.session.require_tool = False
    chat.session.tools = []
    chat.session.send("Never mind, just say hello.", chat.target)
    chat.reply()
    assert chat.session.transcript.message(1).tool_uses[0].status is ToolStatus.DENIED
    assert chat.session.pending_call() is None


def test_json_mode_holds_the_reply_to_the_schema(chat: Chat) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    chat.session.output_schema = schema
    chat.session.sampling = SamplingParams(temperature=0, max_tokens=80, context_length=2048)
    chat.session.send("Name a big city.", chat.target)
    ended = chat.reply()
    value = json.loads(ended.text)
    assert set(value) == {"city", "population"} and isinstance(value["population"], int)
    chat.session.output_schema = {"type": "object", "not": {}}  # a keyword no grammar holds
    chat.session.send("Again.", chat.target)
    chat.reply()
    assert any(isinstance(e, Warned) and "“not” is not supported" in e.message for e in chat.told)


def test_a_remote_engines_calls_arrive_and_unparsable_arguments_are_a_clear_failure(
    tmp_path: Path, starter_model: Path
) -> None:
    from app.core.chat.store import Store

    fake = FakeOpenAI(tool_calls=[("lookup", '{"q": "fireside"}'), ("lookup", '{"q": broken')]).start()
    events: queue.Queue[Event] = queue.Queue()
    worker = InferenceThread(events.put)  # no model: the remote engine answers
    worker.start()
    store = Store(tmp_path / "conversations.db")
    chat = Chat(worker, events, store, starter_model)
    try:
        client = RemoteClient(Endpoint(fake.url, name="Fake"))
        target = ReplyTarget("remote:fake", RemoteTarget(client, "tiny-model"))
        chat.session.tools = [ToolSpec("lookup", "Look something up.", {"type": "object"})]
        chat.session.send("Look it up.", target)
        _until_waiting(chat)
        uses = chat.session.transcript.message(1).tool_uses
        assert [(u.name, u.arguments, u.status) for u in uses] == [
            ("lookup", '{"q": "fireside"}', ToolStatus.PENDING),
            ("lookup", '{"q": broken', ToolStatus.FAILED),
        ]
        assert "not a JSON object" in uses[1].result
        assert fake.requests[0]["tools"][0]["function"]["name"] == "lookup"
        chat.session.decide(1, 0, "deny", target)
        chat.pump(lambda: len(chat.session.transcript) == 3 and not chat.session.is_generating)
        # The results went back as OpenAI's tool messages, and the engine answered in words.
        sent = fake.requests[-1]["messages"]
        assert [m["role"] for m in sent[-3:]] == ["assistant", "tool", "tool"]
        assert chat.session.transcript.message(2).content.startswith("word0")
        chat.session.output_schema = {}
        chat.session.send("As JSON.", target)
        chat.reply()
        assert fake.requests[-1]["response_format"] == {"type": "json_object"}
        assert "tools" not in fake.requests[-1]  # JSON mode: the reply is the JSON, no calls
    finally:
        fake.stop()
        worker.shutdown()
        store.close()


def test_the_toolbox_says_when_a_call_times_out_or_its_tool_is_gone(toolbox: Toolbox) -> None:
    results: queue.Queue[object] = queue.Queue()
    short = McpServerConfig("quick", command=sys.executable, args=(SERVER,), timeout_s=1)
    box = Toolbox([short])
    try:
        box.call("quick__sleep", {"seconds": 5}, results.put)
        timed_out = results.get(timeout=60)
        assert timed_out.timed_out and "within 1 s" in timed_out.text  # type: ignore[attr-defined]
        box.call("quick__nothing", {}, results.put)
        gone = results.get(timeout=60)
        assert gone.is_error and "no tool called quick__nothing" in gone.text  # type: ignore[attr-defined]
    finally:
        box.close()


def test_a_call_running_while_the_view_reloads_keeps_its_place_and_its_result_lands(
    chat: Chat, toolbox: Toolbox
) -> None:
    held: list[object] = []
    runner = chat.session.runner
    assert isinstance(runner, ToolboxRunner)
    runner.deliver = held.append  # a slow tool: its result is held until the view has reloaded
    _offer(chat, toolbox, "add")
    chat.session.send("Add 3 and 4.", chat.target)
    _until_waiting(chat)
    row, index, _use = chat.session.pending_call() or (0, 0, None)
    chat.session.decide(row, index, "once", chat.target)
    deadline = time.monotonic() + 30
    while not held:
        assert time.monotonic() < deadline, "the tool never answered"
        time.sleep(0.02)
    conversation = chat.session.conversation_id or 0
    chat.session.new()
    chat.session.open(conversation)  # away and back while it runs
    assert chat.session.transcript.message(1).tool_uses[0].status is ToolStatus.RUNNING
    runner.deliver = chat.events.put
    for deliver in held:
        deliver()  # type: ignore[operator]
    chat.pump(lambda: len(chat.session.transcript) == 3 and not chat.session.is_generating)
    use = chat.session.transcript.message(1).tool_uses[0]
    assert use.status is ToolStatus.DONE and use.result
    stored = json.loads(chat.store.branch(conversation)[1].tool_calls or "[]")
    assert stored[0]["status"] == "done"


def test_remote_call_pieces_are_put_together_whatever_the_server_streams() -> None:
    from app.core.remote.client import _gather_calls

    calls: dict[int, dict[str, str]] = {}
    _gather_calls([{"id": "a", "function": {"name": "lookup", "arguments": ""}}], calls)
    _gather_calls([{"function": {"name": "lookup", "arguments": '{"q": '}}], calls)  # the name again
    _gather_calls([{"function": {"arguments": '"x"}'}}], calls)
    _gather_calls([{"id": "b", "function": {"name": "add", "arguments": {"a": 1}}}], calls)  # an object
    _gather_calls(["nonsense", {"index": "x"}], calls)
    assert [calls[0], calls[1]] == [
        {"id": "a", "name": "lookup", "arguments": '{"q": "x"}'},
        {"id": "b", "name": "add", "arguments": '{"a": 1}'},
    ]
