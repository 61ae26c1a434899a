"""Sampling parameters: defaults, ranges and the messages a user sees."""

from __future__ import annotations

import math

import pytest

from app.core.values.sampling import RANGES, SamplingError, SamplingParams


def test_defaults_are_valid_and_in_range() -> None:
    params = SamplingParams()
    assert params.validated() is params
    assert params.problems() == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("temperature", -0.1, "temperature must be between 0 – 2"),
        ("temperature", 2.5, "temperature must be between 0 – 2"),
        ("top_p", 1.5, "top p must be between 0 – 1"),
        ("top_k", -1, "top k must be between 0 – 1000"),
        ("top_k", 2.5, "top k must be a whole number"),
        ("min_p", 1.01, "min p must be between"),
        ("repeat_penalty", 0.5, "repeat penalty must be between 1 – 2"),
        ("max_tokens", 0, "max tokens must be between 1 – 32768"),
        ("seed", -2, "seed must be between -1 –"),
        ("context_length", 100, "context length must be between 256 – 131072"),
        ("temperature", math.nan, "temperature must be a number"),
        ("temperature", "hot", "temperature must be a number"),
        ("max_tokens", True, "max tokens must be a whole number"),
    ],
)
def test_out_of_range_values_are_named_with_their_range(field: str, value: object, expected: str) -> None:
    params = SamplingParams().with_changes(**{field: value})
    with pytest.raises(SamplingError) as info:
        params.validated()
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    params = SamplingParams(temperature=9, top_p=-1)
    assert len(params.problems()) == 2


def test_boundaries_are_allowed() -> None:
    for name, rng in RANGES.items():
        for value in (rng.minimum, rng.maximum):
            cast = int(value) if rng.integer else value
            assert SamplingParams().with_changes(**{name: cast}).problems() == [], (name, value)


def test_from_dict_keeps_good_values_and_drops_bad_ones() -> None:
    params = SamplingParams.from_dict({"temperature": 0.2, "top_p": 7, "unknown": 1})
    assert params.temperature == 0.2
    assert params.top_p == SamplingParams().top_p
    assert SamplingParams.from_dict(params.to_dict()) == params
