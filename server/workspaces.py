"""One workspace folder's index as the server keeps it: built in the background, kept current.

The first build (and any full re-index) runs as a child process, ``python -m ragls index ROOT
--json``: the same command a user runs, at low priority, with its own interpreter, so parsing
and embedding thousands of files never competes with the server's threads for the GIL and an
inline completion is served at full speed meanwhile. The server's own :class:`Index` stays open
on the same SQLite database (WAL: readers are never blocked), so keyword search sees each batch
the child commits; its dense vectors are reloaded when the child ends.

While the child runs it is the only writer: file changes reported meanwhile are queued and
applied in-process when it ends. Afterwards small changes are applied in-process by one writer
thread (a change touching many files starts a child again). An editor's unsaved text is indexed
in place of the disk copy (``Index.update_text``) a moment after typing stops, so retrieval sees
what the user sees; closing the buffer without saving puts the disk copy back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from ragls.config import Config
from ragls.indexer.engine import Index

log = logging.getLogger(__name__)

# More changed paths than this at once (a branch switch) are re-indexed by a child process.
CHILD_THRESHOLD = 200


@dataclass
class Progress:
    """What the background build is doing: the phase and its counts (for $/progress and status)."""

    what: str = "starting"
    done: int = 0
    total: int = 0

    @property
    def percentage(self) -> int:
        """Parsing is the first fifth of the bar, embedding the rest (it is by far the slower)."""
        share = self.done / self.total if self.total else 0.0
        if self.what == "parsing":
            return int(20 * share)
        if self.what == "embedding":
            return 20 + int(80 * share)
        return 0

    @property
    def message(self) -> str:
        if self.what in ("parsing", "embedding") and self.total:
            unit = "files" if self.what == "parsing" else "chunks"
            return f"{self.what} {self.done}/{self.total} {unit}"
        return self.what


@dataclass
class BuildEvents:
    """Callbacks the server gives a workspace, called from the build's reader thread."""

    started: Callable[[Workspace], None]
    progress: Callable[[Workspace, Progress], None]
    finished: Callable[[Workspace, str | None], None]  # the error, or None
    notice: Callable[[Workspace, str], None]  # something the user must know (a shared index left out)


@dataclass
class Workspace:
    root: Path
    cfg: Config
    settings: dict  # the editor's settings, passed on to the child
    writer: Executor  # the one thread that writes to the indexes in this process
    events: BuildEvents
    index: Index = field(init=False)
    state: str = "idle"  # "idle" | "indexing" | "ready" | "error"
    progress: Progress = field(default_factory=Progress)
    error: str | None = None
    cancelled: bool = False  # the last build was stopped by the user
    watcher: object | None = None
    _child: subprocess.Popen | None = None
    _deps_child: subprocess.Popen | None = None  # `ragls deps`, started once the workspace is indexed
    _queued: set[str] = field(default_factory=set)
    _unsaved: dict[str, str] = field(default_factory=dict)  # path -> text of buffers not on disk yet
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _settling: threading.Lock = field(default_factory=threading.Lock)  # a build ending: see settled()

    def __post_init__(self) -> None:
        self.index = Index.open(self.root, self.cfg)
        for notice in self.index.notices:
            log.warning("%s: %s", self.root, notice)
        if self.index.shared:  # the user is told, from whichever thread finds it
            self.index.shared.tell_with(lambda message: self.events.notice(self, message))

    def settled(self) -> tuple[str, str | None]:
        """(state, error), waiting out a build that is ending. Its progress end goes out before the
        state turns ready (a client seeing ready saw the end), and a client asking for the status
        when the end arrives must not read "indexing" in between: nothing would tell it again."""
        with self._settling:
            return self.state, self.error

    @property
    def building(self) -> bool:
        return self._child is not None

    def contains(self, path: Path) -> bool:
        return path == self.root or path.is_relative_to(self.root)

    # -- the background build ---------------------------------------------------------------

    def build(self, first: Sequence[Path] = ()) -> bool:
        """Start a full (incremental) index run in a child process, embedding the files in ``first``
        (the open ones) before the rest; False if a run is already going."""
        with self._lock:
            if self._child is not None:
                return False
            self.index.save()  # the child starts from our current vectors instead of rebuilding them
            cmd = [
                sys.executable,
                "-m",
                "ragls",
                "index",
                str(self.root),
                "--json",
                "--settings",
                json.dumps(self.settings),
            ]
            cmd += [arg for path in first if self.contains(path) for arg in ("--first", str(path))]
            env = dict(os.environ)
            # One core for the child's embedding; the models serving the editor keep the rest.
            threads = str(max(1, (os.cpu_count() or 2) // 2))
            env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="false")
            self._child = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                preexec_fn=_lower_priority,
            )
            self.state, self.error, self.progress, self.cancelled = "indexing", None, Progress(), False
        self.events.started(self)
        threading.Thread(target=self._follow, args=(self._child,), name="ragls-build", daemon=True).start()
        return True

    def _follow(self, child: subprocess.Popen) -> None:
        """Read the child's JSON progress lines until it ends, then take over as the writer."""
        assert child.stdout is not None and child.stderr is not None
        stderr: list[bytes] = []
        drain = threading.Thread(target=lambda: stderr.extend(child.stderr), daemon=True)  # type: ignore[arg-type]
        drain.start()
        for line in child.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "progress":
                self.progress = Progress(event["what"], int(event["done"]), int(event["total"]))
                self.events.progress(self, self.progress)
        code = child.wait()
        drain.join(timeout=5)
        error = None
        if code != 0 and not self.cancelled:
            tail = b"".join(stderr).decode("utf-8", "replace").strip().splitlines()[-3:]
            error = f"indexing {self.root} failed (exit {code}): {' '.join(tail) or 'no message'}"
        try:
            self.writer.submit(self._after_build, error)
        except RuntimeError:  # the server is shutting down
            with self._lock:
                self._child = None

    def _after_build(self, error: str | None) -> None:
        """On the writer thread: load what the child wrote, then apply what waited for it."""
        with self._lock:
            self._child = None
            queued, self._queued = self._queued, set()
        try:
            self.index.reload()
            if queued:
                self.index.update_paths(queued)
            for path, text in list(self._unsaved.items()):
                self.index.update_text(path, text)
        except Exception as exc:  # the server goes on with the index as it is
            log.exception("after indexing %s", self.root)
            error = error or f"indexing {self.root}: {exc}"
        with self._settling:
            try:
                self.events.finished(self, error)  # first, so a client that sees "ready" saw the progress end
            finally:
                self.state, self.error = ("error", error) if error else ("ready", None)
        if error is None and self.cfg.deps.enabled:
            self._build_deps()

    @property
    def deps_building(self) -> bool:
        child = self._deps_child
        return child is not None and child.poll() is None

    def _build_deps(self) -> None:
        """Index the dependencies in a child process at low priority, after the workspace (it only
        writes the shared dependency store and its selection in this index's metadata)."""
        with self._lock:
            if self.deps_building:
                return
            cmd = [sys.executable, "-m", "ragls", "deps", str(self.root), "--json"]
            self._deps_child = subprocess.Popen(
                [*cmd, "--settings", json.dumps(self.settings)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_lower_priority,
            )

    def cancel_build(self) -> None:
        """Stop the child (the index stays consistent: every batch it wrote was committed whole)."""
        with self._lock:
            child = self._child
        if child is not None and child.poll() is None:
            self.cancelled = True
            child.terminate()

    # -- changes ----------------------------------------------------------------------------

    def changed(self, paths: list[Path], embed: bool = True) -> None:
        """Files created, changed or deleted on disk."""
        rels = [str(p) for p in paths]
        with self._lock:
            if self._child is not None:
                self._queued.update(rels)
                return
        for p in paths:
            self._unsaved.pop(str(p), None)
        if len(rels) > CHILD_THRESHOLD:
            self.build()
            return
        self.writer.submit(self._apply, rels, embed)

    def _apply(self, rels: list[str], embed: bool) -> None:
        try:
            self.index.update_paths(rels)
            if embed:
                self.index.embed_pending()
        except Exception:
            log.exception("updating %s", self.root)

    def unsaved(self, path: Path, text: str | None) -> None:
        """An editor buffer's text differs from the disk (``text``), or no longer does (None)."""
        key = str(path)
        if text is None:
            if self._unsaved.pop(key, None) is not None:
                self.changed([path])
            return
        self._unsaved[key] = text
        with self._lock:
            if self._child is not None:
                return  # applied when the build ends
        self.writer.submit(self._apply_unsaved, key)

    def _apply_unsaved(self, key: str) -> None:
        text = self._unsaved.get(key)
        if text is None:
            return
        try:
            self.index.update_text(key, text)
        except Exception:
            log.exception("indexing the unsaved text of %s", key)

    # -- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        self.cancel_build()
        deps = self._deps_child
        if deps is not None and deps.poll() is None:
            deps.terminate()  # a package is written whole or not at all
            with contextlib.suppress(subprocess.TimeoutExpired):
                deps.wait(timeout=10)
        with self._lock:
            child = self._child
        if child is not None:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if self.watcher is not None:
            self.watcher.stop()  # type: ignore[attr-defined]
        self.index.close()


def _lower_priority() -> None:
    """In the child: a lower CPU priority than the editor-facing server."""
    with contextlib.suppress(OSError):
        os.nice(10)
