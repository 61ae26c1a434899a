"""One reply being generated in one sequence of the context: the prompt it still has to read, its own
sampler chain, stop strings, text decoding and measurements.

Many generations advance together: each step, every generation puts its tokens into one llama.cpp
batch (`put`: the next token of a reply being written, or the next chunk of a prompt being read),
the engine decodes the batch once, and each generation samples its next token from its own row of
logits (`take`). A generation never waits for another to finish.
"""

from __future__ import annotations

import codecs
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from app.core.inference.constrained import GrammarSampling
from app.core.inference.slots import Slot
from app.core.inference.speculation import KV_PAD, MAX_DRAFT, NgramDraft
from app.core.inference.stop import StopMatcher
from app.core.inference.vision import MediaPrompt, is_placeholder
from app.core.values.logprobs import TokenChoice, TokenLogprob
from app.core.values.replies import ReplyStats, StopReason
from app.core.values.sampling import SamplingParams


class TokenBatch(Protocol):
    """Where generations put their tokens for the next decode (batch.Batch)."""

    def add(self, token: int, pos: int, seq_id: int, logits: bool) -> int:
        """Add a token at `pos` of sequence `seq_id`; its index in the batch."""


class Generation:
    """A reply in progress in one sequence (the inference thread drives it, through the engine)."""

    def __init__(
        self,
        llama_cpp: Any,
        vocab: Any,
        piece: Callable[[int], bytes],
        slot: Slot,
        prompt: Sequence[int],
        reused: int,
        params: SamplingParams,
        sampler: Any,
        seed: int,
        on_text: Callable[[str], None],
        cancel: threading.Event,
        n_ctx: int,
        stop_strings: Sequence[str] = (),
        constrained: GrammarSampling | None = None,
        top_logprobs: int | None = None,
        media: MediaPrompt | None = None,
        drafter: NgramDraft | None = None,
    ) -> None:
        self._llama, self._vocab, self._piece = llama_cpp, vocab, piece
        self.slot, self.params, self.sampler, self.seed = slot, params, sampler, seed
        self.on_text, self.cancel, self.n_ctx = on_text, cancel, n_ctx
        #: The grammar the reply follows (structured output), drawing tokens with `sampler`; or None.
        self.constrained = constrained
        #: With a number, each token's log probability and that many likeliest alternatives are kept.
        self.top_logprobs = top_logprobs
        self.logprobs: list[TokenLogprob] = []
        #: The prompt's images, while some are still to be read (None: a prompt of text only).
        self._media = media
        #: The prompt has images (a draft model cannot read them: n-gram lookup guesses then).
        self.has_images = media is not None
        #: The LoRA adapters (path, scale) it is generated with; () for the base model alone.
        self.adapters: tuple[tuple[str, float], ...] = ()
        self.prompt_tokens = len(prompt)
        self.reused = reused
        #: Of the reused tokens, those whose KV cache came back from the disk cache.
        self.from_cache = 0
        #: Prompt tokens not read yet, then (while writing) the one token sampled last.
        self._pending: list[int] = list(prompt[reused:])
        self._reading = True
        self._in_batch: list[int] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._matcher = StopMatcher(stop_strings) if stop_strings else None
        #: Guesses the reply's next tokens (speculation.py), or None: one token per step.
        self.drafter = drafter
        if drafter is not None:
            drafter.extend(prompt)
        #: Tokens guessed, and of them those the model kept (the reply's stats line shows both).
        self.drafted = 0
        self.accepted = 0
        self._draft: list[int] = []  # this step's guess, after the last token sampled
        #: The sequence's KV cache holds guessed tokens the model did not keep: the engine drops them.
        self.overdrawn = False
        self._rows: list[int] = []  # this generation's rows of logits in the batch just decoded
        self._asked = False  # this step's guess was made
        self.started = time.perf_counter()
        self.first_token_at = 0.0
        self.completion = 0
        #: Tokens decoded after the first one (each gives one more): tokens/s is measured on them.
        self._decodes = 0
        self._read = 0  # prompt tokens read into the KV cache
        #: Why it ended; None while it goes on.
        self.stop: StopReason | None = None
        if cancel.is_set():
            self.stop = StopReason.USER

    @property
    def reading(self) -> bool:
        """True while the prompt is still being read."""
        return self._reading

    @property
    def wanted(self) -> int:
        """How many tokens this generation would put into the next batch (0 once it has ended)."""
        return len(self._pending) if self.stop is None else 0

    @property
    def media_next(self) -> Any | None:
        """The image chunk the prompt reaches next, before any more text (None: text comes next)."""
        if self._media is None or self.stop is not None or not self._pending:
            return None
        return self._media.chunks.get(self._pending[0]) if is_placeholder(self._pending[0]) else None

    def media_read(self, positions: int) -> None:
        """The image at the head of the prompt is in the KV cache now, taking `positions`."""
        mark = self._pending[0]
        run = 0
        while run < len(self._pending) and self._pending[run] == mark:
            run += 1
        if positions != run:
            raise RuntimeError(f"an image took {positions} positions, not the {run} its chunk said")
        self.slot.tokens.extend(self._pending[:run])
        del self._pending[:run]
        self._read += run
        if not any(map(is_placeholder, self._pending)) and self._media is not None:
            self._media.close()  # every image is read: its pixels are no longer needed
            self._media = None

    @property
    def guessing(self) -> bool:
        """True when this step may decode a guess after the last token (speculation is on for the
        reply, it is being written, and no guess was made yet this step)."""
        return (
            self.drafter is not None
            and not self._reading
            and self.stop is None
            and len(self._pending) == 1
            and not self._asked
        )

    @property
    def history(self) -> list[int]:
        """The sequence's tokens so far, the last one sampled included (with a drafter only)."""
        return self.drafter.tokens if self.drafter is not None else []

    def speculate(self, guess: Sequence[int] | None = None) -> None:
        """Put a guess at what follows the last token sampled into this step's batch after it (a
        draft model's `guess`, cut to guess_room; by default the reply's own n-gram lookup); wanted
        counts it."""
        if not self.guessing:
            return
        room = self.guess_room()
        assert self.drafter is not None
        self._draft = list(guess[:room]) if guess is not None else self.drafter.draft(room)
        self._pending.extend(self._draft)
        self._asked = bool(self._draft) or guess is not None  # an empty lookup leaves a draft model to try

    def guess_room(self) -> int:
        """The most tokens a guess may have this step."""
        end = len(self.slot.tokens) + 1  # the cache's cells in use once the last token is in
        return min(
            MAX_DRAFT,
            self.params.max_tokens - self.completion - 1,  # no guess past the reply's end
            self.n_ctx - end - 1,
            # llama.cpp's attention covers the cache's cells in use rounded up to KV_PAD: a guess
            # reaching past that mark would have the model attend over more (empty) cells, summed
            # in another order, and its tokens could differ from a decode without the guess.
            -(-end // KV_PAD) * KV_PAD - end,
        )

    def put(self, batch: TokenBatch, budget: int) -> int:
        """Add this step's tokens (at most `budget`) to `batch`; how many were added (text only:
        an image is read on its own, see media_next)."""
        self._rows = []
        self._asked = False
        if self.stop is not None or budget <= 0 or not self._pending:
            return 0
        if self.cancel.is_set():
            self.stop = StopReason.USER
            return 0
        take = self._pending[:budget]
        if self._media is not None:
            image_at = next((i for i, token in enumerate(take) if is_placeholder(token)), None)
            if image_at is not None:
                take = take[:image_at]  # the text up to the next image
                if not take:
                    return 0
        base = len(self.slot.tokens)
        seq = self.slot.seq_id
        if not self._reading:  # the last token sampled and a guess: logits at every position
            self._rows = [batch.add(token, base + i, seq, True) for i, token in enumerate(take)]
            del self._draft[len(take) - 1 :]  # what the budget left out of the guess is dropped
            self._pending = []
        else:
            last = len(take) == len(self._pending)  # the whole prompt: its last token's logits wanted
            for i, token in enumerate(take):
                index = batch.add(token, base + i, seq, last and i == len(take) - 1)
            if last:
                self._rows = [index]
            del self._pending[: len(take)]
        self._in_batch = take
        return len(take)

    def decoded(self) -> None:
        """The batch was decoded: what this generation put there is in its sequence's KV cache now."""
        if self._in_batch:
            self.slot.tokens.extend(self._in_batch)
            if self._reading:
                self._read += len(self._in_batch)
            self._in_batch = []

    def aborted(self) -> None:
        """The decode was stopped (every generation in it was cancelled): nothing went in."""
        self._in_batch = []
        self._rows = []
        self._draft = []
        self.stop = StopReason.USER

    def take(self, ctx: Any) -> None:
        """Sample this generation's next tokens from its rows of logits (if the batch gave it any).

        Without a guess that is one token. With one, the token sampled after the last one is
        compared with the guess's first: while they agree, the guessed token is the reply's (its
        keys and values are already in the cache) and the next row gives the token after it; the
        first disagreement (or the row after the whole guess) gives the token the next step decodes."""
        rows, draft = self._rows, self._draft
        if not rows or self.stop is not None:
            return
        self._rows, self._draft = [], []
        writing = not self._reading
        if draft:  # the guessed tokens are in the cache; they are the sequence's only once kept
            del self.slot.tokens[len(self.slot.tokens) - len(draft) :]
            self.overdrawn = True
        kept = 0
        for i, row in enumerate(rows):
            token = self._sample(ctx, row)
            if writing:
                self._decodes += 1  # each sampled token after the first counts towards tokens/s
            if token is None or not self._emit(token):
                break
            if self.drafter is not None:
                self.drafter.extend((token,))
            if i < len(draft) and token == draft[i]:
                self.slot.tokens.append(token)  # the guess was right: the next row follows it
                kept += 1
                continue
            self._pending = [token]
            break
        if draft:
            self.drafted += len(draft)
            self.accepted += kept
            if self.drafter is not None:
                self.drafter.accepted(len(draft), kept)

    def _sample(self, ctx: Any, row: int) -> int | None:
        """The token drawn from row `row` of the logits (None: the grammar leaves none, the reply ends)."""
        llama_cpp = self._llama
        if self.constrained is not None:
            token = self.constrained.sample(ctx, row)
            if token is None:  # the grammar and the biases leave no token: the reply ends here
                self.stop = StopReason.END_OF_TURN
                return None
        else:
            token = llama_cpp.llama_sampler_sample(self.sampler, ctx, row)
        if self.top_logprobs is not None and not llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self.logprobs.append(self._logprob(ctx, row, token))
        self._reading = False
        if self.completion == 0:
            self.first_token_at = time.perf_counter()
        return int(token)

    def _emit(self, token: int) -> bool:
        """Give `token` to the reply; False when the reply ends with it (end of turn, a stop
        string, max tokens, a full context or a stop)."""
        if self._llama.llama_vocab_is_eog(self._vocab, token):
            self.stop = StopReason.END_OF_TURN
            return False
        self.completion += 1
        text = self._decoder.decode(self._piece(token))
        if self._matcher is not None and text:
            text, hit = self._matcher.feed(text)
            if hit:
                if text:
                    self.on_text(text)
                self.stop = StopReason.END_OF_TURN
                return False
        if text:
            self.on_text(text)
        if self.completion >= self.params.max_tokens:
            self.stop = StopReason.MAX_TOKENS
        elif len(self.slot.tokens) + 1 >= self.n_ctx:
            self.stop = StopReason.CONTEXT_FULL
        elif self.cancel.is_set():
            self.stop = StopReason.USER
        else:
            return True
        return False

    def _logprob(self, ctx: Any, row: int, token: int) -> TokenLogprob:
        """The model's log probability of `token` at this step (before sampling reshapes it, as
        OpenAI reports it), with the likeliest tokens."""
        n_vocab = self._llama.llama_vocab_n_tokens(self._vocab)
        logits = np.ctypeslib.as_array(self._llama.llama_get_logits_ith(ctx, row), shape=(n_vocab,))
        peak = float(logits.max())
        total = peak + math.log(float(np.exp(logits - peak).sum()))

        def choice(index: int) -> TokenChoice:
            raw = self._piece(index)
            return TokenChoice(raw.decode("utf-8", errors="replace"), raw, float(logits[index]) - total)

        top: tuple[TokenChoice, ...] = ()
        if self.top_logprobs:
            count = min(self.top_logprobs, n_vocab)
            best = np.argpartition(-logits, count - 1)[:count]
            top = tuple(choice(int(i)) for i in best[np.argsort(-logits[best], kind="stable")])
        return TokenLogprob(choice(token), top)

    def finish(self) -> ReplyStats:
        """End the reply: the text held back goes out, the sampler is freed; its statistics."""
        self._llama.llama_sampler_free(self.sampler)
        self.sampler = None
        if self._media is not None:
            self._media.close()
            self._media = None
        if self.constrained is not None:
            self.constrained.free()
        tail = self._decoder.decode(b"", final=True)
        if self._matcher is not None:
            # Text held back because it might have begun a stop string that never came.
            tail = self._matcher.finish(tail)
        if tail:
            self.on_text(tail)
        ended = time.perf_counter()
        first = self.first_token_at or ended
        # The first token comes with the prompt's evaluation; each decode after it yields one more
        # token (the last one may be the end-of-turn token, which is not shown).
        gen_time = ended - first
        if self._decodes and gen_time > 0:
            rate = self._decodes / gen_time
        else:
            rate = self.completion / (ended - self.started) if ended > self.started else 0.0
        return ReplyStats(
            ttft_s=first - self.started,
            tokens_per_s=rate,
            prompt_tokens=self.prompt_tokens,
            prompt_tokens_evaluated=self._read,
            completion_tokens=self.completion,
            stop_reason=self.stop or StopReason.USER,
            seed=self.seed,
            context_used=len(self.slot.tokens) + (1 if self.completion else 0),
            context_length=self.n_ctx,
            history_from_cache=self.from_cache,
            drafted=self.drafted,
            accepted=self.accepted,
        )
