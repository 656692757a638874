"""Reading the dependency tier for one workspace: keyword search over its packages' surfaces, and
the definitions of the dependency names the code before a cursor uses (``np.einsum(``,
``session.``), resolved through the file's imports and simple assignments.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ragls.indexer.deps.selection import META_KEY, Selection
from ragls.indexer.deps.store import DepChunk, DepsStore
from ragls.indexer.tokens import query_terms

if TYPE_CHECKING:
    from ragls.indexer.engine import Index

_IMPORT_AS = re.compile(r"^[ \t]*import[ \t]+([\w.]+)(?:[ \t]+as[ \t]+(\w+))?[ \t]*$", re.M)
_FROM = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+\(?([\w \t,\n]+?)\)?[ \t]*$", re.M)
# JavaScript/TypeScript: import X from 'm', import * as X from 'm', import {a, b as c} from 'm',
# const X = require('m'), const {a, b: c} = require('m')
_JS_DEFAULT = re.compile(
    r"""^[ \t]*import[ \t]+(?:\*[ \t]+as[ \t]+)?([\w$]+)[ \t,]*(?:\{[^}]*\})?"""
    r"""[ \t]*from[ \t]*['"]([^'"]+)['"]""",
    re.M,
)
_JS_NAMED = re.compile(
    r"""^[ \t]*import[ \t]+(?:[\w$]+[ \t]*,[ \t]*)?(?:type[ \t]+)?\{([^}]*)\}"""
    r"""[ \t]*from[ \t]*['"]([^'"]+)['"]""",
    re.M,
)
_JS_REQUIRE = re.compile(
    r"""\b(?:const|let|var)[ \t]+([\w$]+|\{[^}]*\})[ \t]*=[ \t]*require\([ \t]*['"]([^'"]+)['"]"""
)
_CHAIN = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\.?")
PER_LOOKUP = 2  # definitions per name typed (a same-named function in two modules)


@dataclass(frozen=True)
class View:
    """A workspace's dependency tier: the shared store and the versions it selected."""

    store: DepsStore
    selection: Selection

    @property
    def ids(self) -> list[int]:
        return list(self.selection.packages.values())


_views: dict[str, tuple[str, View]] = {}
_stores: dict[str, DepsStore] = {}
_lock = threading.Lock()


def view(index: Index) -> View | None:
    """The workspace's view, or None before its first dependency build (cached while unchanged)."""
    from ragls.indexer.deps.build import deps_store

    raw = index.store.meta(META_KEY)
    if not raw:
        return None
    key = str(index.folder)
    with _lock:
        cached = _views.get(key)
        if cached and cached[0] == raw:
            return cached[1]
        store = deps_store()
        shared = _stores.setdefault(str(store.path), store)
        if shared is not store:
            store.close()
        made = View(shared, Selection.from_json(raw))
        _views[key] = (raw, made)
        return made


def installed_file(index: Index, source: str) -> Path | None:
    """The installed file a dependency citation (``name==version:path``) names, if it is this
    workspace's version."""
    package, _, rel = source.partition(":")
    found = view(index)
    base = found.selection.bases.get(package) if found else None
    return Path(base) / rel if base and rel else None


def cited_spans(index: Index, source: str) -> list[tuple[int, int]]:
    """The indexed spans of a dependency file cited as ``name==version:path`` (none when the
    workspace does not have that version)."""
    package, _, rel = source.partition(":")
    found = view(index)
    package_id = found.selection.packages.get(package) if found else None
    return found.store.spans(package_id, rel) if found and package_id is not None else []


def search(index: Index, query: str, top_k: int) -> list[tuple[DepChunk, float]]:
    """Keyword search over the workspace's dependency surfaces (BM25 over identifier-split text)."""
    from ragls.indexer.search import fts_query

    found = view(index)
    terms = query_terms(query)
    if found is None or not terms:
        return []
    return found.store.keyword_search(fts_query(terms), found.ids, top_k)


def imports(text: str) -> dict[str, str]:
    """Local name -> dotted path it is bound to by the file's imports (``np`` -> ``numpy``,
    ``Session`` -> ``requests.Session``)."""
    bound: dict[str, str] = {}
    for m in _IMPORT_AS.finditer(text):
        path, alias = m.group(1), m.group(2)
        if alias:
            bound[alias] = path
        else:
            bound[path.split(".")[0]] = path.split(".")[0]
    for m in _FROM.finditer(text):
        module = m.group(1)
        for part in m.group(2).replace("\n", ",").split(","):
            words = part.split()
            if words and words[0].isidentifier():
                bound[words[-1] if len(words) == 3 and words[1] == "as" else words[0]] = (
                    f"{module}.{words[0]}"
                )
    for m in [*_JS_DEFAULT.finditer(text), *_JS_REQUIRE.finditer(text)]:
        if not m.group(1).startswith("{"):
            bound[m.group(1)] = m.group(2)
    for m in [*_JS_NAMED.finditer(text), *_JS_REQUIRE.finditer(text)]:
        if m.re is _JS_REQUIRE and not m.group(1).startswith("{"):
            continue
        for part in m.group(1).strip("{} \n").split(","):
            words = re.split(r"\s+as\s+|\s*:\s*", part.strip())
            if words[0]:
                bound[words[-1]] = f"{m.group(2)}.{words[0]}"
    return bound


def _resolve(head: str, bound: dict[str, str], text: str, depth: int = 0) -> str | None:
    """The dotted path a name stands for: an import, or an instance made by ``x = a.B(...)``."""
    if head in bound:
        return bound[head]
    if depth > 2:
        return None
    made = re.search(
        rf"^[ \t]*(?:self\.|const[ \t]+|let[ \t]+|var[ \t]+)?{re.escape(head)}[ \t]*(?::[^=\n]+)?="
        r"[ \t]*(?:await[ \t]+|new[ \t]+)?([A-Za-z_$][\w.$]*)\(",
        text,
        re.M,
    )
    made = made or re.search(rf"\bwith[ \t]+([A-Za-z_][\w.]*)\([^\n]*\bas[ \t]+{re.escape(head)}\b", text)
    if made is None:
        return None
    first, _, rest = made.group(1).partition(".")
    base = _resolve(first, bound, text, depth + 1)
    return f"{base}.{rest}" if base and rest else base


def cursor_chains(line: str) -> list[str]:
    """Dotted names on the cursor's line, the one at the cursor first, then the calls still open
    around it (``np.einsum(a, b.`` -> ``b.``, ``np.einsum``), then the rest, right to left."""
    chains = [m for m in _CHAIN.finditer(line)]
    at_cursor = [m.group(0) for m in chains if m.end() == len(line)]
    calls = []
    depth = 0
    for m in reversed(chains):
        between = line[m.end() :]
        opened = between.count("(") - between.count(")")
        if between.startswith("(") and opened > depth:
            calls.append(m.group(0))
            depth = opened
    rest = [m.group(0) for m in reversed(chains)]
    return list(dict.fromkeys(at_cursor + calls + rest))


def definitions_at(index: Index, prefix: str, full_text: str, limit: int = 3) -> list[DepChunk]:
    """Surface chunks of the dependency symbols named on the cursor's line (a call's signature and
    docstring, or the outline of the module or class before a '.'), nearest the cursor first."""
    found = view(index)
    if found is None or not found.selection.imports:
        return []
    bound = imports(full_text)
    out: list[DepChunk] = []
    for chain in cursor_chains(prefix.rsplit("\n", 1)[-1]):
        head, _, rest = chain.rstrip(".").partition(".")
        target = _resolve(head, bound, full_text)
        if target is None:
            continue
        path = f"{target}.{rest}" if rest else target
        top = path.split(".")[0]  # an npm subpath (vscode-jsonrpc/node) belongs to its package
        package = found.selection.imports.get(top) or found.selection.imports.get(_npm_package(top))
        if package is None:
            continue
        for chunk in _definitions(found, path, found.selection.packages[package]):
            if all(chunk.id != c.id for c in out):
                out.append(chunk)
        if len(out) >= limit:
            break
    return out[:limit]


def _npm_package(spec: str) -> str:
    parts = spec.split("/")
    return "/".join(parts[:2]) if spec.startswith("@") else parts[0]


def _definitions(found: View, path: str, package_id: int) -> list[DepChunk]:
    """The chunks defining the last name of ``path`` in one package, best first: where the path's
    module re-exports it from (``numpy.min`` -> ``numpy._core``), then those whose symbol holds the
    path's other names (the class a method belongs to), public modules, short paths."""
    parts = path.split(".")
    hits = found.store.definitions(parts[-1], [package_id])
    exports = {c.symbol: c.text for c in hits if c.kind == "export"}
    target, origins = path, []
    for _ in range(4):  # numpy.min -> numpy._core.min (a star import takes it from there)
        following = exports.get(target)
        if not following or following == target:
            break
        origins.append(following.rsplit(".", 1)[0] + ".")
        target = following
        if target.rsplit(".", 1)[-1] != parts[-1]:  # re-exported under another name
            hits += found.store.definitions(target.rsplit(".", 1)[-1], [package_id])
            exports |= {c.symbol: c.text for c in hits if c.kind == "export"}
    owners = set(parts[1:-1])

    def rank(chunk: DepChunk) -> tuple:
        names = chunk.symbol.split(".")
        private = sum(name.startswith("_") for name in names)
        return (
            not any(chunk.symbol.startswith(origin) for origin in origins),
            -len(owners & set(names[:-1])),
            chunk.symbol not in (path, target),
            private,
            len(names),
            chunk.path.endswith(".pyi"),  # a module's source (with docstrings) before its stub
            -chunk.start_line,  # the implementation, after its @overload declarations
        )

    best: dict[str, DepChunk] = {}  # one chunk per file: a stub's overloads are one answer
    for chunk in sorted((c for c in hits if c.kind != "export"), key=rank):
        best.setdefault(chunk.path, chunk)
    return list(best.values())[:PER_LOOKUP]


Scope = Literal["workspace", "dependencies", "all"]
SCOPES: tuple[str, ...] = ("workspace", "dependencies", "all")
DEPENDENCY_WEIGHT = 0.8  # in "all", a dependency's chunk ranks just below the workspace's at the same rank


def scoped_search(
    index: Index, query: str, top_k: int, mode: str = "hybrid", scope: Scope = "workspace"
) -> list:
    """Search the workspace, its dependencies (keyword search over their surfaces; cited as
    ``name==version:path``) or both, fused by rank."""
    from ragls.indexer.search import RRF_K, SearchResult

    own = index.search(query, top_k, mode) if scope != "dependencies" else []  # type: ignore[arg-type]
    if scope == "workspace":
        return own
    theirs = [
        SearchResult(chunk.source, chunk.start_line, chunk.end_line, score, chunk.symbol, -chunk.id)
        for chunk, score in search(index, query, top_k)
    ]
    if scope == "dependencies":
        return theirs
    fused = [(1.0 / (RRF_K + rank + 1), hit) for rank, hit in enumerate(own)]
    fused += [(DEPENDENCY_WEIGHT / (RRF_K + rank + 1), hit) for rank, hit in enumerate(theirs)]
    fused.sort(key=lambda pair: -pair[0])
    return [dataclasses.replace(hit, score=score) for score, hit in fused[:top_k]]
