"""Gathering context from the index: the selection and what a reader of it would open next.

Each gatherer returns :class:`Snippet` values best first; the caller orders the kinds by the
recipe's ``context`` list and hands them to :func:`ragls.recipes.context.assemble`. Files are
read from disk (the index may lag an unsaved or just-saved edit by a moment; the text on disk is
what the user sees), and every read tolerates invalid UTF-8 and vanished files.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ragls.indexer.engine import decode_source
from ragls.indexer.model import ParsedFile, Symbol
from ragls.indexer.parsing import parse
from ragls.recipes.context import Snippet, shared_snippet

if TYPE_CHECKING:
    from ragls.indexer.engine import Index

TEST_PATH = re.compile(
    r"(^|/)(tests?|specs?|__tests__)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$|Tests?\.\w+$"
)
README = re.compile(r"readme(\.\w+)?$", re.IGNORECASE)
TOP_DOCS = re.compile(r"^(docs?/[^/]+|architecture|contributing|overview|design)(\.\w+)?$", re.IGNORECASE)
DOC_SUFFIXES = (".md", ".rst", ".txt", ".adoc", "")
MAX_SNIPPET_LINES = 80  # a longer definition is shown by its head
DEFINITIONS_PER_NAME = 2  # an overloaded name's first few definitions; more is noise
MAX_NAMES = 12


class SelectionError(ValueError):
    """The file or line range the user named cannot be worked on (the message says why)."""


@dataclass
class Selection:
    """The code a recipe is about, and the parse of the file it sits in."""

    path: str  # relative to the workspace root, '/'-separated
    lines: list[str]  # the whole file
    start_line: int  # 1-based, inclusive
    end_line: int
    parsed: ParsedFile
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines[self.start_line - 1 : self.end_line])

    @property
    def numbered(self) -> str:
        width = len(str(self.end_line))
        return "\n".join(
            f"{n:>{width}} {self.lines[n - 1]}" for n in range(self.start_line, self.end_line + 1)
        )

    @property
    def language(self) -> str:
        return self.parsed.language

    def definitions(self) -> list[Symbol]:
        return [s for s in self.parsed.symbols if s.role == "definition"]

    def innermost(self, strictly_larger: bool = False) -> Symbol | None:
        """The smallest definition covering the selection (larger than it, if asked)."""
        covering = [
            s
            for s in self.definitions()
            if s.line <= self.start_line and s.end_line >= self.end_line
            and not (strictly_larger and (s.line, s.end_line) == (self.start_line, self.end_line))
        ]
        return min(covering, key=lambda s: s.end_line - s.line, default=None)

    @property
    def symbol(self) -> str:
        inner = self.innermost()
        return inner.qualified if inner else ""


def read_lines(path: Path) -> tuple[list[str], str | None]:
    """The file's lines and a caveat when its bytes were not valid UTF-8 (they are replaced)."""
    return decode(path.read_bytes(), path.name)


def decode(data: bytes, name: str) -> tuple[list[str], str | None]:
    text, bad_at = decode_source(data)
    note = None
    if bad_at is not None:
        note = f"{name} is not valid UTF-8 (first bad byte at {bad_at}); bad bytes shown as \ufffd"
    lines = text.replace("\r\n", "\n").split("\n")  # newlines only, as the parser counts them
    if lines and lines[-1] == "":
        lines.pop()
    return lines, note


def relative(index: Index, file: str | Path, cwd: Path | None = None, *, on_disk: bool = True) -> str:
    """The workspace-relative path of ``file`` (given relative to ``cwd`` or to the root).
    ``on_disk=False``: an absolute path need not exist (an editor's buffer not saved yet)."""
    given = Path(file).expanduser()
    candidates = [given] if given.is_absolute() else [(cwd or Path.cwd()) / given, index.root / given]
    for candidate in candidates:
        if candidate.is_file() or (not on_disk and candidate.is_absolute()):
            try:
                return candidate.resolve().relative_to(index.root).as_posix()
            except ValueError:
                raise SelectionError(f"{file} is outside the workspace {index.root} (pass --root)") from None
    raise SelectionError(f"{file}: no such file")


def select(index: Index, file: str | Path, start: int | None = None, end: int | None = None,
           cwd: Path | None = None, text: str | None = None) -> Selection:
    """The selection ``file[:start[-end]]``: the whole file without lines; with one line, the
    innermost definition around it (what "explain line 12" means); a range as given. ``text`` is
    the editor's unsaved buffer of the file, read instead of the disk."""
    rel = relative(index, file, cwd, on_disk=text is None)
    if index.rules.secret.match_file(rel):
        raise SelectionError(f"{rel} looks like a secret-bearing file; ragls never sends it to a model")
    try:
        data = (index.root / rel).read_bytes() if text is None else text.encode("utf-8", "replace")
    except OSError as exc:
        raise SelectionError(f"{rel}: cannot read ({exc.strerror or exc})") from None
    if b"\0" in data[:8192]:
        raise SelectionError(f"{rel} is a binary file")
    lines, note = decode(data, rel)
    if not any(line.strip() for line in lines):
        raise SelectionError(f"{rel} is empty: there is no code to work on")
    parsed = parse(rel, "\n".join(lines), index.cfg.index.lines_per_chunk)
    notes = [n for n in (note, parsed.error) if n]
    total = len(lines)
    if start is None:
        return Selection(rel, lines, 1, total, parsed, notes)
    end = start if end is None else end
    if start < 1 or end < start:
        raise SelectionError(f"{rel}:{start}-{end} is not a line range (lines count from 1, start <= end)")
    if start > total:
        raise SelectionError(f"{rel} has {total} lines; line {start} is past its end")
    if end > total:
        notes.append(f"{rel} has {total} lines; the selection stops at line {total}")
        end = total
    selection = Selection(rel, lines, start, end, parsed, notes)
    if start == end:
        inner = selection.innermost()
        if inner is not None:
            selection.start_line, selection.end_line = inner.line, inner.end_line
    return selection


def excerpt(lines: list[str], start: int, end: int) -> tuple[str, int]:
    """Lines ``start``..``end`` (1-based), at most MAX_SNIPPET_LINES of them; returns the text and
    the last line shown, so the snippet's label tells the truth about what it holds."""
    last = min(end, start + MAX_SNIPPET_LINES - 1, len(lines))
    return "\n".join(lines[start - 1 : last]), last


class Gatherer:
    """Snippets of each context kind for one selection or query, reading each file once."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._files: dict[str, list[str]] = {}

    def lines_of(self, path: str) -> list[str]:
        if path not in self._files:
            try:
                self._files[path] = read_lines(self.index.root / path)[0]
            except OSError:
                self._files[path] = []
        return self._files[path]

    def span(self, path: str, start: int, end: int, source: str, score: float) -> Snippet | None:
        text, last = excerpt(self.lines_of(path), start, end)
        return Snippet(path, start, last, text, source, score) if text.strip() else None

    def _chunk(self, chunk_id: int, path: str, start: int, end: int, source: str, score: float):
        text = self.index.store.chunk_text(chunk_id)
        return Snippet(path, start, end, text, source, score) if text and text.strip() else None

    def enclosing(self, sel: Selection) -> list[Snippet]:
        """The definition the selection sits in (a method's class, a block's function)."""
        outer = sel.innermost(strictly_larger=True)
        if outer is None:
            return []
        snippet = self.span(sel.path, outer.line, outer.end_line, "enclosing", 1.0)
        return [snippet] if snippet else []

    def definitions(self, sel: Selection) -> list[Snippet]:
        """Definitions, anywhere in the index, of the names the selection uses (most used first)."""
        inside = {s.name for s in sel.definitions() if sel.start_line <= s.line <= sel.end_line}
        used = Counter(
            s.name
            for s in sel.parsed.symbols
            if s.role == "reference" and sel.start_line <= s.line <= sel.end_line and s.name not in inside
        )
        snippets: list[Snippet] = []
        for name, count in used.most_common(MAX_NAMES):
            found = self.index.store.symbol_definitions([name])
            found = [d for d in found if d[1] == name]  # the store matches names case-insensitively
            found.sort(key=lambda d: (d[0] != sel.path, TEST_PATH.search(d[0]) is not None, d[0], d[3]))
            for path, _name, _qualified, line, end_line in found[:DEFINITIONS_PER_NAME]:
                snippet = self.span(path, line, end_line, "definition", float(count))
                if snippet:
                    snippets.append(snippet)
        return snippets

    def tests(self, sel: Selection, limit: int = 3) -> list[Snippet]:
        """Tests of this file or symbol: test files named after the module, then test chunks
        that mention the symbol (the style and fixtures a new test should follow)."""
        stem = PurePosixPath(sel.path).stem.lower()
        name = sel.symbol.rsplit(".", 1)[-1] if sel.symbol else stem
        files = [p for p in self.index.store.files() if TEST_PATH.search(p) and p != sel.path]
        named = sorted(p for p in files if stem and stem in PurePosixPath(p).stem.lower())
        test_files = set(files)
        hits = [r for r in self.index.search(name, 30, mode="bm25", shared=False) if r.path in test_files]
        snippets: list[Snippet] = []
        for rank, path in enumerate(dict.fromkeys(named + [r.path for r in hits])):
            rows = self.index.store.chunks_of_files([path])
            texts = [(row, self.index.store.chunk_text(row.id) or "") for row in rows]
            mentioning = [(row, text) for row, text in texts if name in text] or texts[:1]
            for row, text in mentioning[:2]:
                if text.strip():
                    snippets.append(Snippet(path, row.start_line, row.end_line, text, "test", -rank))
            if len({s.path for s in snippets}) >= limit:
                break
        return snippets

    def retrieved(self, query: str, top_k: int = 8) -> list[Snippet]:
        """Hybrid search results for ``query`` (a question, or the selection's names)."""
        snippets = []
        for r in self.index.search(query, top_k):
            if r.repository:
                snippet = shared_snippet(r, "retrieved")
            else:
                snippet = self._chunk(r.chunk_id, r.path, r.start_line, r.end_line, "retrieved", r.score)
            if snippet and snippet.text.strip():
                snippets.append(snippet)
        return snippets

    def readme(self, docs: bool = False, chunks_per_file: int = 3) -> list[Snippet]:
        """The README (and, for questions about the whole project, the top-level docs)."""
        paths = sorted(self.index.store.files(), key=lambda p: (p.count("/"), p))
        picked = [p for p in paths if "/" not in p and README.match(p)]
        if docs:
            picked += [
                p for p in paths if TOP_DOCS.match(p) and PurePosixPath(p).suffix.lower() in DOC_SUFFIXES
            ]
        snippets = []
        for rank, path in enumerate(dict.fromkeys(picked)):
            for row in self.index.store.chunks_of_files([path])[:chunks_per_file]:
                snippet = self._chunk(row.id, path, row.start_line, row.end_line, "readme", -rank)
                if snippet:
                    snippets.append(snippet)
        return snippets


def names_in(sel: Selection, limit: int = 8) -> str:
    """A search query for a selection: its symbol and the names it uses most."""
    used = Counter(s.name for s in sel.parsed.symbols if sel.start_line <= s.line <= sel.end_line)
    names = [sel.symbol.rsplit(".", 1)[-1]] if sel.symbol else []
    return " ".join(dict.fromkeys(names + [n for n, _ in used.most_common(limit)]))


def new_test_path(index: Index, sel: Selection, related: list[Snippet]) -> str:
    """Where a new test file for ``sel`` would go: beside the related tests, else in the test
    folder the repository already has, else beside the file; named the language's usual way."""
    source = PurePosixPath(sel.path)
    stem, suffix = source.stem, source.suffix
    if sel.language == "go":
        name = f"{stem}_test{suffix}"
    elif sel.language in ("javascript", "typescript", "tsx"):
        name = f"{stem}.test{suffix}"
    else:
        name = f"test_{stem}{suffix}"
    folders = [PurePosixPath(s.path).parent for s in related if s.source == "test"]
    if not folders and sel.language != "go":  # Go tests live beside the code
        folders = [PurePosixPath(p).parent for p in sorted(index.store.files()) if TEST_PATH.search(p)][:1]
    folder = folders[0] if folders else source.parent
    return (folder / name).as_posix()
