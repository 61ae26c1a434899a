"""`logprobs` and `top_logprobs` through the local API server, as OpenAI documents them: each token
of the reply with its log probability and the likeliest alternatives, whole and streamed."""

from __future__ import annotations

import math
from typing import Any

import openai
import pytest

from tests.unit.api.served import MODEL, QUESTION, Served


def _chat(served: Served, stream: bool, **kwargs: Any) -> tuple[str, list[Any]]:
    """The reply's text and its logprobs content, whole or gathered from the streamed chunks."""
    args: dict[str, Any] = {"model": MODEL, "messages": QUESTION, "max_tokens": 24, "temperature": 0}
    args.update(kwargs)
    if not stream:
        reply = served.client.chat.completions.create(**args)
        choice = reply.choices[0]
        assert choice.logprobs is not None and choice.logprobs.content is not None
        return choice.message.content or "", list(choice.logprobs.content)
    text, content = "", []
    for chunk in served.client.chat.completions.create(stream=True, **args):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            if chunk.choices[0].logprobs is not None:
                content += chunk.choices[0].logprobs.content or []
    return text, content


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_each_token_comes_with_its_log_probability_and_the_likeliest_others(
    served: Served, stream: bool
) -> None:
    # No repeat penalty: greedy then writes the model's likeliest token (the numbers are the model's,
    # before any sampler reshapes them, as OpenAI reports them).
    text, content = _chat(served, stream, logprobs=True, top_logprobs=3, extra_body={"repeat_penalty": 1.0})
    assert content and "".join(t.token for t in content) == text
    for token in content:
        assert token.logprob <= 0 and bytes(token.bytes or []).decode("utf-8", "replace") == token.token
        top = token.top_logprobs
        assert len(top) == 3 and [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)
        assert sum(math.exp(t.logprob) for t in top) <= 1.0 + 1e-4  # probabilities of distinct tokens
        # Greedy: the token written is the likeliest one.
        assert top[0].token == token.token and top[0].logprob == pytest.approx(token.logprob, abs=1e-5)


def test_streamed_and_whole_replies_report_the_same_numbers(served: Served) -> None:
    whole = _chat(served, False, logprobs=True, top_logprobs=2)
    streamed = _chat(served, True, logprobs=True, top_logprobs=2)
    assert whole[0] == streamed[0]

    def numbers(content: list[Any]) -> list[tuple[str, float]]:
        return [(t.token, round(t.logprob, 4)) for t in content]

    assert numbers(whole[1]) == numbers(streamed[1])


def test_a_sampled_reply_is_likelier_the_cooler_it_is(served: Served) -> None:
    """The log probabilities are the model's own (before sampling): a greedy reply's tokens are
    likelier, on average, than a hot one's."""

    def mean(content: list[Any]) -> float:
        return sum(t.logprob for t in content) / len(content)

    cool = mean(_chat(served, False, logprobs=True, max_tokens=16)[1])
    hot = mean(_chat(served, False, logprobs=True, max_tokens=16, temperature=2.0, seed=3)[1])
    assert math.isfinite(cool) and math.isfinite(hot) and hot < cool <= 0
    plain = served.client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=4, temperature=0)
    assert plain.choices[0].logprobs is None  # not asked for: not computed


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_text_completions_report_tokens_offsets_and_alternatives(served: Served, stream: bool) -> None:
    args: dict[str, Any] = {"model": MODEL, "prompt": "The capital of France is", "max_tokens": 8}
    args["temperature"] = 0
    tokens: list[str] = []
    offsets: list[int] = []
    text = ""
    if stream:
        for chunk in served.client.completions.create(stream=True, logprobs=2, **args):
            choice = chunk.choices[0]
            text += choice.text
            if choice.logprobs is not None:
                tokens += choice.logprobs.tokens or []
                offsets += choice.logprobs.text_offset or []
    else:
        choice = served.client.completions.create(logprobs=2, **args).choices[0]
        assert choice.logprobs is not None
        text, tokens, offsets = choice.text, choice.logprobs.tokens or [], choice.logprobs.text_offset or []
        assert all(len(alternatives) <= 2 for alternatives in choice.logprobs.top_logprobs or [])
        assert all(lp <= 0 for lp in choice.logprobs.token_logprobs or [])
    assert "".join(tokens) == text and tokens[0] == " Paris"
    assert offsets == [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]


@pytest.mark.parametrize(
    ("args", "param"),
    [({"top_logprobs": 3}, "top_logprobs"), ({"logprobs": True, "top_logprobs": 21}, "top_logprobs")],
)
def test_alternatives_without_logprobs_or_too_many_are_refused(
    served: Served, args: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(served, False, **args)
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == param, error
