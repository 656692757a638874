"""The dense vector index of one tier: faiss inner product over normalised vectors, keyed by
chunk id. Each tier (each embedding model) has its own: vectors of two models are never compared.

It is a cache of what SQLite holds. The file is written atomically under a name that carries
the store's vector generation; on open, a missing, stale or unreadable file is rebuilt from the
vectors in SQLite (no re-embedding).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import faiss
import numpy as np

# One query is a small search: OpenMP threads for it only fight the editor and the indexer for
# the cores of a busy machine.
faiss.omp_set_num_threads(1)


def gpu_count() -> int:
    """GPUs faiss can use: non-zero only with a faiss-gpu build on a machine with a GPU."""
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


class VectorIndex:
    def __init__(self, folder: Path, tier: str, dim: int | None = None) -> None:
        self.folder = folder
        self.tier = tier
        self.dim = dim
        self.index: faiss.IndexIDMap2 | None = None
        self._gpu_copy: faiss.Index | None = None  # searched instead when faiss-gpu sees a GPU
        self.lock = threading.Lock()

    def _empty(self, dim: int) -> faiss.IndexIDMap2:
        self.dim = dim
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def _file(self, generation: int) -> Path:
        return self.folder / f"vectors-{self.tier}-{generation}.faiss"

    def load(self, generation: int, expected: int) -> bool:
        """Load the file saved at ``generation`` if it holds ``expected`` vectors."""
        path = self._file(generation)
        if not path.is_file():
            return False
        try:
            index = faiss.read_index(str(path))
        except RuntimeError:
            return False
        if index.ntotal != expected:
            return False
        with self.lock:
            self.index = index
            self.dim = index.d
            self._gpu_copy = None
        return True

    def rebuild(self, pairs: Iterable[tuple[int, np.ndarray]]) -> None:
        ids, vecs = [], []
        for chunk_id, vec in pairs:
            ids.append(chunk_id)
            vecs.append(vec)
        with self.lock:
            self.index = None
            self._gpu_copy = None
            if vecs:
                self.index = self._empty(len(vecs[0]))
                self.index.add_with_ids(np.vstack(vecs).astype(np.float32), np.array(ids, dtype=np.int64))

    def save(self, generation: int) -> None:
        """Write atomically under the generation's name and drop older files."""
        with self.lock:
            if self.index is None:
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            final = self._file(generation)
            tmp = final.with_suffix(f".tmp{os.getpid()}")
            faiss.write_index(self.index, str(tmp))
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)
        for old in self.folder.glob(f"vectors-{self.tier}-*.faiss"):
            if old != final:
                with contextlib.suppress(OSError):
                    old.unlink()

    def remove(self, ids: list[int]) -> None:
        with self.lock:
            if self.index is not None and ids:
                self.index.remove_ids(np.array(ids, dtype=np.int64))
                self._gpu_copy = None

    def add(self, pairs: list[tuple[int, np.ndarray]]) -> None:
        if not pairs:
            return
        with self.lock:
            if self.index is None:
                self.index = self._empty(len(pairs[0][1]))
            ids = np.array([p[0] for p in pairs], dtype=np.int64)
            self.index.remove_ids(ids)  # idempotent: a chunk id carries one vector
            self.index.add_with_ids(np.vstack([p[1] for p in pairs]).astype(np.float32), ids)
            self._gpu_copy = None

    @property
    def size(self) -> int:
        return 0 if self.index is None else self.index.ntotal

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self.lock:
            if self.index is None or self.index.ntotal == 0:
                return []
            if self._gpu_copy is None and gpu_count() > 0:
                self._gpu_copy = faiss.index_cpu_to_all_gpus(self.index)
            searcher = self.index if self._gpu_copy is None else self._gpu_copy
            scores, ids = searcher.search(query.reshape(1, -1).astype(np.float32), min(k, self.index.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
