"""What one editor session holds: its settings, its workspace folders and their indexes, the
loaded models, and the channels back to the editor (progress, messages, logs).

Settings are layered like the CLI's configuration with the editor's on top: defaults < user file
< workspace file < ``initializationOptions`` < ``workspace/didChangeConfiguration`` (or what
``workspace/configuration`` returns for the section ``ragls``). Both editor layers use the TOML
file's shape (``{"privacy": {"mode": "local"}, "models": {"chat": {...}}}``), and a bad value is
shown to the user with the key and the previous settings kept.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ragls import config
from ragls.config import Config, ConfigError
from ragls.indexer.watcher import Watcher
from ragls.llm import factory
from ragls.llm.base import Provider
from ragls.server.workspaces import BuildEvents, Progress, Workspace

if TYPE_CHECKING:
    from ragls.server.app import RaglsServer

log = logging.getLogger(__name__)

RECENT_FILES = 8
SECTION = "ragls"


class Providers:
    """Model providers by role and settings, loaded on first use and kept loaded. A provider whose
    settings were replaced is closed once no request is using it any more."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str, str], Provider] = {}
        self._loading: dict[tuple[str, str, str], Future[Provider]] = {}
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="ragls-load")
        self._users: dict[tuple[str, str, str], int] = {}
        self._retired: set[tuple[str, str, str]] = set()
        self._watched: set[Future[Provider]] = set()

    @contextmanager
    def use(self, role: str, cfg: Config) -> Iterator[Provider]:
        """The provider for ``role``, loaded now if need be; raises the factory's error (missing
        model, privacy refusal)."""
        with self.ready(role, cfg, wait=True) as provider:
            assert provider is not None
            yield provider

    def preload(self, role: str, cfg: Config) -> None:
        """Start loading the provider for ``role`` in the background (errors come with its use)."""
        with self._lock:
            key = _key(role, cfg)
            if key not in self._loaded and key not in self._loading:
                self._loading[key] = self._loader.submit(factory.create, role, cfg)

    def when_loading(
        self, role: str, cfg: Config, began: Callable[[], None], ended: Callable[[BaseException | None], None]
    ) -> None:
        """If the provider for ``role`` is loading now and nobody watches it yet, call ``began`` now
        and ``ended`` (from the loader thread, with the load's error or None) once it is loaded: a
        client told "loading" can then be told to ask again. Once per load."""
        with self._lock:
            loading = self._loading.get(_key(role, cfg))
            if loading is None or loading in self._watched:
                return
            self._watched.add(loading)
        began()

        def done(future: Future[Provider]) -> None:
            with self._lock:
                self._watched.discard(future)
            ended(future.exception())

        loading.add_done_callback(done)

    @contextmanager
    def ready(self, role: str, cfg: Config, wait: bool = False) -> Iterator[Provider | None]:
        """The provider for ``role`` if it is loaded; else None, with its loading started in the
        background (``wait``: wait for it). A failed load raises its error, once."""
        self.preload(role, cfg)
        key = _key(role, cfg)
        with self._lock:
            provider = self._loaded.get(key)
            loading = self._loading.get(key) if provider is None else None
        if loading is not None:
            if not wait and not loading.done():
                yield None
                return
            try:
                provider = loading.result()
            finally:
                with self._lock:
                    if self._loading.get(key) is loading:
                        del self._loading[key]
                        if loading.exception() is None:
                            self._loaded[key] = loading.result()
            provider = self._loaded.get(key, provider)
        assert provider is not None
        with self._lock:
            self._users[key] = self._users.get(key, 0) + 1
        try:
            yield provider
        finally:
            with self._lock:
                self._users[key] -= 1
                self._close_idle()

    def retire(self, current: list[Config]) -> None:
        """Settings changed: providers no configuration uses any more go when idle."""
        keep = {_key(role, c) for c in current for role in factory.ROLES}
        with self._lock:
            self._retired = set(self._loaded) - keep
            self._close_idle()

    def _close_idle(self) -> None:
        for key in [k for k in self._retired if not self._users.get(k)]:
            self._retired.discard(key)
            provider = self._loaded.pop(key, None)
            if provider is not None:
                provider.close()

    def close(self) -> None:
        self._loader.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for provider in self._loaded.values():
                provider.close()
            self._loaded.clear()


def _key(role: str, cfg: Config) -> tuple[str, str, str]:
    """What makes two providers the same: the role's model settings and the privacy settings."""
    return role, repr(getattr(cfg.models, role)), repr(cfg.privacy)


class IndexProgress:
    """One indexing run shown as an LSP work-done progress (``window/workDoneProgress/create``,
    then ``$/progress`` begin/report/end). Reports before the client accepted the token are held
    back; only the latest one is sent."""

    def __init__(self, server: RaglsServer, ws: Workspace) -> None:
        self.server = server
        self.token = f"ragls-index-{uuid.uuid4().hex[:12]}"
        self.title = f"ragls: indexing {ws.root.name or ws.root}"
        self._lock = threading.Lock()
        self._created = False
        self._last: Progress | None = None
        self._end: str | None = None
        server.protocol.send_request(
            types.WINDOW_WORK_DONE_PROGRESS_CREATE,
            types.WorkDoneProgressCreateParams(token=self.token),
            callback=lambda _: self._begin(),
        )

    def _notify(self, value: Any) -> None:
        self.server.protocol.notify(types.PROGRESS, types.ProgressParams(token=self.token, value=value))

    def _begin(self) -> None:
        with self._lock:
            self._created = True
            self._notify(types.WorkDoneProgressBegin(title=self.title, cancellable=True, percentage=0))
            if self._last is not None:
                self._report(self._last)
            if self._end is not None:
                self._notify(types.WorkDoneProgressEnd(message=self._end))

    def report(self, progress: Progress) -> None:
        with self._lock:
            self._last = progress
            if self._created and self._end is None:
                self._report(progress)

    def _report(self, progress: Progress) -> None:
        self._notify(types.WorkDoneProgressReport(message=progress.message, percentage=progress.percentage))

    def end(self, message: str) -> None:
        """End the progress once; the first caller's message wins (the build finishing and the
        server shutting down may race)."""
        with self._lock:
            if self._end is not None:
                return
            self._end = message
            if self._created:
                self._notify(types.WorkDoneProgressEnd(message=message))


class Session:
    def __init__(self, server: RaglsServer) -> None:
        self.server = server
        self.init_options: dict = {}
        self.client_settings: dict = {}
        self.settings: Config = Config()  # the editor-wide settings (no workspace file)
        self.workspaces: dict[Path, Workspace] = {}
        self.providers = Providers()
        self.index_writer = ThreadPoolExecutor(1, thread_name_prefix="ragls-index")
        self.models = ThreadPoolExecutor(4, thread_name_prefix="ragls-model")
        self.queries = ThreadPoolExecutor(2, thread_name_prefix="ragls-query")
        self.recent: OrderedDict[str, None] = OrderedDict()  # paths edited lately, newest last
        self._progress: dict[Path, IndexProgress] = {}
        self._shown: set[str] = set()
        self._lock = threading.Lock()

    # -- settings ---------------------------------------------------------------------------

    def overrides(self) -> list[tuple[str, dict]]:
        return [
            ("initializationOptions", self.init_options),
            ("editor settings (ragls)", self.client_settings),
        ]

    def config(self, root: Path | None) -> Config:
        return config.load(root, self.overrides())

    def set_settings(self, init_options: Any = None, client_settings: Any = None) -> bool:
        """Take new editor settings if they are valid (else say why and keep the old ones);
        True when they changed anything."""
        old = (self.init_options, self.client_settings)
        if init_options is not None:
            self.init_options = _section(init_options)
        if client_settings is not None:
            self.client_settings = _section(client_settings)
        try:
            self.settings = self.config(None)
            configs = {root: self.config(root) for root in self.workspaces}
        except ConfigError as exc:
            self.init_options, self.client_settings = old
            self.show(types.MessageType.Error, f"ragls: settings not applied: {exc}")
            return False
        for root, cfg in configs.items():
            ws = self.workspaces[root]
            if (cfg.index, cfg.models.embedding) != (ws.cfg.index, ws.cfg.models.embedding):
                self.log(f"index settings changed for {root}: re-indexing")
                self.close_workspace(root)
                self.open_workspace(root)
            else:
                ws.cfg = cfg
        self.providers.retire([self.settings, *(ws.cfg for ws in self.workspaces.values())])
        return (self.init_options, self.client_settings) != old

    # -- workspaces -------------------------------------------------------------------------

    def open_workspace(self, root: Path) -> Workspace | None:
        root = root.resolve()
        if root in self.workspaces:
            return self.workspaces[root]
        if not root.is_dir():
            self.log(f"workspace folder {root} does not exist; not indexed", types.MessageType.Warning)
            return None
        try:
            ws = Workspace(root, self.config(root), self._child_settings(), self.index_writer, self._events())
        except (ConfigError, OSError) as exc:
            self.show(types.MessageType.Error, f"ragls: cannot open the index of {root}: {exc}")
            return None
        self.workspaces[root] = ws
        mode = ws.cfg.server.watch
        client_watches = self.client_can("workspace.did_change_watched_files.dynamic_registration")
        if mode == "watchdog" or (mode == "auto" and not client_watches):
            ws.watcher = Watcher(ws.index, apply=lambda batch: ws.changed([Path(p) for p in batch])).start()
        if ws.cfg.server.index_on_open:
            ws.build(self.open_paths())
        return ws

    def open_paths(self) -> list[Path]:
        """The local files open in the editor: their chunks are embedded first."""
        return [doc.path.resolve() for doc in self.server.documents if doc.path is not None]

    def close_workspace(self, root: Path) -> None:
        ws = self.workspaces.pop(root.resolve(), None)
        if ws is not None:
            ws.close()

    def workspace_for(self, path: Path | None) -> Workspace | None:
        """The innermost workspace folder holding ``path``."""
        if path is None:
            return None
        holders = [ws for ws in self.workspaces.values() if ws.contains(path)]
        return max(holders, key=lambda ws: len(ws.root.parts), default=None)

    def _child_settings(self) -> dict:
        return config.merge_settings(*(layer for _, layer in self.overrides()))

    def _events(self) -> BuildEvents:
        return BuildEvents(self._build_started, self._build_progress, self._build_finished)

    def _build_started(self, ws: Workspace) -> None:
        self.log(f"indexing {ws.root} in the background")
        if self.client_can("window.work_done_progress"):
            self._progress[ws.root] = IndexProgress(self.server, ws)

    def _build_progress(self, ws: Workspace, progress: Progress) -> None:
        bar = self._progress.get(ws.root)
        if bar is not None:
            bar.report(progress)

    def _build_finished(self, ws: Workspace, error: str | None) -> None:
        # The bar stays listed until it has ended, so a shutdown meanwhile still ends it.
        bar = self._progress.get(ws.root)
        try:
            status = ws.index.status()
            summary = (
                f"indexed {status['files']} files, {status['chunks']} chunks, {status['embedded']} embedded"
            )
        except Exception as exc:  # the editor's progress must end whatever happens here
            log.exception("index status of %s", ws.root)
            summary = f"indexing finished; its summary failed: {exc}"
        if ws.cancelled:
            summary = f"indexing cancelled; the index keeps what was done ({summary})"
        if bar is not None:
            bar.end(error or summary)
            if self._progress.get(ws.root) is bar:
                del self._progress[ws.root]
        if error:
            self.show(types.MessageType.Error, f"ragls: {error}")
        else:
            self.log(f"{ws.root}: {summary}")

    def end_progress(self, message: str) -> None:
        """End every progress still shown (at shutdown: no notification may follow the answer)."""
        for bar in list(self._progress.values()):
            bar.end(message)

    def cancel_progress(self, token: Any) -> None:
        for root, bar in list(self._progress.items()):
            if bar.token == token and root in self.workspaces:
                self.workspaces[root].cancel_build()

    # -- editing history --------------------------------------------------------------------

    def touched(self, path: Path) -> None:
        with self._lock:
            self.recent[str(path)] = None
            self.recent.move_to_end(str(path))
            while len(self.recent) > RECENT_FILES * 4:
                self.recent.popitem(last=False)

    def recent_files(self, ws: Workspace, exclude: Path) -> list[str]:
        with self._lock:
            paths = [Path(p) for p in reversed(self.recent)]
        return [str(p) for p in paths if p != exclude and ws.contains(p)][:RECENT_FILES]

    # -- messages ---------------------------------------------------------------------------

    def client_capability(self, dotted: str) -> Any:
        """A client capability by its dotted lsprotocol path, or None when the client left it out."""
        value: Any = getattr(self.server.protocol, "client_capabilities", None)
        for part in dotted.split("."):
            value = getattr(value, part, None)
        return value

    def client_can(self, dotted: str) -> bool:
        return bool(self.client_capability(dotted))

    def client_declares(self, feature: str) -> bool:
        """Whether the client declared ``experimental.ragls.<feature>`` (ragls' own notifications)."""
        experimental = self.client_capability("experimental")
        return isinstance(experimental, dict) and bool((experimental.get("ragls") or {}).get(feature))

    def log(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, "%s", message)
        self.server.protocol.notify(
            types.WINDOW_LOG_MESSAGE, types.LogMessageParams(type=kind, message=message)
        )

    def show(self, kind: types.MessageType, message: str) -> None:
        """A message the user must act on, shown once per session (and logged every time)."""
        self.log(message, kind)
        with self._lock:
            if message in self._shown:
                return
            self._shown.add(message)
        self.server.protocol.notify(
            types.WINDOW_SHOW_MESSAGE, types.ShowMessageParams(type=kind, message=message)
        )

    def close(self) -> None:
        for root in list(self.workspaces):
            self.close_workspace(root)
        for pool in (self.models, self.queries, self.index_writer):
            pool.shutdown(wait=False, cancel_futures=True)
        self.providers.close()


def _section(settings: Any) -> Any:
    """Editors send either our settings or all settings with ours under ``ragls``. An empty list
    counts as an empty object (Lua clients encode an empty table as ``[]``); anything else that is
    not an object is refused by the config loader, with a message."""
    if isinstance(settings, dict) and SECTION in settings:
        settings = settings[SECTION]
    return {} if settings in ([], None) else settings
