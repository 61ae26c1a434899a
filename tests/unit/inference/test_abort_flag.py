"""The abort flag llama.cpp reads without Python: what its C callback answers, and the stop event."""

from __future__ import annotations

from app.core.inference.abort_flag import AbortFlag
from app.core.inference.stop_event import StopEvent
from app.core.system.binding import import_llama_cpp


def test_the_c_callback_answers_what_the_flag_says() -> None:
    flag = AbortFlag(import_llama_cpp())
    assert flag.callback(flag.data) is False and not flag.is_set()
    flag.set()
    assert flag.callback(flag.data) is True and flag.is_set()
    flag.clear()
    assert flag.callback(flag.data) is False


def test_a_stop_event_tells_its_listeners_once_set() -> None:
    stop, heard = StopEvent(), []
    stop.listen(lambda: heard.append("first"))
    assert heard == []
    stop.set()
    assert stop.is_set() and heard == ["first"]
    stop.listen(lambda: heard.append("late"))  # listening after the stop: told at once
    assert heard == ["first", "late"]
