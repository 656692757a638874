"""Shared indexes searched beside the workspace's own: the ``[[index.shared]]`` sources, each a
team's PostgreSQL database that CI indexes into (``ragls index --store``).

A reader only reads: its session's transactions are read-only (the server refuses any write) and
a search never records a model. Each source is searched on its own thread, and a search waits for
it at most its ``timeout_ms``: a source that is down, refuses, fails mid-query or answers later is
left out (the workspace's results are served), the user is told once per outage, and it is tried
again after a backoff (5 s, doubling up to 5 minutes). Queries to a server on another machine
leave this one: ``privacy.mode = 'local'`` refuses such a source, and every query is written to
the audit log as metadata (server, repositories, rows, bytes and the SHA-256 of the query, never
its text: a completion's query is the code around the cursor).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

import psycopg

from ragls.config import Config, SharedIndexConfig
from ragls.indexer.pgstore import PgStore, StoreUnavailable, on_this_machine, parse_dsn, redacted
from ragls.indexer.search import Mode, SearchResult, fuse, search
from ragls.indexer.storage import StoreError
from ragls.indexer.tiers import DenseTier, Encoder
from ragls.privacy.audit import AuditLog

BACKOFF_FIRST, BACKOFF_MAX = 5.0, 300.0  # seconds before a failed source is tried again
CONNECT_TIMEOUT = 5.0  # seconds; the connection is made on the source's thread, never waited for
STATEMENT_TIMEOUT = 10  # times timeout_ms: a query nobody waits for any more is cancelled by the server
PREFERRED_BRANCHES = ("main", "master", "trunk")  # a repository named without @BRANCH

Notify = Callable[[str], None]
SharedResults = Callable[[], list[list[SearchResult]]]  # collects a search's results (each source's)


class Reader:
    """One repository of a source, shaped as the ranking code reads an index (:func:`search.search`)."""

    def __init__(self, store: PgStore, encoders: list[Encoder]) -> None:
        self.store = store
        self.tiers = [DenseTier(encoder, store, 0) for encoder in encoders]
        self._usable: list[DenseTier] | None = None

    def enabled_tiers(self) -> list[DenseTier]:
        """The tiers whose stored vectors this machine's models made (others cannot be compared)."""
        if self._usable is None:
            self._usable = [tier for tier in self.tiers if tier.model_matches(self.store)]
        return self._usable

    def dense_ranking(self, tier: DenseTier, query: str, k: int) -> list[int]:
        return tier.ranking(query, k)

    def search(self, query: str, top_k: int, mode: Mode) -> list[SearchResult]:
        """The repository's ranked results, each with its repository and its chunk's text."""
        return [
            replace(hit, repository=self.store.repo, text=self.store.chunk_text(hit.chunk_id) or "")
            for hit in search(self, query, top_k, mode)  # type: ignore[arg-type]
        ]

    def text_at(self, path: str, line: int) -> tuple[int, int, str] | None:
        """(start, end, text) of the innermost chunk of ``path`` holding ``line``."""
        chunk_id = self.store.chunk_at(path, line)
        if chunk_id is None:
            return None
        row = self.store.chunk_rows([chunk_id])[chunk_id]
        return row.start_line, row.end_line, self.store.chunk_text(chunk_id) or ""


class Source:
    """One ``[[index.shared]]`` source: its connection, readers and health, used on its own thread."""

    def __init__(
        self, cfg: SharedIndexConfig, encoders: Callable[[], list[Encoder]], own: str, audit: AuditLog,
        notify: Notify,
    ) -> None:
        self.cfg = cfg
        self.where = redacted(parse_dsn(cfg.dsn))
        self.local = on_this_machine(cfg.dsn)
        self._encoders = encoders
        self._own = own  # the workspace's repository: answered by its own, fresher index
        self._audit = audit
        self.notify = notify
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ragls-shared")
        self._store: PgStore | None = None
        self.readers: list[Reader] = []
        self._lock = threading.Lock()  # the health below
        self._retry_at = 0.0
        self._backoff = BACKOFF_FIRST
        self._told = False
        self._searching: Future | None = None
        self.connecting = self._thread.submit(self._connect)  # a first search queues behind it

    def start(self, query: str, top_k: int, mode: Mode) -> Future | None:
        """This source's search, on its thread; None while it is backing off or an earlier search
        is still running there (a hung server: the backoff will have started)."""
        with self._lock:
            if time.monotonic() < self._retry_at or (self._searching and not self._searching.done()):
                return None
            deadline = time.monotonic() + self.cfg.timeout_ms / 1000
            self._searching = self._thread.submit(self._search, query, top_k, mode, deadline)
            return self._searching

    def wait(self, job: Future, deadline: float, binding: bool) -> list[SearchResult]:
        """The job's results, or none when it is not done by ``deadline``; ``binding``: the
        deadline is the source's own timeout, so missing it is a failure (said once, backed off)."""
        try:
            return job.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            if binding:
                self._failed(f"no answer within {self.cfg.timeout_ms} ms (index.shared timeout_ms)")
            return []

    def _connect(self) -> None:
        """Open the read-only session and a reader per repository (a failure is said and backed off)."""
        if self._store is not None:
            return
        try:
            store = PgStore(self.cfg.dsn, "", "", connect_timeout=CONNECT_TIMEOUT, read_only=True)
        except StoreError as exc:
            self._failed(str(exc))
            return
        try:
            with store.lock:
                store.db.execute(f"SET statement_timeout = {self.cfg.timeout_ms * STATEMENT_TIMEOUT}")
            self.readers = self._readers(store)
        except (StoreError, psycopg.Error) as exc:
            store.close()
            self._failed(" ".join(str(exc).split()))
            return
        self._store = store

    def _readers(self, store: PgStore) -> list[Reader]:
        """A reader per repository asked for (every one when none is named) but the workspace's own."""
        indexed: dict[str, list[str]] = {}
        for repository, branch in store.repositories():
            indexed.setdefault(repository, []).append(branch)
        wanted = self.cfg.repositories or sorted(indexed)
        readers, missing = [], []
        encoders = self._encoders()
        for name in wanted:
            repository, _, branch = name.partition("@")
            branches = indexed.get(repository, [])
            if not branch:
                branch = next((b for b in PREFERRED_BRANCHES if b in branches), min(branches, default=""))
            if branch not in branches:
                missing.append(name)
            elif repository != self._own:
                readers.append(Reader(store.for_repository(repository, branch), encoders))
        if missing:
            names = ", ".join(missing)
            self.notify(f"shared index {self.where} holds no {names} (index.shared repositories)")
        return readers

    def _search(self, query: str, top_k: int, mode: Mode, deadline: float) -> list[SearchResult]:
        if self._store is None and time.monotonic() >= self._retry_at:
            self._connect()
        if self._store is None:
            return []
        try:
            found = fuse([reader.search(query, top_k, mode) for reader in self.readers], top_k)
        except (StoreError, psycopg.Error) as exc:
            self._drop()
            self._failed(" ".join(str(exc).split()))
            return []
        self._audit.record(
            provider="postgresql", model=",".join(r.store.repo for r in self.readers), endpoint=self.where,
            payload=query.encode("utf-8"), redactions=0, local=self.local, rows=len(found),
        )
        if time.monotonic() <= deadline:
            with self._lock:
                self._told, self._backoff = False, BACKOFF_FIRST
        return found

    def text_at(self, repository: str, path: str, line: int) -> tuple[int, int, str] | None:
        """A chunk of a shared repository's file, read on the source's thread (None when unknown)."""
        def read() -> tuple[int, int, str] | None:
            reader = next((r for r in self.readers if r.store.repo == repository), None)
            return reader.text_at(path, line) if reader else None

        try:
            return self._thread.submit(read).result(timeout=CONNECT_TIMEOUT)
        except (FutureTimeout, StoreError, psycopg.Error):
            return None

    def _drop(self) -> None:
        """Forget the connection (gone or broken): the next search after the backoff reconnects."""
        store, self._store, self.readers = self._store, None, []
        if store is not None:
            store.close()

    def _failed(self, why: str) -> None:
        """Back off, and tell the user (once until the source answers in time again)."""
        with self._lock:
            self._retry_at = time.monotonic() + self._backoff
            retry = self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            told, self._told = self._told, True
        if not told:
            self.notify(
                f"shared index {self.where} left out, local results only ({why});"
                f" trying again in {retry:.0f} s"
            )

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        store = self._store
        if store is not None and store.lock.acquire(blocking=False):  # not while a query hangs on it
            try:
                store.db.close()
            finally:
                store.lock.release()


class SharedIndexes:
    """Every usable ``[[index.shared]]`` source of a workspace; ``notify`` tells the user (the CLI
    prints it, the language server shows it with ``window/showMessage``)."""

    def __init__(self, cfg: Config, encoders: Callable[[], list[Encoder]], own: str, notify: Notify) -> None:
        from ragls.privacy import Privacy

        self.notify = notify
        self._said: list[str] = []  # told so far, for a listener that comes later (tell_with)
        self.sources: list[Source] = []
        audit = Privacy(cfg.privacy).audit
        for number, source in enumerate(cfg.index.shared):
            try:
                local = on_this_machine(source.dsn)
            except StoreUnavailable as exc:
                self._tell(f"index.shared[{number}]: {exc}; left out")
                continue
            if cfg.privacy.mode == "local" and not local:
                where = redacted(parse_dsn(source.dsn))
                self._tell(
                    f"index.shared[{number}] ({where}) is a server on another machine, but privacy.mode"
                    " is 'local' (nothing leaves this machine), so it is left out: use a server on this"
                    " machine (a Unix socket or loopback), or set privacy.mode to \"zero-retention\" or"
                    " \"standard\""
                )
                continue
            self.sources.append(Source(source, encoders, own, audit, self._tell))

    def _tell(self, message: str) -> None:
        self._said.append(message)
        self.notify(message)

    def tell_with(self, notify: Notify) -> None:
        """Tell the user with ``notify`` from now on, and now what was told before it."""
        self.notify = notify
        for message in list(self._said):
            notify(message)

    def start(
        self, query: str, top_k: int, mode: Mode, wait_ms: int | None = None
    ) -> SharedResults:
        """Start every available source's search; returns the call that collects their results,
        each waited for until its own timeout from now, or ``wait_ms`` when that is shorter (an
        inline completion's: what comes later is left out, and the source is not held to it)."""
        started = time.monotonic()
        jobs = [(source, source.start(query, top_k, mode)) for source in self.sources]

        def results() -> list[list[SearchResult]]:
            found = []
            for source, job in jobs:
                timeout = source.cfg.timeout_ms if wait_ms is None else min(wait_ms, source.cfg.timeout_ms)
                if job is not None:
                    found.append(source.wait(job, started + timeout / 1000, timeout == source.cfg.timeout_ms))
            return found

        return results

    def text_at(self, repository: str, path: str, line: int) -> tuple[int, int, str] | None:
        """(start, end, text) of the chunk of ``repository``'s ``path`` holding ``line``, from the
        first source that has it."""
        for source in self.sources:
            found = source.text_at(repository, path, line)
            if found is not None:
                return found
        return None

    def close(self) -> None:
        for source in self.sources:
            source.close()
