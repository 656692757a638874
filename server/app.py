"""``ragls serve``: the language server. Each handler here adapts one LSP or ``ragls/`` method to
the session, the completer, the chats or the index; the work itself lives in those modules and in
the indexer and recipes the CLI uses too. The ``ragls/`` methods are in ``methods.py``."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from ragls import __version__
from ragls.indexer.watcher import SKIPPED_DIRS
from ragls.recipes import registry
from ragls.server.arena import Arena
from ragls.server.chat import Chats
from ragls.server.completion import Completer
from ragls.server.documents import Documents, uri_to_path
from ragls.server.edits import Edits
from ragls.server.methods import register_methods
from ragls.server.protocol import RaglsProtocol
from ragls.server.session import Session
from ragls.server.transport import FrameWriter, read_frames
from ragls.server.workspaces import Workspace

log = logging.getLogger(__name__)

RECIPE_ACTION_KIND = "refactor.ragls"
UNSAVED_DELAY = 0.75  # seconds of no typing before a buffer's unsaved text is indexed
PARENT_POLL = 3.0  # seconds between checks that the editor process is still alive


class RaglsServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("ragls", __version__, protocol_cls=RaglsProtocol)
        self.documents = Documents()
        self.session = Session(self)
        self.completer = Completer(self)
        self.chats = Chats(self)
        self.arena = Arena(self)
        self.edits = Edits(self)
        self.exit_code = 1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._unsaved_timers: dict[str, asyncio.TimerHandle] = {}
        self._paths: dict[str, Path | None] = {}  # URI -> resolved path (didChange asks on every keystroke)
        self.pending_folders: list[Path] = []  # from initialize, opened once the client is initialized

    # -- running ----------------------------------------------------------------------------

    def run(self, reader: BinaryIO, writer: BinaryIO) -> int:
        """Serve one client over a pair of byte streams until ``exit`` or the end of the input."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop, self._stopped = loop, asyncio.Event()
        self.protocol.set_writer(FrameWriter(writer, on_lost=lambda: self.stop(1)))

        def pump() -> None:
            for body in read_frames(reader):
                loop.call_soon_threadsafe(self.protocol.handle_frame, body)
            self.stop(0 if self.protocol._shutdown else 1)

        threading.Thread(target=pump, name="ragls-reader", daemon=True).start()
        try:
            loop.run_until_complete(self._stopped.wait())
        finally:
            self.chats.cancel_all()
            self.completer.read_ahead.stop()
            self.session.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
        return self.exit_code

    def stop(self, code: int) -> None:
        """End the session (from any thread)."""
        loop, stopped = self._loop, self._stopped
        if loop is None or stopped is None or loop.is_closed():
            return
        self.exit_code = code

        def stop_now() -> None:
            stopped.set()

        loop.call_soon_threadsafe(stop_now)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls' hook for failures it caught: logged, never shown as a popup."""
        log.error("%s: %s", getattr(source, "__name__", source), error)

    def adjust_capabilities(self, caps: types.ServerCapabilities) -> None:
        """Offer the ``textDocument/completion`` fallback only to clients without inline completion."""
        if self.session.client_capability("text_document.inline_completion") is not None:
            caps.completion_provider = None
        caps.experimental = {"ragls": {"version": __version__, "chatDelta": True}}

    def watch_parent(self, pid: int | None) -> None:
        """Exit when the editor that started us is gone (the LSP processId rule)."""
        if not pid or pid == os.getpid():
            return

        def poll() -> None:
            while self._stopped is not None and not self._stopped.is_set():
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    log.warning("the editor (process %d) is gone; exiting", pid)
                    self.stop(1)
                    return
                except PermissionError:
                    pass  # it exists, under another user
                threading.Event().wait(PARENT_POLL)

        threading.Thread(target=poll, name="ragls-parent", daemon=True).start()

    # -- documents and workspaces -----------------------------------------------------------

    def open_folders(self, params: types.InitializeParams) -> list[Path]:
        uris = [f.uri for f in params.workspace_folders or []]
        if not uris and params.root_uri:
            uris = [params.root_uri]
        paths = [uri_to_path(u) for u in uris]
        if not uris and params.root_path:
            paths = [Path(params.root_path)]
        return [p for p in paths if p is not None]

    def workspace_of(self, uri: str) -> tuple[Path | None, Workspace | None]:
        """The local path a URI names (symlinks resolved) and the workspace folder holding it."""
        if uri not in self._paths:
            path = uri_to_path(uri)
            if len(self._paths) > 10_000:
                self._paths.clear()
            self._paths[uri] = path.resolve() if path is not None else None
        path = self._paths[uri]
        return path, self.session.workspace_for(path)

    def adopt_folder(self, path: Path) -> None:
        """A file opened with no workspace folder at all: its git repository becomes one."""
        try:
            top = subprocess.run(
                ["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return
        if top:
            self.session.open_workspace(Path(top))

    def schedule_unsaved(self, uri: str) -> None:
        """Index the buffer's text once typing pauses (retrieval then sees what the user sees)."""
        assert self._loop is not None
        timer = self._unsaved_timers.pop(uri, None)
        if timer is not None:
            timer.cancel()

        def fire() -> None:
            self._unsaved_timers.pop(uri, None)
            doc = self.documents.get(uri)
            path, ws = self.workspace_of(uri)
            if doc is not None and ws is not None and path is not None:
                ws.unsaved(path, doc.text)

        self._unsaved_timers[uri] = self._loop.call_later(UNSAVED_DELAY, fire)


def create_server() -> RaglsServer:
    server = RaglsServer()
    session = server.session

    # -- lifecycle --------------------------------------------------------------------------

    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        session.set_settings(init_options=params.initialization_options or {})
        server.pending_folders = server.open_folders(params)
        server.watch_parent(params.process_id)

    @server.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        if session.client_can("workspace.configuration"):
            await pull_configuration()
        for folder in server.pending_folders:
            session.open_workspace(folder)
        if session.client_can("workspace.did_change_watched_files.dynamic_registration") and any(
            ws.cfg.server.watch in ("auto", "client") for ws in session.workspaces.values()
        ):
            watchers = [types.FileSystemWatcher(glob_pattern="**/*")]
            server.client_register_capability(
                types.RegistrationParams(
                    registrations=[
                        types.Registration(
                            id="ragls-watch",
                            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            register_options=types.DidChangeWatchedFilesRegistrationOptions(
                                watchers=watchers
                            ),
                        )
                    ]
                )
            )

    @server.feature(types.SHUTDOWN)
    def shutdown(params: None) -> None:
        server.chats.cancel_all()
        for ws in session.workspaces.values():
            ws.cancel_build()
        session.end_progress("ragls is shutting down; the index keeps what was done")

    async def pull_configuration() -> None:
        try:
            answer = await server.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="ragls")])
            )
        except Exception as exc:  # a client that advertises the request but fails it
            log.warning("workspace/configuration failed: %s", exc)
            return
        if answer and isinstance(answer[0], dict):
            session.set_settings(client_settings=answer[0])

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        if isinstance(params.settings, dict) and params.settings:
            session.set_settings(client_settings=params.settings)
        elif session.client_can("workspace.configuration"):
            await pull_configuration()

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_folders(params: types.DidChangeWorkspaceFoldersParams) -> None:
        for folder in params.event.removed:
            path = uri_to_path(folder.uri)
            if path is not None:
                session.close_workspace(path)
        for folder in params.event.added:
            path = uri_to_path(folder.uri)
            if path is not None:
                session.open_workspace(path)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(params: types.DidChangeWatchedFilesParams) -> None:
        by_workspace: dict[Path, list[Path]] = {}
        for change in params.changes:
            path, ws = server.workspace_of(change.uri)
            if ws is None or path is None or any(p in SKIPPED_DIRS for p in path.relative_to(ws.root).parts):
                continue
            by_workspace.setdefault(ws.root, []).append(path)
        for root, paths in by_workspace.items():
            session.workspaces[root].changed(paths)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def cancel_progress(params: types.WorkDoneProgressCancelParams) -> None:
        session.cancel_progress(params.token)

    # -- text sync --------------------------------------------------------------------------

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        path, ws = server.workspace_of(params.text_document.uri)
        if path is None:
            session.log(f"{params.text_document.uri}: not a local file; ragls skips it")
        elif ws is None and not session.workspaces:
            server.adopt_folder(path)
        elif ws is not None:
            ws.index.prioritize(session.open_paths())  # its vectors are made first from now on
            session.providers.preload("completion", ws.cfg)  # ready before the first keystroke

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        path, ws = server.workspace_of(params.text_document.uri)
        if ws is not None and path is not None:
            session.touched(path)
            server.schedule_unsaved(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        path, ws = server.workspace_of(params.text_document.uri)
        if ws is not None and path is not None:
            ws.changed([path])

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        path, ws = server.workspace_of(params.text_document.uri)
        timer = server._unsaved_timers.pop(params.text_document.uri, None)
        if timer is not None:
            timer.cancel()
        server.completer.forget(params.text_document.uri)
        if ws is not None and path is not None:
            ws.unsaved(path, None)  # the disk copy is what counts again

    # -- completion -------------------------------------------------------------------------

    def document(uri: str):
        doc = server.documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"{uri} is not open (send textDocument/didOpen first)")
        return doc

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(params: types.InlineCompletionParams) -> types.InlineCompletionList:
        doc = document(params.text_document.uri)
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        ws = server.session.workspace_for(doc.path)
        if not automatic and ws is not None and ws.cfg.arena.completions:
            return await server.arena.inline(doc, params.position)
        result = await server.completer.complete(doc, params.position, automatic)
        return server.completer.inline_items(result, server.completer.snapped(doc, params.position))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[]))
    async def completion(params: types.CompletionParams) -> types.CompletionList:
        doc = document(params.text_document.uri)
        invoked = params.context is None or params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        result = await server.completer.complete(doc, params.position, automatic=not invoked)
        return server.completer.completion_items(result, doc, params.position)

    # -- recipes ----------------------------------------------------------------------------

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.Refactor, RECIPE_ACTION_KIND]),
    )
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        path, ws = server.workspace_of(params.text_document.uri)
        if (
            ws is None
            or path is None
            or ws.index.rules.secret.match_file(path.relative_to(ws.root).as_posix())
        ):
            return []
        only = params.context.only
        actions = []
        for recipe in registry.load(ws.root).recipes.values():
            if recipe.runner != "prompt" or "{question}" in recipe.template:
                continue  # completion is inline; questions go through ragls/chat
            kind = f"{RECIPE_ACTION_KIND}.{recipe.name}"
            if only and not any(kind == k or kind.startswith(f"{k}.") for k in only):
                continue
            argument = {
                "recipe": recipe.name,
                "uri": params.text_document.uri,
                "range": server.protocol._converter.unstructure(params.range),
            }
            actions.append(
                types.CodeAction(
                    title=f"ragls: {recipe.title}",
                    kind=kind,
                    command=types.Command(
                        title=recipe.title, command="ragls.runRecipe", arguments=[argument]
                    ),
                )
            )
        return actions

    register_methods(server)
    return server


def serve_stdio() -> int:
    """Serve the editor on stdin/stdout. The messages go out on a private copy of stdout, and
    stdout itself is pointed at stderr (the log): whatever a library prints, or wherever it points
    file descriptor 1 for a while, can neither corrupt nor swallow a message to the editor."""
    import sys

    sys.stdout.flush()
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with channel:
        return create_server().run(sys.stdin.buffer, channel)


def serve_tcp(host: str, port: int) -> int:
    """Listen on HOST:PORT and serve the first client that connects (for debugging)."""
    with socket.create_server((host, port)) as listener:
        log.warning("ragls serve: listening on %s:%d", host, port)
        conn, peer = listener.accept()
    log.warning("ragls serve: client %s connected", peer)
    with conn, conn.makefile("rb") as reader, conn.makefile("wb") as writer:
        return create_server().run(reader, writer)
