"""The server's copy of a document: positions in each encoding, and incremental line starts
that always equal a full rescan (CRLF pairs split and joined by edits included)."""

from __future__ import annotations

import random

import pytest
from lsprotocol import types

from ragls.server.documents import Document, PositionError


def change(l1: int, c1: int, l2: int, c2: int, text: str) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(
        range=types.Range(
            start=types.Position(line=l1, character=c1), end=types.Position(line=l2, character=c2)
        ),
        text=text,
    )


@pytest.mark.parametrize(("encoding", "column"), [("utf-16", 7), ("utf-8", 9), ("utf-32", 6)])
def test_columns_count_code_units_of_the_negotiated_encoding(encoding: str, column: int) -> None:
    doc = Document("file:///x.py", "s = '😀x'\n", encoding=encoding)
    offset = doc.offset(types.Position(line=0, character=column))
    assert doc.text[offset] == "x"
    assert doc.position(offset) == types.Position(line=0, character=column)


def test_only_lsp_line_endings_break_lines() -> None:
    doc = Document("file:///x.el", "a\fb\u2028c\r\nd\re\nf")
    assert [doc.line_text(n) for n in range(doc.line_count)] == ["a\fb\u2028c", "d", "e", "f"]
    assert doc.line_col(types.Position(line=1, character=99)) == (2, 2)  # past the line: its end
    with pytest.raises(PositionError, match="past the end"):
        doc.offset(types.Position(line=4, character=0))


def test_incremental_line_starts_equal_a_full_rescan() -> None:
    rng = random.Random(2026)
    pieces = ["a", "\r", "\n", "\r\n", "é", "😀", "\f"]
    for _ in range(2000):
        doc = Document("file:///x", "".join(rng.choice(pieces) for _ in range(rng.randrange(30))))
        for _ in range(8):
            l1 = rng.randrange(doc.line_count)
            l2 = rng.randrange(l1, doc.line_count)
            c1 = rng.randrange(len(doc.line_text(l1)) + 2)
            c2 = rng.randrange(len(doc.line_text(l2)) + 2) if l2 > l1 else c1 + rng.randrange(3)
            doc.apply(
                change(l1, c1, l2, c2, "".join(rng.choice(["b", "\r", "\n", "\r\n"]) for _ in range(3)))
            )
            incremental = list(doc._starts)
            doc._index()
            assert incremental == doc._starts, repr(doc.text)
