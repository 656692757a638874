"""Inline completion for the editor: ``textDocument/inlineCompletion`` (LSP 3.18) and the
``textDocument/completion`` fallback, over :func:`ragls.recipes.completion.complete`.

Typing sends a request per keystroke. An automatic request waits ``server.debounce_ms`` and is
dropped (an empty answer) if a newer one for the same document arrived meanwhile; a request that
is already reading its prompt or generating is stopped when a newer one arrives (cancel-previous)
or when the client sends ``$/cancelRequest``, and what it read stays cached for the next one. The
buffer's text is the editor's, not the disk's.

An invoked request has a latency budget (``server.latency_budget_ms.invoked``) that caps the
prompt tokens the model may read for it; an automatic one reads its whole prompt, late if need
be (``recipes.completion.complete`` says why). While the user types what the last suggestion
says, the rest of it is served with no model call. After each request its prompt is read ahead in
the background (``Provider.prefill``), giving way to any request, so the next keystroke reads only
what it adds. A model still loading answers an automatic request with nothing, at once, and says
so once; a client that declared ``experimental.ragls.modelState`` is also sent
``ragls/modelState`` ``loading``, then ``ready`` (or ``failed``) when the load ends, so it can show
the state and ask again. Every empty answer's reason goes to the log.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ragls.llm.base import LLMError
from ragls.privacy import PrivacyError
from ragls.recipes.completion import CompletionResult, PositionError, complete
from ragls.server.documents import Document
from ragls.server.documents import PositionError as ClientPositionError

MODEL_STATE = "ragls/modelState"

if TYPE_CHECKING:
    from ragls.config import Config
    from ragls.server.app import RaglsServer

_WORD_BEFORE = re.compile(r"[\w$]*$")
LOG = types.MessageType.Log


@dataclass(frozen=True)
class _Request:
    path: Path
    line: int
    col: int
    text: str
    recent: list[str]
    budget_ms: float
    arrived: float  # perf_counter time the request came in (its budget counts from there)
    invoked: bool
    cancel: threading.Event


@dataclass
class _Latest:
    seq: int
    cancel: threading.Event


@dataclass(frozen=True)
class _Shown:
    """The last suggestion for a document: the text and cursor offset it was made for."""

    text: str
    offset: int
    completion: str

    def rest_after(self, text: str, offset: int) -> str | None:
        """What is left of the suggestion once the user typed its start (None: they did not)."""
        typed = offset - self.offset
        if not 0 < typed < len(self.completion) or len(text) != len(self.text) + typed:
            return None
        if text[self.offset : offset] != self.completion[:typed]:
            return None
        if text[: self.offset] != self.text[: self.offset] or text[offset:] != self.text[self.offset :]:
            return None
        return self.completion[typed:]


class ReadAhead:
    """One background thread reading the newest prompt ahead into the completion model, at idle
    priority: the model stops it between two chunks when a request is waiting for it (requests
    that are still in their debounce, or over budget, do not stop it: typing never starves it)."""

    RETRY_S = 0.05  # a busy model is tried again this soon

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._target: tuple | None = None  # (providers, cfg, prompt)
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="ragls-read-ahead", daemon=True)
        self._thread.start()

    def want(self, providers, cfg, prompt: str) -> None:
        with self._cond:
            if self._target is not None and self._target[2] == prompt:
                return  # already reading it (typing on one line keeps the prompt up to it)
            self._target = (providers, cfg, prompt) if prompt else None
            self._cond.notify()

    def stop(self) -> None:
        """Stop reading (at the next chunk) and wait for the thread, so the model can be closed."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and self._target is None:
                    self._cond.wait()
                if self._stopped:
                    return
                target = self._target
            providers, cfg, prompt = target
            try:
                with providers.ready("completion", cfg) as provider:
                    done = provider is not None and provider.prefill(
                        prompt, lambda mine=target: self._stopped or self._target is not mine
                    )
            except Exception:  # a model that fails here fails its requests too, with a message
                done = True
            with self._cond:
                if done and self._target is target:
                    self._target = None
                elif not done:
                    self._cond.wait(self.RETRY_S)


class Completer:
    def __init__(self, server: RaglsServer) -> None:
        self.server = server
        self._seq = itertools.count(1)
        self._latest: dict[str, _Latest] = {}  # uri -> the newest request for it
        self._shown: dict[str, _Shown] = {}  # uri -> its last suggestion
        self.read_ahead = ReadAhead()

    async def complete(
        self, doc: Document, position: types.Position, automatic: bool
    ) -> CompletionResult | None:
        """The completion at ``position``, or None when superseded, cancelled or impossible."""
        arrived = time.perf_counter()
        session = self.server.session
        path = doc.path
        ws = session.workspace_for(path)
        if ws is None or path is None:
            session.log(f"no completion for {doc.uri}: it is not inside a workspace folder")
            return None
        try:
            line, col = doc.line_col(position)
            offset = doc.offset(position)
        except ClientPositionError as exc:
            raise JsonRpcInvalidParams(f"{doc.uri}: {exc}") from None
        shown = self._shown.get(doc.uri)
        rest = shown.rest_after(doc.text, offset) if shown is not None else None
        previous = self._latest.get(doc.uri)
        if previous is not None:
            previous.cancel.set()  # cancel-previous: it stops at its next chunk or token
        if rest is not None:
            self._shown[doc.uri] = _Shown(doc.text, offset, rest)
            session.log(f"completion at {path.name}:{line}:{col}: typed through, no model call", LOG)
            return CompletionResult(rest, [], {"total_ms": round((time.perf_counter() - arrived) * 1000, 2)})
        budgets = ws.cfg.server.latency_budget_ms
        budget = budgets.automatic if automatic else budgets.invoked
        mine = _Latest(next(self._seq), threading.Event())
        self._latest[doc.uri] = mine
        try:
            if automatic and ws.cfg.server.debounce_ms:
                await asyncio.sleep(ws.cfg.server.debounce_ms / 1000)
                if mine.cancel.is_set():
                    return None
            text, recent = doc.text, session.recent_files(ws, path)
            loop = asyncio.get_running_loop()
            request = _Request(path, line, col, text, recent, budget, arrived, not automatic, mine.cancel)
            result = await loop.run_in_executor(session.models, self._run, ws, request)
            if result is not None and result.completion:
                self._shown[doc.uri] = _Shown(text, offset, result.completion)
            return result
        except asyncio.CancelledError:
            mine.cancel.set()
            raise
        finally:
            if self._latest.get(doc.uri) is mine:
                del self._latest[doc.uri]

    def _run(self, ws, r: _Request) -> CompletionResult | None:
        session = self.server.session
        where = f"completion at {r.path.name}:{r.line}:{r.col}"
        if r.cancel.is_set():
            session.log(f"{where}: nothing: cancelled by a newer request", LOG)
            return None
        try:
            # An invoked trigger waits for a model being loaded (the user asked), as does any
            # trigger without a latency budget; typing with one does not.
            wait = r.invoked or not r.budget_ms
            with session.providers.ready("completion", ws.cfg, wait=wait) as provider:
                if provider is None:
                    session.show(types.MessageType.Info, "ragls: loading the completion model; "
                                 "inline completion starts when it is ready")  # fmt: skip
                    session.log(f"{where}: nothing: the model is loading", LOG)
                    self._announce_loading(ws.cfg)
                    return None
                file_only = ws.cfg.server.completion_context == "file"
                result = complete(
                    ws.index, provider, r.path, r.line, r.col, text=r.text, recent=r.recent,
                    cancel=r.cancel, budget_ms=r.budget_ms, arrived=r.arrived, invoked=r.invoked,
                    budget_tokens=0 if file_only else None,
                )  # fmt: skip
        except (LLMError, PrivacyError, ValueError) as exc:
            if isinstance(exc, PositionError):
                raise JsonRpcInvalidParams(str(exc)) from None
            session.show(types.MessageType.Error, f"ragls: inline completion is off: {exc}")
            return None
        self.read_ahead.want(session.providers, ws.cfg, result.warm_prompt)
        reason = result.empty_reason()
        kind = types.MessageType.Warning if result.error and result.error != "cancelled" else LOG
        summary = f"read {result.read_tokens} of {result.prompt_tokens} prompt tokens"
        session.log(f"{where}: {'nothing: ' + reason if reason else 'answered'} ({summary}, "
                    f"{result.timings_ms.get('total_ms', 0):.0f} ms)", kind)  # fmt: skip
        return None if r.cancel.is_set() else result

    def _announce_loading(self, cfg: Config) -> None:
        """``ragls/modelState`` for a client that declared it: loading now, ready when it is."""
        session = self.server.session
        if not session.client_declares("modelState"):
            return

        def state(value: str) -> None:
            self.server.protocol.notify(MODEL_STATE, {"role": "completion", "state": value})

        session.providers.when_loading(
            "completion", cfg, lambda: state("loading"), lambda error: state("failed" if error else "ready")
        )

    @staticmethod
    def snapped(doc: Document, position: types.Position) -> types.Position:
        """The position where the completion goes: a column inside a character (between the two
        UTF-16 units of an emoji, inside a UTF-8 sequence) moves to the character's end. A column
        past the line's end stays as the client sent it (LSP reads it as the end)."""
        try:
            snapped = doc.position(doc.offset(position))
        except ClientPositionError:
            return position
        return snapped if snapped.character > position.character else position

    def forget(self, uri: str) -> None:
        """The document closed: its last suggestion goes."""
        self._shown.pop(uri, None)

    # -- LSP shapes -------------------------------------------------------------------------

    @staticmethod
    def inline_items(result: CompletionResult | None, position: types.Position) -> types.InlineCompletionList:
        if result is None or not result.completion:
            return types.InlineCompletionList(items=[])
        item = types.InlineCompletionItem(
            insert_text=result.completion, range=types.Range(start=position, end=position)
        )
        return types.InlineCompletionList(items=[item])

    @staticmethod
    def completion_items(
        result: CompletionResult | None, doc: Document, position: types.Position
    ) -> types.CompletionList:
        """The fallback: one item that replaces the word before the cursor with the word plus the
        completion, so clients that filter by the typed word keep it."""
        if result is None or not result.completion:
            return types.CompletionList(is_incomplete=True, items=[])
        offset = doc.offset(position)
        word = _WORD_BEFORE.search(doc.text[max(0, offset - 200) : offset]).group()
        start = doc.position(offset - len(word))
        first = result.completion.split("\n", 1)[0]
        label = (word + first).strip() or result.completion.strip().split("\n", 1)[0]
        item = types.CompletionItem(
            label=label[:80],
            kind=types.CompletionItemKind.Snippet
            if "\n" in result.completion
            else types.CompletionItemKind.Text,
            detail="ragls",
            documentation=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=f"```\n{word}{result.completion}\n```"
            ),
            filter_text=word + first,
            sort_text="0",
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(
                range=types.Range(start=start, end=position), new_text=word + result.completion
            ),
        )
        return types.CompletionList(is_incomplete=True, items=[item])
