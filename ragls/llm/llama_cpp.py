"""Local GGUF models through llama-cpp-python (the default provider).

The ``Llama`` object is created once and kept: its KV cache holds the last prompt read, and a new
prompt that starts with the same tokens costs only the rest (measured in
``benchmarks/bench_llm.py``). One lock serialises requests because a ``Llama`` context is not
thread-safe.

A prompt is read in chunks, so a request made obsolete (its cancel event set) stops between two
chunks and what it read stays in the cache for the next one; ``prefill`` reads a prompt ahead of
the keystroke that will need it and gives way, between chunks, to any request that is waiting.
The thread count is chosen at load by timing a short probe with each candidate (on a CPU that
other processes want, one thread can be several times faster than two), and the speeds llama.cpp
records for each request keep ``speed`` current.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from os.path import commonprefix
from pathlib import Path
from typing import Any

from ragls.config import ModelConfig
from ragls.llm import gguf
from ragls.llm.base import Deltas, Message, ModelError, ModelMetadata, Options, Provider

log = logging.getLogger(__name__)

_LOADING = threading.Lock()
READ_CHUNK = 32  # prompt tokens read between two checks of a request's cancel event
PREFILL_CHUNK = 8  # tokens read ahead between two checks for a waiting request (~100 ms here;
# measured on this 2-core CPU: batches of 8 run at 80-90% of the speed of batches of 128)
PROBE_TEXT = "def probe(items):\n    total = 0\n    for item in items:\n        total += item.size\n" * 4
PROBE_PROMPT, PROBE_GENERATED = 16, 6  # tokens timed per thread-count candidate at load


def resolve_path(config: ModelConfig) -> Path:
    """The model file a local provider loads: ``bundled`` or a user path, which must exist."""
    if config.path == "bundled":
        return gguf.bundled_model_path()
    path = Path(config.path).expanduser()
    if not path.exists():
        raise ModelError(f"model file {path} does not exist (set models.<role>.path to a model file)")
    if path.is_dir():
        raise ModelError(f"{path} is a folder (set models.<role>.path to a model file in it)")
    return path


class LlamaCppProvider(Provider):
    kind = "llama_cpp"

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.path = resolve_path(config)
        self.info = gguf.describe(self.path)  # a corrupt header is reported before llama.cpp sees it
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelError(
                "provider 'llama_cpp' needs llama-cpp-python (pip install 'ragls[llama]', see the Makefile "
                "for the build flags)"
            ) from exc
        n_ctx = config.context_length or min(self.info.context_length or 4096, 8192)
        # The same count for prompt and generation: different counts for the two phases made short
        # prompt extensions take seconds here. Chosen by a probe just below unless configured.
        threads = config.threads or 1
        # verbose=False would make llama-cpp-python point the process's file descriptors 1 and 2 at
        # /dev/null while it loads: every other thread's output (a language server's answers, its
        # log) vanished meanwhile. So load verbosely, catch what it prints in Python's sys.stderr
        # (one load at a time: that swap is process-wide), and keep llama.cpp's own log to errors.
        try:
            with _LOADING, contextlib.redirect_stderr(io.StringIO()):
                self.llama = Llama(
                    model_path=str(self.path),
                    n_ctx=n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=config.gpu_layers,
                    verbose=True,
                )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path}: llama.cpp could not load this model ({exc})") from exc
        finally:
            logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # what verbose=False sets
        self.llama.verbose = False  # no timings printed after each generation
        self._lock = threading.Lock()
        self._waiting = 0  # requests waiting for the lock: read-ahead gives way to them
        self._count_lock = threading.Lock()
        self._perf = (0, 0.0, 0, 0.0)  # llama.cpp's counters when last read
        self._last: tuple[str, list[int]] = ("", [])  # the last text tokenized, and its tokens
        self.threads, self.probe = self._choose_threads(config.threads)

    def _choose_threads(self, configured: int) -> tuple[int, dict[int, tuple[float, float]]]:
        """The thread count with the shortest probe (a short prompt read, then a few tokens
        generated one by one); the probe's speeds seed ``speed``. Returns the count and, per
        candidate, (prompt tokens/s, generated tokens/s)."""
        import llama_cpp

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        candidates = [configured] if configured else sorted({1, max(1, cores // 2), cores})
        tokens = self.llama.tokenize(PROBE_TEXT.encode(), add_bos=False)[: PROBE_PROMPT + PROBE_GENERATED]
        figures: dict[int, tuple[float, float]] = {}
        for n in candidates:
            llama_cpp.llama_set_n_threads(self.llama.ctx, n, n)
            self.llama.reset()
            started = time.perf_counter()
            self.llama.eval(tokens[:PROBE_PROMPT])
            read = time.perf_counter()
            prompt_tps = PROBE_PROMPT / max(read - started, 1e-6)
            if figures and prompt_tps < max(p for p, _ in figures.values()) / 2:
                figures[n] = (prompt_tps, 0.0)  # clearly slower: generation not worth timing
                continue
            for token in tokens[PROBE_PROMPT:]:
                self.llama.eval([token])
            figures[n] = (prompt_tps, PROBE_GENERATED / max(time.perf_counter() - read, 1e-6))
        self.llama.reset()
        best = min(figures, key=lambda n: 1 / figures[n][0] + 1 / max(figures[n][1], 1e-6))
        llama_cpp.llama_set_n_threads(self.llama.ctx, best, best)
        self.speed.observe_prompt(PROBE_PROMPT, PROBE_PROMPT / figures[best][0])
        self.speed.observe_generation(PROBE_GENERATED, PROBE_GENERATED / figures[best][1])
        self._perf = self._counters()
        log.info(
            "llama.cpp threads: %d of %d cores (probe, prompt/generated tokens per s: %s)", best, cores,
            ", ".join(f"{n}: {p:.0f}/{g:.0f}" for n, (p, g) in figures.items()),
        )  # fmt: skip
        return best, figures

    def describe(self) -> str:
        return f"llama_cpp model {self.path.name}"

    def _chat(self, messages: list[Message], opts: Options) -> Deltas:
        with self._turn():
            chunks = self.llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                stream=True,
                **_sampling(opts),
            )
            return (yield from _relay(chunks, lambda choice: choice["delta"].get("content")))

    def _complete(self, prompt: str, opts: Options) -> Deltas:
        tokens = self._tokens(prompt)
        cancelled = opts.cancel.is_set if opts.cancel is not None else lambda: False
        with self._turn():
            try:
                # All but the last token here, in chunks (cancel is checked between them); llama-cpp
                # then finds them cached and reads the last one itself, for fresh logits.
                if not self._read(tokens[:-1], READ_CHUNK, cancelled):
                    return "cancelled"
                chunks = self.llama.create_completion(prompt=tokens, stream=True, **_sampling(opts))
                return (yield from _relay(chunks, lambda choice: choice["text"]))
            finally:
                self._account()

    def _timed(self, deltas: Deltas, prompt: str) -> Deltas:
        return deltas  # llama.cpp's own counters measure this provider (``_account``)

    def prefill(self, prompt: str, preempted: Callable[[], bool]) -> bool:
        if not self._lock.acquire(blocking=False):
            return False  # a request is running; the caller tries again when it is idle
        try:
            return self._read(self._tokens(prompt), PREFILL_CHUNK, lambda: self._waiting > 0 or preempted())
        finally:
            self._account()
            self._lock.release()

    def cached_tokens(self, prompt: str) -> int:
        return _common_prefix(self.llama.input_ids[: self.llama.n_tokens].tolist(), self._tokens(prompt))

    def _tokens(self, prompt: str) -> list[int]:
        """The prompt's tokens exactly as ``create_completion`` would make them from the text."""
        bos = self.llama.token_bos()
        head = [bos] if self.llama._model.add_bos_token() and bos != -1 else []
        return head + self._text_tokens(prompt)

    def _text_tokens(self, text: str) -> list[int]:
        """``text`` tokenized; the last text's tokens are kept, because a request counts its
        prompt, compares it with the cache and reads it, and the read-ahead reads it again."""
        last = self._last
        if last[0] != text:
            last = (text, self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))
            self._last = last
        return last[1]

    def _read(self, tokens: Sequence[int], chunk: int, stop: Callable[[], bool]) -> bool:
        """Bring the KV cache to hold exactly ``tokens``: keep the cached prefix they share, read
        the rest ``chunk`` tokens at a time while ``stop()`` is false. True when all are read."""
        llama = self.llama
        llama.n_tokens = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        for start in range(llama.n_tokens, len(tokens), chunk):
            if stop():
                return False
            llama.eval(tokens[start : start + chunk])
        return True

    @contextlib.contextmanager
    def _turn(self):
        """The model for one request; read-ahead running meanwhile stops at its next chunk."""
        with self._count_lock:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._count_lock:
                self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    def _counters(self) -> tuple[int, float, int, float]:
        """llama.cpp's running totals: prompt tokens read in batches and their ms, single-token
        decodes (generation) and their ms."""
        import llama_cpp

        llama_cpp.llama_synchronize(self.llama.ctx)
        data = llama_cpp.llama_perf_context(self.llama.ctx)
        return data.n_p_eval, data.t_p_eval_ms, data.n_eval, data.t_eval_ms

    def evaluated(self) -> tuple[int, int]:
        """Tokens llama.cpp has decoded so far: (prompt tokens read in batches, single tokens)."""
        with self._lock:
            prompt, _, single, _ = self._counters()
        return prompt, single

    def _account(self) -> None:
        """Feed what llama.cpp measured since the last call into ``speed``."""
        now = self._counters()
        before, self._perf = self._perf, now
        self.speed.observe_prompt(now[0] - before[0], (now[1] - before[1]) / 1000)
        self.speed.observe_generation(now[2] - before[2], (now[3] - before[3]) / 1000)

    def count_tokens(self, text: str) -> int:
        return len(self._text_tokens(text))

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(
            provider=self.kind,
            model=self.info.name or self.path.stem,
            context_length=self.llama.n_ctx(),
            license=self.info.license,
            fim=self.info.fim,
            chat_template=self.info.chat_template is not None,
            path=str(self.path),
        )

    def close(self) -> None:
        self.llama.close()


def _sampling(opts: Options) -> dict[str, Any]:
    return {
        "max_tokens": opts.max_tokens,
        "stop": list(opts.stop) or None,
        "temperature": opts.temperature,
    }


def _relay(chunks: Any, text_of: Any) -> Deltas:
    """Yield each chunk's text; closing this generator closes llama-cpp's, ending generation."""
    reason = "stop"
    try:
        for chunk in chunks:
            choice = chunk["choices"][0]
            text = text_of(choice)
            if text:
                yield text
            reason = choice.get("finish_reason") or reason
    finally:
        chunks.close()
    return reason


def _common_prefix(cached: list[int], tokens: Sequence[int]) -> int:
    """How many leading tokens the cache and a prompt share."""
    return len(commonprefix([cached, list(tokens)]))
