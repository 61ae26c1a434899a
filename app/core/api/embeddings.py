"""POST /v1/embeddings: the request body, and the reply in OpenAI's format.

The vectors come from the loaded model: pooled as an embedding model pools, or its token states
averaged (mean pooling) for a chat model, which the reply's `model` then says. Inputs are embedded a
few at a time between two steps of the replies being generated, so a long list never stalls them.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.api.schema import refuse_not_yet
from app.core.inference.embedder import Embeddings

#: The most inputs one request may hold (OpenAI's limit).
MAX_INPUTS = 2048
#: Inputs embedded per turn of the inference thread (replies step in between).
INPUTS_PER_TURN = 8


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings."""

    model_config = ConfigDict(extra="forbid")
    #: Fields OpenAI defines that Fireside does not honour (a model's width is its own).
    not_yet: ClassVar[dict[str, tuple[object, ...]]] = {"dimensions": ()}
    model: str = ""
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    #: Seconds the model, if loaded for this request, stays loaded while unused (as for chat).
    ttl: int | None = Field(default=None, ge=1, le=86_400)

    @model_validator(mode="before")
    @classmethod
    def _refuse_not_yet(cls, data: Any) -> Any:
        return refuse_not_yet(data, cls.not_yet)

    def inputs(self) -> list[str | list[int]]:
        """The inputs as a list: of strings, or of token lists."""
        value = self.input
        if isinstance(value, str):
            return [value]
        if value and all(isinstance(item, int) for item in value):
            return [list(value)]  # type: ignore[arg-type]  # one input given as token ids
        return list(value)  # type: ignore[arg-type]

    @field_validator("input")
    @classmethod
    def _some_inputs(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("it is an empty list: send at least one text")
        if isinstance(value, list) and len(value) > MAX_INPUTS:
            raise ValueError(f"it holds {len(value):,} items; at most {MAX_INPUTS:,} are accepted")
        return value


def reply(model: str, parts: list[Embeddings], encoding: str) -> dict[str, Any]:
    """The OpenAI reply for the embeddings of a request, in order (floats, or base64 of float32)."""
    data = []
    index = 0
    for part in parts:
        for vector in part.vectors:
            if encoding == "base64":
                shown: Any = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
            else:
                shown = [float(x) for x in vector]
            data.append({"object": "embedding", "index": index, "embedding": shown})
            index += 1
    tokens = sum(part.tokens for part in parts)
    own = all(part.own_pooling for part in parts)
    name = model if own else f"{model} (mean pooling)"
    return {
        "object": "list",
        "data": data,
        "model": name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
