"""The index on disk: one SQLite database (the source of truth) and a faiss file (a cache).

SQLite holds files, chunks, symbols, the FTS5 keyword table and every embedding vector, keyed
by its tier (the model that made it: ``static``, ``contextual``) and the hash of the text that
was embedded. Each file's rows change in one transaction (WAL), so
a killed process leaves the previous or the next state, never a mix. The faiss file is derived
from SQLite: it is named after a generation counter that SQLite bumps with every change to the
set of vectors, so a stale or damaged faiss file is detected and rebuilt from SQLite without
re-embedding anything. There is one faiss file per tier: vectors of two models never share one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ragls.indexer.model import Chunk, Symbol, content_hash
from ragls.indexer.storage import ChunkRow, FileRecord, PendingText, embed_text, fts_row, pending_by_text
from ragls.indexer.vectors import VectorIndex

SCHEMA_VERSION = "3"

# The keyword layer: one row per chunk, ranked by BM25 over its text, path and symbol names.
KEYWORD_TABLE = """
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    body, path, symbol, tokenize = "porter unicode61 remove_diacritics 2"
);
"""

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    hash TEXT NOT NULL,
    language TEXT NOT NULL,
    note TEXT
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    embed_hash TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_embed ON chunks(embed_hash);
CREATE TABLE IF NOT EXISTS symbols (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    lname TEXT NOT NULL,
    qualified TEXT NOT NULL,
    kind TEXT NOT NULL,
    line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    role TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS symbols_lname ON symbols(lname, role);
CREATE INDEX IF NOT EXISTS symbols_file ON symbols(file_id);
"""
    + KEYWORD_TABLE
    + """
CREATE TABLE IF NOT EXISTS vectors (
    tier TEXT NOT NULL,
    hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (tier, hash)
) WITHOUT ROWID;
"""
)

# Schema 2 kept one model's vectors (the contextual one) in ``embeddings``: keep them, they cost
# minutes to hours to compute.
MIGRATE_2_TO_3 = """
INSERT OR IGNORE INTO vectors SELECT 'contextual', hash, vector FROM embeddings;
DROP TABLE embeddings;
UPDATE meta SET key = 'model:contextual' WHERE key = 'embed_model';
UPDATE meta SET value = '3' WHERE key = 'schema';
UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vectors_gen';
"""


class CorruptIndex(RuntimeError):
    """The database file is unreadable or fails its integrity check."""


class SqliteStore:
    """The embedded :class:`~ragls.indexer.storage.IndexStore`: thread-safe access to the index
    database, beside which each tier's faiss file lives. Writers serialise on one lock."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self.lock = threading.RLock()
        try:
            self.db = sqlite3.connect(db_path, check_same_thread=False, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._check()
            self.db.executescript(SCHEMA)
            if self.meta("schema") == "2":
                with self.transaction() as db:
                    for statement in MIGRATE_2_TO_3.split(";"):
                        if statement.strip():
                            db.execute(statement)
            with self.transaction():
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('vectors_gen', '0')", (SCHEMA_VERSION,)
                )
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(Exception):
                self.db.close()
            raise CorruptIndex(f"{db_path}: {exc}") from exc
        if self.meta("schema") != SCHEMA_VERSION:
            raise CorruptIndex(f"{db_path}: schema {self.meta('schema')!r}, expected {SCHEMA_VERSION}")

    def location(self) -> str:
        return str(self.path)

    def _check(self) -> None:
        row = self.db.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {row[0] if row else 'no answer'}")

    def close(self) -> None:
        with self.lock:
            self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # -- metadata ---------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def vectors_generation(self) -> int:
        return int(self.meta("vectors_gen") or 0)

    # -- files ------------------------------------------------------------------------------

    def files(self) -> dict[str, FileRecord]:
        with self.lock:
            rows = self.db.execute("SELECT id, path, mtime_ns, size, hash, language FROM files").fetchall()
        return {r[1]: FileRecord(*r) for r in rows}

    def replace_file(
        self,
        db: sqlite3.Connection,
        path: str,
        mtime_ns: int,
        size: int,
        digest: str,
        language: str,
        note: str | None,
        chunks: list[Chunk],
        symbols: list[Symbol],
    ) -> tuple[list[int], list[int]]:
        """Swap one file's rows inside the caller's transaction. Returns (removed, added) chunk ids."""
        removed = self._delete_file(db, path)
        file_id = db.execute(
            "INSERT INTO files (path, mtime_ns, size, hash, language, note) VALUES (?, ?, ?, ?, ?, ?)",
            (path, mtime_ns, size, digest, language, note),
        ).lastrowid
        added = []
        for chunk in chunks:
            chunk_id = db.execute(
                "INSERT INTO chunks (file_id, start_line, end_line, symbol, kind, hash, embed_hash, text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    file_id,
                    chunk.start_line,
                    chunk.end_line,
                    chunk.symbol,
                    chunk.kind,
                    chunk.hash,
                    content_hash(embed_text(chunk.path, chunk.symbol, chunk.text)),
                    chunk.text,
                ),
            ).lastrowid
            db.execute(
                "INSERT INTO chunks_fts (rowid, body, path, symbol) VALUES (?, ?, ?, ?)",
                (chunk_id, *fts_row(chunk)),
            )
            added.append(chunk_id)
        db.executemany(
            "INSERT INTO symbols (file_id, name, lname, qualified, kind, line, end_line, role)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (file_id, s.name, s.name.lower(), s.qualified, s.kind, s.line, s.end_line, s.role)
                for s in symbols
            ],
        )
        if removed or added:
            self._bump_vectors(db)
        return removed, added

    def touch_file(self, db: sqlite3.Connection, path: str, mtime_ns: int, size: int) -> None:
        """A new (mtime, size) stamp for a file whose content is the one indexed."""
        db.execute("UPDATE files SET mtime_ns = ?, size = ? WHERE path = ?", (mtime_ns, size, path))

    def delete_file(self, db: sqlite3.Connection, path: str) -> list[int]:
        removed = self._delete_file(db, path)
        if removed:
            self._bump_vectors(db)
        return removed

    def _delete_file(self, db: sqlite3.Connection, path: str) -> list[int]:
        row = db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if row is None:
            return []
        ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE file_id = ?", (row[0],))]
        db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in ids])
        db.execute("DELETE FROM files WHERE id = ?", (row[0],))  # cascades to chunks, symbols
        return ids

    def _bump_vectors(self, db: sqlite3.Connection) -> None:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vectors_gen'")

    # -- chunks -----------------------------------------------------------------------------

    def _select_in(self, sql: str, ids: list, params: tuple = ()) -> list[tuple]:
        """Rows of ``sql`` (whose ``{marks}`` is an IN list, after ``params``) for all ``ids``, 500
        per query: SQLite caps the number of bound variables."""
        rows: list[tuple] = []
        with self.lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                rows += self.db.execute(
                    sql.format(marks=",".join("?" * len(part))), (*params, *part)
                ).fetchall()
        return rows

    _CHUNK_COLUMNS = "c.id, f.path, c.start_line, c.end_line, c.symbol, c.kind, f.language, c.hash"

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        rows = self._select_in(
            f"SELECT {self._CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id"
            " WHERE c.id IN ({marks})",
            list(ids),
        )
        return {r[0]: ChunkRow(*r) for r in rows}

    def chunks_of_files(self, paths: Iterable[str]) -> list[ChunkRow]:
        paths = list(paths)
        marks = ",".join("?" * len(paths))
        with self.lock:
            rows = self.db.execute(
                f"SELECT {self._CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id"
                f" WHERE f.path IN ({marks}) ORDER BY c.start_line",
                paths,
            ).fetchall()
        return [ChunkRow(*r) for r in rows]

    def chunk_text(self, chunk_id: int) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT text FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        return row[0] if row else None

    def chunk_count(self) -> int:
        with self.lock:
            return self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def counts(self) -> dict[str, int]:
        with self.lock:
            one = self.db.execute
            return {
                "files": one("SELECT count(*) FROM files").fetchone()[0],
                "chunks": one("SELECT count(*) FROM chunks").fetchone()[0],
                "symbols": one("SELECT count(*) FROM symbols WHERE role = 'definition'").fetchone()[0],
            }

    def embedded(self, tier: str) -> int:
        """Chunks that have a vector of ``tier``."""
        with self.lock:
            return self.db.execute(
                "SELECT count(*) FROM chunks c JOIN vectors v ON v.tier = ? AND v.hash = c.embed_hash",
                (tier,),
            ).fetchone()[0]

    def languages(self) -> dict[str, int]:
        with self.lock:
            rows = self.db.execute("SELECT language, count(*) FROM files GROUP BY language ORDER BY 2 DESC")
            return dict(rows.fetchall())

    # -- keyword and symbol search ---------------------------------------------------------

    def keyword_search(self, match: str, limit: int) -> list[tuple[int, float]]:
        """(chunk id, bm25 score: higher is better) for an FTS5 MATCH expression."""
        with self.lock:
            rows = self.db.execute(
                "SELECT rowid, -bm25(chunks_fts, 1.0, 2.0, 3.0) FROM chunks_fts WHERE chunks_fts MATCH ?"
                " ORDER BY bm25(chunks_fts, 1.0, 2.0, 3.0) LIMIT ?",
                (match, limit),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def symbol_definitions(self, names: Iterable[str]) -> list[tuple[str, str, str, int, int]]:
        """(path, name, qualified, line, end_line) of definitions whose name matches one of ``names``."""
        names = [n.lower() for n in names]
        if not names:
            return []
        marks = ",".join("?" * len(names))
        with self.lock:
            return self.db.execute(
                "SELECT f.path, s.name, s.qualified, s.line, s.end_line FROM symbols s"
                f" JOIN files f ON f.id = s.file_id WHERE s.lname IN ({marks}) AND s.role = 'definition'",
                names,
            ).fetchall()

    def chunk_at(self, path: str, line: int) -> int | None:
        """The innermost chunk of ``path`` covering ``line``."""
        with self.lock:
            row = self.db.execute(
                "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ?"
                " AND c.start_line <= ? AND c.end_line >= ? ORDER BY c.end_line - c.start_line LIMIT 1",
                (path, line, line),
            ).fetchone()
        return row[0] if row else None

    # -- embeddings ---------------------------------------------------------------------------

    def vector_index(self, tier: str) -> VectorIndex:
        """``tier``'s faiss index, in a file beside the database."""
        return VectorIndex(self.path.parent, tier)

    _PENDING = (
        "FROM chunks c LEFT JOIN vectors v ON v.tier = ? AND v.hash = c.embed_hash WHERE v.hash IS NULL"
    )

    def count_pending(self, tier: str) -> int:
        """Distinct texts with no vector of ``tier``."""
        with self.lock:
            return self.db.execute(
                f"SELECT count(DISTINCT c.embed_hash) {self._PENDING}", (tier,)
            ).fetchone()[0]

    def pending_texts(self, tier: str) -> list[PendingText]:
        """Every text with no vector of ``tier``, with the file and reference counts that rank it.
        The pending chunks are found on the embed-hash index alone (scanning the chunk rows, text
        and all, took seconds at 64,000 chunks) and only they are read, so an edit stays cheap."""
        with self.lock:
            ids = [row[0] for row in self.db.execute(f"SELECT c.id {self._PENDING}", (tier,))]
        rows = self._select_in(
            "SELECT c.embed_hash, c.id, c.file_id, c.start_line, c.end_line, f.path, f.mtime_ns"
            " FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id IN ({marks})",
            ids,
        )
        definitions = self._select_in(
            "SELECT file_id, line, lname FROM symbols WHERE role = 'definition' AND file_id IN ({marks})",
            sorted({row[2] for row in rows}),
        )
        refs = dict(
            self._select_in(
                "SELECT lname, count(*) FROM symbols WHERE role = 'reference' AND lname IN ({marks})"
                " GROUP BY lname",
                sorted({lname for _, _, lname in definitions}),
            )
        )
        return pending_by_text(rows, definitions, refs)

    def embed_inputs(self, chunk_ids: list[int]) -> dict[int, str]:
        """The text to embed for each chunk."""
        rows = self._select_in(
            "SELECT c.id, f.path, c.symbol, c.text FROM chunks c JOIN files f ON f.id = c.file_id"
            " WHERE c.id IN ({marks})",
            chunk_ids,
        )
        return {chunk_id: embed_text(path, symbol, text) for chunk_id, path, symbol, text in rows}

    def add_vectors(self, tier: str, vectors: dict[str, np.ndarray]) -> list[tuple[int, np.ndarray]]:
        """Store ``tier``'s vectors by embed hash in one transaction (all or none of them, so a killed
        process leaves no half-written batch); returns the (chunk id, vector) pairs now searchable."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)",
                [(tier, h, v.astype(np.float32).tobytes()) for h, v in vectors.items()],
            )
            rows = self._select_in(
                "SELECT id, embed_hash FROM chunks WHERE embed_hash IN ({marks})", list(vectors)
            )
            self._bump_vectors(db)
        return [(cid, vectors[h]) for cid, h in rows]

    def vectors_for(self, tier: str, chunk_ids: list[int]) -> list[tuple[int, np.ndarray]]:
        """Cached ``tier`` vectors of the given chunks (those already embedded, e.g. unchanged content)."""
        rows = self._select_in(
            "SELECT c.id, v.vector FROM chunks c JOIN vectors v ON v.tier = ? AND v.hash = c.embed_hash"
            " WHERE c.id IN ({marks})",
            chunk_ids,
            (tier,),
        )
        return [(cid, np.frombuffer(blob, dtype=np.float32)) for cid, blob in rows]

    def all_vectors(self, tier: str) -> Iterator[tuple[int, np.ndarray]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT c.id, v.vector FROM chunks c JOIN vectors v ON v.tier = ? AND v.hash = c.embed_hash",
                (tier,),
            ).fetchall()
        for cid, blob in rows:
            yield cid, np.frombuffer(blob, dtype=np.float32)

    def clear_vectors(self, tier: str, model_id: str) -> None:
        """Forget every ``tier`` vector (they came from another model) and record the new model."""
        with self.transaction() as db:
            db.execute("DELETE FROM vectors WHERE tier = ?", (tier,))
            self.set_meta(db, f"model:{tier}", model_id)
            self._bump_vectors(db)
