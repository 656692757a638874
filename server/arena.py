"""The arena's requests: ``ragls/arena`` (two models answer a question, shown as A and B),
``ragls/arenaCompletion`` (two models complete at the cursor), ``ragls/arenaVote`` (the user's
vote, which reveals the names and is recorded) and ``ragls/arenaLeaderboard``; the
``ragls.arenaAccept`` command is the vote an editor sends when the user accepts a completion.

A match waits here, names hidden, until it is voted on; the oldest unvoted ones are forgotten
beyond ``MAX_PENDING``. The work is :mod:`ragls.recipes.arena`'s, as for ``ragls arena``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ragls.config import ConfigError
from ragls.llm.base import LLMError
from ragls.privacy import PrivacyError
from ragls.recipes import registry
from ragls.recipes.arena import (
    ArenaError,
    Match,
    answer_match,
    append_vote,
    as_chat,
    completion_match,
    next_match,
    votes_path,
)
from ragls.recipes.ask import Conversation
from ragls.recipes.completion import PositionError
from ragls.recipes.leaderboard import standings
from ragls.server.chat import BadRequest, _int, _object, _verbosity

if TYPE_CHECKING:
    from ragls.server.app import RaglsServer
    from ragls.server.documents import Document
    from ragls.server.workspaces import Workspace

MAX_PENDING = 50
FAILURES = (ArenaError, LLMError, PrivacyError, ConfigError, PositionError)


class Arena:
    def __init__(self, server: RaglsServer) -> None:
        self.server = server
        self._pending: OrderedDict[str, tuple[Match, Workspace]] = OrderedDict()
        self._lock = threading.Lock()

    async def answer(self, params: Any) -> dict:
        """``ragls/arena`` {question, uri?, models?, verbosity?, topK?}: both answers, no names."""
        params = _object(params)
        question = params.get("question")
        if not isinstance(question, str) or not question.strip():
            raise BadRequest("'question' must be a non-empty string")
        ws = self.server.chats.workspace(params)
        verbosity, top_k, names = _verbosity(params, ws), _int(params, "topK", 10), _names(params)

        def run(providers: dict) -> Match:
            ask = registry.load(ws.root).get("ask")
            conversation = Conversation(ws.index, None, ws.cfg.recipes, ask)
            return answer_match(conversation, question, providers, verbosity=verbosity, top_k=top_k)

        return (await self._match(ws, names, run)).shown()

    async def completion(self, params: Any) -> dict:
        """``ragls/arenaCompletion`` {uri, position, models?}: two completions at the cursor."""
        params = _object(params)
        uri, position = params.get("uri"), params.get("position")
        doc = self.server.documents.get(uri) if isinstance(uri, str) else None
        if doc is None:
            raise BadRequest("'uri' must be an open document")
        try:
            line, character = int(position["line"]), int(position["character"])
        except (KeyError, TypeError, ValueError):
            raise BadRequest("'position' must be {line, character}") from None
        return (await self._completions(doc, types.Position(line=line, character=character),
                                        _names(params))).shown()

    async def inline(self, doc: Document, position: types.Position) -> types.InlineCompletionList:
        """An invoked inline completion in arena mode (``arena.completions``): A and B as two items,
        each accepted with the ``ragls.arenaAccept`` command that is its vote."""
        try:
            match = await self._completions(doc, position, None)
        except BadRequest as exc:
            self.server.session.show(types.MessageType.Error, f"ragls: arena completion: {exc}")
            return types.InlineCompletionList(items=[])
        cursor = self.server.completer.snapped(doc, position)
        at = types.Range(start=cursor, end=cursor)
        return types.InlineCompletionList(items=[
            types.InlineCompletionItem(
                insert_text=side.answer, range=at,
                command=types.Command(title=f"ragls arena: {letter.upper()} wins",
                                      command="ragls.arenaAccept", arguments=[match.id, letter]),
            )
            for letter, side in (("a", match.a), ("b", match.b)) if side.answer
        ])

    async def _completions(self, doc: Document, position: types.Position, names: list[str] | None) -> Match:
        ws = self.server.session.workspace_for(doc.path)
        if doc.path is None or ws is None:
            raise BadRequest(f"{doc.uri} is not inside a workspace folder")
        path, text = doc.path, doc.text
        recent = self.server.session.recent_files(ws, path)
        try:
            line, col = doc.line_col(position)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

        def run(providers: dict) -> Match:
            return completion_match(ws.index, providers, path, line, col, text=text, recent=recent)

        return await self._match(ws, names, run)

    async def _match(self, ws: Workspace, names: list[str] | None, run) -> Match:
        """Choose the pair, load both models (as the chat role), run the match on a model thread."""
        providers = self.server.session.providers

        def work() -> Match:
            pair = next_match(ws.cfg, names)
            with ExitStack() as stack:
                use = [(c.name, providers.use("chat", as_chat(ws.cfg, c))) for c in pair]
                return run({name: stack.enter_context(model) for name, model in use})

        future = self.server.session.models.submit(work)
        try:
            match = await asyncio.wrap_future(future)
        except FAILURES as exc:
            raise BadRequest(" ".join(str(exc).split())) from None
        with self._lock:
            self._pending[match.id] = (match, ws)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
        return match

    def vote(self, params: Any) -> dict:
        """``ragls/arenaVote`` {id, vote}: recorded, and the names revealed."""
        params = _object(params)
        with self._lock:
            pending = self._pending.get(params.get("id")) if isinstance(params.get("id"), str) else None
        if pending is None:
            raise BadRequest("'id' must be a match from ragls/arena not yet voted on")
        match, ws = pending
        try:
            record = match.record(params.get("vote"))  # type: ignore[arg-type]
        except ArenaError as exc:
            raise BadRequest(str(exc)) from None
        path = votes_path(ws.cfg)
        append_vote(path, record)
        with self._lock:
            self._pending.pop(match.id, None)
        return {"id": match.id, "vote": record["vote"], "a": match.a.model, "b": match.b.model,
                "votesFile": str(path)}

    def leaderboard(self, params: Any) -> dict:
        """``ragls/arenaLeaderboard`` {uri?, kind?}: as ``ragls arena --leaderboard --json`` prints it."""
        params = _object(params)
        kind = params.get("kind", "answer")
        if kind not in ("answer", "completion"):
            raise BadRequest("'kind' must be 'answer' or 'completion'")
        return standings(self.server.chats.workspace(params).cfg, kind).as_json()


def _names(params: dict) -> list[str] | None:
    names = params.get("models")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise BadRequest("'models' must be a list of model names (as arena.models takes them)")
    return names
