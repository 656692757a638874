"""Chunking and symbol extraction on real tree-sitter grammars (no mocks).

The per-language samples in ``fixtures/languages`` hold a class or struct with a method and a free
function. They are chunked with a small ``lines_per_chunk`` so that the structure shows: a class
too long for one chunk is emitted as its header plus one chunk per method.
"""

from __future__ import annotations

import threading
import typing
from pathlib import Path

import pytest
import tree_sitter_language_pack

from ragls.indexer import parsing
from ragls.indexer.languages import SPECS, LanguageSpec, language_for
from ragls.indexer.model import Chunk, ParsedFile
from ragls.indexer.parsing import module_name, parse

FIXTURES = Path(__file__).parent / "fixtures" / "languages"

# (file, [(start, end, kind, symbol) of each chunk], [(qualified, kind, line, end_line) of each definition])
EXPECTED = [
    ("geometry.py", [
        (1, 4, "module", "geometry"), (7, 18, "class", "geometry.Point"),
        (21, 23, "function", "geometry.centroid"),
    ], [
        ("geometry.Point", "class", 8, 18), ("geometry.Point.distance", "method", 14, 15),
        ("geometry.Point.moved", "method", 17, 18), ("geometry.centroid", "function", 21, 23),
    ]),
    ("geometry.js", [
        (1, 3, "module", "geometry"), (5, 14, "class", "geometry.Point"),
        (16, 19, "function", "geometry.centroid"), (21, 23, "function", "geometry.sum"),
    ], [
        ("geometry.Point", "class", 5, 14), ("geometry.Point.constructor", "method", 6, 9),
        ("geometry.Point.distance", "method", 11, 13), ("geometry.centroid", "function", 16, 19),
        ("geometry.sum", "function", 21, 23),
    ]),
    ("geometry.ts", [
        (1, 7, "module", "geometry"), (9, 15, "class", "geometry.Circle"),
        (17, 19, "function", "geometry.totalArea"), (21, 23, "function", "geometry.diagonal"),
    ], [
        ("geometry.Shape", "interface", 3, 5), ("geometry.Shape.area", "method", 4, 4),
        ("geometry.Pair", "type", 7, 7), ("geometry.Circle", "class", 9, 15),
        ("geometry.Circle.constructor", "method", 10, 10), ("geometry.Circle.area", "method", 12, 14),
        ("geometry.totalArea", "function", 17, 19), ("geometry.diagonal", "function", 21, 23),
    ]),
    ("geometry.tsx", [
        (1, 6, "interface", "geometry.PointProps"), (8, 10, "function", "geometry.PointLabel"),
        (12, 16, "class", "geometry.Canvas"), (18, 20, "function", "geometry.format"),
    ], [
        ("geometry.PointProps", "interface", 3, 6), ("geometry.PointLabel", "function", 8, 10),
        ("geometry.Canvas", "class", 12, 16), ("geometry.Canvas.render", "method", 13, 15),
        ("geometry.format", "function", 18, 20),
    ]),
    ("geometry.go", [
        (1, 3, "module", "geometry"), (5, 8, "struct", "geometry.Point"),
        (10, 13, "method", "geometry.Point.Distance"), (15, 24, "function", "geometry.Centroid"),
    ], [
        ("geometry.Point", "struct", 6, 8), ("geometry.Point.Distance", "method", 11, 13),
        ("geometry.Centroid", "function", 16, 24),
    ]),
    ("geometry.rs", [
        (1, 8, "struct", "geometry.Point"), (10, 12, "trait", "geometry.Shape"),
        (14, 18, "impl", "geometry.Point"), (20, 24, "impl", "geometry.Point"),
        (26, 29, "function", "geometry.centroid"),
    ], [
        ("geometry.Point", "struct", 5, 8), ("geometry.Shape", "trait", 10, 12),
        ("geometry.Shape.area", "method", 11, 11), ("geometry.Point", "impl", 14, 18),
        ("geometry.Point.distance", "method", 15, 17), ("geometry.Point", "impl", 20, 24),
        ("geometry.Point.fmt", "method", 21, 23), ("geometry.centroid", "function", 26, 29),
    ]),
    ("geometry.java", [
        (1, 3, "module", "geometry"), (5, 7, "class", "geometry.Point"),
        (9, 12, "method", "geometry.Point.Point"), (14, 17, "method", "geometry.Point.distance"),
        (19, 21, "interface", "geometry.Shape"), (23, 31, "class", "geometry.Geometry"),
    ], [
        ("geometry.Point", "class", 5, 17), ("geometry.Point.Point", "method", 9, 12),
        ("geometry.Point.distance", "method", 14, 16), ("geometry.Shape", "interface", 19, 21),
        ("geometry.Shape.area", "method", 20, 20), ("geometry.Geometry", "class", 23, 31),
        ("geometry.Geometry.centroid", "method", 24, 30),
    ]),
    ("geometry.c", [
        (1, 2, "module", "geometry"), (4, 7, "struct", "geometry.point"), (9, 11, "module", "geometry"),
        (13, 16, "function", "geometry.point_distance"), (18, 25, "function", "geometry.centroid"),
    ], [
        ("geometry.point", "struct", 4, 7), ("geometry.point_t", "type", 9, 9),
        ("geometry.square", "function", 11, 11), ("geometry.point_distance", "function", 13, 16),
        ("geometry.centroid", "function", 18, 25),
    ]),
    ("geometry.cpp", [
        (1, 2, "module", "geometry"), (4, 14, "namespace", "geometry.geo"),
        (16, 18, "method", "geometry.geo.Point.distance"), (20, 28, "function", "geometry.geo.centroid"),
    ], [
        ("geometry.geo", "namespace", 4, 28), ("geometry.geo.Point", "class", 6, 14),
        ("geometry.geo.Point.Point", "method", 8, 8), ("geometry.geo.Point.distance", "method", 9, 9),
        ("geometry.geo.Point.distance", "method", 16, 18), ("geometry.geo.centroid", "function", 20, 26),
    ]),
    ("geometry.cs", [
        (1, 2, "module", "geometry"), (4, 5, "namespace", "geometry.Geometry"),
        (6, 9, "interface", "geometry.Geometry.IShape"), (11, 12, "class", "geometry.Geometry.Point"),
        (13, 14, "class", "geometry.Geometry.Point"), (16, 20, "method", "geometry.Geometry.Point.Point"),
        (22, 25, "method", "geometry.Geometry.Point.Distance"),
        (27, 29, "method", "geometry.Geometry.Point.Square"),
    ], [
        ("geometry.Geometry", "namespace", 4, 29), ("geometry.Geometry.IShape", "interface", 6, 9),
        ("geometry.Geometry.IShape.Area", "method", 8, 8), ("geometry.Geometry.Point", "class", 11, 28),
        ("geometry.Geometry.Point.X", "property", 13, 13), ("geometry.Geometry.Point.Y", "property", 14, 14),
        ("geometry.Geometry.Point.Point", "method", 16, 20),
        ("geometry.Geometry.Point.Distance", "method", 22, 25),
        ("geometry.Geometry.Point.Square", "method", 27, 27),
    ]),
    ("geometry.rb", [
        (1, 5, "module", "geometry.Geometry"), (7, 10, "method", "geometry.Geometry.Point.initialize"),
        (12, 14, "method", "geometry.Geometry.Point.distance"),
        (16, 19, "method", "geometry.Geometry.Point.origin"),
        (21, 25, "function", "geometry.Geometry.centroid"),
    ], [
        ("geometry.Geometry", "module", 3, 25), ("geometry.Geometry.Point", "class", 4, 19),
        ("geometry.Geometry.Point.initialize", "method", 7, 10),
        ("geometry.Geometry.Point.distance", "method", 12, 14),
        ("geometry.Geometry.Point.origin", "method", 16, 18),
        ("geometry.Geometry.centroid", "function", 21, 24),
    ]),
    ("geometry.php", [
        (1, 5, "namespace", "geometry.App.Geometry"), (7, 10, "interface", "geometry.Shape"),
        (12, 22, "class", "geometry.Point"), (24, 30, "function", "geometry.centroid"),
    ], [
        ("geometry.App.Geometry", "namespace", 3, 3), ("geometry.Shape", "interface", 7, 10),
        ("geometry.Shape.area", "method", 9, 9), ("geometry.Point", "class", 12, 22),
        ("geometry.Point.__construct", "method", 14, 16), ("geometry.Point.distance", "method", 18, 21),
        ("geometry.centroid", "function", 24, 30),
    ]),
    ("geometry.kt", [
        (1, 3, "module", "geometry"), (5, 9, "class", "geometry.Point"),
        (11, 13, "interface", "geometry.Shape"), (15, 17, "object", "geometry.Origin"),
        (19, 22, "function", "geometry.centroid"),
    ], [
        ("geometry.Point", "class", 5, 9), ("geometry.Point.distance", "method", 6, 8),
        ("geometry.Shape", "interface", 11, 13), ("geometry.Shape.area", "method", 12, 12),
        ("geometry.Origin", "object", 15, 17), ("geometry.centroid", "function", 19, 22),
    ]),
    ("geometry.swift", [
        (1, 5, "protocol", "geometry.Shape"), (7, 14, "struct", "geometry.Point"),
        (16, 22, "class", "geometry.Canvas"), (24, 27, "function", "geometry.centroid"),
    ], [
        ("geometry.Shape", "protocol", 3, 5), ("geometry.Shape.area", "method", 4, 4),
        ("geometry.Point", "struct", 7, 14), ("geometry.Point.distance", "method", 11, 13),
        ("geometry.Canvas", "class", 16, 22), ("geometry.Canvas.add", "method", 19, 21),
        ("geometry.centroid", "function", 24, 27),
    ]),
    ("geometry.scala", [
        (1, 3, "module", "geometry"), (5, 8, "class", "geometry.Point"), (10, 12, "trait", "geometry.Shape"),
        (14, 19, "object", "geometry.Geometry"),
    ], [
        ("geometry.Point", "class", 5, 8), ("geometry.Point.distance", "method", 6, 7),
        ("geometry.Shape", "trait", 10, 12), ("geometry.Shape.area", "method", 11, 11),
        ("geometry.Geometry", "object", 14, 19), ("geometry.Geometry.centroid", "method", 15, 18),
    ]),
    ("geometry.lua", [
        (1, 2, "module", "geometry"), (4, 6, "method", "geometry.Point.new"),
        (8, 10, "method", "geometry.Point.distance"), (12, 20, "function", "geometry.centroid"),
    ], [
        ("geometry.Point.new", "method", 4, 6), ("geometry.Point.distance", "method", 8, 10),
        ("geometry.centroid", "function", 12, 18),
    ]),
    ("geometry.sh", [
        (1, 4, "module", "geometry"), (6, 8, "function", "geometry.square"),
        (10, 16, "function", "geometry.distance"),
    ], [
        ("geometry.square", "function", 6, 8), ("geometry.distance", "function", 10, 14),
    ]),
    ("geometry.ex", [
        (1, 11, "module", "geometry.Geometry.Point"), (13, 20, "module", "geometry.Geometry"),
    ], [
        ("geometry.Geometry.Point", "module", 1, 11), ("geometry.Geometry.Point.distance", "function", 6, 8),
        ("geometry.Geometry.Point.square", "function", 10, 10), ("geometry.Geometry", "module", 13, 20),
        ("geometry.Geometry.centroid", "function", 16, 19),
    ]),
    ("geometry.hs", [
        (1, 3, "module", "geometry"), (5, 8, "type", "geometry.Point"), (10, 11, "class", "geometry.Shape"),
        (13, 14, "function", "geometry.distance"), (16, 17, "function", "geometry.square"),
        (19, 23, "function", "geometry.centroid"),
    ], [
        ("geometry.Point", "type", 5, 8), ("geometry.Shape", "class", 10, 11),
        ("geometry.Shape.area", "method", 11, 11), ("geometry.distance", "function", 13, 14),
        ("geometry.square", "function", 16, 17), ("geometry.centroid", "function", 19, 23),
        ("geometry.centroid.total", "function", 23, 23),
    ]),
    ("geometry.zig", [
        (1, 10, "struct", "geometry.Point"), (12, 18, "function", "geometry.centroid"),
        (20, 23, "test", "geometry.distance"),
    ], [
        ("geometry.Point", "struct", 3, 10), ("geometry.Point.distance", "method", 7, 9),
        ("geometry.centroid", "function", 12, 18), ("geometry.distance", "test", 20, 23),
    ]),
]  # fmt: skip


def parse_fixture(name: str, lines_per_chunk: int = 8) -> ParsedFile:
    return parse(name, (FIXTURES / name).read_text(encoding="utf-8"), lines_per_chunk)


def spans(parsed: ParsedFile) -> list[tuple[int, int, str, str]]:
    return [(c.start_line, c.end_line, c.kind, c.symbol) for c in parsed.chunks]


def definitions(parsed: ParsedFile) -> list[tuple[str, str, int, int]]:
    return [(s.qualified, s.kind, s.line, s.end_line) for s in parsed.symbols if s.role == "definition"]


def references(parsed: ParsedFile) -> set[tuple[str, str, str, int]]:
    return {(s.name, s.qualified, s.kind, s.line) for s in parsed.symbols if s.role == "reference"}


def assert_well_formed(parsed: ParsedFile, text: str) -> None:
    """Chunks are ordered, disjoint, verbatim, never blank, and cover every non-blank line."""
    rows = text.split("\n")
    covered: set[int] = set()
    previous_end = 0
    for chunk in parsed.chunks:
        assert previous_end < chunk.start_line <= chunk.end_line <= len(rows)
        expected = "\n".join(rows[chunk.start_line - 1 : chunk.end_line]).removesuffix("\r")
        assert chunk.text == expected
        assert chunk.text.strip()
        covered.update(range(chunk.start_line, chunk.end_line + 1))
        previous_end = chunk.end_line
    assert [n for n, row in enumerate(rows, 1) if row.strip() and n not in covered] == []
    for symbol in parsed.symbols:
        assert 1 <= symbol.line <= symbol.end_line <= len(rows)


@pytest.mark.parametrize(("name", "chunks", "defs"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_language_sample(name: str, chunks: list, defs: list) -> None:
    parsed = parse_fixture(name)
    assert parsed.error is None
    assert parsed.language == language_for(name)
    assert spans(parsed) == chunks
    assert definitions(parsed) == defs
    assert_well_formed(parsed, (FIXTURES / name).read_text(encoding="utf-8"))


def test_every_required_language_has_a_fixture_and_a_table() -> None:
    required = {
        "python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp", "csharp", "ruby",
        "php", "kotlin", "swift", "scala", "lua", "bash", "elixir", "haskell", "zig",
    }  # fmt: skip
    assert {language_for(name) for name, _, _ in EXPECTED} == required
    assert required <= set(SPECS)


def test_small_file_is_one_chunk_at_the_default_size() -> None:
    parsed = parse_fixture("geometry.py", lines_per_chunk=60)
    assert spans(parsed) == [(1, 23, "module", "geometry")]
    assert parsed.chunks[0].text == (FIXTURES / "geometry.py").read_text(encoding="utf-8").rstrip("\n")


def test_chunk_fields() -> None:
    text = "class APIRouter:\n    def add_api_route(self):\n        pass\n"
    chunk = parse("src/fastapi/routing.py", text).chunks[0]
    assert chunk == Chunk(
        path="src/fastapi/routing.py", language="python", start_line=1, end_line=3,
        symbol="routing.APIRouter", kind="class",
        text="class APIRouter:\n    def add_api_route(self):\n        pass",
    )  # fmt: skip
    assert len(chunk.hash) == 64


def test_python_references() -> None:
    assert references(parse_fixture("geometry.py")) == {
        ("float", "float", "type", 11), ("float", "float", "type", 12), ("float", "float", "type", 14),
        ("hypot", "math.hypot", "call", 15), ("float", "float", "type", 17), ("Point", "Point", "call", 18),
        ("list", "list", "type", 21), ("Point", "Point", "type", 21), ("len", "len", "call", 22),
        ("Point", "Point", "call", 23), ("sum", "sum", "call", 23),
    }  # fmt: skip


def test_go_references() -> None:
    assert references(parse_fixture("geometry.go")) == {
        ("float64", "float64", "type", 7), ("Point", "Point", "type", 11), ("float64", "float64", "type", 11),
        ("Hypot", "math.Hypot", "call", 12), ("Point", "Point", "type", 16), ("Point", "Point", "type", 17),
        ("float64", "float64", "call", 22), ("len", "len", "call", 22), ("Point", "Point", "type", 23),
    }  # fmt: skip


def test_java_references_include_constructor_calls() -> None:
    assert references(parse_fixture("geometry.java")) == {
        ("Point", "Point", "type", 14), ("hypot", "hypot", "call", 15), ("Point", "Point", "type", 24),
        ("List", "List", "type", 24), ("Point", "Point", "type", 26), ("Point", "Point", "call", 29),
        ("Point", "Point", "type", 29), ("size", "size", "call", 29),
    }  # fmt: skip


def test_tsx_references_include_components_but_not_html_tags() -> None:
    assert references(parse_fixture("geometry.tsx")) == {
        ("PointProps", "PointProps", "type", 8), ("format", "format", "call", 9),
        ("Component", "React.Component", "type", 12), ("PointProps", "PointProps", "type", 12),
        ("PointLabel", "PointLabel", "call", 14),
    }  # fmt: skip


def test_rust_references() -> None:
    assert references(parse_fixture("geometry.rs")) == {
        ("Point", "Point", "type", 15), ("hypot", "hypot", "call", 16), ("Display", "Display", "type", 20),
        ("Formatter", "Formatter", "type", 21), ("Result", "Result", "type", 21),
        ("write", "write", "call", 22),
        ("Point", "Point", "type", 26), ("len", "points.len", "call", 27), ("Point", "Point", "type", 28),
        ("sum", "sum", "call", 28), ("map", "map", "call", 28), ("iter", "points.iter", "call", 28),
    }  # fmt: skip


def test_elixir_references_skip_definitions_and_field_access() -> None:
    assert references(parse_fixture("geometry.ex")) == {
        ("sqrt", "sqrt", "call", 7), ("square", "square", "call", 7), ("Point", "Geometry.Point", "type", 14),
        ("length", "length", "call", 17), ("Point", "Point", "type", 18), ("Enum", "Enum", "type", 18),
        ("sum", "Enum.sum", "call", 18), ("map", "Enum.map", "call", 18),
    }  # fmt: skip


def test_long_class_is_split_into_header_and_methods() -> None:
    methods = "".join(
        f"\n    def method_{i}(self, value):\n        result = value * {i}\n        result += self.base\n"
        f"        return result\n"
        for i in range(4)
    )
    text = f'class Engine:\n    """Runs things."""\n\n    base = 1\n    limit = 10\n{methods}'
    parsed = parse("pkg/engine.py", text, lines_per_chunk=6)
    assert spans(parsed) == [
        (1, 5, "class", "engine.Engine"),
        (7, 10, "method", "engine.Engine.method_0"),
        (12, 15, "method", "engine.Engine.method_1"),
        (17, 20, "method", "engine.Engine.method_2"),
        (22, 25, "method", "engine.Engine.method_3"),
    ]
    assert_well_formed(parsed, text)


def test_long_function_is_split_between_statements() -> None:
    body = []
    for i in range(40):
        body += [f"    # step {i}", f"    total += step({i})"]
        if i % 5 == 0:
            body += [f"    table_{i} = {{", '        "a": 1,', '        "b": 2,', "    }"]
    text = "def long_function(step):\n    total = 0\n" + "\n".join(body) + "\n    return total\n"
    parsed = parse("big.py", text, lines_per_chunk=20)
    rows = text.split("\n")
    assert len(parsed.chunks) == 6
    for chunk in parsed.chunks:
        assert (chunk.symbol, chunk.kind) == ("big.long_function", "function")
        assert chunk.end_line - chunk.start_line + 1 <= 20
        first = rows[chunk.start_line - 1].strip()
        # never inside the dict literals, never between a comment and its statement
        assert first.startswith(("def ", "# step", "table_")), first
    assert_well_formed(parsed, text)


def test_small_neighbours_are_merged() -> None:
    text = "\n".join(f"def f{i}():\n    return {i}\n" for i in range(12))
    assert spans(parse("pkg/tiny.py", text, lines_per_chunk=12)) == [
        (1, 11, "module", "tiny"), (13, 23, "module", "tiny"), (25, 35, "module", "tiny"),
    ]  # fmt: skip
    assert spans(parse("pkg/tiny.py", text)) == [(1, 35, "module", "tiny")]


def test_closing_brace_and_comments_stay_with_their_definition() -> None:
    text = "\n".join([
        "package demo;", "", "class Box {", "    int size;", "", "    // Grows the box.", "    @Deprecated",
        "    void grow() {", "        size++;", "        size++;", "    }", "",
        "    void shrink() {", "        size--;", "        size--;", "    }", "}",
    ])  # fmt: skip
    assert spans(parse("Box.java", text, lines_per_chunk=4)) == [
        (1, 4, "class", "Box.Box"), (6, 11, "method", "Box.Box.grow"), (13, 17, "method", "Box.Box.shrink"),
    ]  # fmt: skip


def test_decorators_and_leading_comments_belong_to_the_definition() -> None:
    text = "import os\n\n\n# Cached because it is slow.\n@cache\ndef slow():\n    return os.getcwd()\n"
    parsed = parse("util.py", text, lines_per_chunk=3)
    assert spans(parsed) == [(1, 1, "module", "util"), (4, 7, "function", "util.slow")]
    assert definitions(parsed) == [("util.slow", "function", 6, 7)]


def test_markdown_sections() -> None:
    text = (
        "---\ntitle: Guide\n---\nIntro paragraph.\n\n# Guide\n\nWelcome text.\n\n## Install\n\n"
        "```bash\n# not a heading\npip install ragls\n```\n\nSetext Title\n============\n\n"
        "Body under setext.\n\n### Deep\n\nDeep text.\n"
    )
    parsed = parse("docs/guide.md", text, lines_per_chunk=6)
    assert parsed.language == "markdown"
    assert spans(parsed) == [
        (1, 4, "section", ""),
        (6, 8, "section", "Guide"),
        (10, 15, "section", "Guide > Install"),
        (17, 20, "section", "Setext Title"),
        (22, 24, "section", "Setext Title > Deep"),
    ]
    assert parsed.symbols == []
    # small sections merge, under their common heading; the preamble joins the first section
    assert spans(parse("docs/guide.md", text, lines_per_chunk=30)) == [
        (1, 8, "section", "Guide"), (10, 15, "section", "Guide > Install"),
        (17, 24, "section", "Setext Title"),
    ]  # fmt: skip
    assert spans(parse("a.md", "# A\n\n## B\nb\n\n## C\nc\n", lines_per_chunk=30)) == [(1, 7, "section", "A")]


def test_text_is_chunked_by_lines_at_paragraph_breaks() -> None:
    paragraphs = ["\n".join(f"paragraph {p} line {i}" for i in range(9)) for p in range(13)]
    text = "\n\n".join(paragraphs) + "\n"
    parsed = parse("notes.txt", text)
    assert (parsed.language, parsed.error) == ("text", None)
    assert spans(parsed) == [(1, 39, "lines", ""), (41, 79, "lines", ""), (81, 129, "lines", "")]
    assert_well_formed(parsed, text)


def test_config_sections() -> None:
    toml = '# project file\n[project]\nname = "x"\nversion = "1"\n\n[tool.ruff]\nline-length = 110\n\n'
    toml += '[tool.ruff.lint]\nselect = ["E"]\n'
    assert spans(parse("pyproject.toml", toml, lines_per_chunk=6)) == [
        (1, 4, "section", "project"), (6, 7, "section", "tool.ruff"), (9, 10, "section", "tool.ruff.lint"),
    ]  # fmt: skip
    yaml = "# CI\nname: ci\non:\n  push:\n    branches: [main]\njobs:\n  test:\n    runs-on: ubuntu\n"
    assert spans(parse("ci.yml", yaml, lines_per_chunk=3)) == [
        (1, 2, "section", "name"), (3, 5, "section", "on"), (6, 8, "section", "jobs"),
    ]  # fmt: skip
    ini = "[flake8]\nmax-line-length = 100\n\n[mypy]\nstrict = true\n"
    assert spans(parse("setup.cfg", ini, lines_per_chunk=2)) == [
        (1, 2, "section", "flake8"), (4, 5, "section", "mypy"),
    ]  # fmt: skip
    assert spans(parse("package.json", '{\n  "name": "x"\n}\n')) == [(1, 3, "lines", "")]


def test_crlf_gives_the_same_lines_as_lf() -> None:
    lf = (FIXTURES / "geometry.py").read_text(encoding="utf-8")
    crlf = lf.replace("\n", "\r\n")
    parsed_lf, parsed_crlf = parse("geometry.py", lf, 8), parse("geometry.py", crlf, 8)
    assert spans(parsed_crlf) == spans(parsed_lf)
    assert parsed_crlf.symbols == parsed_lf.symbols
    for a, b in zip(parsed_lf.chunks, parsed_crlf.chunks, strict=True):
        assert b.text == a.text.replace("\n", "\r\n")
    assert_well_formed(parsed_crlf, crlf)


def test_file_without_trailing_newline() -> None:
    text = "import os\n\ndef last():\n    return os.sep"
    parsed = parse("tail.py", text, lines_per_chunk=2)
    assert spans(parsed) == [(1, 1, "module", "tail"), (3, 4, "function", "tail.last")]
    assert parsed.chunks[-1].text == "def last():\n    return os.sep"


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n", "\r\n\r\n"])
def test_empty_and_blank_files(text: str) -> None:
    for name in ("empty.py", "empty.md", "empty.txt", "empty.toml"):
        parsed = parse(name, text)
        assert (parsed.chunks, parsed.symbols, parsed.error) == ([], [], None)


def test_syntax_errors_still_produce_chunks_and_symbols() -> None:
    text = "def ok():\n    return 1\n\ndef broken(:\n    pass\n\nclass Fine:\n    x = 1\n"
    parsed = parse("bad.py", text, lines_per_chunk=2)
    assert parsed.error is None
    assert ("bad.ok", "function", 1, 2) in definitions(parsed)
    assert ("bad.Fine", "class", 7, 8) in definitions(parsed)
    assert_well_formed(parsed, text)


def test_replacement_characters_and_surrogates() -> None:
    text = "def f():\n    s = '\ufffd\udcff'\n    return s\n\n\ufffd\ufffd garbage \udc80\n"
    parsed = parse("odd.py", text, lines_per_chunk=2)
    assert definitions(parsed) == [("odd.f", "function", 1, 3)]
    assert parsed.chunks[0].text == "def f():\n    s = '\ufffd\udcff'\n    return s"
    assert_well_formed(parsed, text)


def test_huge_line() -> None:
    text = "x = '" + "a" * 200_000 + "'\ndef f():\n    return 1\n"
    parsed = parse("huge.py", text)
    assert spans(parsed) == [(1, 1, "module", "huge"), (2, 3, "function", "huge.f")]
    assert_well_formed(parsed, text)


def test_deeply_nested_code() -> None:
    depth = 300
    functions = "".join(f"function f{i}() {{\n" for i in range(depth)) + "}\n" * depth
    parsed = parse("deep.js", functions, lines_per_chunk=10)
    assert parsed.error is None
    assert len(definitions(parsed)) == depth
    assert definitions(parsed)[-1][0] == "deep." + ".".join(f"f{i}" for i in range(depth))
    assert_well_formed(parsed, functions)
    brackets = "x = " + "[\n" * 3000 + "]\n" * 3000
    assert_well_formed(parse("deep.py", brackets, lines_per_chunk=10), brackets)


def test_unknown_extension_is_plain_text() -> None:
    parsed = parse("notes.unknownext", "alpha\nbeta\n")
    assert (parsed.language, parsed.error) == ("text", None)
    assert spans(parsed) == [(1, 2, "lines", "")]


def test_language_without_grammar_falls_back_to_lines() -> None:
    text = "def f():\n    return 1\n"
    parsed = parse("x.py", text, language="no-such-grammar")
    assert parsed.language == "text"
    assert parsed.error is not None and "no tree-sitter grammar for 'no-such-grammar'" in parsed.error
    assert spans(parsed) == [(1, 2, "lines", "")]
    assert parsed.symbols == []


def test_grammar_failure_falls_back_to_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table the grammar rejects makes tree-sitter raise; the file is still indexed, by lines."""
    monkeypatch.setitem(SPECS, "python", LanguageSpec(queries="(no_such_node) @definition.function"))
    monkeypatch.setattr(parsing, "_local", threading.local())  # drop the compiled queries
    text = "def f():\n    return 1\n"
    parsed = parse("x.py", text)
    assert parsed.language == "python"
    assert parsed.error is not None and parsed.error.startswith("python parser failed")
    assert "QueryError" in parsed.error
    assert spans(parsed) == [(1, 2, "lines", "")]
    assert_well_formed(parsed, text)


def test_every_grammar_of_the_pack_chunks_without_error() -> None:
    text = "foo bar\n  baz(1)\n\nclass A { }\n"
    for language in typing.get_args(tree_sitter_language_pack.SupportedLanguage):
        parsed = parse("sample", text, language=language)
        assert parsed.error is None, language
        assert_well_formed(parsed, text)


def test_language_of_the_pack_without_a_table_still_gets_syntax_chunks() -> None:
    text = "class Point {\n  double dist(Point o) {\n    return 0;\n  }\n}\n\nvoid main() {\n  print(1);\n}\n"
    parsed = parse("lib/point.dart", text, lines_per_chunk=4)
    assert (parsed.language, parsed.error) == ("dart", None)
    # derived from node-type names: Dart's grammar keeps a function's body beside its signature
    assert definitions(parsed) == [
        ("point.Point", "class", 1, 5), ("point.Point.dist", "method", 2, 2),
        ("point.main", "function", 7, 7),
    ]  # fmt: skip
    assert spans(parsed) == [(1, 5, "class", "point.Point"), (7, 9, "function", "point.main")]


def test_parsing_from_many_threads_gives_the_same_result() -> None:
    names = [name for name, _, _ in EXPECTED]
    expected = {name: parse_fixture(name) for name in names}
    results: dict[str, list[ParsedFile]] = {name: [] for name in names}

    def work() -> None:
        for name in names:
            results[name].append(parse_fixture(name))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in names:
        assert results[name] == [expected[name]] * 4


@pytest.mark.parametrize(
    ("path", "text", "language"),
    [
        ("src/app.py", "", "python"), ("web/App.tsx", "", "tsx"), ("web/api.ts", "", "typescript"),
        ("web/app.mjs", "", "javascript"), ("Makefile", "", "make"),
        ("docker/Dockerfile.dev", "", "dockerfile"),
        ("include/util.h", "int f(void);", "c"), ("include/util.h", "namespace a { class B {}; }", "cpp"),
        ("src/x.hpp", "", "cpp"), ("build.gradle.kts", "", "kotlin"), ("lib/a.rb", "", "ruby"),
        ("Gemfile", "", "ruby"), ("lib/a.ex", "", "elixir"), ("test/a_test.exs", "", "elixir"),
        ("Main.hs", "", "haskell"), ("main.zig", "", "zig"), ("Program.cs", "", "csharp"),
        ("a.scala", "", "scala"), ("a.swift", "", "swift"), ("init.lua", "", "lua"), ("run.sh", "", "bash"),
        ("x.bash", "", "bash"), ("index.php", "", "php"), ("README.md", "", "markdown"),
        ("docs/x.markdown", "", "markdown"), ("docs/x.rst", "", "text"), ("notes.txt", "", "text"),
        ("requirements-dev.txt", "", "requirements"), ("pyproject.toml", "", "toml"), ("ci.yml", "", "yaml"),
        ("a.yaml", "", "yaml"), ("package.json", "", "json"), ("tox.ini", "", "ini"),
        ("setup.cfg", "", "ini"),
        ("C:\\work\\main.go", "", "go"), ("lib.rs", "", "rust"), ("A.java", "", "java"),
        ("x.m", "@interface A\n@end\n", "objc"), ("x.m", "function y = f(x)\nend\n", "matlab"),
        ("archive.bin", "", None), ("LICENSE", "", "text"),
    ],
)  # fmt: skip
def test_language_for(path: str, text: str, language: str | None) -> None:
    assert language_for(path, text) == language


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("fastapi/routing.py", "routing"), ("fastapi/__init__.py", "fastapi"), ("src/lib/mod.rs", "lib"),
        ("web/index.ts", "web"), ("index.js", "index"), ("a/foo.test.ts", "foo"),
        (".eslintrc.js", "eslintrc"),
    ],
)  # fmt: skip
def test_module_name(path: str, module: str) -> None:
    assert module_name(path) == module
