"""The static embedding tier: a model2vec model distilled on this machine from the local
sentence-transformers model, so every chunk gets a dense vector seconds after the keyword layer.

A static model is a table of one vector per token; a text's vector is the mean of its tokens'.
It needs no transformer at search or index time (numpy and a tokenizer), so it is two orders of
magnitude faster than MiniLM on a CPU. Distillation runs the transformer once over its own
vocabulary (``model2vec.distill``, offline, a minute or two on two cores) and is cached under
:func:`model_cache.models_dir`, verified by hash on every load.
"""

from __future__ import annotations

import re
import threading

import numpy as np

from ragls.config import EmbeddingModelConfig, StaticModelConfig
from ragls.indexer import model_cache
from ragls.indexer.embeddings import EmbeddingError, model_location, offline

# Bump when the way a static model is built or fed changes: cached models and vectors are redone.
STATIC_FORMAT = 2
MAX_TOKENS = 512  # model2vec's default window: longer texts are truncated

# BERT's pre-tokenizer on ASCII text: runs of letters and digits, and every punctuation mark alone
# (control characters are dropped by its normaliser).
_ASCII_WORDS = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")


def _distill(source: str, pca_dims: int, folder) -> None:
    offline()
    from model2vec.distill import distill

    try:
        model = distill(model_name=source, pca_dims=pca_dims)
    except Exception as exc:  # the library raises many kinds for "not a model I can read"
        raise EmbeddingError(f"cannot distill a static model from {source!r}: {exc}") from exc
    model.save_pretrained(str(folder))


class StaticEncoder:
    """Distils (once per machine) or loads the static model, then encodes to unit-length rows."""

    tier = "static"

    def __init__(self, cfg: StaticModelConfig, source_cfg: EmbeddingModelConfig) -> None:
        self.cfg = cfg
        self.source_cfg = source_cfg
        self.notices: list[str] = []
        self._model = None
        self._version = ""
        self._lock = threading.Lock()

    def _source(self) -> str:
        return self.cfg.source if self.cfg.source else model_location(self.source_cfg)

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            source = self._source()
            recipe = {
                "format": STATIC_FORMAT,
                "source": model_cache.fingerprint(source),
                "pca_dims": self.cfg.pca_dims,
            }
            derived = model_cache.obtain(
                "static", recipe, lambda folder: _distill(source, self.cfg.pca_dims, folder), self.notices
            )
            offline()
            from model2vec import StaticModel

            try:
                model = StaticModel.from_pretrained(str(derived.path), force_download=False)
            except Exception as exc:  # verified files that still do not load: say which folder
                raise EmbeddingError(f"cannot load the static model in {derived.path}: {exc}") from exc
            self._model, self._version = model, derived.version
            # float32 rows: numpy sums float16 in software, several times slower
            self._table = np.asarray(model.embedding, dtype=np.float32)
            self._word_ids: dict[str, list[int]] = {}
            self._unk = model.tokenizer.token_to_id(model.tokenizer.model.unk_token)
            self._fast = model.token_mapping is None and model.weights is None

    @property
    def model_id(self) -> str:
        """The vector space: the verified model files (a rebuild that differs is a new space)."""
        self.load()
        return f"static:{self._version}:f{STATIC_FORMAT}"

    def encode(self, texts: list[str]) -> np.ndarray:
        self.load()
        assert self._model is not None
        if not self._fast:
            vectors = self._model.encode(texts, use_multiprocessing=False, normalize=True)
            return np.asarray(vectors, dtype=np.float32)
        out = np.zeros((len(texts), self._table.shape[1]), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self._token_ids(text)
            if ids:
                out[row] = self._table[ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _token_ids(self, text: str) -> list[int]:
        """The model's word-piece ids for ``text``, as its tokenizer gives them. Code repeats its
        words, so each ASCII word is tokenized once and remembered: the Rust tokenizer on whole
        chunks was the slowest step of the static tier (a few hundred chunks/s here)."""
        if not text.isascii():
            ids = self._model.tokenizer.encode(text, add_special_tokens=False).ids[:MAX_TOKENS]
            return [i for i in ids if i != self._unk]
        ids: list[int] = []
        cache = self._word_ids
        for word in _ASCII_WORDS.findall(text):
            pieces = cache.get(word)
            if pieces is None:
                pieces = self._model.tokenizer.encode(word, add_special_tokens=False).ids
                if len(cache) < 500_000:
                    cache[word] = pieces
            ids += pieces
            if len(ids) >= MAX_TOKENS:
                break
        return [i for i in ids[:MAX_TOKENS] if i != self._unk]

    def encode_query(self, query: str) -> np.ndarray:
        return self.encode([query])[0]
