"""The storage seam: what the engine keeps, behind one interface with two implementations.

The engine, the dense tiers and the ranking code (:mod:`search`) read and write only through
:class:`IndexStore` and each tier's :class:`VectorSearch`: files with their content hashes,
chunks, symbols, the keyword layer, vectors per tier, and index metadata. The embedded store
(:mod:`store`: SQLite FTS5 plus a faiss file per tier) serves one workspace on one machine; the
PostgreSQL store (:mod:`pgstore`) serves many repositories to a team.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ragls.indexer.model import Chunk, Symbol
from ragls.indexer.tokens import index_terms


@dataclass(frozen=True)
class FileRecord:
    id: int
    path: str
    mtime_ns: int
    size: int
    hash: str
    language: str


@dataclass(frozen=True)
class PendingText:
    """A text some tier has no vector for yet, with what says how soon it will be retrieved."""

    hash: str  # embed hash
    chunk_id: int  # one chunk holding that text
    path: str
    mtime_ns: int
    references: int  # references, anywhere in the workspace, to the names the chunk defines


@dataclass(frozen=True)
class ChunkRow:
    id: int
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    hash: str  # sha256 of the chunk's text


def embed_text(path: str, symbol: str, text: str) -> str:
    """What the embedding model sees: where the code lives and what it is, then the code."""
    head = f"{path} {symbol}".strip()
    return f"{head}\n{text}"


def fts_row(chunk: Chunk) -> tuple[str, str, str]:
    """Identifier-split columns for the keyword index (body, path, symbol)."""
    return (
        " ".join(index_terms(chunk.text)),
        " ".join(index_terms(chunk.path)),
        " ".join(index_terms(chunk.symbol)),
    )


def pending_by_text(
    rows: Iterable[tuple[str, int, int, int, int, str, int]],
    definitions: Iterable[tuple[int, int, str]],
    refs: dict[str, int],
) -> list[PendingText]:
    """One :class:`PendingText` per embed hash from the pending chunk rows (embed hash, chunk id,
    file id, start line, end line, path, mtime), the definitions of their files (file id, line,
    lower-cased name) and how often each name is referenced: the chunk whose definitions are
    referenced most stands for its text."""
    by_file: dict[int, list[tuple[int, str]]] = {}
    for file_id, line, lname in definitions:
        by_file.setdefault(file_id, []).append((line, lname))
    for defs in by_file.values():
        defs.sort()
    best: dict[str, PendingText] = {}
    for digest, chunk_id, file_id, start, end, path, mtime_ns in rows:
        defs = by_file.get(file_id, [])
        lo, hi = bisect_left(defs, (start, "")), bisect_right(defs, (end, "\uffff"))
        text = PendingText(digest, chunk_id, path, mtime_ns, sum(refs.get(n, 0) for _, n in defs[lo:hi]))
        if digest not in best or text.references > best[digest].references:
            best[digest] = text
    return list(best.values())


class StoreError(RuntimeError):
    """A store that cannot be used: unreachable, refused, at another schema version, not installed.
    The message says what to change and never holds a password."""


class VectorSearch(Protocol):
    """One tier's nearest-neighbour search over chunk ids. The embedded store keeps it in a faiss
    file derived from the stored vectors (so it is loaded, kept in step and saved); a database
    that searches its own vectors has nothing to load, keep in step or save."""

    @property
    def dim(self) -> int | None: ...

    @property
    def size(self) -> int: ...

    def load(self, generation: int, expected: int) -> bool: ...

    def rebuild(self, pairs: Iterable[tuple[int, np.ndarray]]) -> None: ...

    def save(self, generation: int) -> None: ...

    def add(self, pairs: list[tuple[int, np.ndarray]]) -> None: ...

    def remove(self, ids: list[int]) -> None: ...

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]: ...


class IndexStore(Protocol):
    """Everything the engine stores, named for what the engine does with it. Writes happen inside
    ``transaction()`` (its handle goes to the write methods), so one file's rows change together."""

    def close(self) -> None: ...

    def location(self) -> str:
        """Where the index lives, as a user may be shown it (no credentials)."""
        ...

    def transaction(self) -> AbstractContextManager[Any]: ...

    # metadata
    def meta(self, key: str) -> str | None: ...

    def set_meta(self, db: Any, key: str, value: str) -> None: ...

    def vectors_generation(self) -> int: ...

    # files and their rows
    def files(self) -> dict[str, FileRecord]: ...

    def replace_file(
        self, db: Any, path: str, mtime_ns: int, size: int, digest: str, language: str, note: str | None,
        chunks: list[Chunk], symbols: list[Symbol],
    ) -> tuple[list[int], list[int]]: ...

    def touch_file(self, db: Any, path: str, mtime_ns: int, size: int) -> None: ...

    def delete_file(self, db: Any, path: str) -> list[int]: ...

    # chunks
    def chunk_rows(self, ids: Iterable[int]) -> dict[int, ChunkRow]: ...

    def chunks_of_files(self, paths: Iterable[str]) -> list[ChunkRow]: ...

    def chunk_text(self, chunk_id: int) -> str | None: ...

    def chunk_count(self) -> int: ...

    def counts(self) -> dict[str, int]: ...

    def languages(self) -> dict[str, int]: ...

    # keyword and symbol layer
    def keyword_search(self, match: str, limit: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score: higher is better) for ``match``, quoted terms joined by OR
        (:func:`search.fts_query`), over body, path and symbol weighted 1, 2, 3."""
        ...

    def symbol_definitions(self, names: Iterable[str]) -> list[tuple[str, str, str, int, int]]: ...

    def chunk_at(self, path: str, line: int) -> int | None: ...

    # vectors per tier
    def vector_index(self, tier: str) -> VectorSearch:
        """The nearest-neighbour search over ``tier``'s vectors, for its :class:`~tiers.DenseTier`."""
        ...

    def embedded(self, tier: str) -> int: ...

    def count_pending(self, tier: str) -> int: ...

    def pending_texts(self, tier: str) -> list[PendingText]: ...

    def embed_inputs(self, chunk_ids: list[int]) -> dict[int, str]: ...

    def add_vectors(self, tier: str, vectors: dict[str, np.ndarray]) -> list[tuple[int, np.ndarray]]: ...

    def vectors_for(self, tier: str, chunk_ids: list[int]) -> list[tuple[int, np.ndarray]]: ...

    def all_vectors(self, tier: str) -> Iterator[tuple[int, np.ndarray]]: ...

    def clear_vectors(self, tier: str, model_id: str) -> None: ...
