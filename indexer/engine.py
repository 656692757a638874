"""The live index of one workspace: keeps the store (:mod:`storage`), each tier's vector search
and the embedding model open and
applies file changes incrementally. The CLI, the watcher and the language server all use it.

Indexing runs in layers. ``update`` discovers files, parses the changed ones and writes
chunks, symbols and keyword rows; search works as soon as it returns. ``embed_pending`` then
fills in dense vectors behind it, tier by tier (:mod:`tiers`: static in seconds, then
contextual), group by group, each group committed before progress moves.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from ragls.config import Config
from ragls.indexer import discovery
from ragls.indexer.deps.selection import META_KEY as DEPS_KEY
from ragls.indexer.deps.selection import Selection
from ragls.indexer.embeddings import ContextualEncoder
from ragls.indexer.onnx_encoder import cpu_budget
from ragls.indexer.parsing import ParsedFile, parse
from ragls.indexer.static_model import StaticEncoder
from ragls.indexer.storage import FileRecord, IndexStore, StoreError
from ragls.indexer.store import CorruptIndex, SqliteStore
from ragls.indexer.tiers import DenseTier, Progress
from ragls.privacy import PrivacyError

if TYPE_CHECKING:
    from ragls.indexer.shared import SharedIndexes

# Texts encoded and committed together, per tier: static encoding is nearly free, so big groups;
# contextual groups are small enough that a kill loses seconds of work.
STATIC_GROUP = 4096
CONTEXTUAL_GROUP = 64

# Files parsed per transaction: each file's rows change atomically either way; batching only
# saves commits.
WRITE_BATCH = 64
# The (mtime, size) stamp of a row indexed from an editor's buffer: it matches no file on disk.
UNSAVED = (0, -1)
# Below this many files to parse, starting worker processes costs more than it saves; above it,
# files go to the workers this many at a time.
PARALLEL_FROM = 256
PARSE_CHUNK = 16
LINKS_KEY = "links_not_followed"  # meta: {path: reason} of the symlinks the last scan refused


@dataclass
class UpdateStats:
    files: int = 0  # indexable files in the workspace
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0  # chunks in the index afterwards
    seconds: float = 0.0
    skipped: list[discovery.Skipped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files indexed with a caveat, or not at all


def cache_root() -> Path:
    """ragls's folder in the user's cache dir ($RAGLS_CACHE_DIR overrides)."""
    return Path(os.environ.get("RAGLS_CACHE_DIR") or platformdirs.user_cache_dir("ragls"))


def index_dir(root: Path, cfg: Config) -> Path:
    """Where a workspace's index lives: under the cache dir keyed by the root's path, or in it."""
    if cfg.index.location == "workspace":
        return root / ".ragls" / "index"
    base = cache_root()
    key = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return base / f"{root.name or 'root'}-{key}"


def git_branch(root: Path) -> str:
    """The branch checked out at ``root`` ('HEAD' when detached or not a git work tree)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--abbrev-ref", "HEAD"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "HEAD"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "HEAD"


def decode_source(data: bytes) -> tuple[str, int | None]:
    """The text, and the offset of the first invalid UTF-8 byte when there was one (replaced)."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return data.decode("utf-8", errors="replace"), exc.start


def read_source(path: Path) -> tuple[str, str, str | None]:
    """(text, sha256 of the bytes, caveat). Invalid UTF-8 is replaced, and said so."""
    data = path.read_bytes()
    text, bad_at = decode_source(data)
    caveat = None if bad_at is None else f"invalid UTF-8 at byte {bad_at} (replaced)"
    return text, hashlib.sha256(data).hexdigest(), caveat


@dataclass
class Prepared:
    """One file's rows to write; ``parsed`` is None when only its (mtime, size) stamp changed."""

    rel: str
    stamp: tuple[int, int]
    digest: str
    parsed: ParsedFile | None
    note: str | None


def parse_text(
    rel: str, text: str, digest: str, caveat: str | None, stamp: tuple[int, int], known_hash: str | None,
    lines_per_chunk: int,
) -> Prepared:
    """Parse, unless the text is the one already indexed (the file was only touched)."""
    if known_hash == digest:
        return Prepared(rel, stamp, digest, None, None)
    parsed = parse(rel, text, lines_per_chunk)
    return Prepared(rel, stamp, digest, parsed, "; ".join(n for n in (caveat, parsed.error) if n) or None)


def prepare_file(job: tuple[Path, str, str | None, int]) -> Prepared | str | None:
    """Read and parse one file: its rows, a problem to report, or None when it was deleted
    meanwhile (the next update or watcher event removes its rows)."""
    root, rel, known_hash, lines_per_chunk = job
    path = root / rel
    try:
        st = path.stat()
        text, digest, caveat = read_source(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{rel}: unreadable ({exc.strerror or exc}); not indexed"
    return parse_text(rel, text, digest, caveat, (st.st_mtime_ns, st.st_size), known_hash, lines_per_chunk)


def _die_with(parent: int) -> None:
    """In a parse worker: end when the indexing process ends, even by SIGKILL (Linux), instead of
    waiting forever on its queue with the parent's files open."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def prepare_chunk(jobs: list[tuple[Path, str, str | None, int]]) -> list[Prepared | str | None]:
    """``prepare_file`` for a few files: one round trip to a worker process."""
    return [prepare_file(job) for job in jobs]


def prepare_all(jobs: list[tuple[Path, str, str | None, int]]) -> Iterator[Prepared | str | None]:
    """``prepare_file`` for every job, in order; in worker processes when there are many jobs and
    more than one core, so that parsing runs while this process writes. Only a few chunks of files
    are in flight at a time, so parsed files never pile up in memory ahead of the writes. A worker
    that dies (a parser crash) costs its pool, not the update: what is left is parsed here."""
    workers = min(cpu_budget(), 4)  # parse processes beside this writer
    if len(jobs) < PARALLEL_FROM or workers < 2:
        yield from map(prepare_file, jobs)
        return
    chunks = iter([jobs[start : start + PARSE_CHUNK] for start in range(0, len(jobs), PARSE_CHUNK)])
    done = 0
    try:
        # fork: spawn and forkserver would run the program's __main__ again in every worker
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, fork, initializer=_die_with, initargs=(os.getpid(),)) as pool:
            in_flight = deque(pool.submit(prepare_chunk, chunk) for chunk in islice(chunks, 4 * workers))
            while in_flight:
                results = in_flight.popleft().result()
                in_flight.extend(pool.submit(prepare_chunk, chunk) for chunk in islice(chunks, 1))
                for result in results:
                    done += 1
                    yield result
    except BrokenProcessPool:
        yield from map(prepare_file, jobs[done:])


class Index:
    def __init__(self, root: Path, cfg: Config, folder: Path) -> None:
        self.root = root
        self.cfg = cfg
        self.folder = folder
        self.notices: list[str] = []  # things the user should be told (e.g. a rebuilt index)
        self.rules = discovery.Rules(root, cfg.index.max_file_bytes, cfg.index.exclude)
        self.store = self._open_store()
        self.tiers = {
            "static": DenseTier(
                StaticEncoder(cfg.models.static, cfg.models.embedding), self.store, STATIC_GROUP
            ),
            "contextual": DenseTier(ContextualEncoder(cfg.models.embedding), self.store, CONTEXTUAL_GROUP),
        }
        self._write = threading.RLock()  # one writer: keeps the store and the vector searches in step
        self._vectors_dirty = False
        self._hot: tuple[int, set[str]] = (0, set())  # files the editor has open: embedded first
        self._load_vectors()

    def _load_vectors(self) -> None:
        """Each tier's faiss copy from its file, or rebuilt from SQLite when the file is stale."""
        generation = self.store.vectors_generation()
        for tier in self.tiers.values():
            self._vectors_dirty |= tier.load(self.store, generation)

    @classmethod
    def open(cls, root: Path, cfg: Config) -> Index:
        root = root.resolve()
        folder = index_dir(root, cfg)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(root, cfg, folder)

    def _open_store(self) -> IndexStore:
        if self.cfg.index.store != "embedded":
            try:
                from ragls.indexer.pgstore import PgStore, on_this_machine  # the postgres extra
            except ImportError as exc:
                raise StoreError(
                    f"index.store names a PostgreSQL database, but {exc.name} is not installed:"
                    " pip install 'ragls[postgres]'"
                ) from None
            if self.cfg.privacy.mode == "local" and not on_this_machine(self.cfg.index.store):
                raise PrivacyError(
                    "index.store names a PostgreSQL server on another machine, but privacy.mode is 'local'"
                    " (nothing leaves this machine): use a server on this machine (a Unix socket or"
                    " localhost), or set privacy.mode to \"zero-retention\" or \"standard\""
                )
            branch = self.cfg.index.branch or git_branch(self.root)
            return PgStore(self.cfg.index.store, self.repository, branch)
        db_path = self.folder / "index.sqlite"
        try:
            return SqliteStore(db_path)
        except CorruptIndex as exc:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for suffix in ("", "-wal", "-shm"):
                old = Path(f"{db_path}{suffix}")
                if old.exists():
                    old.replace(f"{db_path}.corrupt-{stamp}{suffix}")
            for stale in self.folder.glob("vectors-*.faiss"):
                stale.unlink()
            self.notices.append(
                f"the index could not be used ({exc}); moved aside to {db_path}.corrupt-{stamp}, rebuilding"
            )
            return SqliteStore(db_path)

    @cached_property
    def shared(self) -> SharedIndexes | None:
        """The ``[[index.shared]]`` sources, searched beside this index (their problems are notices).
        Opened on first use: a writer (``ragls index``) never connects to them."""
        if not self.cfg.index.shared:
            return None
        try:
            from ragls.indexer.shared import SharedIndexes  # the postgres extra
        except ImportError as exc:
            self.notices.append(
                f"index.shared names PostgreSQL databases, but {exc.name} is not installed:"
                " pip install 'ragls[postgres]'; searching this workspace only"
            )
            return None
        return SharedIndexes(
            self.cfg, lambda: [tier.encoder for tier in self.enabled_tiers()], self.repository,
            self.notices.append,
        )

    @property
    def repository(self) -> str:
        """The workspace's repository name (index.repository, else its folder's name)."""
        return self.cfg.index.repository or self.root.name

    # -- keyword and symbol layer ----------------------------------------------------------

    def update(self, progress: Progress | None = None) -> UpdateStats:
        """Bring the index in line with the files on disk; only changed files are parsed."""
        started = time.perf_counter()
        found = discovery.discover(self.rules)
        known = self.store.files()
        stats = UpdateStats(files=len(found.files), skipped=found.skipped)
        todo: list[str] = []
        for rel in found.files:
            record = known.get(rel)
            try:
                st = (self.root / rel).stat()
            except OSError:
                continue  # vanished since discovery: the removal below handles it
            if record and record.mtime_ns == st.st_mtime_ns and record.size == st.st_size:
                stats.unchanged += 1
            else:
                todo.append(rel)
        gone = sorted(set(known) - set(found.files))
        self._apply(todo, gone, known, stats, progress)
        self._remember_links(stats.skipped)
        stats.chunks = self.store.chunk_count()
        stats.seconds = time.perf_counter() - started
        return stats

    def update_paths(self, paths: Iterable[Path | str], progress: Progress | None = None) -> UpdateStats:
        """Re-index just these files (created, changed or deleted), e.g. from the watcher."""
        started = time.perf_counter()
        touched = sorted({self._relative(p) for p in paths} - {None})
        rels, _, refused = discovery.expand_links(self.rules, touched)  # a new folder link: its files
        # git cannot answer for a path beyond a symlink (and stops if asked); those are no git path
        ignored = discovery.git_ignored(self.rules, [r for r in rels if self._git_path(r)])
        stats = UpdateStats(skipped=refused)
        present, gone = [], []
        for rel in rels:
            path = self.root / rel
            if not (path.is_file() or path.is_symlink()):
                reason = "gone"
            else:
                reason = "ignored" if rel in ignored else self.rules.skip_reason(rel)
            if reason is None and (same := self.rules.duplicate_of(rel)):
                reason = discovery.DUPLICATE.format(same)
            if reason is None:
                present.append(rel)
            else:
                gone.append(rel)
                if reason != "gone":
                    stats.skipped.append(discovery.Skipped(rel, reason))
        known = self.store.files()
        below = tuple(f"{rel}/" for rel in touched if not (self.root / rel).exists())
        gone += [k for k in known if below and k.startswith(below)]  # a folder (link) that went away
        self._apply(present, gone, known, stats, progress)
        self._remember_links(stats.skipped, replacing=touched)
        stats.chunks = self.store.chunk_count()
        stats.seconds = time.perf_counter() - started
        return stats

    def update_text(self, path: Path | str, text: str) -> UpdateStats:
        """Index an editor's unsaved text in place of a file's disk copy, so retrieval answers from
        what the user sees. Only files the index would hold from disk qualify (never a secret-bearing,
        ignored, binary or oversized one), and never into a shared store (PostgreSQL): a team's index
        holds what was saved, not one user's edits in progress. The row records no disk stamp, so the
        next scan or watcher event for the file reads the disk again."""
        started = time.perf_counter()
        stats = UpdateStats()
        rel = self._relative(path)
        if rel is None or not (self.root / rel).is_file():
            return stats
        if self.cfg.index.store != "embedded":
            stats.skipped.append(discovery.Skipped(rel, "unsaved text is not written into a shared index"))
            return stats
        data = text.encode("utf-8", "replace")
        reason = self.rules.skip_reason(rel)
        if reason is None and discovery.git_ignored(self.rules, [rel]):
            reason = "ignored"
        if reason is None and (len(data) > self.cfg.index.max_file_bytes or "\0" in text):
            reason = "the unsaved text is binary or over index.max_file_bytes"
        if reason is not None:
            stats.skipped.append(discovery.Skipped(rel, reason))
            return stats
        digest = hashlib.sha256(data).hexdigest()
        record = self.store.files().get(rel)
        known_hash = record.hash if record else None
        prepared = parse_text(rel, text, digest, None, UNSAVED, known_hash, self.cfg.index.lines_per_chunk)
        self._write_batch([self._counted(prepared, record, stats)], stats)
        stats.chunks = self.store.chunk_count()
        stats.seconds = time.perf_counter() - started
        return stats

    def reload(self) -> None:
        """Pick up vectors another process (a background ``ragls index``) wrote to the store."""
        with self._write:
            if self._vectors_dirty:
                return  # this process has unsaved vectors of its own: they are the current ones
            self._load_vectors()

    def _git_path(self, rel: str) -> bool:
        """A path that exists and that git can name: no symlink among its folders."""
        path = self.root / rel
        return path.exists() and discovery.real(path.parent) == path.parent

    def _remember_links(self, skipped: list[discovery.Skipped], replacing: list[str] | None = None) -> None:
        """Keep the links the last scan did not follow, for ``status``: a whole scan replaces the
        list, a watcher batch only the entries at or below the paths it touched."""
        links = {s.path: s.reason for s in skipped if s.reason in discovery.LINKS_NOT_FOLLOWED}
        if replacing is not None:
            below = tuple(f"{rel}/" for rel in replacing)
            kept = json.loads(self.store.meta(LINKS_KEY) or "{}")
            links |= {k: v for k, v in kept.items() if k not in replacing and not k.startswith(below)}
        with self.store.transaction() as db:
            self.store.set_meta(db, LINKS_KEY, json.dumps(links, sort_keys=True))

    def _relative(self, path: Path | str) -> str | None:
        path = Path(path)
        full = path if path.is_absolute() else self.root / path
        try:
            rel = full.absolute().relative_to(self.root)
        except ValueError:
            return None
        return rel.as_posix() if rel.parts else None

    def _apply(
        self, todo: list[str], gone: list[str], known: dict, stats: UpdateStats, progress: Progress | None
    ) -> None:
        """Parse ``todo`` (outside the write lock) and write it a batch at a time; remove ``gone``."""
        lines = self.cfg.index.lines_per_chunk
        jobs = [(self.root, rel, known[rel].hash if rel in known else None, lines) for rel in todo]
        batch: list[Prepared] = []
        for done, result in enumerate(prepare_all(jobs), 1):
            if isinstance(result, str):
                stats.problems.append(result)
            elif result is not None:
                batch.append(self._counted(result, known.get(result.rel), stats))
            if len(batch) == WRITE_BATCH or done == len(jobs):
                self._write_batch(batch, stats)
                batch = []
            if progress and (done % WRITE_BATCH == 0 or done == len(jobs)):
                progress(done, len(jobs), "parsing")
        vanished = [rel for rel in gone if rel in known]
        if vanished:
            with self._write:
                with self.store.transaction() as db:
                    removed = [cid for rel in vanished for cid in self.store.delete_file(db, rel)]
                for tier in self.tiers.values():
                    tier.vectors.remove(removed)
                self._vectors_dirty = True
            stats.removed += len(vanished)

    @staticmethod
    def _counted(prepared: Prepared, record: FileRecord | None, stats: UpdateStats) -> Prepared:
        """Count a prepared file as added or changed, and keep its caveat for the report."""
        if prepared.parsed is not None:
            if prepared.note:
                stats.problems.append(f"{prepared.rel}: {prepared.note}")
            if record:
                stats.changed += 1
            else:
                stats.added += 1
        return prepared

    def _write_batch(self, batch: list[Prepared], stats: UpdateStats) -> None:
        if not batch:
            return
        with self._write:
            removed_all: list[int] = []
            added_all: list[int] = []
            with self.store.transaction() as db:
                for p in batch:
                    if p.parsed is None:
                        self.store.touch_file(db, p.rel, *p.stamp)
                        stats.unchanged += 1
                        continue
                    removed, added = self.store.replace_file(
                        db, p.rel, *p.stamp, p.digest, p.parsed.language, p.note,
                        p.parsed.chunks, p.parsed.symbols,
                    )
                    removed_all += removed
                    added_all += added
            if removed_all or added_all:
                for tier in self.tiers.values():
                    tier.vectors.remove(removed_all)
                    # unchanged code keeps its vectors
                    tier.vectors.add(self.store.vectors_for(tier.name, added_all))
                self._vectors_dirty = True

    # -- dense layer -----------------------------------------------------------------------

    def enabled_tiers(self) -> list[DenseTier]:
        """The dense tiers this index builds, in the order they are built."""
        if not self.cfg.index.embeddings:
            return []
        return (
            [self.tiers["static"], self.tiers["contextual"]]
            if self.contextual_enabled()
            else [self.tiers["static"]]
        )

    def contextual_enabled(self) -> bool:
        """``index.contextual``: 'auto' builds the contextual tier only where it is cheap (a GPU)."""
        setting = self.cfg.index.contextual
        if setting == "auto":
            encoder = self.tiers["contextual"].encoder
            on_gpu = encoder.on_gpu()
            self._take_notices(encoder)  # e.g. CUDA asked for but absent
            return on_gpu
        return setting == "on"

    def pending_embeddings(self) -> int:
        """Texts that still lack a vector of some enabled tier."""
        return max((self.store.count_pending(t.name) for t in self.enabled_tiers()), default=0)

    def prioritize(self, paths: Iterable[Path | str]) -> None:
        """Embed chunks of these files first (e.g. the files open in the editor)."""
        rels = {rel for rel in map(self._relative, paths) if rel}
        with self._write:
            self._hot = (self._hot[0] + 1, rels)

    def embed_pending(
        self,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        tiers: Iterable[str] | None = None,
    ) -> int:
        """Give every chunk a vector of each enabled tier (or of ``tiers``), static first; returns
        how many distinct texts got a new vector. ``stop`` ends it after the group in flight."""
        done: set[str] = set()
        for tier in self.enabled_tiers():
            if tiers is not None and tier.name not in tiers:
                continue
            if stop and stop.is_set():
                break
            self.check_model(tier)
            done |= tier.embed(self.store, self._write, lambda: self._hot, progress, stop)
            with self._write:
                self._vectors_dirty = True
            self.save()
        return len(done)

    def check_model(self, tier: DenseTier) -> None:
        """Drop a tier's vectors if another model made them (loads the model on first call)."""
        try:
            tier.check_model(self.store, self._write, self.notices)
        finally:
            self._take_notices(tier.encoder)

    def _take_notices(self, encoder) -> None:
        self.notices += encoder.notices
        encoder.notices.clear()

    def save(self) -> None:
        """Persist the faiss copy under the store's current generation."""
        with self._write:
            if self._vectors_dirty:
                for tier in self.tiers.values():
                    tier.vectors.save(self.store.vectors_generation())
                self._vectors_dirty = False

    # -- reading ---------------------------------------------------------------------------

    def search(
        self, query: str, top_k: int | None = None, mode: str = "hybrid", tiers: Iterable[str] | None = None,
        shared: bool = True,
    ) -> list:
        """Ranked results; ``tiers`` limits the dense tiers used (default: every enabled one).
        With ``shared``, the ``[[index.shared]]`` sources are searched meanwhile and what they
        return in time is fused in (their results name their repository)."""
        from ragls.indexer.search import fuse, search

        top_k = top_k or self.cfg.search.top_k
        collect = self.shared.start(query, top_k, mode) if shared and self.shared and query.strip() else None
        local = search(self, query, top_k, mode, tiers)
        others = [found for found in collect() if found] if collect else []
        return fuse([local, *others], top_k) if others else local

    def dense_ranking(self, tier: DenseTier, query: str, k: int) -> list[int]:
        """Chunk ids by similarity to ``query`` in one tier's own vector space."""
        if tier.vectors.size == 0:
            return []  # nothing to compare with: do not load (or distil) a model for it
        try:
            if not tier.model_matches(self.store):
                return []  # another model's vectors: never compared, and a search writes nothing
        finally:
            self._take_notices(tier.encoder)
        return tier.ranking(query, k)

    def status(self) -> dict:
        counts = self.store.counts()
        enabled = [t.name for t in self.enabled_tiers()]
        return {
            "root": str(self.root),
            "index_dir": str(self.folder),
            "store": self.store.location(),
            **counts,
            # chunks with a vector of every enabled tier
            "embedded": min((self.store.embedded(name) for name in enabled), default=0),
            "pending_embeddings": self.pending_embeddings(),
            "tiers": {
                name: {"enabled": name in enabled, **tier.status(self.store)}
                for name, tier in self.tiers.items()
            },
            "languages": self.store.languages(),
            "symlinks_not_followed": dict(Counter(json.loads(self.store.meta(LINKS_KEY) or "{}").values())),
            "dependencies": Selection.from_json(self.store.meta(DEPS_KEY)).summary(),
        }

    def is_empty(self) -> bool:
        return self.store.counts()["files"] == 0

    def close(self) -> None:
        if self.__dict__.get("shared"):  # (opened)
            self.shared.close()
        self.save()
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
