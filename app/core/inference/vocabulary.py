"""A loaded model's vocabulary: text to tokens and back, and its chat template around messages."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from app.core.inference.template import ChatTemplate
from app.core.models.gguf_file import ModelInfo
from app.core.tools.calls import ToolSpec
from app.core.values.text import clean_text


class Vocabulary:
    """Tokenizes, renders the chat template, and turns tokens into text for one loaded model."""

    def __init__(self, llama_cpp: Any, model: Any, info: ModelInfo) -> None:
        self._llama = llama_cpp
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self._piece = ctypes.create_string_buffer(256)
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self._bos = int(llama_cpp.llama_vocab_bos(self.vocab))
        self._bos_text = self.token_text(self._bos)
        eos = self.token_text(llama_cpp.llama_vocab_eos(self.vocab))
        self.template = ChatTemplate(info.chat_template, eos, self._bos_text)

    def token_text(self, token: int) -> str:
        """A (special) token's text, such as "<|im_end|>" ("" for none)."""
        if token < 0:
            return ""
        return self.piece(token, special=True).decode("utf-8", "replace")

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes a token stands for (a piece of UTF-8: a character may span two tokens)."""
        llama_cpp = self._llama
        n = llama_cpp.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, special)
        if n < 0:  # buffer too small: grow once to the size llama.cpp asked for
            self._piece = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, special)
        return self._piece.raw[:n]

    def render(self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec] | None = None) -> str:
        """The chat template applied to `messages` (and the `tools` offered), ending with the
        assistant's turn."""
        return self.template.render(messages, tools)

    def tokenize(self, text: str, *, special: bool = True, bos: bool = True) -> list[int]:
        """Token ids of `text`; BOS is added when the model wants one, the text lacks it and `bos`
        allows it (a lone surrogate, which UTF-8 cannot encode, is read as U+FFFD)."""
        llama_cpp = self._llama
        data = clean_text(text).encode("utf-8")
        add_bos = bos and self._add_bos and not self._bos_in(text)
        capacity = len(data) + 8
        tokens = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), tokens, capacity, add_bos, special)
        if n < 0:
            capacity = -n
            tokens = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), tokens, capacity, add_bos, special)
        return list(tokens[:n])

    def wants_bos(self, text: str) -> bool:
        """True when tokenizing `text` should add BOS (the model wants one and the text lacks it)."""
        return self._add_bos and not self._bos_in(text)

    def prompt_text(
        self,
        messages: Sequence[dict[str, Any]],
        continue_last: bool = False,
        raw_prompt: str | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> str:
        """The text a reply to `messages` starts from: the template's prompt (offering `tools`), the
        last (assistant) message carried on with `continue_last`, or `raw_prompt` as it is (a plain
        completion)."""
        if raw_prompt is not None:
            return raw_prompt
        if continue_last and messages and messages[-1]["role"] == "assistant":
            # The template up to the reply's header, then the reply so far: the model goes on from there.
            return self.render(messages[:-1], tools) + messages[-1]["content"]
        return self.render(messages, tools)

    def prompt(
        self, messages: Sequence[dict[str, Any]], continue_last: bool = False, raw_prompt: str | None = None
    ) -> list[int]:
        """The tokens of prompt_text."""
        return self.tokenize(self.prompt_text(messages, continue_last, raw_prompt))

    def splice(self, held: Sequence[int], text: str, at_least: int = 1) -> list[int] | None:
        """Tokens of `text` that begin with as much of `held` as spells its start, the rest tokenized;
        None when fewer than `at_least` of them do, or when the result would not spell `text` exactly.

        A sampled reply may hold tokens its own text does not tokenize back to ("Hel" + "lo" where
        the tokenizer says "Hello"): tokenizing the next prompt afresh would then part from the
        cached tokens there, and the reply would be read again though its keys and values are held.
        """
        data = clean_text(text).encode("utf-8")
        start = 1 if held and self._add_bos and held[0] == self._bos and not self._bos_in(text) else 0
        pos, count = 0, start
        for token in held[start:]:
            piece = self.piece(token, special=True)
            if not piece or not data.startswith(piece, pos):
                break
            pos, count = pos + len(piece), count + 1
        # Cut at a character's start: the rest must be text of its own.
        while count > start and pos < len(data) and data[pos] & 0xC0 == 0x80:
            count -= 1
            pos -= len(self.piece(held[count], special=True))
        if count == start or count < at_least:
            return None  # not worth tokenizing the rest
        tokens = list(held[:count])
        if pos < len(data):
            tokens += self.tokenize(data[pos:].decode("utf-8"), bos=False)
        return tokens if self.piece_text(tokens[start:]) == data else None

    def piece_text(self, tokens: Sequence[int]) -> bytes:
        """The bytes `tokens` spell, special tokens as their text."""
        return b"".join(self.piece(token, special=True) for token in tokens)

    def _bos_in(self, text: str) -> bool:
        return bool(self._bos_text) and text.startswith(self._bos_text)
