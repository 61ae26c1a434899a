"""Model aliases: names the user gives, in the server panel, to a model with its adapters, a system
prompt and sampling defaults ("my-org/support-assistant-v2" = base model + adapter + scale + prompt).

API clients name an alias as they name any model. Aliases are kept in the settings file (a list of
`Alias.to_dict`), read by the window and by `fireside serve` alike. No Qt here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.values.sampling import RANGES, shown_number

#: Longest alias name: OpenAI's model ids are short, and a name is shown in one line of a table.
MAX_NAME = 128
#: The sampling settings an alias may set; a request's own values still win.
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens")
#: Adapter scales the window's sliders offer (the engine's own bound).
MAX_SCALE = 2.0


class AliasError(ValueError):
    """An alias the user is defining is not usable; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Alias:
    """A name for a base model with adapters, a system prompt and sampling defaults."""

    name: str
    #: The base model's file.
    model: Path
    #: LoRA adapters applied for this name: (file, scale 0–2).
    adapters: tuple[tuple[Path, float], ...] = ()
    #: Put first in a request that brings no system message of its own ("" for none).
    system_prompt: str = ""
    #: Defaults for fields a request leaves out, by SamplingParams name.
    sampling: tuple[tuple[str, float], ...] = ()

    def problems(self) -> list[str]:
        """Why this alias cannot be saved (empty when it can), each naming its field."""
        out = []
        name = self.name
        if not name.strip():
            out.append("The name is empty.")
        elif name != name.strip() or any(c.isspace() and c != " " for c in name):
            out.append("The name may not start or end with spaces, nor hold tabs or line breaks.")
        elif len(name) > MAX_NAME:
            out.append(f"The name is {len(name)} characters long; at most {MAX_NAME} fit.")
        if str(self.model) in ("", "."):
            out.append("No model is chosen.")
        for path, scale in self.adapters:
            if not (isinstance(scale, int | float) and _finite(scale) and 0 <= scale <= MAX_SCALE):
                out.append(f"The scale of {path.name} must be between 0 and {MAX_SCALE:g}, not {scale!r}.")
        for key, value in self.sampling:
            rng = RANGES.get(key)
            if key not in SAMPLING_FIELDS or rng is None:
                out.append(f"{key} is not a sampling setting an alias can set.")
            # An int is always finite (and math.isfinite would overflow on one too large for a float).
            elif isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
                out.append(f"{key.replace('_', ' ')} must be a number ({rng.describe()}).")
            elif rng.integer and value != int(value):
                out.append(f"{key.replace('_', ' ')} must be a whole number ({rng.describe()}).")
            elif not rng.minimum <= value <= rng.maximum:
                label = key.replace("_", " ")
                out.append(f"{label} must be between {rng.describe()}, not {shown_number(value)}.")
        return out

    def sampling_changes(self) -> dict[str, float | int]:
        """The alias's sampling defaults, typed as SamplingParams wants them."""
        return {key: int(value) if RANGES[key].integer else float(value) for key, value in self.sampling}

    def to_dict(self) -> dict[str, Any]:
        """For the settings file."""
        return {
            "name": self.name,
            "model": str(self.model),
            "adapters": [{"path": str(path), "scale": scale} for path, scale in self.adapters],
            "system_prompt": self.system_prompt,
            "sampling": dict(self.sampling),
        }

    @classmethod
    def from_dict(cls, data: object) -> Alias | None:
        """From the settings file; None for an entry that is not a usable alias (damaged by hand)."""
        if not isinstance(data, dict):
            return None
        name, model = data.get("name"), data.get("model")
        if not isinstance(name, str) or not isinstance(model, str) or not model:
            return None
        adapters = []
        for entry in data.get("adapters") or ():
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                scale = entry.get("scale", 1.0)
                if isinstance(scale, int | float) and not isinstance(scale, bool) and _finite(scale):
                    # A scale too large for a float (10**400) is out of range: kept as is, refused below.
                    adapters.append((Path(entry["path"]), float(scale) if abs(scale) < 1e300 else math.inf))
        prompt = data.get("system_prompt")
        raw = data.get("sampling")
        sampling = tuple(
            (key, value)
            for key, value in (raw.items() if isinstance(raw, dict) else ())
            if isinstance(key, str) and isinstance(value, int | float) and not isinstance(value, bool)
        )
        alias = cls(name, Path(model), tuple(adapters), prompt if isinstance(prompt, str) else "", sampling)
        return alias if not alias.problems() else None


def _finite(value: float) -> bool:
    """A finite number (an int always is: math.isfinite would overflow on one too large for a float)."""
    return isinstance(value, int) or math.isfinite(value)


def read_aliases(data: object) -> tuple[Alias, ...]:
    """The usable aliases of a settings entry (a list of dicts), the first of each name."""
    out: list[Alias] = []
    for item in data if isinstance(data, list) else ():
        alias = Alias.from_dict(item)
        if alias is not None and all(a.name != alias.name for a in out):
            out.append(alias)
    return tuple(out)
