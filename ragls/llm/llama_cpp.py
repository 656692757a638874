"""Local GGUF models through llama-cpp-python (the default provider).

The ``Llama`` object is created once and kept: llama-cpp-python reuses its KV cache when a new
prompt starts with the tokens of the previous one, so a completion prompt that only grew at the
end costs only the new tokens (measured in ``benchmarks/bench_llm.py``). One lock serialises
requests because a ``Llama`` context is not thread-safe.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ragls.config import ModelConfig
from ragls.llm import gguf
from ragls.llm.base import Deltas, Message, ModelError, ModelMetadata, Options, Provider

_LOADING = threading.Lock()


def resolve_path(config: ModelConfig) -> Path:
    """The model file a local provider loads: ``bundled`` or a user path, which must exist."""
    if config.path == "bundled":
        return gguf.bundled_model_path()
    path = Path(config.path).expanduser()
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist (set models.<role>.path to a model file)")
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
        # Half the cores by default, the same count for prompt and generation: measured here, all
        # cores made generation 3-8x slower as soon as another process (the embedder) wanted a CPU,
        # and different counts for the two phases made short prompt extensions take seconds.
        threads = config.threads or max(1, (os.cpu_count() or 2) // 2)
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

    def describe(self) -> str:
        return f"llama_cpp model {self.path.name}"

    def _chat(self, messages: list[Message], opts: Options) -> Deltas:
        with self._lock:
            chunks = self.llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                stream=True, **_sampling(opts),
            )
            return (yield from _relay(chunks, lambda choice: choice["delta"].get("content")))

    def _complete(self, prompt: str, opts: Options) -> Deltas:
        with self._lock:
            chunks = self.llama.create_completion(prompt=prompt, stream=True, **_sampling(opts))
            return (yield from _relay(chunks, lambda choice: choice["text"]))

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

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
