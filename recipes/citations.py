"""Citations in model answers: found in the text, then checked against the index.

Models cite in several shapes (``path:12-20``, ``path:12``, `` `path` lines 12-20 ``,
``path#L12-L20``), and small models invent paths and line numbers. A citation is kept only if
its file is indexed and its span lies inside the file and overlaps indexed code; everything
else is dropped and counted, so an editor never opens a source that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ragls.indexer.deps.lookup import cited_spans

if TYPE_CHECKING:
    from ragls.indexer.engine import Index
    from ragls.recipes.context import Snippet

# A path: with a folder or an extension, and a letter somewhere (so "10:30" is no citation).
_PATH = r"/?(?:[\w.-]+/)+[\w.-]*[A-Za-z][\w.-]*|[\w.-]*[A-Za-z][\w-]*\.[A-Za-z]\w*"
# A dependency's file: ``name==version:`` before its path in the package (``httpx==0.28.1:httpx/_api.py``).
_PACKAGE = r"(?:@?[\w.-]+(?:/[\w.-]+)?==[\w.+!-]+:)?"
_DASH = r"\s*(?:-|–|—|to)\s*"
CITATION = re.compile(
    rf"(?<![\w/.:=-])`?(?P<path>{_PACKAGE}(?:{_PATH}))`?"
    rf"(?:(?::|#)L?(?P<a1>\d+)(?:{_DASH}L?(?P<b1>\d+))?"
    rf"|,?\s*\(?\s*(?:lines?|ll?\.)\s*(?P<a2>\d+)(?:{_DASH}(?P<b2>\d+))?)"
    r"(?![\w.]*\d)"
)


@dataclass(frozen=True)
class Citation:
    path: str
    start_line: int
    end_line: int
    repository: str = ""  # a shared index's repository ("" = this workspace)

    @property
    def label(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"

    @classmethod
    def of(cls, shown: dict) -> Citation:
        """The span an ``as_json``-shaped result names."""
        return cls(shown["path"], shown["start_line"], shown["end_line"], shown.get("repository", ""))

    def as_json(self) -> dict:
        shown = {"path": self.path, "start_line": self.start_line, "end_line": self.end_line}
        return shown | {"repository": self.repository} if self.repository else shown


@dataclass
class Checked:
    valid: list[Citation] = field(default_factory=list)  # distinct, with the index's paths
    dropped: list[tuple[Citation, str]] = field(default_factory=list)  # distinct, with the reason

    @property
    def dropped_count(self) -> int:
        return len(self.dropped)


def parse(text: str) -> list[Citation]:
    """Every citation in ``text``, in order of appearance, repeats removed."""
    found: dict[Citation, None] = {}
    for m in CITATION.finditer(text):
        start = int(m.group("a1") or m.group("a2"))
        end_text = m.group("b1") or m.group("b2")
        end = int(end_text) if end_text else start
        path = m.group("path").rstrip(".")
        found[Citation(path, start, end)] = None
    return list(found)


class Verifier:
    """Checks citations against one index; caches what it read so one answer costs few queries."""

    def __init__(self, index: Index, shared: Iterable[Snippet] = ()) -> None:
        self.index = index
        # what the prompt showed of shared repositories, cited as repository/path: all that is known
        self.shared: dict[str, list[Snippet]] = {}
        for snippet in shared:
            self.shared.setdefault(f"{snippet.repository}/{snippet.path}", []).append(snippet)
        self.files = set(index.store.files())
        self._lines: dict[str, int] = {}
        self._spans: dict[str, list[tuple[int, int]]] = {}

    def resolve(self, cited: str) -> str | None:
        """The indexed path a cited path means: itself, relative to the root, or the only
        indexed file it is a suffix of (models often drop leading folders)."""
        path = cited.strip("`'\"").removeprefix("./")
        if path.startswith("/"):
            try:
                path = Path(path).relative_to(self.index.root).as_posix()
            except ValueError:
                path = path.lstrip("/")
        if path in self.files:
            return path
        tail = "/" + path
        matches = [f for f in self.files if f.endswith(tail)]
        return matches[0] if len(matches) == 1 and PurePosixPath(path).name else None

    def line_count(self, path: str) -> int:
        if path not in self._lines:
            try:
                data = (self.index.root / path).read_bytes()
                self._lines[path] = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
            except OSError:  # gone from disk since indexing: the index is all we know
                self._lines[path] = max((end for _, end in self.spans(path)), default=0)
        return self._lines[path]

    def spans(self, path: str) -> list[tuple[int, int]]:
        if path not in self._spans:
            self._spans[path] = [(r.start_line, r.end_line) for r in self.index.store.chunks_of_files([path])]
        return self._spans[path]

    def check_one(self, citation: Citation) -> tuple[Citation | None, str]:
        """The citation with the index's path, or None and why it cannot be verified."""
        if "==" in citation.path:
            return self._check_dependency(citation)
        shown = self.shared.get(citation.path.strip("`'\"").removeprefix("./"))
        if shown:  # a shared repository's file: the span must overlap what the prompt showed of it
            start, end = citation.start_line, citation.end_line
            if not any(s.start_line <= end and start <= s.end_line for s in shown) or end < start:
                return None, "outside what the shared index returned"
            return Citation(shown[0].path, start, end, shown[0].repository), ""
        path = self.resolve(citation.path)
        if path is None:
            return None, "not an indexed file"
        start, end = citation.start_line, citation.end_line
        if start < 1 or end < start:
            return None, "not a line range"
        total = self.line_count(path)
        if end > total:
            return None, f"past the end of the file ({total} lines)"
        if not any(a <= end and start <= b for a, b in self.spans(path)):
            return None, "no indexed code in that span"
        return Citation(path, start, end), ""

    def _check_dependency(self, citation: Citation) -> tuple[Citation | None, str]:
        """A ``name==version:path`` citation: the workspace's installed version, an indexed span."""
        spans = cited_spans(self.index, citation.path)
        if not spans:
            return None, "not an indexed file of an installed dependency version"
        if not any(a <= citation.end_line and citation.start_line <= b for a, b in spans):
            return None, "no indexed signature in that span"
        return citation, ""

    def check(self, citations: list[Citation]) -> Checked:
        result = Checked()
        for citation in citations:
            good, why = self.check_one(citation)
            if good is None:
                result.dropped.append((citation, why))
            elif good not in result.valid:
                result.valid.append(good)
        return result


def verify(index: Index, text: str) -> Checked:
    """The citations of a model's ``text``, split into verified and dropped."""
    return Verifier(index).check(parse(text))
