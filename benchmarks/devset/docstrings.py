"""Docstring -> definition queries: a definition's own documentation, with the documentation
removed from what is indexed, asks for the definition (issue 19, the second kind of label).

The labels come from the code's authors, not from us: for each repository a seeded sample of
definitions (functions, methods, classes and their kin) that carry a docstring (Python) or a
leading doc comment (``///``, ``/** */``, ``//``, ``#``, ``--``) of at least :data:`MIN_WORDS`
words. The query is the documentation's first sentence(s), cleaned of comment markers, markup,
parameter tags and the definition's own names; the target is the definition's line span. The
benchmark then indexes a copy of the corpus root in which those documentation lines are blank
(kept as empty lines, so every line number holds), so the words cannot simply be looked up.

Definitions are found with the chunker's own tags patterns (``indexer/languages.py``), so a
language the chunker knows is a language these labels cover. Everything is derived at bench
time from the pinned artifact; the same code and artifact always give the same queries.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node, Query, QueryCursor
from tree_sitter_language_pack import get_language, get_parser

from benchmarks.corpora import cache_dir
from benchmarks.metrics import Target
from benchmarks.semble_quality import Query as Labelled
from ragls.indexer.languages import LEADING_TYPES, SPECS, language_for

CATEGORY = "docstring"
PER_REPO = 15
MIN_WORDS = 6
MAX_WORDS = 40
MAX_FILE_BYTES = 1_000_000
# What a query is made from; an implementation detail of a name is not documentation.
KINDS = frozenset({
    "function", "method", "class", "struct", "interface", "trait", "enum", "record", "protocol",
    "object", "module",
})  # fmt: skip
# Bump when the extraction or cleaning changes, so cached blanked copies are rebuilt.
VERSION = 1

_TEST_FILE = re.compile(
    r"(^|/)(tests?|spec|__tests__|testdata)/|_test\.\w+$|(^|/)test_[^/]*$|_spec\.rb$|\.(test|spec)\.[jt]sx?$"
)
_LEGAL = re.compile(r"copyright|licen[sc]e|spdx", re.IGNORECASE)
# One comment line's opening markers (``///``, ``//!``, ``/**``, ``*``, ``#``, ``--[[``) and closers.
_OPENER = re.compile(r"^\s*(?:/\*+!?|//[/!]?|\*(?!/)|#+|--+(?:\[=*\[)?)[ \t]?")
_CLOSER = re.compile(r"\s*(?:\*+/|\]=*\])\s*$")
# A line where the prose ends: parameter and return tags, section headings, examples, code.
_STOP = re.compile(
    r"^\s*(?:@\w+|:\w+|\\\w+|<(?:param|returns?|exception|typeparam|example|remarks|code)\b|>>>|```|#|"
    r"(?:Args|Arguments|Params|Parameters|Returns?|Raises|Throws|Yields|Examples?|Usage|Notes?|See also|"
    r"Panics|Errors|Safety|Options)\s*:?\s*$)",
    re.IGNORECASE,
)
_INLINE = (
    (re.compile(r"\{@\w+\s+([^}]*)\}"), r"\1"),  # {@link Foo#bar} -> Foo#bar
    (re.compile(r"<see\s+\w+=\"([^\"]*)\"\s*/>"), r"\1"),  # C# <see cref="X"/> -> X
    (re.compile(r"<paramref\s+name=\"([^\"]*)\"\s*/>"), r"\1"),
    (re.compile(r"</?\w+[^>]*>"), " "),  # remaining markup tags
    (re.compile(r":\w+:`~?([^`]*)`"), r"\1"),  # :class:`X` -> X
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](url) -> text
    (re.compile(r"\[`([^`\]]+)`\]"), r"\1"),  # [`Foo`] -> Foo
    (re.compile(r"https?://\S+"), " "),
    (re.compile(r"`|(?<![\w*])[*_]{1,2}(?=\w)|(?<=\w)[*_]{1,2}(?![\w*])"), ""),  # code and emphasis marks
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORD = re.compile(r"[A-Za-z]")
_DEF = "definition."  # the tags captures that mark a definition (``@definition.function``)


@dataclass(frozen=True)
class Doc:
    """One documented definition: where its documentation sits and what it asks for."""

    path: str  # below the corpus root, ``/``-separated
    name: str
    kind: str
    doc_rows: tuple[int, int]  # 0-based, inclusive: the lines blanked in the indexed copy
    span: tuple[int, int]  # 1-based, inclusive: the definition without its leading comment
    query: str


def extract(path: str, data: bytes) -> list[Doc]:
    """Every documented definition of one file whose cleaned documentation makes a query."""
    text = data.decode("utf-8", "replace")
    language = language_for(path, text)
    spec = SPECS.get(language or "")
    if spec is None or not spec.defs and not spec.queries:
        return []
    try:
        grammar = get_language(language)  # type: ignore[arg-type]
        root = get_parser(language).parse(data).root_node  # type: ignore[arg-type]
        query = Query(grammar, "\n".join(spec.patterns()))
    except Exception:  # a grammar that fails to load or a pattern this grammar lacks: no labels
        return []
    rows = data.split(b"\n")
    comments = _comments_by_end_row(root, rows)
    leading = _leading_by_end_row(root, spec.leading)
    docs: dict[int, Doc] = {}
    for _, captures in QueryCursor(query).matches(root):
        tagged = [(k.removeprefix(_DEF), v[0]) for k, v in captures.items() if k.startswith(_DEF)]
        if not tagged or "name" not in captures:
            continue
        kind, node = tagged[0]
        if kind not in KINDS or node.id in docs:
            continue
        outer = _outer(node, spec.wrappers)
        if language == "python":
            found = _docstring(node, rows)
        else:
            found = _leading_comment(outer, rows, comments, leading)
        if found is None:
            continue
        doc_rows, raw = found
        names = _names(captures["name"][0])
        cleaned = clean(raw, names)
        if cleaned is None:
            continue
        start = outer.start_point.row if language == "python" else max(outer.start_point.row, doc_rows[1] + 1)
        docs[node.id] = Doc(path, names[-1], kind, doc_rows, (start + 1, _end_row(outer) + 1), cleaned)
    return sorted(docs.values(), key=lambda d: d.doc_rows)


def _end_row(node: Node) -> int:
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point.row else row


def _outer(node: Node, wrappers: frozenset[str]) -> Node:
    """The definition with its wrappers (decorators, ``export``), as the chunker delimits it."""
    while (parent := node.parent) is not None and parent.type in wrappers:
        if sum(child.type == node.type for child in parent.named_children) > 1:
            break
        node = parent
    return node


def _alone(rows: list[bytes], node: Node) -> bool:
    """Whether ``node`` has its lines to itself (nothing before it on its first, after it on its last)."""
    before = rows[node.start_point.row][: node.start_point.column]
    row, column = node.end_point
    ends_line = column == 0 and row > node.start_point.row  # a line comment that took its newline
    after = b"" if ends_line or row >= len(rows) else rows[row][column:]
    return not before.strip() and not after.strip()


def _comments_by_end_row(root: Node, rows: list[bytes]) -> dict[int, Node]:
    """Comments that stand on lines of their own, by their last row."""
    out: dict[int, Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if "comment" in node.type:
            if _alone(rows, node):
                out[_end_row(node)] = node
            continue
        stack.extend(node.children)
    return out


def _leading_by_end_row(root: Node, extra: frozenset[str]) -> dict[int, Node]:
    """Attributes and decorators that may stand between a doc comment and its definition."""
    kinds = LEADING_TYPES | extra
    out: dict[int, Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in kinds:
            out[_end_row(node)] = node
            continue
        stack.extend(node.named_children)
    return out


def _leading_comment(
    outer: Node, rows: list[bytes], comments: dict[int, Node], leading: dict[int, Node]
) -> tuple[tuple[int, int], str] | None:
    """The comment block directly above a definition (attributes may sit between), or None."""
    row = outer.start_point.row - 1
    while row in leading and row not in comments:
        row = leading[row].start_point.row - 1
    block: list[Node] = []
    # Rust's inner docs (``//!``) describe the enclosing module, not what follows them
    while row in comments and not (comments[row].text or b"").startswith((b"//!", b"/*!")):
        block.append(comments[row])
        row = comments[row].start_point.row - 1
    if not block:
        return None
    first, last = block[-1].start_point.row, _end_row(block[0])
    return (first, last), b"\n".join(rows[first : last + 1]).decode("utf-8", "replace")


def _docstring(node: Node, rows: list[bytes]) -> tuple[tuple[int, int], str] | None:
    """A Python definition's docstring when it has its lines to itself, or None."""
    body = node.child_by_field_name("body")
    first = body.named_children[0] if body is not None and body.named_children else None
    if first is not None and first.type == "expression_statement" and first.named_child_count == 1:
        first = first.named_children[0]
    if first is None or first.type not in ("string", "concatenated_string") or not _alone(rows, first):
        return None
    raw = (first.text or b"").decode("utf-8", "replace")
    inner = re.sub(r"^[rRuUbBfF]*('''|\"\"\"|'|\")|('''|\"\"\"|'|\")$", "", raw.strip())
    return (first.start_point.row, _end_row(first)), inner


def _names(name: Node) -> tuple[str, ...]:
    """The identifiers a definition's name is written with, its own last (``M.f`` -> M, f;
    ``Point::distance`` -> Point, distance; a C declarator's name without its parameters)."""
    text = (name.text or b"").decode("utf-8", "replace").split("(")[0]
    return tuple(re.findall(r"[A-Za-z_$][\w$]*", text)) or (text,)


def clean(raw: str, names: Iterable[str] = ()) -> str | None:
    """The query a documentation comment makes: its first sentence(s), plain words, no tags and
    none of ``names``; None when fewer than :data:`MIN_WORDS` words are left (or it is legal text)."""
    if _LEGAL.search(raw):
        return None
    lines = []
    for line in raw.splitlines():
        line = _CLOSER.sub("", _OPENER.sub("", line, count=1))
        if _STOP.match(line) and lines:
            break
        if _STOP.match(line):
            continue
        if not line.strip():
            if lines:
                break  # the first paragraph only
            continue
        lines.append(line.strip())
    text = " ".join(lines)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    for name in sorted(set(names), key=len, reverse=True):
        if len(name) > 1:
            # the name and any chain it is part of (``Foo.bar()``, ``Foo#bar``, ``Foo::bar``)
            chain = rf"(?<![\w$.#:])(?:[\w$]+[.#:]+)*{re.escape(name)}(?![\w$])(?:[.#:]+[\w$]+)*(?:\(\))?"
            text = re.sub(chain, " ", text)
    text = re.sub(r"\s+", " ", text).strip(" ,;:-")
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    sentences = _SENTENCE_END.split(text)
    query = ""
    for sentence in sentences:
        query = f"{query} {sentence}".strip()
        if _words(query) >= MIN_WORDS:
            break
    words = query.split()
    if len(words) > MAX_WORDS:
        query = " ".join(words[:MAX_WORDS])
    if _words(query) < MIN_WORDS:
        return None
    return query[0].upper() + query[1:] if query[0].islower() else query


def _words(text: str) -> int:
    return sum(1 for word in text.split() if _WORD.search(word))


def blank(data: bytes, rows: Iterable[tuple[int, int]]) -> bytes:
    """``data`` with the lines of ``rows`` (0-based, inclusive ranges) emptied, line count kept."""
    lines = data.split(b"\n")
    for first, last in rows:
        for row in range(first, last + 1):
            lines[row] = b"\r" if lines[row].endswith(b"\r") else b""
    return b"\n".join(lines)


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    """Source files below ``root`` in a stable order, without hidden folders, tests and links."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "node_modules")
        for name in sorted(files):
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if name.startswith(".") or _TEST_FILE.search(rel) or path.is_symlink() or not path.is_file():
                continue  # a linked file too: blanking it would write through the link
            yield rel, path


def pick(root: Path, seed: str, n: int = PER_REPO) -> list[Doc]:
    """A seeded sample of ``n`` documented definitions below ``root``; documentation shared by
    two definitions (overloads, copies) is left out, since it names no single target."""
    found: list[Doc] = []
    for rel, path in _files(root):
        if path.stat().st_size <= MAX_FILE_BYTES:
            found.extend(extract(rel, path.read_bytes()))
    counts = Counter(d.query for d in found)
    unique = [d for d in found if counts[d.query] == 1]
    chosen = random.Random(seed).sample(unique, min(n, len(unique)))
    return sorted(chosen, key=lambda d: (d.path, d.doc_rows))


def labels(repo: str, docs: Iterable[Doc], annotation_path: Callable[[str], str]) -> list[Labelled]:
    """The sample as queries of the benchmark, paths as annotations write them."""
    return [Labelled(repo, d.query, CATEGORY, (Target(annotation_path(d.path), *d.span),)) for d in docs]


def blanked_copy(root: Path, docs: list[Doc], key: str) -> Path:
    """A copy of ``root`` with the sampled documentation blanked, built once per ``key`` and sample
    (``root`` itself when nothing was sampled)."""
    if not docs:
        return root
    plan = "\n".join(f"{d.path}:{d.doc_rows[0]}-{d.doc_rows[1]}" for d in docs)
    digest = hashlib.sha256(f"{VERSION}\n{root}\n{plan}".encode()).hexdigest()[:12]
    folder = cache_dir() / "docstring-roots" / f"{key}-{digest}"
    if (folder / ".complete").exists():
        return folder / "root"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(root, folder / "root", symlinks=True)
    by_file: dict[str, list[tuple[int, int]]] = {}
    for d in docs:
        by_file.setdefault(d.path, []).append(d.doc_rows)
    for rel, rows in by_file.items():
        target = folder / "root" / rel
        target.write_bytes(blank(target.read_bytes(), rows))
    (folder / ".complete").touch()
    return folder / "root"
