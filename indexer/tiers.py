"""Dense tiers: one embedding model, its vectors in the store and its own vector search.

The static tier (a distilled model2vec model) embeds every chunk seconds after the keyword layer;
the contextual tier (MiniLM) follows in the background, most-likely-retrieved chunks first.
Search fuses the tiers by rank, never by comparing vectors of two models.

Each tier records the model that made its vectors (``model:<tier>`` in the index metadata); when
the configured model differs (another model, window, dimension, or a rebuilt static model), the
tier's vectors are dropped and re-embedded instead of being mixed with the new model's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ragls.indexer.storage import IndexStore, PendingText, VectorSearch

Progress = Callable[[int, int, str], None]  # (done, total, what)

FILE_MEANS_KEPT = 50_000  # files' mean vectors kept for file_ranking before starting over
RECENT_NS = 24 * 3600 * 10**9  # "recently changed": within a day of the newest file


class Encoder(Protocol):
    tier: str
    notices: list[str]

    @property
    def model_id(self) -> str: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def encode_query(self, query: str) -> np.ndarray: ...


def retrieval_order(pending: list[PendingText], hot: set[str]) -> list[PendingText]:
    """Most likely retrieved first: files open in the editor, recently changed files, chunks
    defining names referenced often; newest first among equals."""
    newest = max((p.mtime_ns for p in pending), default=0)
    return sorted(
        pending,
        key=lambda p: (p.path not in hot, p.mtime_ns < newest - RECENT_NS, -p.references, -p.mtime_ns),
    )


class DenseTier:
    def __init__(self, encoder: Encoder, store: IndexStore, group: int) -> None:
        self.name = encoder.tier
        self.encoder = encoder
        self.vectors: VectorSearch = store.vector_index(self.name)
        self.group = group  # texts encoded and committed together
        self._checked = False
        self._running = threading.Lock()  # one pass at a time; it picks up texts added meanwhile
        self._file_means: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}  # see file_ranking

    def load(self, store: IndexStore, generation: int) -> bool:
        """Load the saved search index if it matches the store, else rebuild it; True when rebuilt."""
        expected = store.embedded(self.name)
        if expected and not self.vectors.load(generation, expected):
            self.vectors.rebuild(store.all_vectors(self.name))
            return True
        return False

    def check_model(self, store: IndexStore, lock: threading.RLock, notices: list[str]) -> None:
        """Before the first encode: vectors made by another model are dropped, once."""
        if self._checked:
            return
        model_id = self.encoder.model_id  # may load (or distil) the model
        with lock:
            known = store.meta(f"model:{self.name}")
            if known != model_id:
                store.clear_vectors(self.name, model_id)
                self._file_means.clear()
                self.vectors.rebuild([])
                if known is not None:
                    notices.append(
                        f"{self.name} embedding model changed ({known} -> {model_id}); re-embedding"
                    )
        self._checked = True

    def model_matches(self, store: IndexStore) -> bool:
        """Whether the store's vectors of this tier are the configured model's: read only, so a
        search never writes (another model's vectors are left to ``check_model`` before embedding)."""
        return self._checked or store.meta(f"model:{self.name}") == self.encoder.model_id

    def ranking(self, query: str, k: int) -> list[int]:
        if self.vectors.size == 0:
            return []
        return [cid for cid, _ in self.vectors.search(self.encoder.encode_query(query), k)]

    def file_ranking(self, query: str, store: IndexStore, files: dict[str, list[int]]) -> list[str]:
        """``files`` (path -> its chunk ids) by the cosine of the query with the mean of each file's
        chunk vectors: how well the file as a whole, not one chunk of it, answers. Files with no
        vector yet are left out. A file's mean is kept while its chunks (ids) stay the same and all
        had vectors: reading vectors from the store took ~0.25 s per question, the means ~0."""
        means = {}
        missing = {path: ids for path, ids in files.items() if (path, tuple(ids)) not in self._file_means}
        wanted = [c for ids in missing.values() for c in ids]
        by_chunk = dict(store.vectors_for(self.name, wanted)) if wanted else {}
        if len(self._file_means) > FILE_MEANS_KEPT:
            self._file_means.clear()
        for path, ids in files.items():
            key = (path, tuple(ids))
            if key in self._file_means:
                means[path] = self._file_means[key]
                continue
            vectors = [by_chunk[c] for c in ids if c in by_chunk]
            if vectors:
                means[path] = np.mean(vectors, axis=0)
                if len(vectors) == len(ids):
                    self._file_means[key] = means[path]
        if not means:
            return []
        matrix = np.vstack(list(means.values()))
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-9
        query_vector = self.encoder.encode_query(query)
        similarity = matrix @ (query_vector / (np.linalg.norm(query_vector) + 1e-9))
        paths = list(means)
        return [paths[i] for i in np.argsort(-similarity, kind="stable")]

    def embed(
        self,
        store: IndexStore,
        lock: threading.RLock,
        hot: Callable[[], tuple[int, set[str]]],
        progress: Progress | None,
        stop: threading.Event | None,
    ) -> set[str]:
        """Embed every text this tier lacks, in retrieval order, one committed group at a time;
        returns the hashes embedded. Stopping (or a kill) loses at most the group in flight. When
        another thread's pass is running, return at once: that pass re-plans until nothing is left."""
        if not self._running.acquire(blocking=False):
            return set()
        try:
            version, total = -1, 0
            plan: list[PendingText] = []
            done: set[str] = set()
            while not (stop and stop.is_set()):
                if not plan or hot()[0] != version:  # new texts, or the editor opened other files
                    version, paths = hot()
                    plan = retrieval_order(store.pending_texts(self.name), paths)
                    total = len(done) + len(plan)
                    if not plan:
                        break
                group, plan = plan[: self.group], plan[self.group :]
                inputs = store.embed_inputs([p.chunk_id for p in group])
                group = [p for p in group if p.chunk_id in inputs]  # chunks may vanish meanwhile
                if not group:
                    continue
                vectors = self.encoder.encode([inputs[p.chunk_id] for p in group])
                by_hash = {p.hash: v for p, v in zip(group, vectors, strict=True)}
                with lock:
                    pairs = store.add_vectors(self.name, by_hash)
                    self.vectors.add(pairs)
                done.update(p.hash for p in group)
                if progress:
                    progress(len(done), total, "embedding")  # per tier: static, then contextual
            return done
        finally:
            self._running.release()

    def status(self, store: IndexStore) -> dict:
        return {
            "model": store.meta(f"model:{self.name}") or "",
            "embedded": store.embedded(self.name),
            "pending": store.count_pending(self.name),
            "vectors": self.vectors.size,
        }
