"""Streamed answers: ``ragls/chat`` turns and recipe runs.

Each stream has a chat id. Its text arrives as ``ragls/chatDelta`` notifications
``{chatId, turn, delta}`` and ends with one ``{chatId, turn, done: true, ...}`` carrying the whole
answer, the citations verified against the index (with URIs and ranges, ready for
``window/showDocument``) and any notes or error. A chat id names a conversation: asking again
with it continues the conversation (earlier turns inform retrieval and the prompt). A recipe that
produces code sends the editor a ``workspace/applyEdit`` (replacing the selection) or creates the
file it belongs in and opens it.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from lsprotocol import types

from ragls.config import Verbosity
from ragls.llm.base import LLMError, ModelError
from ragls.privacy import PrivacyError
from ragls.recipes import registry
from ragls.recipes.ask import Conversation, route
from ragls.recipes.citations import Citation
from ragls.recipes.context import Snippet
from ragls.recipes.gather import SelectionError
from ragls.recipes.run import RecipeResult, answer, prepare
from ragls.server.documents import Document, path_to_uri, uri_to_path

if TYPE_CHECKING:
    from ragls.server.app import RaglsServer
    from ragls.server.workspaces import Workspace

DELTA = "ragls/chatDelta"


class BadRequest(ValueError):
    """Parameters a client got wrong; answered with InvalidParams."""


@dataclass
class Chat:
    id: str
    workspace: Workspace
    conversation: Conversation | None = None
    turn: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    busy: bool = False


def lines_of(start: types.Position, end: types.Position) -> tuple[int, int]:
    """1-based inclusive lines of an editor selection; a selection ending at the start of a line
    does not include that line."""
    last = end.line if end.character == 0 and end.line > start.line else end.line + 1
    return start.line + 1, max(start.line + 1, last)


def location(
    ws: Workspace, path: str, start_line: int, end_line: int, repository: str = "", copy: Path | None = None
) -> dict:
    """A cited span as the editor opens it: URI and a whole-lines range. A shared repository's
    span names its repository, and has a URI only when ``copy`` (a local copy of its file) is
    given; without one, ``ragls.openCitation`` returns its text."""
    shown = {
        "path": path,
        "startLine": start_line,
        "endLine": end_line,
        "range": {
            "start": {"line": start_line - 1, "character": 0},
            "end": {"line": end_line, "character": 0},
        },
    }
    if not repository:
        return {**shown, "uri": path_to_uri(ws.root / path)}
    return shown | {"repository": repository} | ({"uri": path_to_uri(copy)} if copy else {})


MAX_CHATS = 200  # conversations kept; the oldest idle ones are forgotten beyond this


class Chats:
    def __init__(self, server: RaglsServer) -> None:
        self.server = server
        self._chats: dict[str, Chat] = {}
        self._lock = threading.Lock()

    # -- starting ---------------------------------------------------------------------------

    def ask(self, params: Any) -> dict:
        """``ragls/chat``: start a turn; returns ``{chatId, turn}`` at once, the answer streams."""
        params = _object(params)
        question = params.get("question")
        if not isinstance(question, str) or not question.strip():
            raise BadRequest("'question' must be a non-empty string")
        top_k = _int(params, "topK", 10)
        chat = self._chat(params)
        first = self._selection_snippet(chat.workspace, params)
        verbosity = _verbosity(params, chat.workspace)
        with self._lock:
            if chat.busy:
                chat.cancel.set()  # a new question replaces the one still being answered
            chat.turn += 1
            chat.cancel = threading.Event()
            chat.busy = True
            turn, cancel = chat.turn, chat.cancel
        self.server.session.models.submit(
            self._ask_turn, chat, turn, cancel, question, top_k, first, verbosity
        )
        return {"chatId": chat.id, "turn": turn}

    def run_recipe(self, params: Any) -> tuple[str, Future]:
        """``ragls/runRecipe`` and the ``ragls.runRecipe`` command: the chat id, and a future of the
        final message."""
        params = _object(params)
        name = params.get("recipe")
        if not isinstance(name, str):
            raise BadRequest("'recipe' must be a recipe name (see ragls/recipes)")
        doc, path, ws = self._target(params)
        reg = registry.load(ws.root)
        try:
            recipe = reg.get(name)
        except KeyError as exc:
            raise BadRequest(exc.args[0]) from None
        question = params.get("question", "")
        if not isinstance(question, str):
            raise BadRequest("'question' must be a string")
        target = str(path)
        if params.get("range") is not None:
            start, end = lines_of(*_range(params, doc))
            target = f"{path}:{start}-{end}"
        verbosity = _verbosity(params, ws)
        chat = self._remember(Chat(uuid.uuid4().hex[:12], ws, turn=1, busy=True))
        text = doc.text if doc is not None else None
        future = self.server.session.models.submit(
            self._recipe_turn,
            chat,
            recipe,
            target,
            question,
            text,
            params.get("apply", True) is not False,
            verbosity,
        )
        return chat.id, future

    def cancel_all(self) -> None:
        with self._lock:
            for chat in self._chats.values():
                chat.cancel.set()

    def cancel(self, params: Any) -> dict:
        chat_id = _object(params).get("chatId")
        with self._lock:
            chat = self._chats.get(chat_id) if isinstance(chat_id, str) else None
            if chat is None or not chat.busy:
                return {"cancelled": False}
            chat.cancel.set()
        return {"cancelled": True}

    # -- the turns (on a model thread) ------------------------------------------------------

    def _ask_turn(
        self, chat: Chat, turn: int, cancel: threading.Event, question: str, top_k: int, first: list[Snippet],
        verbosity: Verbosity,
    ) -> dict:
        session = self.server.session
        ws = chat.workspace
        final: dict[str, Any] = {"chatId": chat.id, "turn": turn, "done": True}
        try:
            if chat.conversation is None:
                chat.conversation = Conversation(
                    ws.index, None, ws.cfg.recipes, registry.load(ws.root).get("ask")
                )
            conversation = chat.conversation
            if route(question) == "search" and not first:
                result = conversation.ask(question, top_k=top_k)
            else:
                with session.providers.use("chat", ws.cfg) as provider:
                    conversation.provider = provider
                    result = conversation.ask(
                        question,
                        top_k=top_k,
                        on_delta=self._sender(chat, turn),
                        cancel=cancel,
                        force="answer" if first else None,
                        first=first,
                        verbosity=verbosity,
                    )
            final.update(
                route=result.route,
                answer=result.answer,
                citations=[self._at(ws, c) for c in result.citations],
                droppedCitations=len(result.dropped),
                sources=[self._at(ws, s) for s in result.sources],
                results=[{**r, **self._at(ws, Citation.of(r))} for r in result.results],
                notes=result.notes,
                cancelled=cancel.is_set(),
            )
        except (LLMError, PrivacyError, SelectionError, ValueError) as exc:
            final["error"] = self._failure(exc)
        return self._finish(chat, turn, final)

    def _recipe_turn(
        self, chat: Chat, recipe: registry.Recipe, target: str, question: str, text: str | None, apply: bool,
        verbosity: Verbosity,
    ) -> dict:
        session = self.server.session
        ws = chat.workspace
        final: dict[str, Any] = {
            "chatId": chat.id,
            "turn": 1,
            "done": True,
            "recipe": recipe.name,
            "title": recipe.title,
            "output": recipe.output,
        }
        try:
            prepared = prepare(ws.index, recipe, target, question=question, text=text)
            with session.providers.use(recipe.role, ws.cfg) as provider:
                result = answer(
                    ws.index,
                    prepared,
                    provider,
                    ws.cfg.recipes,
                    on_delta=self._sender(chat, 1),
                    cancel=chat.cancel,
                    verbosity=verbosity,
                )
            final.update(self._result_json(ws, result))
            final["cancelled"] = chat.cancel.is_set()
            if apply and result.code and not chat.cancel.is_set():
                final["applied"] = self.server.edits.apply_recipe(ws, recipe, result)
        except (LLMError, PrivacyError, SelectionError, ValueError) as exc:
            final["error"] = self._failure(exc)
        return self._finish(chat, 1, final)

    def _at(self, ws: Workspace, span: Citation | Snippet) -> dict:
        """:func:`location` of a span, with a shared repository's local copy when this session has one."""
        copy = self.server.session.local_copy(span.repository, span.path) if span.repository else None
        return location(ws, span.path, span.start_line, span.end_line, span.repository, copy)

    def _result_json(self, ws: Workspace, result: RecipeResult) -> dict:
        shown = result.as_json()
        shown["citations"] = [self._at(ws, c) for c in result.citations]
        shown["context"] = [self._at(ws, s) | {"source": s.source} for s in result.context]
        shown["uri"] = path_to_uri(ws.root / result.path)
        if result.target_path:
            shown["targetUri"] = path_to_uri(ws.root / result.target_path)
        return shown

    def _sender(self, chat: Chat, turn: int):
        notify = self.server.protocol.notify

        def send(delta: str) -> None:
            notify(DELTA, {"chatId": chat.id, "turn": turn, "delta": delta})

        return send

    def _failure(self, exc: Exception) -> str:
        message = str(exc)
        if isinstance(exc, ModelError | PrivacyError):  # the user must change a setting
            self.server.session.show(types.MessageType.Error, f"ragls: {message}")
        else:
            self.server.session.log(f"ragls: {message}", types.MessageType.Warning)
        return message

    def _finish(self, chat: Chat, turn: int, final: dict) -> dict:
        with self._lock:
            if chat.turn == turn:
                chat.busy = False
        self.server.protocol.notify(DELTA, final)
        return final

    # -- parameters -------------------------------------------------------------------------

    def _chat(self, params: dict) -> Chat:
        chat_id = params.get("chatId")
        if chat_id is not None:
            with self._lock:
                chat = self._chats.get(chat_id) if isinstance(chat_id, str) else None
            if chat is None:
                raise BadRequest(f"no chat {chat_id!r} (start one without chatId)")
            return chat
        ws = self.workspace(params)
        return self._remember(Chat(uuid.uuid4().hex[:12], ws))

    def _remember(self, chat: Chat) -> Chat:
        with self._lock:
            self._chats[chat.id] = chat
            idle = [key for key, c in self._chats.items() if not c.busy]
            for key in idle[: max(0, len(self._chats) - MAX_CHATS)]:
                del self._chats[key]
        return chat

    def workspace(self, params: dict) -> Workspace:
        session = self.server.session
        uri = params.get("uri")
        if uri is not None:
            if not isinstance(uri, str):
                raise BadRequest("'uri' must be a string")
            ws = session.workspace_for(_path(uri))
            if ws is None:
                raise BadRequest(f"{uri} is not inside a workspace folder")
            return ws
        if not session.workspaces:
            raise BadRequest("no workspace folder is open")
        return next(iter(session.workspaces.values()))

    def _target(self, params: dict) -> tuple[Document | None, Path, Workspace]:
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise BadRequest("'uri' must be the document's URI")
        path = _path(uri)
        ws = self.server.session.workspace_for(path)
        if path is None or ws is None:
            raise BadRequest(f"{uri} is not a file inside a workspace folder")
        return self.server.documents.get(uri), path, ws

    def _selection_snippet(self, ws: Workspace, params: dict) -> list[Snippet]:
        """The user's selection, when the question is about it: the first thing the model reads."""
        if params.get("range") is None or params.get("uri") is None:
            return []
        doc, path, _ = self._target(params)
        start, end = lines_of(*_range(params, doc))
        text = doc.text if doc is not None else path.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()[start - 1 : end]
        rel = path.relative_to(ws.root).as_posix()
        return [
            Snippet(rel, start, start + max(0, len(lines) - 1), "\n".join(lines), "selection", float("inf"))
        ]


def _object(params: Any) -> dict:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise BadRequest("params must be an object")
    return params


def _verbosity(params: dict, ws: Workspace) -> Verbosity:
    """The request's own answer length, else the workspace's answers.verbosity."""
    value = params.get("verbosity")
    if value is None:
        return ws.cfg.answers.verbosity
    if value not in get_args(Verbosity):
        raise BadRequest("'verbosity' must be 'terse', 'normal' or 'detailed'")
    return value


def _int(params: dict, key: str, default: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise BadRequest(f"'{key}' must be an integer from 1 to 100")
    return value


def _path(uri: str) -> Path | None:
    path = uri_to_path(uri)
    return path.resolve() if path is not None else None


def _range(params: dict, doc: Document | None) -> tuple[types.Position, types.Position]:
    raw = params.get("range")
    if raw is None:
        cursor = types.Position(line=0, character=0)
        return cursor, cursor
    try:
        start, end = raw["start"], raw["end"]
        positions = [types.Position(line=int(p["line"]), character=int(p["character"])) for p in (start, end)]
    except (KeyError, TypeError, ValueError):
        raise BadRequest("'range' must be {start: {line, character}, end: {line, character}}") from None
    if positions[0].line < 0 or positions[1].line < positions[0].line:
        raise BadRequest("'range' must start at a line >= 0 and not end before it starts")
    if doc is not None and positions[0].line >= doc.line_count:
        raise BadRequest(f"line {positions[0].line} is past the end of the document ({doc.line_count} lines)")
    return positions[0], positions[1]
