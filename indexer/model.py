"""The records the index stores: chunks of code and the symbols defined or referenced in a file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal


def content_hash(text: str) -> str:
    """Content address of a piece of text (embeddings are cached by it)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A contiguous span of one file: the unit that is searched, embedded and cited."""

    path: str  # relative to the workspace root, '/'-separated
    language: str  # tree-sitter language name, or "text" / "markdown" / a config format
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    symbol: str  # enclosing symbol path, e.g. "routing.APIRouter.add_api_route"; "" at top level
    kind: str  # "function", "method", "class", "module", "section", "lines", ...
    text: str

    @property
    def hash(self) -> str:
        return content_hash(self.text)


@dataclass(frozen=True)
class Symbol:
    """A definition or a reference of a name in one file."""

    name: str  # the bare name, e.g. "add_api_route"
    qualified: str  # enclosing path + name for definitions, e.g. "routing.APIRouter.add_api_route"
    kind: str  # "function", "method", "class", "interface", "module", "variable", "call", ...
    line: int  # 1-based line of the name
    end_line: int  # last line of the definition (== line for references)
    role: Literal["definition", "reference"]


@dataclass
class ParsedFile:
    """Everything the index keeps for one file; ``error`` says why parsing fell back to lines."""

    language: str
    chunks: list[Chunk] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    error: str | None = None
