"""The team store: many repositories' indexes in one PostgreSQL database with pgvector.

Every row is keyed by repository and branch, so one database holds many of them and several
writers (one per repository, or per part of a monorepo) write at once; each file's rows change
in one transaction. The keyword layer is BM25 computed in SQL over a table of (stemmed) term
frequencies, with FTS5's formula and column weights, so it ranks like the embedded store. Vectors
live in pgvector in half precision (halfvec: NDCG@10 unchanged on semble's repositories) keyed by
the model that made them and the hash of the text: a text is embedded once per model, whichever
repository or branch holds it, and each model (a tier's vector space) has its own HNSW index.
The schema carries one version; a database at another version is refused before anything is
written. Credentials come from the DSN, the environment (PGPASSWORD), a pgpass or service file
(libpq reads them), else the keyring, and never appear in an error; TLS options (sslmode,
sslrootcert, ...) in the DSN or the environment go to libpq as they are. A reader
(``read_only``) connects in read-only transactions and never creates or writes anything.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import psycopg
import snowballstemmer
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ragls.indexer.model import Chunk, Symbol, content_hash
from ragls.indexer.storage import (
    ChunkRow,
    FileRecord,
    PendingText,
    StoreError,
    embed_text,
    fts_row,
    pending_by_text,
)
from ragls.privacy.endpoint import is_loopback_literal

SCHEMA_VERSION = "2"  # 2: postings carry their chunk's length; BM25 totals kept
SCHEMA_LOCK = 0x7261676C73  # advisory lock id ("ragls") held while the schema is checked or created
# How old a tier's model and vector count may be when read again: one search asked them four or
# five times, each a round trip and the count a scan of the repository's chunks (~50 ms of a
# 60 ms search on a 53-file repository). This process's own writes refresh them at once.
RECHECK_SECONDS = 10.0
# ragls_meta's row of a repository and branch holding "<chunks> <their total length>": BM25's N and
# average length, kept by each write transaction. Counted at every search instead, they were a scan
# of all the repository's chunks: 27 of 46 ms at 7,000 chunks, growing with the repository.
TOTALS_KEY = "bm25:totals"

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE ragls_schema (version TEXT NOT NULL);
CREATE TABLE ragls_meta (
    repo TEXT NOT NULL, branch TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (repo, branch, key)
);
CREATE TABLE ragls_files (
    id BIGSERIAL PRIMARY KEY,
    repo TEXT NOT NULL,
    branch TEXT NOT NULL,
    path TEXT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    size BIGINT NOT NULL,
    hash TEXT NOT NULL,
    language TEXT NOT NULL,
    note TEXT,
    UNIQUE (repo, branch, path)
);
CREATE TABLE ragls_chunks (
    id BIGSERIAL PRIMARY KEY,
    file_id BIGINT NOT NULL REFERENCES ragls_files(id) ON DELETE CASCADE,
    repo TEXT NOT NULL,
    branch TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    embed_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    terms INTEGER NOT NULL  -- keyword tokens in body, path and symbol: BM25's document length
);
CREATE INDEX ragls_chunks_file ON ragls_chunks(file_id);
CREATE INDEX ragls_chunks_embed ON ragls_chunks(repo, branch, embed_hash);
CREATE TABLE ragls_symbols (
    file_id BIGINT NOT NULL REFERENCES ragls_files(id) ON DELETE CASCADE,
    repo TEXT NOT NULL,
    branch TEXT NOT NULL,
    name TEXT NOT NULL,
    lname TEXT NOT NULL,
    qualified TEXT NOT NULL,
    kind TEXT NOT NULL,
    line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    role TEXT NOT NULL
);
CREATE INDEX ragls_symbols_lname ON ragls_symbols(repo, branch, lname, role);
CREATE INDEX ragls_symbols_file ON ragls_symbols(file_id);
-- no foreign key: checking one per term row cost more than the rows; delete_file removes them
CREATE TABLE ragls_terms (
    chunk_id BIGINT NOT NULL,
    repo TEXT NOT NULL,
    branch TEXT NOT NULL,
    term TEXT NOT NULL,
    freq REAL NOT NULL,  -- occurrences weighted by column: body 1, path 2, symbol 3
    length INTEGER NOT NULL  -- the chunk's terms (BM25's document length): no join to the chunks
);
-- covering: a search reads its postings from the index alone
CREATE INDEX ragls_terms_term ON ragls_terms(repo, branch, term) INCLUDE (chunk_id, freq, length);
CREATE INDEX ragls_terms_chunk ON ragls_terms(chunk_id);
CREATE TABLE ragls_vectors (
    model TEXT NOT NULL,
    hash TEXT NOT NULL,
    embedding halfvec NOT NULL,  -- half precision: NDCG@10 unchanged to 4 decimals, half the bytes
    PRIMARY KEY (model, hash)
);
"""

# BM25 as SQLite FTS5 computes it (k1, b; an IDF at or below zero counts 1e-6), over the terms of
# one repository and branch. A quoted query term that splits into several tokens (``add_route``)
# is a phrase to FTS5; here it matches chunks holding all its tokens, at the least frequent one's
# frequency. Each posting carries its chunk's length and the repository's totals are kept, so the
# query reads only the postings of its terms, from the covering index, and no chunk row: at 41,000
# chunks, 60 queries went from p50 ~300 / p95 ~1,300 ms to ~105 / ~680 ms, the same rankings.
K1, B = 1.2, 0.75
KEYWORD_SEARCH = """
WITH q AS MATERIALIZED (
    SELECT * FROM unnest(%(terms)s::text[], %(phrases)s::int[], %(widths)s::int[]) AS q(term, phrase, width)
),
postings AS MATERIALIZED (
    SELECT chunk_id, term, freq, length FROM ragls_terms
    WHERE repo = %(repo)s AND branch = %(branch)s AND term = ANY(%(terms)s::text[])
),
hits AS MATERIALIZED (
    SELECT p.chunk_id, q.phrase, min(p.freq) AS freq, min(p.length) AS length
    FROM postings p JOIN q ON p.term = q.term
    GROUP BY p.chunk_id, q.phrase, q.width HAVING count(*) = q.width
),
df AS MATERIALIZED (SELECT phrase, count(*) AS hits FROM hits GROUP BY phrase),
docs AS MATERIALIZED (  -- no row before the repository's first write: then there are no hits either
    SELECT split_part(value, ' ', 1)::float8 AS n,
           split_part(value, ' ', 2)::float8 / greatest(split_part(value, ' ', 1)::float8, 1) AS avgdl
    FROM ragls_meta WHERE repo = %(repo)s AND branch = %(branch)s AND key = %(totals)s
)
SELECT h.chunk_id, sum(
    greatest(ln((d.n - df.hits + 0.5) / (df.hits + 0.5)), 1e-6)
    * h.freq * (%(k1)s + 1) / (h.freq + %(k1)s * (1 - %(b)s + %(b)s * h.length / d.avgdl))
) AS score
FROM hits h JOIN df USING (phrase) CROSS JOIN docs d
GROUP BY h.chunk_id ORDER BY score DESC, h.chunk_id LIMIT %(limit)s
"""

# Longer tokens (an inlined base64 blob, a minified bundle's run of letters) get no posting: a
# btree index entry holds at most 2,704 bytes, and one such token failed the whole transaction (the
# scale benchmark's writer died on one). They still count in the chunk's length, as in FTS5; no
# query types one.
MAX_TERM = 512
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')
_TOKEN = re.compile(r"[a-z0-9]+")
_STEMMER = snowballstemmer.stemmer("porter")


class StoreUnavailable(StoreError):
    """The PostgreSQL server cannot be reached or refused the connection (the message names the
    server, never the password)."""


class SchemaMismatch(StoreError):
    """The database holds a ragls schema of another version."""


@lru_cache(maxsize=262_144)
def stem(token: str) -> str:
    """Porter stemming, as FTS5's ``porter`` tokenizer does (code repeats its words: cached)."""
    return _STEMMER.stemWord(token)


def tokens(text: str) -> list[str]:
    """The keyword tokens of identifier-split text (``fts_row``'s columns, a query term)."""
    return [stem(t) for t in _TOKEN.findall(text.lower())]


def keyword_terms(chunk: Chunk) -> tuple[Counter[str], int]:
    """A chunk's term frequencies weighted by column (body 1, path 2, symbol 3) and its length."""
    freq: Counter[str] = Counter()
    length = 0
    for weight, column in zip((1, 2, 3), fts_row(chunk), strict=True):
        found = tokens(column)
        length += len(found)
        for token in found:
            if len(token) <= MAX_TERM:
                freq[token] += weight
    return freq, length


def query_phrases(match: str) -> list[list[str]]:
    """The token lists of an FTS5 expression of quoted terms joined by OR (``search.fts_query``)."""
    phrases = [tokens(term.replace('""', '"')) for term in _QUOTED.findall(match)]
    return [p for p in phrases if p]


def parse_dsn(dsn: str) -> dict[str, Any]:
    """The DSN's parts; a string that is none is a clear error that does not quote it (it may hold
    a password)."""
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise StoreUnavailable(
            "index.store is neither 'embedded' nor a PostgreSQL connection string"
            " (postgresql://user@host:port/database)"
        ) from None


def on_this_machine(dsn: str) -> bool:
    """Whether the DSN reaches only this machine: a Unix socket or a loopback address (libpq's
    environment defaults included; a service file is not read, so it counts as elsewhere)."""
    parts = parse_dsn(dsn)
    if parts.get("service") or os.environ.get("PGSERVICE"):
        return False
    environment = os.environ.get("PGHOSTADDR") or os.environ.get("PGHOST") or ""
    hosts = parts.get("hostaddr") or parts.get("host") or environment
    return all(
        not host or host.startswith(("/", "@")) or host == "localhost" or is_loopback_literal(host)
        for host in hosts.split(",")
    )


def redacted(parts: dict[str, Any]) -> str:
    """A parsed DSN as it may be shown: host, port, database and user, never the password."""
    shown = [f"{k}={parts[k]}" for k in ("host", "port", "dbname", "user") if parts.get(k)]
    return "PostgreSQL " + (" ".join(shown) or "(libpq defaults)")


def keyring_account(parts: dict[str, Any]) -> str:
    """The keyring entry (service ``ragls``) that holds the password of a DSN without one:
    ``user@host:port/dbname`` with libpq's environment defaults filled in."""
    env = os.environ
    user = parts.get("user") or env.get("PGUSER") or ""
    host = parts.get("host") or env.get("PGHOST") or ""
    port = parts.get("port") or env.get("PGPORT") or "5432"
    dbname = parts.get("dbname") or env.get("PGDATABASE") or user
    return f"{user}@{host}:{port}/{dbname}"


def keyring_password(parts: dict[str, Any]) -> str | None:
    """The keyring's password for this DSN, when the ``keyring`` package and a backend are there."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        return keyring.get_password("ragls", keyring_account(parts))
    except KeyringError:
        return None


def _needs_password(exc: psycopg.Error) -> bool:
    return "no password supplied" in str(exc)


def _scrubbed(message: str, password: Any) -> str:
    """``message`` without the password, in case a server or libpq ever echoes it."""
    return message.replace(str(password), "***") if password else message


@dataclass
class UnwrittenRows:
    """Rows of the files replaced in the open transaction, written at its commit (one COPY per
    table, instead of a few statements per file), and whether it holds the repository's lock."""

    files: list[tuple] = field(default_factory=list)
    chunks: list[tuple] = field(default_factory=list)
    terms: list[tuple] = field(default_factory=list)
    symbols: list[tuple] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    locked: bool = False
    chunks_added: int = 0  # the transaction's change to the totals (TOTALS_KEY), whenever written
    length_added: int = 0


class PgStore:
    """The PostgreSQL :class:`~ragls.indexer.storage.IndexStore` of one repository and branch.
    One connection, used under one lock (as the embedded store does)."""

    def __init__(
        self, dsn: str, repository: str, branch: str, connect_timeout: float = 10.0, read_only: bool = False
    ) -> None:
        self.repo = repository
        self.branch = branch
        self.lock = threading.RLock()
        self._indexed_models: set[str] = set()  # models whose HNSW index this process has seen
        self._ef_search = 0  # hnsw.ef_search as last set on the connection
        self._ids: dict[str, deque[int]] = {}  # ids taken from the server's sequences, not used yet
        self._unwritten = UnwrittenRows()
        self._recent: dict[str, tuple[float, Any]] = {}  # key -> (when read, value): see RECHECK_SECONDS
        parts = parse_dsn(dsn)
        self.where = redacted(parts)
        self.read_only = read_only
        options: dict[str, Any] = {"connect_timeout": max(1, round(connect_timeout))}
        if read_only:  # the server refuses any write in this session's transactions
            options["options"] = f"{parts.get('options', '')} -c default_transaction_read_only=on".strip()
        try:
            self.db = self._connect(dsn, parts, options)
        except psycopg.Error as exc:
            message = _scrubbed(" ".join(str(exc).split()), options.get("password") or parts.get("password"))
            raise StoreUnavailable(f"{self.where}: {message}") from None
        try:
            self._check_schema()
            register_vector(self.db)
            # a filtered HNSW scan goes on past other repositories' vectors until k of ours are found
            self.db.execute("SET hnsw.iterative_scan = relaxed_order")
        except BaseException:
            self.db.close()
            raise

    @staticmethod
    def _connect(dsn: str, parts: dict[str, Any], options: dict[str, Any]) -> psycopg.Connection:
        """Connect with what libpq finds (the DSN, PGPASSWORD, pgpass, a service file); a server that
        asks for a password none of them gave is asked again with the keyring's, if it holds one."""
        try:
            return psycopg.connect(dsn, autocommit=True, **options)
        except psycopg.OperationalError as exc:
            if not _needs_password(exc) or not (password := keyring_password(parts)):
                raise
        options["password"] = password
        return psycopg.connect(dsn, autocommit=True, **options)

    def _check_schema(self) -> None:
        """Create the schema in an empty database; refuse one at another version (nothing written)."""
        try:
            with self._connection_lost():
                self._create_or_check_schema()
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StoreUnavailable(
                f"{self.where}: cannot create the ragls tables ({str(exc).splitlines()[0]}); an administrator"
                " runs CREATE EXTENSION vector in this database once, and the role needs CREATE on it"
            ) from None

    def _create_or_check_schema(self) -> None:
        with self.db.transaction():
            if not self.read_only:
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            if self.db.execute("SELECT to_regclass('ragls_schema')").fetchone()[0] is None:
                if self.read_only:
                    raise StoreUnavailable(f"{self.where}: holds no ragls index yet")
                self.db.execute(SCHEMA)
                self.db.execute("INSERT INTO ragls_schema VALUES (%s)", (SCHEMA_VERSION,))
                return
            row = self.db.execute("SELECT version FROM ragls_schema").fetchone()
            found = row[0] if row else None
            if found != SCHEMA_VERSION:
                raise SchemaMismatch(
                    f"{self.where}: the ragls schema is version {found!r}, this ragls needs"
                    f" {SCHEMA_VERSION!r} (upgrade ragls, or index into another database)"
                )

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def for_repository(self, repository: str, branch: str) -> PgStore:
        """Another repository and branch read over this store's connection (a reader's view)."""
        view = copy.copy(self)
        view.repo, view.branch = repository, branch
        return view

    def repositories(self) -> list[tuple[str, str]]:
        """(repository, branch) of everything indexed here (every run records its links' meta)."""
        return self._rows("SELECT DISTINCT repo, branch FROM ragls_meta ORDER BY 1, 2")

    def location(self) -> str:
        return f"{self.where}, repository {self.repo}, branch {self.branch}"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """Writes inside it commit together; the file rows kept meanwhile are written first."""
        with self.lock, self._connection_lost():
            self._unwritten = UnwrittenRows()
            try:
                with self.db.transaction():
                    yield self.db
                    self._write_unwritten(self.db)
                    self._write_totals(self.db)
            finally:
                self._unwritten = UnwrittenRows()
                self._recent.clear()

    def recently(self, key: str, read: Callable[[], Any]) -> Any:
        """``read()``, or what it returned less than RECHECK_SECONDS ago."""
        now = time.monotonic()
        kept = self._recent.get(key)
        if kept is None or now - kept[0] >= RECHECK_SECONDS:
            kept = self._recent[key] = (now, read())
        return kept[1]

    def _rows(self, query: str | sql.Composed, params: dict | tuple = ()) -> list[tuple]:
        with self.lock, self._connection_lost():
            return self.db.execute(query, params).fetchall()

    @contextlib.contextmanager
    def _connection_lost(self) -> Iterator[None]:
        """A server gone (stopped, restarted, the connection cut) is a store error, not a crash;
        so is a write sent to a read-only server (a streaming replica: readers may use one)."""
        try:
            yield
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"{self.where}: {' '.join(str(exc).split())}") from None
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise StoreError(
                f"{self.where} is read-only (a standby replica?): {str(exc).splitlines()[0]};"
                " index into the primary, and point only readers at a replica"
            ) from None

    def _one(self, query: str | sql.Composed, params: dict | tuple = ()) -> Any:
        rows = self._rows(query, params)
        return rows[0][0] if rows else None

    # -- metadata ---------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        return self._one(
            "SELECT value FROM ragls_meta WHERE repo = %s AND branch = %s AND key = %s",
            (self.repo, self.branch, key),
        )

    def set_meta(self, db: psycopg.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO ragls_meta VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (repo, branch, key) DO UPDATE SET value = excluded.value",
            (self.repo, self.branch, key, value),
        )

    def vectors_generation(self) -> int:
        """Always 0: the server searches its own vectors, no file copy needs naming."""
        return 0

    # -- files ------------------------------------------------------------------------------

    def files(self) -> dict[str, FileRecord]:
        rows = self._rows(
            "SELECT id, path, mtime_ns, size, hash, language FROM ragls_files"
            " WHERE repo = %s AND branch = %s",
            (self.repo, self.branch),
        )
        return {r[1]: FileRecord(*r) for r in rows}

    def replace_file(
        self,
        db: psycopg.Connection,
        path: str,
        mtime_ns: int,
        size: int,
        digest: str,
        language: str,
        note: str | None,
        chunks: list[Chunk],
        symbols: list[Symbol],
    ) -> tuple[list[int], list[int]]:
        """Swap one file's rows inside the caller's transaction. Returns (removed, added) chunk ids.
        The new rows go to the server when the transaction commits, with every other file's."""
        removed = self.delete_file(db, path)
        key = (self.repo, self.branch)
        rows = self._unwritten
        file_id = self._next_id(db, "ragls_files_id_seq")
        rows.files.append((file_id, *key, path, mtime_ns, size, digest, language, note))
        added = [self._next_id(db, "ragls_chunks_id_seq") for _ in chunks]
        for chunk_id, chunk in zip(added, chunks, strict=True):
            freq, length = keyword_terms(chunk)
            embed_hash = content_hash(embed_text(chunk.path, chunk.symbol, chunk.text))
            rows.chunks.append((
                chunk_id, file_id, *key, chunk.start_line, chunk.end_line, chunk.symbol, chunk.kind,
                chunk.hash, embed_hash, chunk.text, length,
            ))
            rows.chunks_added += 1
            rows.length_added += length
            rows.terms += [(chunk_id, *key, term, count, length) for term, count in freq.items()]
        rows.symbols += [
            (file_id, *key, s.name, s.name.lower(), s.qualified, s.kind, s.line, s.end_line, s.role)
            for s in symbols
        ]
        rows.paths.add(path)
        return removed, added

    def _next_id(self, db: psycopg.Connection, sequence: str) -> int:
        """An id from ``sequence``, taken from the server a thousand at a time (gaps are harmless)."""
        ids = self._ids.setdefault(sequence, deque())
        if not ids:
            ids.extend(r[0] for r in db.execute(
                "SELECT nextval(%s::regclass) FROM generate_series(1, 1000) ORDER BY 1", (sequence,)
            ))
        return ids.popleft()

    def _write_unwritten(self, db: psycopg.Connection) -> None:
        """The rows ``replace_file`` kept, one COPY per table (row by row, or a few statements per
        file, writing took 3 to 5 times as long as SQLite's)."""
        rows = self._unwritten
        with db.cursor() as cur:
            for table, columns, values in (
                ("ragls_files", "id, repo, branch, path, mtime_ns, size, hash, language, note", rows.files),
                (
                    "ragls_chunks",
                    "id, file_id, repo, branch, start_line, end_line, symbol, kind, hash, embed_hash, text,"
                    " terms",
                    rows.chunks,
                ),
                ("ragls_terms", "chunk_id, repo, branch, term, freq, length", rows.terms),
                (
                    "ragls_symbols",
                    "file_id, repo, branch, name, lname, qualified, kind, line, end_line, role",
                    rows.symbols,
                ),
            ):
                if values:
                    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in values:
                            copy.write_row(row)
        self._unwritten = UnwrittenRows(
            locked=rows.locked, chunks_added=rows.chunks_added, length_added=rows.length_added
        )

    def _write_totals(self, db: psycopg.Connection) -> None:
        """Add the transaction's chunks and length to the repository's totals (its writers take
        turns: the write lock is held). The first write of a repository counts them instead."""
        rows = self._unwritten
        if not rows.locked:
            return  # no chunk was written or deleted
        added = db.execute(
            "UPDATE ragls_meta SET value = (split_part(value, ' ', 1)::bigint + %s)::text || ' '"
            " || (split_part(value, ' ', 2)::bigint + %s)::text WHERE repo = %s AND branch = %s AND key = %s",
            (rows.chunks_added, rows.length_added, self.repo, self.branch, TOTALS_KEY),
        )
        if added.rowcount == 0:
            db.execute(
                "INSERT INTO ragls_meta SELECT %s, %s, %s,"
                " count(*)::text || ' ' || coalesce(sum(terms), 0)::text FROM ragls_chunks"
                " WHERE repo = %s AND branch = %s",
                (self.repo, self.branch, TOTALS_KEY, self.repo, self.branch),
            )

    def _write_lock(self, db: psycopg.Connection) -> None:
        """Writers of one repository and branch take turns, a transaction at a time: two runs over
        the same files (overlapping CI jobs) would otherwise both insert a file the other has not
        committed yet. Writers of other repositories and readers never wait for it."""
        if not self._unwritten.locked:
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (self.repo, self.branch))
            self._unwritten.locked = True

    def touch_file(self, db: psycopg.Connection, path: str, mtime_ns: int, size: int) -> None:
        """A new (mtime, size) stamp for a file whose content is the one indexed."""
        if path in self._unwritten.paths:
            self._write_unwritten(db)
        db.execute(
            "UPDATE ragls_files SET mtime_ns = %s, size = %s WHERE repo = %s AND branch = %s AND path = %s",
            (mtime_ns, size, self.repo, self.branch, path),
        )

    def delete_file(self, db: psycopg.Connection, path: str) -> list[int]:
        """Remove one file's rows (inside the caller's transaction); returns its chunk ids."""
        self._write_lock(db)
        if path in self._unwritten.paths:
            self._write_unwritten(db)
        where = (self.repo, self.branch, path)
        gone = db.execute(
            "WITH gone AS (DELETE FROM ragls_chunks c USING ragls_files f WHERE f.id = c.file_id"
            " AND f.repo = %s AND f.branch = %s AND f.path = %s RETURNING c.id, c.terms),"
            " terms AS (DELETE FROM ragls_terms t USING gone WHERE t.chunk_id = gone.id)"
            " SELECT id, terms FROM gone",
            where,
        ).fetchall()
        self._unwritten.chunks_added -= len(gone)
        self._unwritten.length_added -= sum(length for _, length in gone)
        removed = [chunk_id for chunk_id, _ in gone]
        # the symbols go with the file (ON DELETE CASCADE)
        db.execute("DELETE FROM ragls_files WHERE repo = %s AND branch = %s AND path = %s", where)
        return removed

    # -- chunks -----------------------------------------------------------------------------

    _CHUNK_COLUMNS = "c.id, f.path, c.start_line, c.end_line, c.symbol, c.kind, f.language, c.hash"
    _OURS = "c.repo = %(repo)s AND c.branch = %(branch)s"

    def _ours(self, **params: Any) -> dict:
        return {"repo": self.repo, "branch": self.branch, **params}

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        rows = self._rows(
            f"SELECT {self._CHUNK_COLUMNS} FROM ragls_chunks c JOIN ragls_files f ON f.id = c.file_id"
            f" WHERE {self._OURS} AND c.id = ANY(%(ids)s)",
            self._ours(ids=list(ids)),
        )
        return {r[0]: ChunkRow(*r) for r in rows}

    def chunks_of_files(self, paths: Iterable[str]) -> list[ChunkRow]:
        rows = self._rows(
            f"SELECT {self._CHUNK_COLUMNS} FROM ragls_chunks c JOIN ragls_files f ON f.id = c.file_id"
            f" WHERE {self._OURS} AND f.path = ANY(%(paths)s) ORDER BY c.start_line, c.id",
            self._ours(paths=list(paths)),
        )
        return [ChunkRow(*r) for r in rows]

    def chunk_text(self, chunk_id: int) -> str | None:
        return self._one(
            f"SELECT text FROM ragls_chunks c WHERE {self._OURS} AND c.id = %(id)s", self._ours(id=chunk_id)
        )

    def chunk_count(self) -> int:
        return self._one(f"SELECT count(*) FROM ragls_chunks c WHERE {self._OURS}", self._ours())

    def counts(self) -> dict[str, int]:
        return {
            "files": self._one(
                "SELECT count(*) FROM ragls_files WHERE repo = %s AND branch = %s", (self.repo, self.branch)
            ),
            "chunks": self.chunk_count(),
            "symbols": self._one(
                "SELECT count(*) FROM ragls_symbols WHERE repo = %s AND branch = %s AND role = 'definition'",
                (self.repo, self.branch),
            ),
        }

    def languages(self) -> dict[str, int]:
        return dict(
            self._rows(
                "SELECT language, count(*) FROM ragls_files WHERE repo = %s AND branch = %s"
                " GROUP BY language ORDER BY 2 DESC, 1",
                (self.repo, self.branch),
            )
        )

    # -- keyword and symbol search ---------------------------------------------------------

    def keyword_search(self, match: str, limit: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score: higher is better) for an FTS5-style OR of quoted terms."""
        phrases = query_phrases(match)
        if not phrases:
            return []
        terms = [t for p in phrases for t in p]
        numbers = [i for i, p in enumerate(phrases) for _ in p]
        widths = [len(p) for p in phrases for _ in p]
        rows = self._rows(
            KEYWORD_SEARCH,
            self._ours(
                terms=terms, phrases=numbers, widths=widths, k1=K1, b=B, limit=limit, totals=TOTALS_KEY
            ),
        )
        return [(r[0], float(r[1])) for r in rows]

    def symbol_definitions(self, names: Iterable[str]) -> list[tuple[str, str, str, int, int]]:
        """(path, name, qualified, line, end_line) of definitions whose name matches one of ``names``."""
        names = [n.lower() for n in names]
        if not names:
            return []
        return self._rows(
            "SELECT f.path, s.name, s.qualified, s.line, s.end_line FROM ragls_symbols s"
            " JOIN ragls_files f ON f.id = s.file_id WHERE s.repo = %(repo)s AND s.branch = %(branch)s"
            " AND s.lname = ANY(%(names)s) AND s.role = 'definition'",
            self._ours(names=names),
        )

    def chunk_at(self, path: str, line: int) -> int | None:
        """The innermost chunk of ``path`` covering ``line``."""
        return self._one(
            "SELECT c.id FROM ragls_chunks c JOIN ragls_files f ON f.id = c.file_id"
            f" WHERE {self._OURS} AND f.path = %(path)s"
            " AND c.start_line <= %(line)s AND c.end_line >= %(line)s"
            " ORDER BY c.end_line - c.start_line, c.id LIMIT 1",
            self._ours(path=path, line=line),
        )

    # -- vectors ------------------------------------------------------------------------------

    def vector_index(self, tier: str) -> PgVectors:
        return PgVectors(self, tier)

    def model(self, tier: str) -> str:
        """The model whose vectors ``tier`` uses here ('' before the tier first checked its model)."""
        return self.recently(f"model:{tier}", lambda: self.meta(f"model:{tier}") or "")

    _PENDING = (
        "FROM ragls_chunks c JOIN ragls_files f ON f.id = c.file_id"
        " LEFT JOIN ragls_vectors v ON v.model = %(model)s AND v.hash = c.embed_hash"
        " WHERE c.repo = %(repo)s AND c.branch = %(branch)s AND v.hash IS NULL"
    )

    def embedded(self, tier: str) -> int:
        """Chunks that have a vector of ``tier``."""
        return self._one(
            "SELECT count(*) FROM ragls_chunks c JOIN ragls_vectors v ON v.model = %(model)s"
            f" AND v.hash = c.embed_hash WHERE {self._OURS}",
            self._ours(model=self.model(tier)),
        )

    def count_pending(self, tier: str) -> int:
        """Distinct texts with no vector of ``tier``."""
        return self._one(
            f"SELECT count(DISTINCT c.embed_hash) {self._PENDING}", self._ours(model=self.model(tier))
        )

    def pending_texts(self, tier: str) -> list[PendingText]:
        """Every text with no vector of ``tier``, with the file and reference counts that rank it."""
        rows = self._rows(
            "SELECT c.embed_hash, c.id, c.file_id, c.start_line, c.end_line, f.path, f.mtime_ns"
            f" {self._PENDING}",
            self._ours(model=self.model(tier)),
        )
        definitions = self._rows(
            "SELECT file_id, line, lname FROM ragls_symbols WHERE role = 'definition' AND file_id = ANY(%s)",
            (sorted({row[2] for row in rows}),),
        )
        refs = dict(
            self._rows(
                "SELECT lname, count(*) FROM ragls_symbols WHERE repo = %(repo)s AND branch = %(branch)s"
                " AND role = 'reference' AND lname = ANY(%(names)s) GROUP BY lname",
                self._ours(names=sorted({lname for _, _, lname in definitions})),
            )
        )
        return pending_by_text(rows, definitions, refs)

    def embed_inputs(self, chunk_ids: list[int]) -> dict[int, str]:
        """The text to embed for each chunk."""
        rows = self._rows(
            "SELECT c.id, f.path, c.symbol, c.text FROM ragls_chunks c JOIN ragls_files f ON f.id = c.file_id"
            f" WHERE {self._OURS} AND c.id = ANY(%(ids)s)",
            self._ours(ids=chunk_ids),
        )
        return {chunk_id: embed_text(path, symbol, text) for chunk_id, path, symbol, text in rows}

    def add_vectors(self, tier: str, vectors: dict[str, np.ndarray]) -> list[tuple[int, np.ndarray]]:
        """Store ``tier``'s vectors by model and embed hash in one transaction; returns the
        (chunk id, vector) pairs of this repository and branch now searchable."""
        model = self.model(tier)
        if not model or not vectors:
            return []
        dim = len(next(iter(vectors.values())))
        with self.transaction() as db:
            self._ensure_hnsw(db, model, dim)
            with db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO ragls_vectors VALUES (%s, %s, %s::halfvec) ON CONFLICT DO NOTHING",
                    [(model, h, np.asarray(v, dtype=np.float32)) for h, v in vectors.items()],
                )
            rows = db.execute(
                f"SELECT c.id, c.embed_hash FROM ragls_chunks c WHERE {self._OURS}"
                " AND c.embed_hash = ANY(%(hashes)s)",
                self._ours(hashes=list(vectors)),
            ).fetchall()
        return [(cid, vectors[h]) for cid, h in rows]

    def _ensure_hnsw(self, db: psycopg.Connection, model: str, dim: int) -> None:
        """The HNSW index over one model's vectors (a partial index: one per vector space)."""
        if model in self._indexed_models:
            return
        name = hnsw_name(model)
        if db.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))  # one writer creates it
            db.execute(
                sql.SQL(
                    "CREATE INDEX IF NOT EXISTS {} ON ragls_vectors"
                    " USING hnsw ((embedding::halfvec({})) halfvec_ip_ops) WHERE model = {}"
                ).format(sql.Identifier(name), sql.Literal(dim), sql.Literal(model))
            )
        self._indexed_models.add(model)

    def vectors_for(self, tier: str, chunk_ids: list[int]) -> list[tuple[int, np.ndarray]]:
        """Stored ``tier`` vectors of the given chunks (those already embedded, e.g. unchanged content)."""
        rows = self._rows(
            "SELECT c.id, v.embedding FROM ragls_chunks c JOIN ragls_vectors v ON v.model = %(model)s"
            f" AND v.hash = c.embed_hash WHERE {self._OURS} AND c.id = ANY(%(ids)s)",
            self._ours(model=self.model(tier), ids=chunk_ids),
        )
        return [(cid, half.to_numpy().astype(np.float32)) for cid, half in rows]

    def all_vectors(self, tier: str) -> Iterator[tuple[int, np.ndarray]]:
        for cid, half in self._rows(
            "SELECT c.id, v.embedding FROM ragls_chunks c JOIN ragls_vectors v ON v.model = %(model)s"
            f" AND v.hash = c.embed_hash WHERE {self._OURS}",
            self._ours(model=self.model(tier)),
        ):
            yield cid, half.to_numpy().astype(np.float32)

    def clear_vectors(self, tier: str, model_id: str) -> None:
        """Use ``model_id``'s vectors for ``tier`` from now on. Vectors are keyed by their model, so
        the old model's stay for the repositories that still use it; none are mixed."""
        with self.transaction() as db:
            self.set_meta(db, f"model:{tier}", model_id)

    def search_vectors(self, tier: str, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, inner product) of this repository's chunks nearest to ``query`` in ``tier``."""
        model = self.model(tier)
        half = sql.SQL("halfvec({})").format(sql.Literal(len(query)))
        query_sql = sql.SQL(
            "SELECT c.id, (v.embedding::{half}) <#> %(query)s::{half} AS distance FROM ragls_vectors v"
            " JOIN ragls_chunks c ON c.embed_hash = v.hash AND c.repo = %(repo)s AND c.branch = %(branch)s"
            " WHERE v.model = {model} ORDER BY (v.embedding::{half}) <#> %(query)s::{half} LIMIT %(k)s"
        ).format(half=half, model=sql.Literal(model))
        with self.lock, self._connection_lost():
            if self._ef_search != max(40, k):  # a session setting: a round trip per change, not per search
                self._ef_search = max(40, k)
                self.db.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(self._ef_search)))
            rows = self.db.execute(
                query_sql, self._ours(query=np.asarray(query, dtype=np.float32), k=k)
            ).fetchall()
        return sorted(((cid, -float(d)) for cid, d in rows), key=lambda pair: -pair[1])


def hnsw_name(model: str) -> str:
    """The HNSW index of one model's vectors (identifiers are short; model ids are not)."""
    return "ragls_hnsw_" + hashlib.sha256(model.encode()).hexdigest()[:16]


class PgVectors:
    """One tier's :class:`~ragls.indexer.storage.VectorSearch` on the server: pgvector searches the
    stored vectors themselves, so there is no copy to load, keep in step or save."""

    def __init__(self, store: PgStore, tier: str) -> None:
        self.store = store
        self.tier = tier

    @property
    def dim(self) -> int | None:
        return self.store._one(
            "SELECT vector_dims(embedding) FROM ragls_vectors WHERE model = %s LIMIT 1",
            (self.store.model(self.tier),),
        )

    @property
    def size(self) -> int:
        return self.store.recently(f"embedded:{self.tier}", lambda: self.store.embedded(self.tier))

    def load(self, generation: int, expected: int) -> bool:
        return True

    def rebuild(self, pairs: Iterable[tuple[int, np.ndarray]]) -> None:
        pass

    def save(self, generation: int) -> None:
        pass

    def add(self, pairs: list[tuple[int, np.ndarray]]) -> None:
        pass

    def remove(self, ids: list[int]) -> None:
        pass

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.store.search_vectors(self.tier, query, k)
