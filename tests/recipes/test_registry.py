"""The recipe registry: built-ins, user and workspace recipes, and broken files reported by line."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from ragls.recipes import registry
from ragls.recipes.registry import PLACEHOLDERS, Recipe, RecipeError

GOOD = '''title = "Translate to Rust"
context = ["selection", "definitions"]
output = "edit"
template = """{context}
Translate {path} lines {lines} to Rust:
{selection}"""
'''


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_builtins_load_cleanly_with_their_declared_shape() -> None:
    reg = registry.load()
    assert reg.problems == []
    assert set(reg.recipes) == {"explain", "unit-test", "docstring", "smell", "ask", "complete"}
    assert all(r.origin == "built-in" for r in reg.recipes.values())
    assert reg.get("complete").runner == "complete" and reg.get("complete").role == "completion"
    assert reg.get("ask").runner == "ask" and "retrieved" in reg.get("ask").context
    assert reg.get("unit-test").output == "file" and "tests" in reg.get("unit-test").context
    assert reg.get("docstring").output == "edit"
    assert "{numbered_selection}" in reg.get("smell").template  # findings need line numbers
    with pytest.raises(KeyError, match="known recipes: ask, complete"):
        reg.get("nope")


def test_workspace_and_user_recipes_load_and_later_ones_win(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    user_dir = registry.user_recipes_dir()
    assert Path(os.environ["RAGLS_CONFIG"]).parent == user_dir.parent  # isolated by tests/conftest.py
    write(user_dir, "rustify.toml", GOOD)
    write(user_dir, "explain.toml", 'title = "User explain"\ntemplate = "{selection}"\n')
    ws_explain = write(registry.workspace_recipes_dir(root), "explain.toml",
                       'title = "Workspace explain"\ntemplate = "Explain {symbol}: {selection}"\n')
    reg = registry.load(root)
    assert reg.problems == []
    assert reg.get("rustify").context == ("selection", "definitions")
    assert reg.get("rustify").origin == str(user_dir / "rustify.toml")
    assert reg.get("explain").title == "Workspace explain"
    assert reg.get("explain").origin == str(ws_explain)
    assert reg.overridden["explain"] == ["built-in", str(user_dir / "explain.toml")]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('title = "x"\ntemplate = "a"\noops = = 3\n', 3, "not valid TOML"),
        ('template = "{selection}"\n', 1, "missing required key 'title'"),
        (
            'title = "x"\n\ntemplate = """\nline one\nsee {selction} here\n"""\n',
            5,
            "unknown placeholder {selction}",
        ),
        ('title = "x"\ntemplate = "{path.upper}"\n', 2, "unknown placeholder {path.upper}"),
        ('title = "x"\ntemplate = "{selection!r}"\n', 2, "unknown placeholder {selection!r}"),
        ('title = "x"\ntemplate = "a } b"\n', 2, "unbalanced braces"),
        ('title = "x"\ntemplate = "a"\noutput = "pdf"\n', 3, "'output' = 'pdf' is not allowed"),
        ('title = "x"\ntemplate = "a"\nrole = "embedding"\n', 3, "'role' = 'embedding'"),
        ('title = "x"\ntemplate = "a"\n\ncontext = ["selection", "all"]\n', 4, "unknown kind 'all'"),
        ('title = "x"\ntemplate = "a"\nmax_tokens = -5\n', 3, "non-negative integer"),
        ('title = 3\ntemplate = "a"\n', 1, "'title' must be a string"),
        ('title = "x"\ntemplate = "a"\ncolour = "red"\n', 3, "unknown key 'colour'"),
        ('title = "x"\ntemplate = "   "\n', 2, "'template' must not be empty"),
        ('name = "Bad Name"\ntitle = "x"\ntemplate = "a"\n', 1, "'name' must be lower-case"),
    ],
)
def test_a_broken_recipe_file_is_reported_with_its_line_and_the_rest_load(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    folder = registry.workspace_recipes_dir(tmp_path)
    bad = write(folder, "broken.toml", text)
    write(folder, "rustify.toml", GOOD)
    reg = registry.load(tmp_path)
    assert "broken" not in reg.recipes
    assert "rustify" in reg.recipes and "explain" in reg.recipes
    (problem,) = reg.problems
    assert problem.path == str(bad)
    assert problem.line == line, problem
    assert message in problem.message
    assert str(problem).startswith(f"{bad}:{line}: ")


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    folder = registry.workspace_recipes_dir(tmp_path)
    bad = write(folder, "latin.toml", 'title = "caf\xe9"\n'.encode("latin-1"))
    reg = registry.load(tmp_path)
    assert [p.path for p in reg.problems] == [str(bad)]
    assert "cannot read" in reg.problems[0].message


def test_templates_render_known_placeholders_and_literal_braces() -> None:
    recipe = registry.parse("dict", 'title = "t"\ntemplate = "{{ {path}:{lines} }} {question}"\n', "test")
    assert recipe.render(path="a.py", lines="3-4") == "{ a.py:3-4 } "
    all_fields = " ".join("{" + p + "}" for p in PLACEHOLDERS)
    assert registry.parse("all", f'title = "t"\ntemplate = "{all_fields}"\n', "test").template == all_fields


def test_only_inline_completion_may_go_without_a_template() -> None:
    assert registry.parse("c", 'title = "t"\nrunner = "complete"\n', "test").template == ""
    with pytest.raises(RecipeError, match="missing required key 'template'"):
        registry.parse("p", 'title = "t"\n', "test")


def test_the_recipe_name_defaults_to_the_file_stem_and_can_be_set() -> None:
    assert registry.parse("stem", 'title = "t"\ntemplate = "x"\n', "o").name == "stem"
    named = registry.parse("stem", 'name = "other"\ntitle = "t"\ntemplate = "x"\n', "o")
    assert isinstance(named, Recipe) and named.name == "other"


def test_the_documented_example_recipe_loads() -> None:
    doc = registry.__doc__ or ""
    example = textwrap.dedent(doc.split("::", 1)[1].split("Placeholders", 1)[0])
    recipe = registry.parse("rustify", example, "docs")
    assert (recipe.title, recipe.output, recipe.max_tokens) == ("Translate to Rust", "edit", 512)
