"""The shared dependency store: one SQLite database under the user's cache dir holding the surface
chunks of every package version any workspace indexed, so ten projects on numpy 2.1 index it once.

A package version is written whole in one transaction and never changes afterwards (the same
``name==version`` has the same files), so a workspace reads it without locks and a killed build
leaves either all of a package or none of it. Workspaces choose which versions they see (their
own environment's): every read takes the package ids to search.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ragls.indexer.deps.surface import SurfaceChunk
from ragls.indexer.store import KEYWORD_TABLE
from ragls.indexer.tokens import index_terms

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS packages (
    id INTEGER PRIMARY KEY,
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    note TEXT,
    UNIQUE (ecosystem, name, version)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_name ON chunks(name, package_id);
CREATE INDEX IF NOT EXISTS chunks_package ON chunks(package_id);
"""
    + KEYWORD_TABLE
)


@dataclass(frozen=True)
class DepChunk:
    id: int
    package: str  # "name==version"
    path: str
    start_line: int
    end_line: int
    symbol: str
    name: str
    kind: str
    text: str

    @property
    def source(self) -> str:
        """Where it comes from, as it is cited: ``requests==2.32.3:requests/sessions.py``."""
        return f"{self.package}:{self.path}"


@dataclass(frozen=True)
class PackageRow:
    id: int
    key: str  # "name==version"
    files: int
    bytes: int
    chunks: int
    note: str | None


_COLUMNS = (
    "c.id, p.name || '==' || p.version, c.path, c.start_line, c.end_line, c.symbol, c.name, c.kind, c.text"
)


class DepsStore:
    """The shared database; safe to use from several threads and processes (WAL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
        self.lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def __enter__(self) -> DepsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def package_id(self, ecosystem: str, name: str, version: str) -> int | None:
        with self.lock:
            row = self.db.execute(
                "SELECT id FROM packages WHERE ecosystem = ? AND name = ? AND version = ?",
                (ecosystem, name, version),
            ).fetchone()
        return row[0] if row else None

    def add_package(
        self, ecosystem: str, name: str, version: str, chunks: list[SurfaceChunk], files: int, size: int,
        note: str | None,
    ) -> int:  # fmt: skip
        """Write one package version whole; another process that wrote it first wins."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute(
                    "SELECT id FROM packages WHERE ecosystem = ? AND name = ? AND version = ?",
                    (ecosystem, name, version),
                ).fetchone()
                if row:
                    self.db.execute("COMMIT")
                    return row[0]
                package_id = self.db.execute(
                    "INSERT INTO packages (ecosystem, name, version, files, bytes, note)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (ecosystem, name, version, files, size, note),
                ).lastrowid
                for c in chunks:
                    chunk_id = self.db.execute(
                        "INSERT INTO chunks"
                        " (package_id, path, start_line, end_line, symbol, name, kind, text)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (package_id, c.path, c.start_line, c.end_line, c.symbol, c.name, c.kind, c.text),
                    ).lastrowid
                    if c.kind == "export":
                        continue  # a re-export is found by name only, never by keywords
                    self.db.execute(
                        "INSERT INTO chunks_fts (rowid, body, path, symbol) VALUES (?, ?, ?, ?)",
                        (chunk_id, " ".join(index_terms(c.text)), " ".join(index_terms(c.path)),
                         " ".join(index_terms(c.symbol))),
                    )  # fmt: skip
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        assert package_id is not None
        return package_id

    def packages(self, ids: Iterable[int]) -> list[PackageRow]:
        ids = list(ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self.lock:
            rows = self.db.execute(
                "SELECT p.id, p.name || '==' || p.version, p.files, p.bytes,"
                " (SELECT COUNT(*) FROM chunks c WHERE c.package_id = p.id AND c.kind != 'export'), p.note"
                f" FROM packages p WHERE p.id IN ({marks}) ORDER BY p.name",
                ids,
            ).fetchall()
        return [PackageRow(*row) for row in rows]

    def keyword_search(self, match: str, package_ids: list[int], limit: int) -> list[tuple[DepChunk, float]]:
        """(chunk, bm25 score: higher is better) among these packages' chunks."""
        if not package_ids:
            return []
        marks = ",".join("?" * len(package_ids))
        with self.lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS}, -bm25(chunks_fts, 1.0, 2.0, 3.0) AS score FROM chunks_fts"
                " JOIN chunks c ON c.id = chunks_fts.rowid JOIN packages p ON p.id = c.package_id"
                f" WHERE chunks_fts MATCH ? AND c.package_id IN ({marks}) ORDER BY score DESC LIMIT ?",
                (match, *package_ids, limit),
            ).fetchall()
        return [(DepChunk(*row[:-1]), row[-1]) for row in rows]

    def spans(self, package_id: int, path: str) -> list[tuple[int, int]]:
        """Line spans of one package file's surface chunks (what a citation of it may cite)."""
        with self.lock:
            return self.db.execute(
                "SELECT start_line, end_line FROM chunks"
                " WHERE package_id = ? AND path = ? AND kind != 'export'",
                (package_id, path),
            ).fetchall()

    def definitions(self, name: str, package_ids: list[int]) -> list[DepChunk]:
        """Chunks defining ``name`` (a function, class, method or module) in these packages."""
        if not package_ids:
            return []
        marks = ",".join("?" * len(package_ids))
        with self.lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM chunks c JOIN packages p ON p.id = c.package_id"
                f" WHERE c.name = ? AND c.package_id IN ({marks})",
                (name, *package_ids),
            ).fetchall()
        return [DepChunk(*row) for row in rows]
