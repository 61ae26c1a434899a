"""Whether and how the engine guesses replies ahead (speculative decoding): a setting, shared by the
engine, the window and `fireside serve --speculative`."""

from __future__ import annotations

from enum import StrEnum


class SpeculationMode(StrEnum):
    """Whether and how replies are drafted."""

    AUTO = "auto"  # n-gram lookup, and the draft model when one is chosen and fits
    OFF = "off"
    NGRAM = "ngram"

    @property
    def label(self) -> str:
        """Words for the setting."""
        return {
            SpeculationMode.AUTO: "Auto",
            SpeculationMode.OFF: "Off",
            SpeculationMode.NGRAM: "N-gram lookup only",
        }[self]
