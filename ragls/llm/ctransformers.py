"""GGML-era local model files (ggml/ggmf/ggjt: gpt2, gptj, gpt_neox, llama, mpt, starcoder, ...)
through ctransformers, an optional extra (``pip install 'ragls[ctransformers]'``).

ctransformers is unmaintained since 2023 and cannot load current GGUF files, so it is never the
default; it exists for users who still have GGML-era files. Models are loaded from the local path
only (``ctransformers.LLM``, not the Hugging Face hub loader), with ``models.<role>.model`` as
the architecture name, which GGML files do not record.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ragls.config import ModelConfig
from ragls.llm.base import Deltas, Message, ModelError, ModelMetadata, Options, Provider
from ragls.llm.llama_cpp import resolve_path

_GGML_MAGICS = {b"lmgg": "ggml", b"fmgg": "ggmf", b"tjgg": "ggjt", b"GGUF": "gguf"}


class CTransformersProvider(Provider):
    kind = "ctransformers"

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.path = resolve_path(config)
        self.file_format = ggml_format(self.path)
        if not config.model and self.file_format != "gguf":
            raise ModelError(
                f"{self.path}: GGML files do not record their architecture; set models.<role>.model to "
                "the model type (e.g. \"gpt2\", \"llama\", \"gptj\", \"gpt_neox\", \"mpt\", \"starcoder\")"
            )
        try:
            from ctransformers import LLM, Config
        except ImportError as exc:
            raise ModelError("provider 'ctransformers' needs: pip install 'ragls[ctransformers]'") from exc
        threads = config.threads or os.cpu_count() or 1
        settings = Config(context_length=config.context_length or -1, threads=threads)
        try:
            self.llm = LLM(str(self.path), config.model or None, config=settings)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"{self.path}: ctransformers could not load this model ({exc})") from exc
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"ctransformers model {self.path.name}"

    def _chat(self, messages: list[Message], opts: Options) -> Deltas:
        """GGML files carry no chat template; a plain role-prefixed transcript is the portable choice."""
        transcript = "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"
        return (yield from self._complete(transcript, Options(opts.max_tokens, (*opts.stop, "\nuser:"),
                                                              opts.temperature, opts.timeout)))

    def _complete(self, prompt: str, opts: Options) -> Deltas:
        with self._lock:
            produced = ""
            for text in self.llm(
                prompt, stream=True, max_new_tokens=opts.max_tokens, temperature=opts.temperature,
                stop=list(opts.stop) or None,
            ):
                produced += text
                yield text
        return "length" if self.count_tokens(produced) >= opts.max_tokens else "stop"

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text, add_bos_token=False))

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(
            provider=self.kind,
            model=f"{self.llm.model_type} ({self.file_format})",
            context_length=self.llm.context_length,
            path=str(self.path),
        )

    def close(self) -> None:
        del self.llm


def ggml_format(path: Path) -> str:
    """The container format from the file's magic; anything else is not a model file."""
    with path.open("rb") as f:
        magic = f.read(4)
    if magic not in _GGML_MAGICS:
        raise ModelError(f"{path}: not a GGML/GGUF model file (magic {magic!r})")
    return _GGML_MAGICS[magic]
