"""The editor's open documents, kept in step with incremental ``didChange`` edits.

LSP counts lines by ``\\n``, ``\\r\\n`` and ``\\r`` only, and columns in the negotiated encoding's
code units (UTF-16 unless the client offered UTF-8). Python's ``splitlines`` also breaks at form
feeds, ``\\u2028`` and other separators, so positions here are computed from a line-start table
built with exactly LSP's three line endings; a file with a form feed (common in Emacs Lisp and
GNU C) keeps its edits where the editor put them.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from lsprotocol import types

Encoding = Literal["utf-8", "utf-16", "utf-32"]
_EOL = re.compile(r"\r\n|\r|\n")


class PositionError(ValueError):
    """A position that lies past the end of the document."""


class UnknownDocument(KeyError):
    """An edit for a document the client never opened."""


def uri_to_path(uri: str) -> Path | None:
    """The local file a ``file:`` URI names; None for other schemes (untitled:, scp://, ...)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parsed.path))


def path_to_uri(path: Path | str) -> str:
    return Path(path).absolute().as_uri()


def _units(char: str, encoding: Encoding) -> int:
    if encoding == "utf-32":
        return 1
    code = ord(char)
    if encoding == "utf-16":
        return 2 if code > 0xFFFF else 1
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


@dataclass
class Document:
    uri: str
    text: str
    version: int = 0
    language_id: str = ""
    encoding: Encoding = "utf-16"
    _starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._index()

    @property
    def path(self) -> Path | None:
        return uri_to_path(self.uri)

    def _index(self) -> None:
        self._starts = [0] + [m.end() for m in _EOL.finditer(self.text)]

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def line_text(self, line: int) -> str:
        """Line ``line`` (0-based) without its line ending."""
        start = self._starts[line]
        end = self._starts[line + 1] if line + 1 < len(self._starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")

    def offset(self, position: types.Position) -> int:
        """String offset of a client position. A column past the end of its line means the end of
        the line (the LSP rule); a line past the end of the document is an error."""
        if position.line < 0 or position.character < 0:
            raise PositionError(f"negative position {position.line}:{position.character}")
        if position.line >= len(self._starts):
            # The position just after a final newline is the start of an empty last line.
            raise PositionError(
                f"line {position.line} is past the end of the document ({len(self._starts)} lines, 0-based)"
            )
        line = self.line_text(position.line)
        units, column = 0, 0
        for char in line:
            if units >= position.character:
                break
            units += _units(char, self.encoding)
            column += 1
        return self._starts[position.line] + column

    def position(self, offset: int) -> types.Position:
        """The client position of a string offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._starts, offset) - 1
        start = self._starts[line]
        column = sum(_units(c, self.encoding) for c in self.text[start:offset])
        return types.Position(line=line, character=column)

    def line_col(self, position: types.Position) -> tuple[int, int]:
        """1-based line and 1-based code-point column (what the recipes and the CLI speak)."""
        offset = self.offset(position)
        return position.line + 1, offset - self._starts[position.line] + 1

    def apply(self, change: types.TextDocumentContentChangeEvent) -> None:
        """Apply one change event: a range edit, or the whole text when no range is given."""
        if not isinstance(change, types.TextDocumentContentChangePartial):
            self.text = change.text
            self._index()
            return
        start = self._clamped(change.range.start)
        end = max(start, self._clamped(change.range.end))
        self.text = self.text[:start] + change.text + self.text[end:]
        self._reindex(start, end, len(change.text))

    def _reindex(self, start: int, end: int, inserted: int) -> None:
        """Update the line starts after ``text[start:end]`` became ``inserted`` characters, in time
        proportional to the lines after the edit rather than the whole text. Starts up to the line
        before the edit are unchanged, starts two characters past its old end only shift (a CRLF
        can straddle either boundary); the region between is scanned again."""
        starts = self._starts
        line = bisect.bisect_right(starts, start) - 1
        keep = max(0, line - 1)
        scan_from = starts[keep]
        new_end = start + inserted
        delta = new_end - end
        tail = bisect.bisect_left(starts, end + 2)
        region = [
            m.end()
            for m in _EOL.finditer(self.text, scan_from, min(len(self.text), new_end + 3))
            if m.end() < new_end + 2
        ]
        starts[keep + 1 :] = region + [s + delta for s in starts[tail:]]

    def _clamped(self, position: types.Position) -> int:
        """Edits are applied even when a client overshoots the end (it means 'to the end')."""
        if position.line >= len(self._starts):
            return len(self.text)
        return self.offset(position)


class Documents:
    """Open documents by URI. Only ``didOpen`` creates one; edits to unknown URIs are refused."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}
        self.encoding: Encoding = "utf-16"

    def open(self, item: types.TextDocumentItem) -> Document:
        doc = Document(item.uri, item.text, item.version, item.language_id, self.encoding)
        self._docs[item.uri] = doc
        return doc

    def change(self, params: types.DidChangeTextDocumentParams) -> Document:
        doc = self._docs.get(params.text_document.uri)
        if doc is None:
            raise UnknownDocument(params.text_document.uri)
        for change in params.content_changes:
            doc.apply(change)
        doc.version = params.text_document.version
        return doc

    def close(self, uri: str) -> Document | None:
        return self._docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def __iter__(self):
        return iter(list(self._docs.values()))
