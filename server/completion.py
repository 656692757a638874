"""Inline completion for the editor: ``textDocument/inlineCompletion`` (LSP 3.18) and the
``textDocument/completion`` fallback, over :func:`ragls.recipes.completion.complete`.

Typing sends a request per keystroke. An automatic request waits ``server.debounce_ms`` and is
dropped (an empty answer) if a newer one for the same document arrived meanwhile; a request that
is already generating is stopped mid-stream when a newer one arrives (cancel-previous) or when the
client sends ``$/cancelRequest``. The buffer's text is the editor's, not the disk's.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ragls.llm.base import LLMError
from ragls.privacy import PrivacyError
from ragls.recipes.completion import CompletionResult, PositionError, complete
from ragls.server.documents import Document
from ragls.server.documents import PositionError as ClientPositionError

if TYPE_CHECKING:
    from ragls.server.app import RaglsServer

_WORD_BEFORE = re.compile(r"[\w$]*$")


@dataclass
class _Latest:
    seq: int
    cancel: threading.Event


class Completer:
    def __init__(self, server: RaglsServer) -> None:
        self.server = server
        self._seq = itertools.count(1)
        self._latest: dict[str, _Latest] = {}  # uri -> the newest request for it

    async def complete(
        self, doc: Document, position: types.Position, automatic: bool
    ) -> CompletionResult | None:
        """The completion at ``position``, or None when superseded, cancelled or impossible."""
        session = self.server.session
        path = doc.path
        ws = session.workspace_for(path)
        if ws is None or path is None:
            session.log(f"no completion for {doc.uri}: it is not inside a workspace folder")
            return None
        try:
            line, col = doc.line_col(position)
        except ClientPositionError as exc:
            raise JsonRpcInvalidParams(f"{doc.uri}: {exc}") from None
        mine = _Latest(next(self._seq), threading.Event())
        previous = self._latest.get(doc.uri)
        if previous is not None:
            previous.cancel.set()  # cancel-previous: its generation stops at the next token
        self._latest[doc.uri] = mine
        try:
            if automatic and ws.cfg.server.debounce_ms:
                await asyncio.sleep(ws.cfg.server.debounce_ms / 1000)
                if mine.cancel.is_set():
                    return None
            text, recent = doc.text, session.recent_files(ws, path)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                session.models, self._run, ws, path, line, col, text, recent, mine.cancel
            )
        except asyncio.CancelledError:
            mine.cancel.set()
            raise
        finally:
            if self._latest.get(doc.uri) is mine:
                del self._latest[doc.uri]

    def _run(
        self, ws, path, line: int, col: int, text: str, recent: list[str], cancel: threading.Event
    ) -> CompletionResult | None:
        if cancel.is_set():
            return None
        session = self.server.session
        try:
            with session.providers.use("completion", ws.cfg) as provider:
                file_only = ws.cfg.server.completion_context == "file"
                result = complete(
                    ws.index, provider, path, line, col, text=text, recent=recent, cancel=cancel,
                    budget_tokens=0 if file_only else None,
                )  # fmt: skip
        except (LLMError, PrivacyError, ValueError) as exc:
            if isinstance(exc, PositionError):
                raise JsonRpcInvalidParams(str(exc)) from None
            session.show(types.MessageType.Error, f"ragls: inline completion is off: {exc}")
            return None
        if result.error and result.error != "cancelled":
            session.log(f"completion at {path}:{line}:{col}: {result.error}", types.MessageType.Warning)
        return None if cancel.is_set() else result

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
