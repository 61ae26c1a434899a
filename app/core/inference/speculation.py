"""Speculative decoding: a cheap guess at a reply's next tokens, checked by the model in one decode.

While a reply is written, each step decodes its last token; with a guess (a draft) the step decodes
the last token and the draft together, and the reply takes the model's own token at each position
for as long as the draft agrees with it (generation.py). Every token of the reply is still the one
the model's sampler draws given the tokens before it, so greedy replies are the same text, and
sampled ones follow the same distribution (llama.cpp's acceptance rule: draw from the target, keep
the draft while it matches); a step that guesses right yields several tokens for one pass over the
weights.

Guesses come from n-gram lookup (`NgramDraft`): the last few tokens of the sequence are looked up
earlier in the same sequence (the prompt and the reply so far) and what followed them there is the
guess. It costs no second model and shines when a reply repeats what it was given (edits of code or
text, quotes, JSON): a reply of new words finds few matches, and then nothing is drafted at all. A
second, smaller model of the same vocabulary can guess as well (draft_model.py).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The most tokens one step drafts. A longer draft costs more when it is wrong (each drafted token is
#: computed like a prompt token); on a CPU a step of 9 tokens costs about what 2-3 single steps do.
MAX_DRAFT = 8
#: The length of a reply's first guess: short, for in a reply of new words the first match found is
#: likely wrong; each guess the model takes whole doubles the next one's length.
FIRST_DRAFT = 2
#: llama.cpp pads the range of cache cells attention covers to a multiple of this
#: (llama_kv_cache::get_n_kv).
KV_PAD = 256
#: The run lengths looked up, longest first: a longer match is a better guess; one of 2 tokens is
#: the shortest that still guesses right more often than not in text that quotes its prompt.
NGRAM_SIZES = (4, 3, 2)
#: The most steps a run of failed guesses makes the drafter wait before it guesses again.
MAX_REST = 16


class NgramDraft:
    """Guesses a sequence's next tokens from where its last few tokens occurred before in it.

    For each run length it keeps, for every run of tokens seen, the position just after the run's
    latest occurrence, updated as tokens arrive: a guess is a dictionary lookup, not a search."""

    def __init__(self, tokens: Sequence[int] = (), sizes: Sequence[int] = NGRAM_SIZES) -> None:
        self._sizes = tuple(sorted(sizes, reverse=True))
        self._after: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in self._sizes}
        self.tokens: list[int] = []
        #: How many drafted tokens the model accepted in a row, lately: a draft that keeps failing is
        #: shortened (to 1 token at worst), one that keeps matching is lengthened again.
        self._limit = FIRST_DRAFT
        #: Guesses that all failed, in a row, and how many steps go without a guess because of them:
        #: in text of new words the few matches found are mostly wrong, and each costs a decode.
        self._misses = 0
        self._rest = 0
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        """The sequence grew by `tokens`."""
        seq = self.tokens
        for token in tokens:
            seq.append(token)
            end = len(seq) - 1  # a run ending before the new token is followed by it
            for n in self._sizes:
                if end >= n:
                    self._after[n][tuple(seq[end - n : end])] = end

    def truncate(self, length: int) -> None:
        """The sequence lost its tokens from `length` on (a reply regenerated): forget them."""
        if length >= len(self.tokens):
            return
        kept = self.tokens[:length]
        self.tokens = []
        for n in self._sizes:
            self._after[n].clear()
        self.extend(kept)

    def draft(self, most: int) -> list[int]:
        """Up to `most` tokens likely to follow the sequence (none when its end was not seen before)."""
        seq = self.tokens
        most = min(most, self._limit)
        if self._rest > 0:
            self._rest -= 1
            return []
        if most <= 0:
            return []
        for n in self._sizes:
            if len(seq) <= n:
                continue
            at = self._after[n].get(tuple(seq[-n:]))
            if at is not None and at < len(seq):
                guess = seq[at : at + most]
                # An image's positions (negative placeholders) are never guessed: only text is.
                image = next((i for i, token in enumerate(guess) if token < 0), None)
                return guess if image is None else guess[:image]
        return []

    def accepted(self, drafted: int, kept: int) -> None:
        """The model kept `kept` of the `drafted` tokens guessed last."""
        if drafted <= 0:
            return
        if kept == 0:
            self._misses += 1
            self._rest = min(MAX_REST, 2**self._misses)
            self._limit = max(1, self._limit // 2)
            return
        self._misses = 0
        if kept == drafted:
            self._limit = min(MAX_DRAFT, self._limit * 2)
        else:
            self._limit = max(1, min(MAX_DRAFT, kept + 1))
