"""Keeps an index current while ragls runs, with watchdog.

Events are collected, not acted on: once the tree has been quiet for ``debounce`` seconds
(or ``max_delay`` has passed in a never-ending stream), the whole set of touched paths is
applied in one batch. A branch switch touching thousands of files is therefore one update,
and a very large burst falls back to a full re-scan, which the catalogue diff makes cheap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ragls.indexer.engine import Index, UpdateStats

# Above this many touched paths, a full re-scan is cheaper than checking each path.
RESCAN_THRESHOLD = 2000
# Events that can change what a file holds; opened / closed-without-write are reads (ours too).
CONTENT_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})
SKIPPED_DIRS = (".git", ".hg", ".svn", ".ragls", "node_modules", "__pycache__")


class Watcher(FileSystemEventHandler):
    def __init__(
        self,
        index: Index,
        debounce: float | None = None,
        max_delay: float = 5.0,
        embed: bool = True,
        on_update: Callable[[UpdateStats], None] | None = None,
        apply: Callable[[set[str]], None] | None = None,
    ) -> None:
        """``apply``, when given, receives each batch of touched paths instead of the index (the
        language server routes them through its single index writer)."""
        self.index = index
        self.apply = apply
        self.debounce = index.cfg.index.watch_debounce_seconds if debounce is None else debounce
        self.max_delay = max_delay
        self.embed = embed
        self.on_update = on_update
        self.batches = 0  # updates applied so far (tests and status read it)
        self._pending: set[str] = set()
        self._first_event = 0.0
        self._last_event = 0.0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._observer = Observer()
        self._worker = threading.Thread(target=self._run, name="ragls-watcher", daemon=True)

    # watchdog calls this from its own thread for every event
    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CONTENT_EVENTS or (event.is_directory and event.event_type != "moved"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        with self._cond:
            for raw in paths:
                if raw and not self._skipped(raw):
                    now = time.monotonic()
                    if not self._pending:
                        self._first_event = now
                    self._last_event = now
                    self._pending.add(str(raw))
            self._cond.notify()

    def _skipped(self, raw: str | bytes) -> bool:
        path = Path(raw if isinstance(raw, str) else raw.decode(errors="replace"))
        try:
            rel = path.relative_to(self.index.root)
        except ValueError:
            return True
        return (
            any(p in SKIPPED_DIRS for p in rel.parts)
            or path.is_relative_to(self.index.folder)
            or self.index.rules.is_scratch(rel.as_posix())  # an autosave every few seconds is no update
        )

    def start(self) -> Watcher:
        self._observer.schedule(self, str(self.index.root), recursive=True)
        self._observer.start()
        self._worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify()
        self._observer.stop()
        self._observer.join(timeout=5)
        self._worker.join(timeout=30)

    def _take_batch(self) -> set[str] | None:
        """Wait for a quiet tree (or the max delay), then hand over everything collected."""
        with self._cond:
            while not self._stop.is_set():
                if self._pending:
                    now = time.monotonic()
                    quiet = now - self._last_event >= self.debounce
                    overdue = now - self._first_event >= self.max_delay
                    if quiet or overdue:
                        batch, self._pending = self._pending, set()
                        return batch
                    self._cond.wait(timeout=self.debounce)
                else:
                    self._cond.wait()
        return None

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            try:
                if self.apply is not None:
                    self.apply(batch)
                    self.batches += 1
                    continue
                if len(batch) > RESCAN_THRESHOLD:
                    stats = self.index.update()
                else:
                    stats = self.index.update_paths(batch)
                self.batches += 1
                if self.embed:
                    self.index.embed_pending(stop=self._stop)
                if self.on_update:
                    self.on_update(stats)
            except Exception as exc:  # never let one bad batch kill the watcher
                self.index.notices.append(f"watcher: update failed: {exc!r}")
