"""The ``ragls/`` requests and the ``ragls.*`` commands (documented in ``server/PROTOCOL.md``):
chat, recipes, search, index status, re-index, the document state, the models on this machine
(and using one) and the privacy audit. Each
checks its parameters (a wrong one is ``InvalidParams`` with the reason) and hands the work to the
chats, the workspaces' indexes or the privacy log."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ragls.config import ConfigError
from ragls.indexer.deps.lookup import SCOPES, installed_file, scoped_search
from ragls.llm.base import LLMError
from ragls.llm.scan import scan, use
from ragls.privacy import Privacy
from ragls.recipes import registry
from ragls.server.chat import BadRequest, location
from ragls.server.documents import path_to_uri
from ragls.server.edits import citation_range

if TYPE_CHECKING:
    from ragls.indexer.search import SearchResult
    from ragls.server.app import RaglsServer
    from ragls.server.session import Session
    from ragls.server.workspaces import Workspace


def _params(handler):
    """Wrong parameters of our own methods are the client's error: InvalidParams, with the reason."""

    @functools.wraps(handler)
    async def wrapped(params: Any) -> Any:
        try:
            result = handler(params)
            return await result if asyncio.iscoroutine(result) else result
        except BadRequest as exc:
            raise JsonRpcInvalidParams(str(exc)) from None

    return wrapped


MAX_SHOWN = 4000  # characters of a text answer shown in window/showMessage


def _streams(session: Session) -> bool:
    """Whether the client shows ``ragls/chatDelta`` streams itself (it says so in its capabilities)."""
    return session.client_declares("chatDelta")


def _status(ws: Workspace) -> dict:
    status = ws.index.status()
    status["dependencies"]["building"] = ws.deps_building
    state, error = ws.settled()
    return {
        **status,
        "state": state,
        "error": error,
        "progress": {
            "what": ws.progress.what,
            "done": ws.progress.done,
            "total": ws.progress.total,
            "percentage": ws.progress.percentage,
        }
        if ws.building
        else None,
    }


def _installed_uri(ws: Workspace, hit: SearchResult) -> dict:
    """A dependency hit (``name==version:path``) opens the installed file, not one in the workspace."""
    if hit.chunk_id >= 0 or hit.repository:
        return {}
    file = installed_file(ws.index, hit.path)
    return {"uri": path_to_uri(file) if file else None, "dependency": hit.path.split(":", 1)[0]}


def register_methods(server: RaglsServer) -> None:
    session = server.session

    @server.command("ragls.runRecipe")
    async def run_recipe_command(*args: Any) -> dict:
        try:
            chat_id, future = server.chats.run_recipe(args[0] if args else None)
        except BadRequest as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        try:
            final = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            server.chats.cancel({"chatId": chat_id})
            raise
        if final.get("output") == "text" and final.get("answer") and not _streams(session):
            text = final["answer"][:MAX_SHOWN] + ("..." if len(final["answer"]) > MAX_SHOWN else "")
            server.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=text))
        return final

    @server.command("ragls.openCitation")
    async def open_citation(*args: Any) -> dict:
        """Show a cited span: its file when there is one here (a shared repository's local copy
        included), else the shared index's text of it, returned for the client to show."""
        target = args[0] if args and isinstance(args[0], dict) else {}
        uri, selection = target.get("uri"), citation_range(target.get("range"))
        repository, path = target.get("repository"), target.get("path")
        if not isinstance(uri, str) and isinstance(repository, str) and isinstance(path, str) and selection:
            copy = session.local_copy(repository, path)
            if copy is None:  # read on a query thread: a source may be slow
                line = selection.start.line + 1
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(session.queries, shared_text, repository, path, line)
            uri = path_to_uri(copy)
        if not isinstance(uri, str):
            raise JsonRpcInvalidParams("ragls.openCitation takes {uri, range} or {repository, path, range}")
        session.models.submit(server.edits.show, uri, selection)
        return {"uri": uri}

    def shared_text(repository: str, path: str, line: int) -> dict:
        """The text of a shared repository's span, from the first workspace's sources that hold it."""
        for ws in list(session.workspaces.values()):
            found = ws.index.shared.text_at(repository, path, line) if ws.index.shared else None
            if found is not None:
                start, end, text = found
                return {"repository": repository, "path": path, "startLine": start, "endLine": end,
                        "text": text}
        raise JsonRpcInvalidParams(f"no shared index holds {repository}/{path} (or it is not answering)")

    @server.command("ragls.arenaAccept")
    def arena_accept(*args: Any) -> dict:
        """An arena completion accepted in the editor: [matchId, "a" | "b"], its vote."""
        try:
            match_id, vote = (list(args) + [None, None])[:2]
            return server.arena.vote({"id": match_id, "vote": vote})
        except BadRequest as exc:
            raise JsonRpcInvalidParams(str(exc)) from None

    @server.command("ragls.reindex")
    def reindex_command(*args: Any) -> dict:
        return reindex(args[0] if args else None)

    # -- ragls/ methods ---------------------------------------------------------------------

    @server.feature("ragls/chat")
    @_params
    def chat(params: Any) -> dict:
        return server.chats.ask(params)

    @server.feature("ragls/cancelChat")
    @_params
    def cancel_chat(params: Any) -> dict:
        return server.chats.cancel(params)

    @server.feature("ragls/runRecipe")
    @_params
    def run_recipe(params: Any) -> dict:
        chat_id, _ = server.chats.run_recipe(params)
        return {"chatId": chat_id}

    @server.feature("ragls/recipes")
    @_params
    def recipes(params: Any) -> dict:
        root = workspace_root(params)
        return registry.load(root).as_json()

    def workspace_root(params: Any) -> Path | None:
        uri = params.get("uri") if isinstance(params, dict) else None
        if uri is None:
            return next(iter(session.workspaces), None)
        _, ws = server.workspace_of(uri) if isinstance(uri, str) else (None, None)
        if ws is None:
            raise BadRequest(f"{uri!r} is not inside a workspace folder")
        return ws.root

    @server.feature("ragls/search")
    @_params
    async def search(params: Any) -> dict:
        if not isinstance(params, dict) or not isinstance(params.get("query"), str):
            raise BadRequest("'query' must be a string")
        top_k = params.get("topK", 10)
        mode = params.get("mode", "hybrid")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 100:
            raise BadRequest("'topK' must be an integer from 1 to 100")
        if mode not in ("hybrid", "bm25", "dense"):
            raise BadRequest("'mode' must be 'hybrid', 'bm25' or 'dense'")
        scope = params.get("scope", "workspace")
        if scope not in SCOPES:
            raise BadRequest(f"'scope' must be one of {', '.join(map(repr, SCOPES))}")
        root = workspace_root(params) if params.get("uri") else None
        chosen = [session.workspaces[root]] if root else list(session.workspaces.values())
        loop = asyncio.get_running_loop()

        def run() -> list[dict]:
            query = params["query"]
            hits = [(ws, hit) for ws in chosen for hit in scoped_search(ws.index, query, top_k, mode, scope)]
            hits.sort(key=lambda pair: -pair[1].score)
            shown = []
            for ws, hit in hits[:top_k]:
                copy = session.local_copy(hit.repository, hit.path) if hit.repository else None
                where = location(ws, hit.path, hit.start_line, hit.end_line, hit.repository, copy)
                # a shared result without a local copy carries its text: the editor has no file to show
                text = {"text": hit.text} if hit.repository and copy is None else {}
                installed = _installed_uri(ws, hit)
                shown.append({**hit.as_json(), **where, **installed, "root": str(ws.root), **text})
            return shown

        return {"results": await loop.run_in_executor(session.queries, run)}

    @server.feature("ragls/indexStatus")
    @_params
    def index_status(params: Any) -> dict:
        return {"workspaces": [_status(ws) for ws in session.workspaces.values()]}

    @server.feature("ragls/reindex")
    @_params
    def reindex(params: Any) -> dict:
        root = workspace_root(params) if isinstance(params, dict) and params.get("uri") else None
        chosen = [session.workspaces[root]] if root else list(session.workspaces.values())
        return {"started": [str(ws.root) for ws in chosen if ws.build(session.open_paths())]}

    @server.feature("ragls/documentState")
    @_params
    def document_state(params: Any) -> dict:
        uri = params.get("uri") if isinstance(params, dict) else None
        doc = server.documents.get(uri) if isinstance(uri, str) else None
        if doc is None:
            raise BadRequest(f"{uri!r} is not open")
        return {
            "uri": doc.uri,
            "version": doc.version,
            "length": len(doc.text),
            "lines": doc.line_count,
            "sha256": hashlib.sha256(doc.text.encode("utf-8", "surrogatepass")).hexdigest(),
        }

    @server.feature("ragls/models")
    @_params
    async def models(params: Any) -> dict:
        servers = params.get("servers", True) if isinstance(params, dict) else True
        if not isinstance(servers, bool):
            raise BadRequest("'servers' must be true or false")
        found = await asyncio.get_running_loop().run_in_executor(None, scan, session.settings, servers)
        return found.to_json()

    @server.feature("ragls/useModel")
    @_params
    async def use_model(params: Any) -> dict:
        if not isinstance(params, dict) or not isinstance(params.get("name"), str):
            raise BadRequest("'name' must be a model name from ragls/models, or a GGUF file's path")
        role, source = params.get("role"), params.get("from")
        if role not in ("chat", "completion", "embedding"):
            raise BadRequest("'role' must be 'chat', 'completion' or 'embedding'")
        if source is not None and not isinstance(source, str):
            raise BadRequest("'from' must be a source name from ragls/models")
        loop = asyncio.get_running_loop()
        try:
            model, path = await loop.run_in_executor(
                None, use, session.settings, params["name"], role, source
            )
        except (LLMError, ConfigError) as exc:
            raise BadRequest(str(exc)) from None
        session.set_settings()  # the user file changed: every workspace reads it again
        return {"model": asdict(model), "role": role, "config": str(path)}

    arena = server.arena  # the arena's requests: see server/arena.py
    for method, handler in (("ragls/arena", arena.answer), ("ragls/arenaCompletion", arena.completion),
                            ("ragls/arenaVote", arena.vote), ("ragls/arenaLeaderboard", arena.leaderboard)):
        server.feature(method)(_params(handler))

    @server.feature("ragls/privacyAudit")
    @_params
    def privacy_audit(params: Any) -> dict:
        limit = params.get("limit", 100) if isinstance(params, dict) else 100
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise BadRequest("'limit' must be a positive integer")
        audit = Privacy(session.settings.privacy).audit
        try:
            entries = audit.entries()
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return {
            "mode": session.settings.privacy.mode,
            "log": str(audit.path),
            "entries": [entry.__dict__ for entry in entries[-limit:]],
        }
