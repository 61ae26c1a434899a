"""Sampling parameters: one frozen dataclass with defaults, ranges and validation messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

#: Seed value meaning "a new random seed for each reply".
RANDOM_SEED = -1


@dataclass(frozen=True, slots=True)
class Range:
    """Allowed values of one parameter and the one-line hint shown beside its input."""

    minimum: float
    maximum: float
    hint: str
    integer: bool = False

    def describe(self) -> str:
        """'0 – 2' style text for messages."""
        fmt = "{:.0f}" if self.integer else "{:g}"
        return f"{fmt.format(self.minimum)} – {fmt.format(self.maximum)}"


def shown_number(value: float) -> str:
    """A number as a message shows it: short, even for an integer too large for a float (10**400)."""
    try:
        return f"{value:g}"
    except OverflowError:
        return "a number too large to use"


RANGES: dict[str, Range] = {
    "temperature": Range(0.0, 2.0, "Randomness. 0 always picks the likeliest token; 0.7 is a good start."),
    "top_p": Range(0.0, 1.0, "Keep the smallest set of tokens whose probabilities add up to this (1 = off)."),
    "top_k": Range(0, 1000, "Consider only the k likeliest tokens (0 = off).", integer=True),
    "min_p": Range(0.0, 1.0, "Drop tokens less likely than this fraction of the top token (0 = off)."),
    "repeat_penalty": Range(1.0, 2.0, "Discourage repeating recent tokens (1 = off)."),
    "frequency_penalty": Range(
        -2.0, 2.0, "Lower the odds of a token in proportion to how often it already appeared (0 = off)."
    ),
    "presence_penalty": Range(-2.0, 2.0, "Lower the odds of any token that already appeared (0 = off)."),
    "max_tokens": Range(1, 32768, "Longest reply, in tokens.", integer=True),
    "seed": Range(-1, 2**31 - 1, "Same seed + same settings = same reply. -1 = random.", integer=True),
    "context_length": Range(
        256,
        131072,
        "Tokens the model can see at once (prompt + reply). Larger needs more memory.",
        integer=True,
    ),
}


class SamplingError(ValueError):
    """One or more parameters are out of range; the message lists each with its allowed range."""


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """The settings for the next reply. Defaults follow llama.cpp's own, tuned for chat."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    #: OpenAI's penalties (the API server's fields); llama.cpp applies them over the last 64 tokens.
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    max_tokens: int = 1024
    seed: int = RANDOM_SEED
    context_length: int = 4096

    def problems(self) -> list[str]:
        """Human-readable messages for every out-of-range value (empty when valid)."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            rng = RANGES[f.name]
            label = f.name.replace("_", " ")
            if rng.integer and (isinstance(value, bool) or not isinstance(value, int)):
                out.append(f"{label} must be a whole number ({rng.describe()}), not {value!r}")
            elif not isinstance(value, int | float) or value != value:  # NaN fails too
                out.append(f"{label} must be a number ({rng.describe()}), not {value!r}")
            elif not rng.minimum <= value <= rng.maximum:
                out.append(f"{label} must be between {rng.describe()}; {shown_number(value)} is out of range")
        return out

    def validated(self) -> SamplingParams:
        """Return self, or raise SamplingError naming every bad value."""
        issues = self.problems()
        if issues:
            raise SamplingError("; ".join(issues))
        return self

    def with_changes(self, **changes: Any) -> SamplingParams:
        """A copy with some values changed (not yet validated)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for settings files."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> SamplingParams:
        """Build from a settings dict, ignoring unknown keys and falling back to defaults for bad ones."""
        if not isinstance(data, dict):  # a settings file from elsewhere may hold anything here
            return cls()
        known = {f.name for f in fields(cls)}
        params = cls(**{k: v for k, v in data.items() if k in known})
        if params.problems():
            good = {k: v for k, v in params.to_dict().items() if not cls(**{k: v}).problems()}
            return cls(**good)
        return params
