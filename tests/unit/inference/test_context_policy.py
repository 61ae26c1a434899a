"""Context policies against the real starter model's tokenizer and chat template."""

from __future__ import annotations

import pytest

from app.core.inference.context_policy import ContextFull, fit_messages
from app.core.inference.engine import Engine


def conversation(exchanges: int) -> list[dict[str, str]]:
    turns = []
    for i in range(exchanges):
        turns.append({"role": "user", "content": f"Question {i}: " + "tell me about the sea " * 10})
        turns.append({"role": "assistant", "content": f"Answer {i}: " + "the sea is wide and deep " * 10})
    turns.append({"role": "user", "content": "And finally, what about lighthouses?"})
    return turns


def test_everything_is_sent_when_it_fits(engine: Engine) -> None:
    turns = conversation(2)
    fitted = fit_messages("Be brief.", turns, engine.count_tokens, 2000, "stop")
    assert fitted.dropped == [] and len(fitted.messages) == len(turns) + 1
    assert fitted.tokens == engine.count_tokens(fitted.messages)


def test_stop_policy_says_what_is_needed(engine: Engine) -> None:
    turns = conversation(12)
    needed = engine.count_tokens([{"role": "system", "content": "Be brief."}, *turns])
    with pytest.raises(ContextFull) as caught:
        fit_messages("Be brief.", turns, engine.count_tokens, needed - 1, "stop")
    assert caught.value.needed == needed and "new conversation" in caught.value.message


def test_drop_oldest_leaves_out_the_fewest_oldest_turns_and_keeps_the_system_prompt(engine: Engine) -> None:
    turns = conversation(12)
    budget = 700
    fitted = fit_messages("Be brief.", turns, engine.count_tokens, budget, "drop_oldest")
    assert fitted.tokens <= budget and fitted.tokens == engine.count_tokens(fitted.messages)
    assert fitted.messages[0] == {"role": "system", "content": "Be brief."}
    assert fitted.messages[-1] == turns[-1]
    assert fitted.dropped == list(range(len(fitted.dropped)))  # a prefix: the oldest
    assert len(fitted.dropped) % 2 == 0  # whole exchanges
    # One exchange fewer left out would not fit: the fewest were dropped.
    kept_one_more = [t for i, t in enumerate(turns) if i not in fitted.dropped[:-2]]
    assert engine.count_tokens([fitted.messages[0], *kept_one_more]) > budget


def test_keep_first_last_drops_the_middle(engine: Engine) -> None:
    turns = conversation(12)
    fitted = fit_messages("", turns, engine.count_tokens, 700, "keep_first_last")
    assert fitted.messages[:2] == turns[:2]  # the first exchange sets the task
    assert fitted.messages[-1] == turns[-1]
    assert fitted.dropped and fitted.dropped[0] == 2
    assert fitted.tokens <= 700


def test_nothing_fits_explains(engine: Engine) -> None:
    turns = [{"role": "user", "content": "word " * 600}]
    with pytest.raises(ContextFull, match="Shorten the message"):
        fit_messages("Be brief.", turns, engine.count_tokens, 100, "drop_oldest")


def test_the_tools_offered_are_counted_in_what_fits(engine: Engine) -> None:
    from app.core.tools.calls import ToolSpec

    tools = [
        ToolSpec(f"t{i}__lookup", "Look up a thing in a long list. " * 20, {"type": "object"})
        for i in range(5)
    ]
    messages = [{"role": "user", "content": "Hello"}]
    bare, offered = engine.count_tokens(messages), engine.count_tokens(messages, tools)
    assert offered > bare + 5 * 100  # every definition takes room in the prompt
