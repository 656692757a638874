"""A dependency file's public surface: what a caller needs to call it right, and nothing else.

Each public function, class and method becomes one chunk: its decorators and signature, verbatim
from the file, and its docstring (bodies are left out: they cost tokens and say little about how
to call). A class's chunk also lists its public methods' signatures and annotated attributes, a
module's chunk its docstring and its public names, so ``session.`` can be answered with an
outline. Private names (a leading underscore; ``__init__`` and ``__call__`` are public) and test
files are not part of the surface. The grammar is the one the workspace index parses Python with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from tree_sitter import Node
from tree_sitter_language_pack import get_parser

DOC_LINES = 24  # of a docstring, at most (numpy's run to hundreds: the head says how to call)
OUTLINE_LINES = 60  # of a module outline
# A class's chunk must fit a completion's context beside other snippets (rich's Console has 60
# public methods, some with 15 parameters): a shorter docstring, its constructor first, each
# member on one line of at most MEMBER_CHARS.
CLASS_DOC_LINES = 12
CLASS_MEMBERS = 30
MEMBER_CHARS = 100
PUBLIC_DUNDERS = frozenset({"__init__", "__call__", "__new__"})
TEST_PATH = re.compile(r"(^|/)(tests?|conftest\.py|test_[^/]*\.pyi?|[^/]*_test\.pyi?)(/|$)")


@dataclass(frozen=True)
class SurfaceChunk:
    path: str  # '/'-separated, below the package's base folder
    start_line: int  # 1-based lines of the file the chunk was read from
    end_line: int
    symbol: str  # dotted, from the import root: "requests.sessions.Session.mount"
    name: str  # the bare name: "mount"
    kind: str  # "function", "class", "method", "module"
    text: str


def is_surface_file(rel: str) -> bool:
    """A module whose definitions can be public: not a test, not a file outside any package."""
    return rel.endswith((".py", ".pyi")) and not TEST_PATH.search(rel)


def module_of(rel: str) -> str:
    """``numpy/_core/einsumfunc.py`` -> ``numpy._core.einsumfunc``; a package's ``__init__`` names
    it, ``ujson-stubs/__init__.pyi`` stands for ``ujson``."""
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    if parts:
        parts[0] = parts[0].removesuffix("-stubs")  # a PEP 561 stub package stands for its module
    return ".".join(parts)


def is_public(name: str) -> bool:
    return not name.startswith("_") or name in PUBLIC_DUNDERS


def python_surface(rel: str, text: str) -> list[SurfaceChunk]:
    """The surface chunks of one Python module (or stub); never raises on bad source."""
    source = text.encode("utf-8", "replace")
    try:
        tree = get_parser("python").parse(source)
    except Exception:  # a grammar failure leaves this file out, not the package
        return []
    reader = _Reader(rel, source)
    module = module_of(rel)
    chunks: list[SurfaceChunk] = []
    outline: list[str] = []
    for node in tree.root_node.named_children:
        definition = _definition(node)
        if definition is None:
            continue
        name = _name(definition)
        if not name or not is_public(name) or name in PUBLIC_DUNDERS:
            continue
        if definition.type == "class_definition":
            chunks += reader.class_chunks(node, definition, f"{module}.{name}")
        else:
            chunks.append(reader.function_chunk(node, definition, f"{module}.{name}", "function"))
        outline.append(reader.one_line(definition))
    chunks += _exports(tree.root_node, rel, module)
    doc = _docstring(tree.root_node)
    if doc is not None or outline:
        head = reader.lines_of(doc, DOC_LINES) if doc is not None else []
        end = doc.end_point[0] + 1 if doc is not None else 1
        body = head + [f"# public: {line}" for line in outline[:OUTLINE_LINES]]
        chunks.insert(
            0, SurfaceChunk(rel, 1, end, module, module.rsplit(".", 1)[-1], "module", "\n".join(body))
        )
    return chunks


def _exports(node: Node, rel: str, module: str) -> list[SurfaceChunk]:
    """``from .x import a as b`` at module level (also under ``if``/``try``): a chunk of kind
    "export" naming ``module.b`` and holding the dotted path it re-exports (``pkg.x.a``), so
    ``numpy.min`` is looked up where ``numpy`` takes it from, not in another module's ``min``."""
    found: list[SurfaceChunk] = []
    for child in node.named_children:
        if child.type in ("function_definition", "class_definition", "decorated_definition"):
            continue
        if child.type != "import_from_statement":
            found += _exports(child, rel, module)
            continue
        source = _imported_module(child.child_by_field_name("module_name"), rel, module)
        for name in child.children_by_field_name("name"):
            original = name.child_by_field_name("name") if name.type == "aliased_import" else name
            alias = name.child_by_field_name("alias") if name.type == "aliased_import" else name
            if source is None or original is None or alias is None or not original.text or not alias.text:
                continue
            exported = alias.text.decode("utf-8", "replace").rsplit(".", 1)[-1]
            if is_public(exported):
                line = child.start_point[0] + 1
                target = f"{source}.{original.text.decode('utf-8', 'replace')}"
                found.append(
                    SurfaceChunk(rel, line, line, f"{module}.{exported}", exported, "export", target)
                )
    return found


def _imported_module(node: Node | None, rel: str, module: str) -> str | None:
    """The dotted module a ``from`` names, relative ones resolved against this file's package."""
    if node is None or not node.text:
        return None
    text = node.text.decode("utf-8", "replace")
    if node.type != "relative_import":
        return text
    dots = len(text) - len(text.lstrip("."))
    package = module.split(".") if PurePosixPath(rel).stem == "__init__" else module.split(".")[:-1]
    base = package[: len(package) - dots + 1] if dots <= len(package) else []
    return ".".join(filter(None, [*base, text.lstrip(".")])) or None


def _definition(node: Node) -> Node | None:
    """The function or class a top-level or class-level statement defines (decorators unwrapped)."""
    if node.type == "decorated_definition":
        node = node.child_by_field_name("definition") or node
    return node if node.type in ("function_definition", "class_definition") else None


def _name(definition: Node) -> str:
    name = definition.child_by_field_name("name")
    return name.text.decode("utf-8", "replace") if name is not None and name.text else ""


def _docstring(block: Node | None) -> Node | None:
    """The string that is a module's or a body's first statement."""
    if block is None:
        return None
    first = next((c for c in block.named_children if c.type != "comment"), None)
    if first is not None and first.type == "expression_statement" and first.named_children:
        first = first.named_children[0]  # older grammars wrap it in a statement
    return first if first is not None and first.type in ("string", "concatenated_string") else None


def _colon(definition: Node) -> Node:
    """The ':' that ends a definition's header (the last one before its body)."""
    body = definition.child_by_field_name("body")
    colons = [
        c for c in definition.children if c.type == ":" and (body is None or c.end_byte <= body.start_byte)
    ]
    return colons[-1] if colons else definition


class _Reader:
    """Slices of one file's source, by node, as whole lines."""

    def __init__(self, rel: str, source: bytes) -> None:
        self.rel = rel
        self.source = source
        self.rows = source.decode("utf-8", "replace").split("\n")

    def lines_of(self, node: Node, limit: int) -> list[str]:
        rows = self.rows[node.start_point[0] : node.end_point[0] + 1]
        return (
            rows
            if len(rows) <= limit
            else [*rows[:limit], rows[limit][: len(rows[limit]) - len(rows[limit].lstrip())] + "..."]
        )

    def header(self, outer: Node, definition: Node) -> tuple[list[str], int]:
        """Decorators and signature lines (through the ':' before the body), and the last row."""
        colon = _colon(definition)
        rows = self.rows[outer.start_point[0] : colon.end_point[0] + 1]
        rows[-1] = rows[-1][: colon.end_point[1]]
        return rows, colon.end_point[0]

    def one_line(self, definition: Node) -> str:
        """A definition's signature on one line, whitespace collapsed (for outlines)."""
        signature = self.source[definition.start_byte : _colon(definition).end_byte]
        return " ".join(signature.decode("utf-8", "replace").split())

    def function_chunk(self, outer: Node, definition: Node, symbol: str, kind: str) -> SurfaceChunk:
        rows, last = self.header(outer, definition)
        doc = _docstring(definition.child_by_field_name("body"))
        if doc is not None:
            rows += self.lines_of(doc, DOC_LINES)
            last = doc.end_point[0]
        indent = re.match(r"\s*", self.rows[definition.start_point[0]]).group(0)  # type: ignore[union-attr]
        rows.append(f"{indent}    ...")
        return SurfaceChunk(
            self.rel,
            outer.start_point[0] + 1,
            last + 1,
            symbol,
            symbol.rsplit(".", 1)[-1],
            kind,
            "\n".join(rows),
        )

    def class_chunks(self, outer: Node, definition: Node, symbol: str) -> list[SurfaceChunk]:
        """The class (header, docstring, outline of its public members) and each public method."""
        rows, _ = self.header(outer, definition)
        body = definition.child_by_field_name("body")
        doc = _docstring(body)
        if doc is not None:
            rows += self.lines_of(doc, CLASS_DOC_LINES)
        indent = re.match(r"\s*", self.rows[definition.start_point[0]]).group(0) + "    "  # type: ignore[union-attr]
        methods: list[SurfaceChunk] = []
        outline: list[str] = []
        for child in body.named_children if body is not None else []:
            member = _definition(child)
            if member is not None and member.type == "function_definition" and is_public(_name(member)):
                methods.append(self.function_chunk(child, member, f"{symbol}.{_name(member)}", "method"))
                line = self.one_line(member)
                outline.insert(0 if _name(member) in PUBLIC_DUNDERS else len(outline), line)
            elif child.type == "expression_statement" and child.named_children:
                stmt = child.named_children[0]
                target = stmt.child_by_field_name("left") if stmt.type == "assignment" else None
                if target is not None and target.type == "identifier" and is_public(target.text.decode()):  # type: ignore[union-attr]
                    outline.append(
                        " ".join(
                            self.source[stmt.start_byte : stmt.end_byte].decode("utf-8", "replace").split()
                        )[:120]
                    )
        short = [line if len(line) <= MEMBER_CHARS else line[: MEMBER_CHARS - 4] + " ..." for line in outline]
        rows += [f"{indent}{line}" for line in short[:CLASS_MEMBERS]]
        chunk = SurfaceChunk(
            self.rel,
            outer.start_point[0] + 1,
            definition.end_point[0] + 1,
            symbol,
            _name(definition),
            "class",
            "\n".join(rows),
        )
        return [chunk, *methods]
