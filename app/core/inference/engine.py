"""The engine: one llama.cpp model and context, with room for several replies generated at once.

It drives llama.cpp through llama-cpp-python's low-level API. The context has `n_parallel` sequences
(slots.py), each with a KV cache of its own `context_length` tokens that outlives the reply, so a
follow-up reads only what is new. A reply is a `Generation` (generation.py) in one sequence; each
`step` puts one token of every reply being written, and a chunk of every prompt being read, into one
batch, decodes it once, and samples every reply from its own row of logits with its own sampler
chain (sampler.py: sampling runs in C). Its other parts live beside it: the chat template
(template.py), stop strings (stop.py), llama.cpp's parameters (llama_params.py) and the GPU layer
counts and sequences a load chooses (load_plan.py).
An `Engine` is not thread-safe: the inference thread (app.core.inference.thread) is its only user.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.inference.abort_flag import AbortFlag
from app.core.inference.adapters import Adapters, AdapterSet, adapter_set, set_key
from app.core.inference.batch import Batch, step
from app.core.inference.constrained import GrammarSampling
from app.core.inference.draft_model import DraftError, DraftInfo, DraftModel
from app.core.inference.embedder import Embedder, Embeddings
from app.core.inference.embedding_model import EmbeddingModel, EmbeddingModelInfo
from app.core.inference.errors import ContextFullError, EngineError, InvalidInput, LoadCancelled
from app.core.inference.generation import Generation
from app.core.inference.kv_disk import KvDiskCache
from app.core.inference.llama_params import N_BATCH, context_params, last_error, open_model
from app.core.inference.load_plan import gpu_layer_attempts, offload_note, parallel_for
from app.core.inference.options import LoadedModel, LoadOptions, default_threads
from app.core.inference.sampler import build_grammar, build_sampler
from app.core.inference.saved_sequences import SavedSequences
from app.core.inference.slots import Slots, common_prefix
from app.core.inference.speculation import NgramDraft
from app.core.inference.stop_event import StopEvent
from app.core.inference.vision import MediaPrompt, ProjectorError, Vision, is_placeholder
from app.core.inference.vocabulary import Vocabulary
from app.core.media.images import DecodedCache, ImageError, content_text, message_images
from app.core.models.gguf_file import ModelInfo, inspect_model
from app.core.models.offload import KV_TYPES, layer_count, split
from app.core.system import binding, hardware
from app.core.system.binding import import_llama_cpp
from app.core.system.hardware import Hardware
from app.core.tools.calls import ToolSpec
from app.core.values.replies import ReplyStats
from app.core.values.sampling import RANDOM_SEED, SamplingParams
from app.core.values.speculation import SpeculationMode

log = logging.getLogger(__name__)

#: llama.cpp rounds a context's length up to a multiple of this.
CTX_STEP = 256
#: Spell a prompt with a sequence's own tokens only when that keeps this many more of them.
SPLICE_GAIN = 8


class Engine:
    """One llama.cpp model and context. Only the inference thread may call it."""

    def __init__(
        self, probe: Callable[[Any], Hardware] | None = None, kv_cache: KvDiskCache | None = None
    ) -> None:
        #: Asks llama.cpp for its backend and devices (tests give a fixture GPU here).
        self._probe: Callable[[Any], Hardware] = probe or hardware.detect
        #: Where conversations' sequences are saved when they are evicted, at unload and at exit.
        self.kv_cache = kv_cache
        self._llama: Any = None
        self._model: Any = None
        self._vocabulary: Vocabulary | None = None
        self._ctx: Any = None
        self._slots: Slots | None = None
        self._batch: Batch | None = None
        self._saved: SavedSequences | None = None
        self._info: ModelInfo | None = None  # the model file loaded (or being loaded)
        self._parallel = 1
        self._loaded: LoadedModel | None = None
        self._options = LoadOptions()
        self._n_ctx_train = 0
        #: The stop events of the replies in the batch being decoded: when all of them are set (a
        #: stop never cuts the others short), the abort flag llama.cpp reads inside llama_decode is.
        self._cancels: list[threading.Event] = []
        self._abort: AbortFlag | None = None
        self._abort_lock = threading.Lock()  # the batch's stop events and the flag change together
        self._embedder: Embedder | None = None  # made on the first embeddings request
        self._embedding_model: EmbeddingModel | None = None  # a model kept only for embeddings
        self._vision: Vision | None = None  # the model's projector, when it reads images
        self._adapters: Adapters | None = None  # the LoRA adapters loaded for the model
        self._adapter_turn = 0  # which adapter set's replies the step decodes, when they differ
        self._decoded = DecodedCache()  # a conversation's images are decoded once, not every turn
        #: Whether replies are drafted ahead (speculation.py); the inference thread sets it.
        self.speculation = SpeculationMode.AUTO
        #: The model's cache can drop its last positions (a guess not kept): not so with a sliding
        #: window (its oldest positions may be gone) or a recurrent state (it has no positions).
        self._can_draft = False
        #: The draft model chosen (kept across loads: it is opened again for each model), the draft
        #: model open for the loaded model, and why the one chosen is not (None: it is, or none is).
        self._draft_path: Path | None = None
        self._draft: DraftModel | None = None
        self.draft_note: str | None = None

    # ----- loading -------------------------------------------------------------------------

    def stop_requested(self) -> None:
        """A reply was stopped (from any thread): when every reply in the batch being decoded is,
        llama.cpp stops the decode at its next node instead of finishing it."""
        with self._abort_lock:
            self._update_abort()

    def _update_abort(self) -> None:
        cancels, flag = self._cancels, self._abort
        if flag is None:
            return
        if cancels and all(cancel.is_set() for cancel in cancels):
            binding.stopping.set()  # llama.cpp logs the aborted decode as an error: it is not one
            flag.set()
        else:
            flag.clear()

    @property
    def loaded(self) -> LoadedModel | None:
        """The loaded model, or None."""
        return self._loaded

    def load(
        self,
        path: str | os.PathLike[str],
        options: LoadOptions | None = None,
        progress: Callable[[float], bool] | None = None,
    ) -> LoadedModel:
        """Validate and load a GGUF model; `progress(fraction)` returning False aborts the load.

        GPU layers: Auto chooses the most that fit in free GPU memory (offload.choose_gpu_layers). If
        llama.cpp then runs out of memory anyway (other programs took some, or the estimate was low),
        the load is retried with fewer layers (load_plan.gpu_layer_attempts), and `offload_note` says so."""
        options = options or LoadOptions()
        if options.kv_type not in KV_TYPES:
            raise EngineError(
                f"Unknown KV cache type {options.kv_type!r} (use one of {', '.join(KV_TYPES)})."
            )
        info = inspect_model(path)  # raises ModelFileError with a clear message
        if info.is_adapter:
            raise EngineError(
                f"{info.path.name} is a LoRA adapter, not a model: it is applied to a {info.architecture} "
                "base model (choose that model, and the adapter with it)."
            )
        self.unload()
        llama_cpp = import_llama_cpp()
        started = time.perf_counter()
        found = self._probe(llama_cpp)
        max_layers = layer_count(info.shape)
        n_ctx = min(max(CTX_STEP, options.context_length), info.context_length or options.context_length)
        flash = options.flash_attn is not False
        options = replace(options, n_parallel=parallel_for(info, options, n_ctx, found))
        attempts = gpu_layer_attempts(info, options, n_ctx, found)
        failed: int | None = None  # the last layer count that ran out of memory
        failure: EngineError | None = None
        for layers in attempts:
            try:
                self._load_weights(llama_cpp, info, layers, progress)
                self._create_context(options)
                failure = None
                break
            except EngineError as exc:
                out_of_memory = binding.looks_out_of_memory()
                self.unload()
                # Only a failed allocation is worth another try with fewer layers: a damaged or
                # unsupported file fails the same way every time.
                if isinstance(exc, LoadCancelled) or layers == 0 or not out_of_memory:
                    raise
                failure, failed = exc, layers
                log.warning("loading with %d GPU layers failed (%s); retrying with fewer", layers, exc)
        if failure is not None:  # pragma: no cover - the CPU-only attempt raises above
            raise failure
        self._llama = llama_cpp
        try:
            self._vocabulary = Vocabulary(llama_cpp, self._model, info)
        except Exception:
            self.unload()
            raise
        self._adapters = Adapters(llama_cpp, self._model, info.path.name)
        vision_note = None
        if options.projector is not None:
            try:
                self._vision = Vision.open(
                    llama_cpp, self._model, options.projector, self._threads(options),
                    use_gpu=layers > 0 and bool(llama_cpp.llama_supports_gpu_offload()),
                )  # fmt: skip
            except ProjectorError as exc:
                # The model itself is fine: it is used for text, and the user is told why not images.
                vision_note = f"{exc} {info.path.name} reads text only until then."
            except Exception:
                self.unload()
                raise
        template_is_default = self._vocabulary.template.is_default
        total, on_gpu = binding.buffer_totals()
        estimated = split(
            info.shape, info.file_size, self.context_length, layers, options.kv_type, flash, self._parallel
        )
        self._open_draft()
        self._loaded = LoadedModel(
            info=info,
            context_length=self.context_length,
            n_threads=self._threads(options),
            load_s=time.perf_counter() - started,
            template_is_default=template_is_default,
            gpu_offload_supported=bool(llama_cpp.llama_supports_gpu_offload()),
            memory_bytes=total,
            backend=found.backend,
            n_gpu_layers=layers,
            max_gpu_layers=max_layers,
            estimated_gpu_bytes=estimated.gpu_bytes,
            gpu_memory_bytes=on_gpu,
            kv_type=options.kv_type,
            offload_note=offload_note(failed, layers, max_layers),
            buffers=tuple((name, what, int(size * 1024 * 1024)) for name, what, size in binding.buffers),
            n_parallel=self._parallel,
            projector=options.projector if self._vision is not None else None,
            vision_note=vision_note,
            draft_model=self._draft.info.path if self._draft is not None else None,
            draft_note=self.draft_note,
        )
        return self._loaded

    def _load_weights(
        self, llama_cpp: Any, info: ModelInfo, n_gpu_layers: int, progress: Callable[[float], bool] | None
    ) -> None:
        """Open the model file with `n_gpu_layers` on the GPU and read its vocabulary (EngineError if not)."""
        model = open_model(llama_cpp, info, n_gpu_layers, progress)
        self._llama = llama_cpp
        self._info = info
        self._model = model
        self._n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(model))
        self._can_draft = not (
            int(llama_cpp.llama_model_n_swa(model))
            or llama_cpp.llama_model_is_recurrent(model)
            or llama_cpp.llama_model_is_hybrid(model)
        )

    def unload(self) -> None:
        """Free the context and the model (safe to call when nothing is loaded); conversations'
        sequences are saved to the disk cache first."""
        self._free_context()
        if self._draft is not None:  # opened again with the next model, if its vocabulary fits
            self._draft.close()
            self._draft = None
        if self._vision is not None:
            self._vision.close()
            self._vision = None
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None
        if self._adapters is not None:  # they belong to the model: freed before it
            self._adapters.close()
            self._adapters = None
        if self._model is not None:
            self._llama.llama_model_free(self._model)
            self._model = None
        self._loaded = None
        self._vocabulary = None

    @property
    def context_length(self) -> int:
        """The context window of each sequence, in tokens (0 when no model is loaded)."""
        return int(self._llama.llama_n_ctx_seq(self._ctx)) if self._ctx is not None else 0

    @property
    def parallel(self) -> int:
        """How many replies the context generates at once."""
        return self._parallel if self._ctx is not None else 0

    @property
    def free_sequences(self) -> int:
        """Sequences no reply is using now."""
        return self._slots.free if self._slots is not None else 0

    def ensure_context(self, context_length: int) -> None:
        """Recreate the context when the requested length differs (keeps the model loaded; only while
        no reply is being generated: every sequence's KV cache goes with it)."""
        wanted = self._clamp_ctx(context_length)
        if self._ctx is None or wanted == self.context_length:
            return
        previous = self._options
        try:
            self._create_context(replace(self._options, context_length=wanted))
        except EngineError:
            try:
                self._create_context(previous)  # keep the model usable at its old length
            except EngineError:
                self.unload()
            raise
        if self._loaded is not None:
            self._loaded = replace(self._loaded, context_length=self.context_length)

    def fits_context(self, context_length: int) -> bool:
        """True when a reply asking for `context_length` can use the context as it is (no rebuild)."""
        return self._ctx is not None and self._clamp_ctx(context_length) == self.context_length

    def _clamp_ctx(self, n: int) -> int:
        # llama.cpp rounds the context up to a multiple of CTX_STEP; doing it here keeps a request
        # equal to what llama_n_ctx() reports, so ensure_context never rebuilds (and drops the KV
        # cache) for a length it already has. Beyond the training context a model's output degrades
        # into nonsense; cap there.
        n = -(-max(CTX_STEP, n) // CTX_STEP) * CTX_STEP
        return min(n, self._n_ctx_train) if self._n_ctx_train >= CTX_STEP else n

    def _threads(self, options: LoadOptions) -> int:
        return options.n_threads if options.n_threads > 0 else default_threads()

    def _free_context(self) -> None:
        if self._saved is not None:
            self._saved.save_all()  # the sequences go with the context: conversations' are kept on disk
            self._saved = None
        if self._batch is not None:
            self._batch.free()
            self._batch = None
        if self._ctx is not None:
            if self._adapters is not None:
                self._adapters.forget_context(self._ctx)
            self._llama.llama_free(self._ctx)
            self._ctx = None
        self._slots = None

    def _create_context(self, options: LoadOptions) -> None:
        llama_cpp = self._llama
        self._free_context()
        n_ctx, threads = self._clamp_ctx(options.context_length), self._threads(options)
        parallel = max(1, options.n_parallel)
        if self._abort is None:
            # Kept on self: llama.cpp holds the pointers for the context's lifetime.
            self._abort = AbortFlag(llama_cpp)
        params = context_params(llama_cpp, options, n_ctx, threads, self._abort, parallel)
        binding.log_tail.clear()
        ctx = llama_cpp.llama_init_from_model(self._model, params)
        if not ctx:
            raise EngineError(
                f"Could not create a context of {parallel} × {n_ctx} tokens (not enough memory?). "
                f"Try a smaller context length or fewer parallel replies. {last_error()}"
            )
        self._ctx = ctx
        self._parallel = parallel
        self._slots = Slots(llama_cpp, ctx, parallel, int(llama_cpp.llama_model_n_swa(self._model)))
        if self._draft is not None:
            try:
                self._draft.fit(parallel, int(llama_cpp.llama_n_ctx_seq(ctx)))
            except DraftError as exc:
                self._drop_draft(str(exc))
        self._batch = Batch(llama_cpp, N_BATCH)
        self._options = options
        if self.kv_cache is not None and self._info is not None:
            self._saved = SavedSequences(
                llama_cpp,
                ctx,
                self._slots,
                self.kv_cache,
                _fingerprint(llama_cpp, self._info, options),
                n_ctx,
            )

    # ----- prompt and tokens ---------------------------------------------------------------

    @property
    def vocabulary(self) -> Vocabulary:
        """The loaded model's vocabulary and chat template (EngineError when none is loaded)."""
        if self._vocabulary is None:
            raise EngineError("No model is loaded.")
        return self._vocabulary

    def render_prompt(self, messages: list[dict[str, str]], tools: Sequence[ToolSpec] | None = None) -> str:
        """The chat template applied to `messages` (offering `tools`), ending with the assistant's turn."""
        return self.vocabulary.render(messages, tools)

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of `text` (see Vocabulary.tokenize)."""
        return self.vocabulary.tokenize(text, special=special)

    def count_tokens(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec] | None = None
    ) -> int:
        """How many tokens `messages` take in the context once formatted (with `tools` offered);
        an image counts the positions it takes (nothing for a model that reads no images)."""
        if self._vision is None or not any(message_images(m.get("content")) for m in messages):
            return len(self.tokenize(self.render_prompt(_as_text(messages), tools)))
        _text, tokens, media = self._prompt(messages, False, None, tools)
        if media is not None:
            media.close()
        return len(tokens)

    @property
    def vision(self) -> bool:
        """True when the loaded model reads images (its projector is loaded)."""
        return self._vision is not None

    def _prompt(
        self,
        messages: Sequence[dict[str, Any]],
        continue_last: bool,
        raw_prompt: str | None,
        tools: Sequence[ToolSpec] | None,
    ) -> tuple[str, list[int], MediaPrompt | None]:
        """The prompt's text, its tokens (placeholders where images go) and, when it holds images,
        the MediaPrompt their chunks are in. Raises InvalidInput for an image that cannot be read or
        a model that reads none."""
        vocabulary = self.vocabulary
        images = [image for m in messages for image in message_images(m.get("content"))]
        if not images or raw_prompt is not None:
            text = vocabulary.prompt_text(_as_text(messages), continue_last, raw_prompt, tools)
            return text, vocabulary.tokenize(text), None
        vision = self._vision
        if vision is None:
            name = self._info.path.name if self._info is not None else "This model"
            raise InvalidInput(
                f"{name} reads text only, so the image{'s' if len(images) > 1 else ''} cannot be sent. "
                "Load a vision model (one with a projector, shown as “Vision” in My models), "
                "or remove the images."
            )
        text = vocabulary.prompt_text(_as_text(messages, vision.marker), continue_last, raw_prompt, tools)
        decoded = []
        for image in images:
            try:
                decoded.append(self._decoded.get(image))
            except ImageError as exc:
                raise InvalidInput(str(exc)) from exc
        media = vision.tokenize(text, decoded, add_special=vocabulary.wants_bos(text))
        if media.tokens and is_placeholder(media.tokens[-1]):
            media.close()
            raise InvalidInput("A prompt cannot end with an image: there must be text after it.")
        return text, media.tokens, media

    def load_embedding_model(self, path: str | os.PathLike[str]) -> EmbeddingModelInfo:
        """Keep an embedding model loaded beside the chat model: embeddings come from it from now on
        (EngineError or ModelFileError when it cannot be; the one before stays then)."""
        llama_cpp = import_llama_cpp()
        gpu = bool(llama_cpp.llama_supports_gpu_offload())
        model = EmbeddingModel(llama_cpp, path, self._threads(self._options), gpu)
        self.unload_embedding_model()
        self._embedding_model = model
        return model.info

    def unload_embedding_model(self) -> None:
        """Embeddings come from the chat model again."""
        if self._embedding_model is not None:
            self._embedding_model.close()
            self._embedding_model = None

    @property
    def embedding_model(self) -> EmbeddingModelInfo | None:
        """The embedding model kept loaded, or None (embeddings come from the chat model)."""
        return self._embedding_model.info if self._embedding_model is not None else None

    @property
    def can_embed(self) -> bool:
        """True when embeddings can be made: an embedding model, or a chat model, is loaded."""
        return self._embedding_model is not None or self._model is not None

    def embed(self, texts: Sequence[str | Sequence[int]]) -> Embeddings:
        """Embeddings of `texts` (strings or token ids): from the embedding model when one is kept,
        else the chat model's, pooled as the model does, else averaged. Raises EngineError
        (EmbeddingInputError naming a bad input)."""
        if self._embedding_model is not None:
            return self._embedding_model.embed(texts)
        if self._model is None or self._vocabulary is None:
            raise EngineError("No model is loaded.")
        if self._embedder is None:
            self._embedder = Embedder(
                self._llama, self._model, self._vocabulary, self._threads(self._options)
            )
        return self._embedder.embed(texts)

    # ----- generation ----------------------------------------------------------------------

    def start(
        self,
        messages: Sequence[dict[str, Any]],
        params: SamplingParams,
        on_text: Callable[[str], None],
        cancel: threading.Event,
        continue_last: bool = False,
        stop_strings: Sequence[str] = (),
        raw_prompt: str | None = None,
        cache_key: str | None = None,
        grammar: str | None = None,
        logit_bias: Sequence[tuple[int, float]] = (),
        top_logprobs: int | None = None,
        tools: Sequence[ToolSpec] | None = None,
        grammar_triggers: Sequence[str] = (),
        adapters: Sequence[tuple[str | os.PathLike[str], float]] = (),
    ) -> Generation:
        """Begin a reply in a free sequence (the caller makes sure there is one, see free_sequences),
        with the LoRA `adapters` (path, scale) applied to the base model (AdapterError when one
        cannot be: nothing is taken then);
        `step` advances it with the others, `finish` ends it. With `cache_key` (a conversation), the
        sequence is the conversation's: kept in memory while it can be, saved to the disk cache when
        it must go, restored from it when it is not in memory. A `cancel` that is a StopEvent also
        stops a decode in progress (a long prompt's); any other Event is seen before each token."""
        if self._ctx is None or self._slots is None:
            raise EngineError("No model is loaded.")
        params = params.validated()
        started = time.perf_counter()
        chosen = adapter_set(adapters)
        if chosen:
            assert self._adapters is not None
            self._adapters.load(chosen)  # refused here, before a sequence is taken
            # Another adapter set is another conversation for the KV cache, in memory and on disk.
            cache_key = f"{cache_key}|{set_key(chosen)}" if cache_key is not None else None
        text, prompt, media = self._prompt(messages, continue_last, raw_prompt, tools)
        try:
            generation = self._begin(
                text, prompt, media, params, on_text, cancel, stop_strings, cache_key, grammar,
                logit_bias, top_logprobs, grammar_triggers, started, chosen,
            )  # fmt: skip
        except BaseException:
            if media is not None:
                media.close()
            raise
        generation.adapters = chosen
        return generation

    def _begin(
        self,
        text: str,
        prompt: list[int],
        media: MediaPrompt | None,
        params: SamplingParams,
        on_text: Callable[[str], None],
        cancel: threading.Event,
        stop_strings: Sequence[str],
        cache_key: str | None,
        grammar: str | None,
        logit_bias: Sequence[tuple[int, float]],
        top_logprobs: int | None,
        grammar_triggers: Sequence[str],
        started: float,
        adapters: AdapterSet = (),
    ) -> Generation:
        """start, once the prompt is tokenized: its sequence chosen, filled from memory or disk."""
        assert self._slots is not None
        vocabulary = self.vocabulary
        n_ctx = self.context_length
        if not prompt:
            raise EngineError("The prompt is empty.")
        if len(prompt) >= n_ctx:
            raise ContextFullError(
                f"The conversation is {len(prompt):,} tokens long and no longer fits the "
                f"{n_ctx:,}-token context window. Start a new chat or raise the context length."
            )
        slot = self._slots.choose(prompt, cache_key, adapters)
        if slot is None:
            raise EngineError("Every sequence is busy: the reply must wait for one to end.")
        saved = self._saved
        if slot.key is not None and slot.key != cache_key:
            if saved is not None:
                saved.save(slot)  # another conversation's: it is given to this reply, so kept on disk first
            self._slots.forget(slot)
        if slot.adapters != adapters:  # computed with other adapters: nothing of it is this reply's
            self._slots.forget(slot)
        slot.adapters = adapters
        restored = saved.restore(slot, cache_key, prompt) if saved is not None and cache_key else 0
        slot.key = cache_key
        if media is None:
            prompt = self._spliced(slot.tokens, prompt, text)
        donor = None if restored else self._slots.donor(slot, prompt)
        if donor is not None:
            self._slots.copy_start(donor, slot, prompt)  # a long shared start: copied, not read again
            slot.key = cache_key
        reused = self._slots.reuse(slot, prompt)
        seed = params.seed if params.seed != RANDOM_SEED else random.getrandbits(31)
        # Before the slot is taken: a bias or a grammar llama.cpp refuses (SamplingError) leaves it free.
        history = [token for token in prompt if not is_placeholder(token)] if media is not None else prompt
        sampler = build_sampler(self._llama, vocabulary.vocab, params, seed, history, logit_bias)
        try:
            rules = (
                build_grammar(self._llama, vocabulary.vocab, grammar, grammar_triggers)
                if grammar is not None
                else None
            )
        except Exception:
            self._llama.llama_sampler_free(sampler)
            raise
        constrained = GrammarSampling(self._llama, vocabulary.vocab, sampler, rules) if rules else None
        self._slots.take(slot)
        drafter = NgramDraft() if self.drafts else None
        generation = Generation(
            self._llama, vocabulary.vocab, vocabulary.piece, slot, prompt, reused, params, sampler, seed,
            on_text, cancel, n_ctx, stop_strings, constrained, top_logprobs, media, drafter,
        )  # fmt: skip
        generation.started = started
        generation.from_cache = min(restored, reused)
        if isinstance(cancel, StopEvent):
            cancel.listen(self.stop_requested)  # a stop then cuts a long prompt's decode short too
        return generation

    # ----- speculative decoding ------------------------------------------------------------

    def set_draft_model(self, path: str | os.PathLike[str] | None) -> DraftInfo | None:
        """Guess replies' tokens with the model at `path` (None: with n-gram lookup only) from now
        on, and for every model loaded later whose vocabulary it shares. With a model loaded it is
        opened now: DraftError (another vocabulary) or ModelFileError when it cannot be, and the
        choice is not kept then."""
        if path is None:
            self._draft_path, self.draft_note = None, None
            self._drop_draft(None)
            return None
        chosen = Path(path)
        if self._draft is not None and chosen == self._draft_path:
            return self._draft.info  # already open (a mode changed): not read from disk again
        if self._model is None:
            self._draft_path, self.draft_note = chosen, None
            return None
        previous = self._draft_path
        self._drop_draft(None)
        self._draft_path = chosen
        try:
            self._open_draft(raising=True)
        except Exception:
            self._draft_path = previous
            self._open_draft()
            raise
        return self.draft_model

    @property
    def draft_model(self) -> DraftInfo | None:
        """The draft model open for the loaded model, or None."""
        return self._draft.info if self._draft is not None else None

    def _open_draft(self, raising: bool = False) -> None:
        """Open the chosen draft model for the loaded model (a failure is kept in draft_note)."""
        self.draft_note = None
        if self._draft_path is None or self._model is None or self._vocabulary is None or self._info is None:
            return
        llama_cpp = self._llama
        try:
            draft = DraftModel(
                llama_cpp, self._draft_path, self._vocabulary.vocab, self._info.path.name,
                self._threads(self._options), bool(llama_cpp.llama_supports_gpu_offload()),
            )  # fmt: skip
            try:
                if self._ctx is not None:
                    draft.fit(self._parallel, self.context_length)
            except Exception:
                draft.close()
                raise
        except Exception as exc:
            if raising:
                raise
            self.draft_note = f"{exc} Replies are guessed with n-gram lookup instead."
            log.warning("the draft model was not opened: %s", exc)
            return
        self._draft = draft

    def _drop_draft(self, why: str | None) -> None:
        if self._draft is not None:
            self._draft.close()
            self._draft = None
        if why is not None:
            self.draft_note = f"{why} Replies are guessed with n-gram lookup instead."

    def _draft_guesses(self, generations: Sequence[Generation]) -> None:
        """The draft model's guesses for the replies being written that n-gram lookup has no guess
        for (a match in the conversation costs nothing to find, and is most often right); not for
        replies with images (the draft model cannot read them)."""
        if self._draft is None or self.speculation is not SpeculationMode.AUTO:
            return
        for generation in generations:
            generation.speculate()  # n-gram lookup first: a reply with a guess is no longer guessing
        wanting = [g for g in generations if g.guessing and not g.has_images]
        if not wanting:
            return
        try:
            guesses = self._draft.guess([(g.slot.seq_id, g.history, g.guess_room()) for g in wanting])
        except DraftError as exc:
            log.warning("the draft model failed: %s", exc)
            self._drop_draft(str(exc))
            return
        for generation, guess in zip(wanting, guesses, strict=True):
            generation.speculate(guess)

    @property
    def drafts(self) -> bool:
        """True when replies are drafted ahead (speculative decoding is on, the model's cache can drop
        its last positions, and flash attention is not turned off)."""
        # Without flash attention llama.cpp computes a batch's attention with other kernels than one
        # token's, even in a short context: a guessed reply would not be the same text.
        flash = self._options.flash_attn is not False or self._options.kv_type != "f16"
        return (
            self.speculation is not SpeculationMode.OFF
            and self._can_draft
            and flash
            and self._model is not None
        )

    def _spliced(self, held: list[int], prompt: list[int], text: str) -> list[int]:
        """`prompt`, or the same text spelled with the tokens `held` has where they part from the
        fresh tokenization (see Vocabulary.splice), when that keeps markedly more of them."""
        shared = common_prefix(held, prompt)
        if not held or shared == len(held) or shared >= len(prompt) - 1 or any(map(is_placeholder, held)):
            return prompt  # all it holds is used, or all the prompt is found
        spliced = self.vocabulary.splice(held, text, at_least=shared + SPLICE_GAIN)
        return prompt if spliced is None or len(spliced) >= self.context_length else spliced

    def step(self, generations: Sequence[Generation]) -> None:
        """Advance every generation by one decode of one shared batch (see batch.step)."""
        if self._ctx is None or self._batch is None or self._slots is None:
            raise EngineError("No model is loaded.")
        generations = self._one_adapter_set(generations)
        for generation in generations:
            self.read_media(generation)  # images first: each sets (and clears) the stop flag for itself
        if self.drafts:
            self._draft_guesses(generations)
        with self._abort_lock:
            self._cancels = [g.cancel for g in generations if g.stop is None]
            self._update_abort()
        try:
            step(self._ctx, self._batch, self._slots, generations)
        finally:
            with self._abort_lock:
                self._cancels = []
                self._update_abort()
            binding.stopping.clear()

    def _one_adapter_set(self, generations: Sequence[Generation]) -> Sequence[Generation]:
        """The generations this step decodes: all of them when they share one adapter set (the usual
        case), else those of one set, each set in turn; that set is applied to the context."""
        sets = sorted({g.adapters for g in generations if g.stop is None})
        if not sets:
            return generations
        if len(sets) > 1:
            self._adapter_turn = (self._adapter_turn + 1) % len(sets)
        chosen = sets[self._adapter_turn % len(sets)] if len(sets) > 1 else sets[0]
        if self._adapters is not None and self._ctx is not None:
            self._adapters.apply(self._ctx, chosen)
        return [g for g in generations if g.adapters == chosen or g.stop is not None]

    def read_media(self, generation: Generation) -> None:
        """Evaluate the image `generation`'s prompt reaches next, if it does, into its sequence (its
        own decode: images never share a batch). Raises EngineError when llama.cpp fails; the
        generation's sequence is emptied then. A stop cuts it short (the generation ends)."""
        chunk = generation.media_next
        if chunk is None or self._vision is None or self._ctx is None or self._slots is None:
            return
        slot = generation.slot
        start = len(slot.tokens)
        if self._adapters is not None:
            self._adapters.apply(self._ctx, generation.adapters)  # the image is read as the text is
        with self._abort_lock:
            self._cancels = [generation.cancel]
            self._update_abort()
        try:
            end = self._vision.evaluate(self._ctx, chunk, start, slot.seq_id, N_BATCH)
        except EngineError:
            stopped = generation.cancel.is_set()
            generation.aborted()
            if stopped:
                self._slots.trim(slot)  # part of the image may be in the KV cache
                return
            self._slots.forget(slot)
            raise
        finally:
            with self._abort_lock:
                self._cancels = []
                self._update_abort()
            binding.stopping.clear()
        generation.media_read(end - start)

    def finish(self, generation: Generation) -> ReplyStats:
        """End a generation (stopped, or done): its statistics; its sequence keeps what it holds."""
        try:
            return generation.finish()
        finally:
            if self._slots is not None:
                self._slots.release(generation.slot)

    def stream_chat(
        self,
        messages: list[dict[str, str]],
        params: SamplingParams,
        on_text: Callable[[str], None],
        cancel: threading.Event,
        continue_last: bool = False,
        stop_strings: Sequence[str] = (),
        raw_prompt: str | None = None,
    ) -> ReplyStats:
        """Generate one reply to `messages` on its own, calling `on_text` with each new piece of text.

        With `continue_last`, the last message is an assistant reply that stopped early (max tokens):
        the model carries on writing it instead of starting a new one. With `raw_prompt`, `messages`
        is ignored and the text is continued as it is, without the chat template (a plain completion).
        Generation also ends at the first of the `stop_strings`, which is not passed to `on_text`.

        Returns when the model ends its turn, max_tokens is reached, the context is full, or
        `cancel` is set (checked before every token, so a stop takes effect within one token).
        """
        if self._ctx is None:
            raise EngineError("No model is loaded.")
        self.ensure_context(params.validated().context_length)
        generation = self.start(messages, params, on_text, cancel, continue_last, stop_strings, raw_prompt)
        try:
            while generation.stop is None:
                self.step((generation,))
        finally:
            stats = self.finish(generation)
        return stats


def _as_text(messages: Sequence[dict[str, Any]], marker: str = "") -> list[dict[str, Any]]:
    """`messages` with each content a string (parts joined, each image written as `marker`)."""
    if all(isinstance(m.get("content"), str) for m in messages):
        return list(messages)
    return [{**m, "content": content_text(m.get("content"), marker)} for m in messages]


def _fingerprint(llama_cpp: Any, info: ModelInfo, options: LoadOptions) -> dict[str, object]:
    """What shapes a sequence's state: the model file, the KV cache's type, flash attention and
    llama.cpp itself (a state saved otherwise is never loaded)."""
    stat = info.path.stat()
    return {
        "model": str(info.path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "kv_type": options.kv_type,
        "flash_attn": options.flash_attn,
        "llama_cpp": str(getattr(llama_cpp, "__version__", "")),
    }
