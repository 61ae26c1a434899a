"""`logit_bias` through the local API server: a token pushed up is written, a token banned is not,
on both endpoints, and biases the vocabulary cannot have are refused."""

from __future__ import annotations

from pathlib import Path

import gguf
import openai
import pytest

from tests.unit.api.served import MODEL, Served


def _token(model: Path, text: str) -> int:
    """The id of the token spelled `text` in the model's own vocabulary (Ġ is a leading space)."""
    field = gguf.GGUFReader(str(model)).fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
    return tokens.index(text)


def _next_word(served: Served, **kwargs: object) -> str:
    reply = served.client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=1, temperature=0, **kwargs
    )
    return reply.choices[0].text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_banned_token_is_never_written_and_a_pushed_one_is(
    served: Served, starter_model: Path, stream: bool
) -> None:
    paris, london = _token(starter_model, "ĠParis"), _token(starter_model, "ĠLondon")
    assert _next_word(served) == " Paris"
    banned = _next_word(served, logit_bias={str(paris): -100})
    assert banned != " Paris" and banned.strip()
    assert _next_word(served, logit_bias={str(london): 100}) == " London"
    chat = served.client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        max_tokens=12,
        temperature=0.8,
        seed=4,
        stream=stream,
        logit_bias={str(paris): -100, str(_token(starter_model, "Paris")): -100},
    )
    text = (
        "".join(c.choices[0].delta.content or "" for c in chat if c.choices)
        if stream
        else (
            chat.choices[0].message.content or ""  # type: ignore[union-attr]
        )
    )
    assert "Paris" not in text, text


@pytest.mark.parametrize(
    ("bias", "said"),
    [
        ({"49152": 5}, "vocabulary has tokens 0 to 49151"),
        ({"hello": 5}, "is not a token id"),
        ({"12": 101}, "biases go from -100 to 100"),
        ({str(n): 1 for n in range(301)}, "at most 300"),
    ],
)
def test_biases_the_model_cannot_take_are_refused(served: Served, bias: dict[str, float], said: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _next_word(served, logit_bias=bias)
    assert said in caught.value.message
    assert served.worker.replies_running() == 0
