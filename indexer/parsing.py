"""Split one file into chunks and extract the symbols it defines and references.

Code goes through tree-sitter: definitions (found by the query patterns in ``languages.py``)
become chunks of their own, long ones are cut on statement boundaries, small neighbours are merged,
and the code between definitions is chunked too, so every non-blank line lands in exactly one
chunk. Markdown is chunked by heading sections, config files by sections, everything else by lines.
Nothing in here may raise on bad input: a failing grammar degrades to line chunks with
``ParsedFile.error`` saying why.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import PurePosixPath

from tree_sitter import Node, Parser, Query, QueryCursor, QueryError
from tree_sitter_language_pack import get_language, get_parser

from .languages import (
    CLASS_KINDS,
    CONTAINER_KINDS,
    KEYWORD_KINDS,
    LEADING_TYPES,
    LINE_LANGUAGES,
    MARKDOWN,
    SCOPE_KINDS,
    SPECS,
    TEXT,
    LanguageSpec,
    generic_candidates,
    language_for,
)
from .model import Chunk, ParsedFile, Symbol

__all__ = ["language_for", "module_name", "parse"]

SymbolPath = tuple[str, ...]
Label = tuple[SymbolPath, str]  # a symbol path and its kind

# A window of lines_per_chunk lines may hold this many characters per line on average.
CHARS_PER_LINE = 80
# A definition up to this many windows long stays whole rather than being cut.
FIT_SCALE = 1.5
# Containers nested deeper than this are chunked as a whole (bounds the recursion).
MAX_DEPTH = 40
# Files named like this take their directory's name as module name (``fastapi/__init__.py``).
_PACKAGE_FILES = frozenset({"__init__", "mod", "index"})


def parse(path: str, text: str, lines_per_chunk: int = 60, *, language: str | None = None) -> ParsedFile:
    """Chunks and symbols of one file.

    ``path`` is the workspace-relative path (it names the module and picks the language unless
    ``language`` is given); ``text`` is the decoded content, any line endings. Never raises.
    """
    language = language or language_for(path, text) or TEXT
    lines = _Lines(text)
    packer = _Packer(lines, lines_per_chunk)
    if language in LINE_LANGUAGES:
        return _line_file(path, language, lines, packer)
    try:
        parser = _parser(language)
    except Exception as exc:  # an unknown name or a grammar that fails to load
        return _line_file(path, TEXT, lines, packer, f"no tree-sitter grammar for {language!r}: {exc}")
    try:
        return _SyntaxFile(path, language, lines, packer).parse(parser)
    except Exception as exc:  # whatever a grammar or a query does, indexing must go on
        reason = f"{language} parser failed, chunked by lines instead: {type(exc).__name__}: {exc}"
        return _line_file(path, language, lines, packer, reason)


def module_name(path: str) -> str:
    """The first component of every symbol path in a file: its stem, or its package's name."""
    pure = PurePosixPath(path.replace("\\", "/"))
    stem = pure.name.lstrip(".").split(".")[0] or pure.name
    if stem in _PACKAGE_FILES and pure.parent.name:
        return pure.parent.name
    return stem


# -- lines and pieces ------------------------------------------------------------------------------


class _Lines:
    """The file's lines and their offsets, so any span's text and size cost O(1)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.rows = text.split("\n")
        self.starts = [0, *accumulate(len(row) + 1 for row in self.rows[:-1])]
        self.ends = [start + len(row) for start, row in zip(self.starts, self.rows, strict=True)]
        self.blank = [not row.strip() for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def chars(self, first: int, last: int) -> int:
        return self.ends[last] - self.starts[first]

    def text_of(self, first: int, last: int) -> str:
        """Exactly the file's text of rows first..last, without the final line's terminator."""
        end = self.ends[last]
        if end > self.starts[last] and self.text[end - 1] == "\r":
            end -= 1
        return self.text[self.starts[first] : end]

    def trim(self, first: int, last: int) -> tuple[int, int] | None:
        """The span without its leading and trailing blank lines; None when all blank."""
        while first <= last and self.blank[first]:
            first += 1
        while last >= first and self.blank[last]:
            last -= 1
        return (first, last) if first <= last else None

    def paragraph_starts(self) -> list[int]:
        """Rows that follow a blank line: where plain text is best cut."""
        blank = self.blank
        return [row for row in range(1, len(blank)) if blank[row - 1] and not blank[row]]


@dataclass(slots=True)
class _Piece:
    """A span on its way to becoming a chunk.

    ``labels`` are the (symbol path, kind) of the definitions or sections it holds; a piece without
    any (code between definitions, a closing brace) takes the label of its neighbours when merged
    and ``scope`` otherwise.
    """

    start: int
    end: int
    scope: SymbolPath
    labels: tuple[Label, ...] = ()

    def joined(self, other: _Piece) -> _Piece:
        scope = _common_prefix((self.scope, other.scope))
        return _Piece(self.start, other.end, scope, self.labels + other.labels)

    @property
    def label(self) -> tuple[SymbolPath, str | None]:
        """The deepest path enclosing everything it holds, and that path's kind if it holds it."""
        if not self.labels:
            return self.scope, None
        path = _common_prefix(tuple(p for p, _ in self.labels))
        return path, next((kind for p, kind in self.labels if p == path), None)


def _common_prefix(paths: tuple[SymbolPath, ...]) -> SymbolPath:
    first = paths[0]
    for index, part in enumerate(first):
        if any(len(other) <= index or other[index] != part for other in paths[1:]):
            return first[:index]
    return first


class _Packer:
    """Cuts long spans into windows and merges small neighbouring pieces, within a line budget."""

    def __init__(self, lines: _Lines, lines_per_chunk: int) -> None:
        self.lines = lines
        self.window = max(1, lines_per_chunk)
        self.window_chars = self.window * CHARS_PER_LINE
        self.small = max(1, self.window // 6)

    def fits(self, first: int, last: int, scale: float = 1.0) -> bool:
        return (
            last - first + 1 <= self.window * scale
            and self.lines.chars(first, last) <= self.window_chars * scale
        )

    def windows(self, first: int, last: int, bounds: list[int]) -> list[tuple[int, int]]:
        """Cut a span into windows of about equal size, preferring to cut at ``bounds`` rows."""
        out = []
        span = self.lines.trim(first, last)
        while span is not None:
            first, last = span
            if self.fits(first, last):
                out.append(span)
                break
            parts = -(-(last - first + 1) // self.window)
            target = first + -(-(last - first + 1) // parts)
            reach = self._reach(first, last)
            cut = _nearest(bounds, first + 1, reach + 1, target)
            if piece := self.lines.trim(first, cut - 1):
                out.append(piece)
            span = self.lines.trim(cut, last)
        return out

    def _reach(self, first: int, last: int) -> int:
        """The last row a window starting at ``first`` may hold (at least ``first`` itself)."""
        last = min(last, first + self.window - 1)
        budget = self.lines.starts[first] + self.window_chars
        return max(first, bisect_right(self.lines.ends, budget, first, last + 1) - 1)

    def merge(self, pieces: list[_Piece]) -> list[_Piece]:
        """Pack runs of small pieces together, then attach any still-small piece to a neighbour."""
        packed: list[_Piece] = []
        run = False  # whether packed[-1] is made of small pieces only
        for piece in pieces:
            small = self._small(piece)
            if run and small and self.fits(packed[-1].start, piece.end):
                packed[-1] = packed[-1].joined(piece)
                continue
            packed.append(piece)
            run = small
        out: list[_Piece] = []
        carry: _Piece | None = None
        for piece in packed:
            if carry is not None:
                if self.fits(carry.start, piece.end, FIT_SCALE):
                    piece = carry.joined(piece)
                else:
                    out.append(carry)
                carry = None
            if not self._small(piece):
                out.append(piece)
            elif out and self.fits(out[-1].start, piece.end, FIT_SCALE):
                out[-1] = out[-1].joined(piece)
            else:
                carry = piece
        if carry is not None:
            out.append(carry)
        return out

    def _small(self, piece: _Piece) -> bool:
        return piece.end - piece.start + 1 <= self.small

    def region(self, first: int, last: int, scope: SymbolPath, labels: tuple[Label, ...],
               bounds: list[int]) -> list[_Piece]:  # fmt: skip
        return [_Piece(a, b, scope, labels) for a, b in self.windows(first, last, bounds)]


def _nearest(bounds: list[int], low: int, high: int, target: int) -> int:
    """The row of ``bounds`` within low..high closest to ``target``; ``high`` if there is none."""
    index = bisect_left(bounds, target)
    candidates = [row for row in bounds[max(0, index - 1) : index + 1] if low <= row <= high]
    return min(candidates, key=lambda row: abs(row - target)) if candidates else high


def _to_chunks(path: str, language: str, lines: _Lines, pieces: list[_Piece],
               kind_of: Callable[[SymbolPath], str], separator: str = ".") -> list[Chunk]:  # fmt: skip
    """``kind_of`` names the kind of a merged chunk's label, which may be no piece's own."""
    chunks = []
    for piece in pieces:
        label, kind = piece.label
        chunks.append(Chunk(
            path=path, language=language, start_line=piece.start + 1, end_line=piece.end + 1,
            symbol=separator.join(label), kind=kind or kind_of(label),
            text=lines.text_of(piece.start, piece.end),
        ))  # fmt: skip
    return chunks


# -- markdown, config and plain text ---------------------------------------------------------------

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*\r?$")
_SETEXT = re.compile(r" {0,3}(?:=+|-{2,})[ \t]*\r?$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_NOT_SETEXT_TEXT = re.compile(r"\s*(?:[-*+>|#]|\d+[.)]\s)")
_CONFIG_SECTION = {
    "toml": re.compile(r"\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$"),
    "ini": re.compile(r"\s*\[([^\[\]]+)\]\s*(?:[#;].*)?$"),
    "yaml": re.compile(r"(\"[^\"]*\"|'[^']*'|[^\s#'\"\-][^:#]*?):(?:\s|$)"),
}
_MAX_TITLE = 120


def _line_file(
    path: str, language: str, lines: _Lines, packer: _Packer, error: str | None = None
) -> ParsedFile:
    """Chunks by sections (Markdown headings, config tables) and lines, with no grammar involved."""
    if language == MARKDOWN:
        sections, separator, preamble = _markdown_sections(lines), " > ", "section"
    else:
        sections, separator, preamble = _config_sections(language, lines), ".", "lines"
    paragraphs = sorted(set(lines.paragraph_starts() + [row for row, _ in sections]))
    pieces: list[_Piece] = []
    for index, (row, name) in enumerate([(0, ()), *sections]):
        end = sections[index][0] - 1 if index < len(sections) else len(lines) - 1
        labels = ((name, "section"),) if name else ()  # the preamble joins the first section's label
        pieces += packer.region(row, end, (), labels, paragraphs)
    chunks = _to_chunks(
        path, language, lines, packer.merge(pieces), lambda name: "section" if name else preamble, separator
    )
    return ParsedFile(language=language, chunks=chunks, error=error)


def _markdown_sections(lines: _Lines) -> list[tuple[int, SymbolPath]]:
    """(first row, heading path) of each section, ignoring headings inside fenced code."""
    rows = lines.rows
    sections: list[tuple[int, SymbolPath]] = []
    stack: list[tuple[int, str]] = []
    fence = ""
    first = _front_matter_end(rows)
    for row in range(first, len(rows)):
        text = rows[row]
        if fence:
            fence = "" if text.strip().startswith(fence) else fence
            continue
        if opening := _FENCE.match(text):
            fence = opening[1]
            continue
        if atx := _ATX.match(text):
            heading = (row, len(atx[1]), atx[2] or "")
        elif row > first and _SETEXT.match(text) and _setext_text(rows[row - 1], lines.blank[row - 1]):
            heading = (row - 1, 1 if "=" in text else 2, rows[row - 1])
        else:
            continue
        start, level, title = heading
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title.strip()[:_MAX_TITLE]))
        sections.append((start, tuple(name for _, name in stack)))
    return sections


def _front_matter_end(rows: list[str]) -> int:
    """First row after a YAML front-matter block (0 when there is none)."""
    if not rows or rows[0].rstrip() != "---":
        return 0
    for row in range(1, len(rows)):
        if rows[row].rstrip() in ("---", "..."):
            return row + 1
    return 0


def _setext_text(previous: str, blank: bool) -> bool:
    """Whether the line above a ``===``/``---`` underline is heading text (not a list or table)."""
    return not (blank or _NOT_SETEXT_TEXT.match(previous) or _ATX.match(previous) or _SETEXT.match(previous))


def _config_sections(language: str, lines: _Lines) -> list[tuple[int, SymbolPath]]:
    """(first row, name) of each TOML/INI table or YAML top-level key; none for other formats."""
    pattern = _CONFIG_SECTION.get(language)
    if pattern is None:
        return []
    sections = []
    for row, text in enumerate(lines.rows):
        if match := pattern.match(text):
            name = match[1].strip().strip("\"'")
            parts = name.split(".") if language == "toml" else [name]
            sections.append((row, tuple(part.strip().strip("\"'") for part in parts)))
    return sections


# -- tree-sitter ----------------------------------------------------------------------------------

_local = threading.local()  # tree-sitter parsers are not thread-safe: one set per thread


def _parser(language: str) -> Parser:
    parsers: dict[str, Parser] = _local.__dict__.setdefault("parsers", {})
    if language not in parsers:
        parsers[language] = get_parser(language)  # type: ignore[arg-type]
    return parsers[language]


@dataclass(frozen=True)
class _Tags:
    """A compiled tags query and, for each of its patterns, the (role, kind, capture) it tags."""

    query: Query
    roles: list[tuple[str, str, str]]


_TAG = re.compile(r"@((definition|reference)\.(\w+))")


def _tags(language: str) -> _Tags | None:
    """The tags query of a language, compiled once per thread (None when nothing can be derived)."""
    cache: dict[str, _Tags | None] = _local.__dict__.setdefault("tags", {})
    if language not in cache:
        grammar = get_language(language)  # type: ignore[arg-type]
        spec = SPECS.get(language)
        if spec is not None:
            patterns = spec.patterns()
        else:
            names = (grammar.node_kind_for_id(i) for i in range(grammar.node_kind_count))
            patterns = [p for p in generic_candidates(n for n in names if n) if _compiles(grammar, p)]
        cache[language] = _compile(grammar, patterns) if patterns else None
    return cache[language]


def _compile(grammar: object, patterns: list[str]) -> _Tags:
    query = Query(grammar, "\n".join(patterns))  # type: ignore[arg-type]
    roles = [(m[2], m[3], m[1]) for m in (list(_TAG.finditer(p))[-1] for p in patterns)]
    if query.pattern_count != len(roles):
        raise ValueError(f"{len(roles)} pattern strings hold {query.pattern_count} query patterns")
    return _Tags(query, roles)


def _compiles(grammar: object, pattern: str) -> bool:
    try:
        Query(grammar, pattern)  # type: ignore[arg-type]
    except QueryError:
        return False
    return True


def _end_row(node: Node) -> int:
    """Last row a node occupies (one that ends at column 0 ends on the row before)."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point.row else row


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


_SEPARATORS = re.compile(r"\?\.|::|\.|:|\\|->")
_IDENTIFIER = re.compile(r"~?(?:[^\W\d]|\$)[\w$]*[?!]?")
_CHAIN = re.compile(r"[\w$]+(?:(?:\?\.|\.|::|->|:)[\w$]+)*")
_MAX_NAME = 200
_TAIL_FIELDS = (
    "name", "property", "attribute", "field", "method", "suffix", "right", "function",
    "constructor", "type", "macro",
)  # fmt: skip
_OPAQUE = frozenset({
    "parenthesized_expression", "arrow_function", "function_expression", "lambda",
    "lambda_expression", "lambda_literal", "closure_expression", "anonymous_function", "block",
})  # fmt: skip


def _name_parts(node: Node) -> tuple[Node, SymbolPath]:
    """The node naming a definition and its components (``Point::distance`` → Point, distance)."""
    while node.type.endswith("declarator"):
        inner = node.child_by_field_name("declarator")
        if inner is None:
            named = [child for child in node.named_children if not child.type.endswith("qualifier")]
            if not named:
                break
            inner = named[-1]
        node = inner
    if any(child.is_missing for child in node.children) and (name := node.child_by_field_name("name")):
        # Error recovery invented a separator: ``EXPORT_API Result Decode(...)`` (an export macro
        # before the return type) reads as ``Result::Decode``; the name is still the name.
        node = name
    raw = _text(node)[:_MAX_NAME]
    parts = tuple(m[0] for piece in _SEPARATORS.split(raw) if (m := _IDENTIFIER.search(piece)))
    return node, parts or (raw.strip() or node.type,)


def _callee_name(node: Node) -> Node | None:
    """The identifier a call or type reference ultimately names (``a.b.c()`` → ``c``)."""
    for _ in range(8):
        if node.type in _OPAQUE:
            return None
        if node.named_child_count == 0:
            return node
        inner = None
        for name in _TAIL_FIELDS:
            if (inner := node.child_by_field_name(name)) is not None:
                break
        if inner is None:
            generic = "generic" in node.type or "template" in node.type
            inner = node.named_children[0 if generic else -1]
        node = inner
    return None


@dataclass(slots=True)
class _Def:
    """One definition: where its chunk spans and what it is called."""

    kind: str
    node: Node
    name_node: Node
    parts: SymbolPath
    start: int  # first row, including decorators, export keywords and leading comments
    end: int
    end_byte: int
    path: SymbolPath = ()
    scope: SymbolPath = ()  # the path its nested definitions are qualified with
    children: list[_Def] = field(default_factory=list)


class _SyntaxFile:
    """One file parsed by tree-sitter, turned into pieces and symbols."""

    def __init__(self, path: str, language: str, lines: _Lines, packer: _Packer) -> None:
        self.path = path
        self.language = language
        self.lines = lines
        self.packer = packer
        self.spec = SPECS.get(language, LanguageSpec())
        self.module: SymbolPath = (module_name(path),)
        self.kinds: dict[SymbolPath, str] = {self.module: "module"}
        self._child_rows: dict[int, tuple[list[Node], list[int], list[int]]] = {}

    def parse(self, parser: Parser) -> ParsedFile:
        tree = parser.parse(self.lines.text.encode("utf-8", "surrogatepass"))
        root = tree.root_node
        tags = _tags(self.language)
        found, references = self._matches(tags, root) if tags is not None else ([], [])
        roots, defs = self._nest(found)
        pieces = self._scope(self.module, 0, len(self.lines) - 1, roots, root, None, 0)
        chunks = _to_chunks(self.path, self.language, self.lines, pieces, self._kind_of)
        symbols = [self._definition(d) for d in defs] + self._references(references, defs)
        return ParsedFile(language=self.language, chunks=chunks, symbols=symbols)

    def _kind_of(self, label: SymbolPath) -> str:
        return self.kinds.get(label, "module")

    # definitions and references

    def _matches(self, tags: _Tags, root: Node) -> tuple[list[_Def], list[tuple[str, Node, Node]]]:
        """Run the tags query once; a node matched by several patterns keeps the first pattern's kind."""
        best: dict[int, tuple[int, _Def]] = {}
        references = []
        for index, captures in QueryCursor(tags.query).matches(root):
            role, kind, key = tags.roles[index]
            if key not in captures:
                continue
            if role == "reference":
                expression = captures.get("name", captures[key])[0]
                if (name := _callee_name(expression)) is not None:
                    references.append((kind, expression, name))
            elif "name" in captures:
                node = captures[key][0]
                if node.id not in best or index < best[node.id][0]:
                    best[node.id] = (index, self._new_def(kind, node, captures))
        return [d for _, d in best.values()], references

    def _new_def(self, kind: str, node: Node, captures: dict[str, list[Node]]) -> _Def:
        name_node, parts = _name_parts(captures["name"][0])
        if scope := captures.get("scope"):
            parts = _name_parts(scope[0])[1] + parts
        if kind == "class":
            kind = next((c.type for c in node.children if not c.is_named and c.type in KEYWORD_KINDS), kind)
        outer = self._outer(node)
        start = min(self._leading_start(outer), node.start_point.row)
        return _Def(kind, node, name_node, parts, start, _end_row(outer), node.end_byte)

    def _outer(self, node: Node) -> Node:
        """The node plus its wrappers (decorators, ``export``), unless they hold sibling definitions."""
        while (parent := node.parent) is not None and parent.type in self.spec.wrappers:
            if sum(child.type == node.type for child in parent.named_children) > 1:
                break
            node = parent
        return node

    def _leading_start(self, node: Node) -> int:
        """First row of the comments and attributes directly above a definition."""
        start = node.start_point.row
        previous = node.prev_named_sibling
        while previous is not None and self._is_leading(previous.type) and _end_row(previous) >= start - 1:
            before = previous.prev_sibling
            if before is not None and _end_row(before) >= previous.start_point.row:
                break  # a comment trailing the code before it
            start = previous.start_point.row
            previous = previous.prev_named_sibling
        return start

    def _is_leading(self, node_type: str) -> bool:
        return "comment" in node_type or node_type in LEADING_TYPES or node_type in self.spec.leading

    def _nest(self, found: list[_Def]) -> tuple[list[_Def], list[_Def]]:
        """Nest definitions by byte range, qualify their paths; returns (top level, all in order)."""
        roots: list[_Def] = []
        kept: list[_Def] = []
        stack: list[_Def] = []
        for d in sorted(found, key=lambda d: (d.node.start_byte, -d.node.end_byte)):
            while stack and not d.node.start_byte < d.node.end_byte <= stack[-1].end_byte:
                stack.pop()
            parent = stack[-1] if stack else None
            self._qualify(d, parent)
            siblings = parent.children if parent is not None else roots
            if self.spec.merge_clauses and siblings and siblings[-1].path == d.path:
                first = siblings[-1]  # d is another clause of the same function
                first.end, first.end_byte = max(first.end, d.end), max(first.end_byte, d.end_byte)
                stack.append(first)
                continue
            siblings.append(d)
            kept.append(d)
            stack.append(d)
        return roots, kept

    def _qualify(self, d: _Def, parent: _Def | None) -> None:
        prefix = parent.scope if parent is not None else self.module
        enclosing = self.kinds.get(prefix, "module")
        if d.kind == "function" and (enclosing in CLASS_KINDS or len(d.parts) > 1):
            d.kind = "method"
        d.path = prefix + d.parts
        d.scope = d.path if d.kind in SCOPE_KINDS else prefix
        self.kinds.setdefault(d.path, d.kind)

    def _definition(self, d: _Def) -> Symbol:
        return Symbol(
            name=d.parts[-1], qualified=".".join(d.path), kind=d.kind,
            line=d.name_node.start_point.row + 1, end_line=d.end + 1, role="definition",
        )  # fmt: skip

    def _references(self, found: list[tuple[str, Node, Node]], defs: list[_Def]) -> list[Symbol]:
        """Names called and types used, except the names of the file's own definitions."""
        defined = {(d.name_node.start_byte, d.name_node.end_byte) for d in defs}
        seen = set()
        symbols = []
        for kind, expression, name_node in found:
            if (name_node.start_byte, name_node.end_byte) in defined:
                continue
            name = _text(name_node) if name_node.end_byte - name_node.start_byte <= _MAX_NAME else ""
            if _IDENTIFIER.fullmatch(name):
                qualified = name if expression.id == name_node.id else self._qualified(expression, name)
            elif _CHAIN.fullmatch(name):  # a dotted name in one node, like an Elixir alias Foo.Bar
                qualified = ".".join(_SEPARATORS.split(name))
                name = qualified.rsplit(".", 1)[-1]
            else:
                continue
            line = name_node.start_point.row + 1
            if (key := (name, qualified, kind, line)) not in seen:
                seen.add(key)
                symbols.append(Symbol(name, qualified, kind, line, line, "reference"))
        return symbols

    @staticmethod
    def _qualified(expression: Node, name: str) -> str:
        """``a.b.c`` for a callee written as a plain chain of names, else just the name."""
        chain = _text(expression) if expression.end_byte - expression.start_byte <= _MAX_NAME else ""
        return ".".join(_SEPARATORS.split(chain)) if _CHAIN.fullmatch(chain) else name

    # chunks

    def _scope(self, scope: SymbolPath, first: int, last: int, children: list[_Def], node: Node,
               header: Label | None, depth: int) -> list[_Piece]:  # fmt: skip
        """Pieces covering rows first..last of a module or container: its definitions and the gaps.

        The gap before the first member of a container is its header (carrying its label); other
        gaps (imports, fields, closing braces) take their neighbours' labels when merged.
        """
        pieces: list[_Piece] = []
        cursor = first
        for d in children:
            start, end = max(d.start, cursor), min(d.end, last)
            if start > end:
                continue  # shares its only line with the previous definition
            if cursor < start:
                labels = (header,) if header is not None and cursor == first else ()
                pieces += self._gap(cursor, start - 1, scope, labels, node)
            pieces += self._def_pieces(d, start, end, depth)
            cursor = end + 1
        pieces += self._gap(cursor, last, scope, (), node)
        return self.packer.merge(pieces)

    def _def_pieces(self, d: _Def, start: int, end: int, depth: int) -> list[_Piece]:
        """One piece if it fits; a container's header and members; else windows cut between statements."""
        label = (d.path, d.kind)
        if self.packer.fits(start, end, FIT_SCALE) or depth >= MAX_DEPTH:
            span = self.lines.trim(start, end)
            return [_Piece(span[0], span[1], d.path, (label,))] if span else []
        if d.kind in CONTAINER_KINDS and d.children:
            return self._scope(d.path, start, end, d.children, d.node, label, depth + 1)
        return self.packer.region(start, end, d.path, (label,), self._bounds(d.node, start, end))

    def _gap(self, first: int, last: int, scope: SymbolPath, labels: tuple[Label, ...],
             node: Node) -> list[_Piece]:  # fmt: skip
        if first > last:
            return []
        bounds = [] if self.packer.fits(first, last) else self._bounds(node, first, last)
        return self.packer.region(first, last, scope, labels, bounds)

    def _bounds(self, node: Node, first: int, last: int) -> list[int]:
        """Rows within first..last where a statement starts, looking inside statements too long
        for one window, so a long definition is cut between statements rather than inside one."""
        rows = set()
        stack = [node]
        while stack:
            children, tops, bottoms = self._children(stack.pop())
            low, high = bisect_left(bottoms, first), bisect_right(tops, last)
            for index in range(low, high):
                top, bottom = tops[index], bottoms[index]
                if top > first and not self._follows_comment(children, bottoms, index):
                    rows.add(top)
                if bottom - top + 1 > self.packer.window:
                    stack.append(children[index])
        return sorted(rows)

    def _follows_comment(self, children: list[Node], bottoms: list[int], index: int) -> bool:
        """Whether a comment sits right above this statement (a cut there would orphan it)."""
        return (
            index > 0
            and bottoms[index - 1] == children[index].start_point.row - 1
            and self._is_leading(children[index - 1].type)
        )

    def _children(self, node: Node) -> tuple[list[Node], list[int], list[int]]:
        """A node's named children with their first and last rows (both ascending), cached, so
        cutting many gaps of one long module does not rescan all of its statements each time."""
        if (cached := self._child_rows.get(node.id)) is None:
            children = node.named_children
            cached = (children, [c.start_point.row for c in children], [_end_row(c) for c in children])
            self._child_rows[node.id] = cached
        return cached
