"""Inline completion end to end: real index, real tree-sitter, the bundled SmolLM2 model."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from ragls import config
from ragls.cli import main
from ragls.indexer.engine import Index
from ragls.llm import factory
from ragls.recipes.completion import PositionError, complete, cursor_offset, imported_modules, resolve_mode
from ragls.recipes.context import render_one

MINIREPO = Path(__file__).parents[1] / "fixtures" / "minirepo"

APP = """from shop.web.router import Router
from shop.cart import Cart

router = Router()


def checkout(cart):
    total = cart.total_with_tax()
    router.add_route(
"""
CALL_LINE, CALL_COL = 9, len("    router.add_route(") + 1


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(MINIREPO, root, dirs_exist_ok=True)
    (root / "shop" / "app.py").write_text(APP)
    (root / "notes.unknownext").write_text("some notes\nwith words\n")
    (root / "empty.py").write_text("")
    (root / "latin1.py").write_bytes(b"name = 'caf\xe9'\nx = na")
    # Two functions named `slugify`: the file importing one of them must get that one first.
    (root / "shop" / "text").mkdir()
    (root / "shop" / "text" / "slugs.py").write_text("def slugify(title):\n    return title.lower()\n")
    (root / "shop" / "legacy.py").write_text("def slugify(title, sep):\n    return sep.join(title)\n")
    (root / "shop" / "pages.py").write_text("from shop.text.slugs import slugify\n\n\nname = slugify(")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAGLS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("RAGLS_CONFIG", str(root / "no-config.toml"))
        yield root


@pytest.fixture(scope="module")
def index(repo: Path):
    idx = Index.open(repo, config.load(repo))
    idx.update()
    yield idx
    idx.close()


@pytest.fixture(scope="module")
def provider(repo: Path):
    model = factory.create("completion", config.load(repo))
    yield model
    model.close()


def test_context_holds_the_cross_file_definition_of_the_call_being_typed(index: Index) -> None:
    result = complete(index, None, "shop/app.py", CALL_LINE, CALL_COL, context_only=True)
    assert result.completion == "" and "first_token_ms" not in result.timings_ms
    by_label = {(s.path, s.source): s for s in result.context}
    add_route = by_label[("shop/web/router.py", "definition")]
    assert add_route.start_line <= 25 <= add_route.end_line  # `def add_route` is line 25
    assert "def add_route" in add_route.text
    # The definition of the call on the cursor's line is the best snippet: last, next to the code.
    assert result.context[-1] == add_route
    assert ("shop/cart.py", "definition") in by_label  # total_with_tax, referenced a line above
    assert result.timings_ms["context_ms"] < 1000


def test_the_imported_definition_of_an_ambiguous_name_ranks_first(index: Index) -> None:
    result = complete(index, None, "shop/pages.py", 4, len("name = slugify(") + 1, context_only=True)
    definitions = [s for s in result.context if s.source == "definition"]
    assert [s.path for s in definitions[-2:]] == ["shop/legacy.py", "shop/text/slugs.py"]


def test_moving_to_another_line_keeps_shared_snippets_in_place(index: Index) -> None:
    text = APP + "    cart.apply_discount(10)\n    router.dispatch("
    first = complete(index, None, "shop/app.py", CALL_LINE, CALL_COL, text=text, context_only=True)
    line = text.count("\n") + 1
    second = complete(index, None, "shop/app.py", line, len("    router.dispatch(") + 1, text=text,
                      context_only=True)  # fmt: skip
    before = [s.label for s in first.context]
    after = [s.label for s in second.context]
    shared = [label for label in before if label in after]
    assert shared and after[: len(shared)] == shared  # the prompt head is unchanged up to the new snippets
    assert "shop/web/router.py:36-42" in after[len(shared) :]  # `dispatch`, newly referenced, comes after


def test_recent_files_and_retrieval_fill_the_rest_within_budget(index: Index) -> None:
    result = complete(
        index, None, "shop/app.py", CALL_LINE, CALL_COL, context_only=True,
        recent=["tests/test_router.py"], budget_tokens=400,
    )  # fmt: skip
    sources = {s.source for s in result.context}
    assert "recent" in sources and "definition" in sources
    assert all(s.path != "shop/app.py" for s in result.context)
    tight = complete(index, None, "shop/app.py", CALL_LINE, CALL_COL, context_only=True, budget_tokens=60)
    from ragls.llm.base import approx_tokens

    assert sum(approx_tokens(render_one(s)) for s in tight.context) <= 60


def test_a_zero_budget_is_a_file_only_prompt(index: Index) -> None:
    """server.completion_context = "file" (what llm-ls sends): the same place, no repository context."""
    assert complete(index, None, "shop/app.py", CALL_LINE, CALL_COL, context_only=True).context
    alone = complete(index, None, "shop/app.py", CALL_LINE, CALL_COL, context_only=True, budget_tokens=0)
    assert alone.context == []


def test_completion_with_the_bundled_model(index: Index, provider) -> None:
    result = complete(index, provider, "shop/app.py", CALL_LINE, CALL_COL, mode="single")
    assert result.template == "plain" and result.mode == "single" and result.error is None
    assert isinstance(result.completion, str) and "\n" not in result.completion
    expected = {"context_ms", "first_token_ms", "generate_ms", "postprocess_ms", "total_ms"}
    assert expected <= set(result.timings_ms)


def test_typing_reuses_the_prompt_cache(repo: Path, index: Index, provider) -> None:
    """The prompt only grows while typing: the second request after a few typed characters
    skips the prompt processing the first one paid for."""
    text = (repo / "shop" / "app.py").read_text() + "    result = checkout(cart)\n    log = "
    line = text.count("\n") + 1
    col = len("    log = ") + 1
    cold = complete(index, provider, "shop/app.py", line, col, text=text, mode="single")
    warm = complete(index, provider, "shop/app.py", line, col + 3, text=text + "str", mode="single")
    assert warm.context is cold.context  # sticky: same snippets, same prompt head
    assert warm.timings_ms["first_token_ms"] < cold.timings_ms["first_token_ms"] / 3


def test_imported_modules_across_languages() -> None:
    source = (
        "from ..sub.mod import a\nimport os.path\nimport { x } from './lib/util.js';\n"
        "const y = require('../core/thing');\nuse crate::net::client;\n"
    )
    assert imported_modules(source) == ["sub/mod", "os/path", "lib/util", "core/thing", "crate/net/client"]


def test_auto_mode() -> None:
    assert resolve_mode("auto", "def f():\n    ", "\n") == "multi"
    assert resolve_mode("auto", "x = foo(", "\n") == "multi"
    assert resolve_mode("auto", "x = fo", "\n") == "single"
    assert resolve_mode("auto", "x = foo(", ")\n") == "single"
    assert resolve_mode("multi", "x = fo", "") == "multi"


def test_positions_are_one_based_and_checked(index: Index) -> None:
    assert cursor_offset("ab\ncd", 2, 1) == 3
    assert cursor_offset("ab\ncd", 2, 3) == 5  # end of the line
    assert cursor_offset("", 1, 1) == 0
    for line, col in ((0, 1), (3, 1), (2, 4), (1, 0)):
        with pytest.raises(PositionError):
            cursor_offset("ab\ncd", line, col)
    with pytest.raises(PositionError, match="outside"):
        complete(index, None, "shop/app.py", 99, 1, context_only=True)


@pytest.mark.parametrize(
    ("path", "line", "col"),
    [("empty.py", 1, 1), ("notes.unknownext", 2, 5), ("latin1.py", 2, 7), ("shop/app.py", 10, 1)],
)
def test_bad_inputs_give_a_result_not_a_crash(index: Index, provider, path: str, line: int, col: int) -> None:
    result = complete(index, provider, path, line, col)
    assert isinstance(result.completion, str) and result.error is None


def test_cancelled_request_is_empty(index: Index, provider) -> None:
    cancel = threading.Event()
    cancel.set()
    result = complete(index, provider, "shop/app.py", CALL_LINE, CALL_COL, cancel=cancel)
    assert result.completion == "" and result.error == "cancelled"


def test_cli_json_context_only(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["complete", f"{repo}/shop/app.py:{CALL_LINE}:{CALL_COL}", "--root", str(repo), "--json",
                 "--context-only"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["completion"] == ""
    assert {"path", "start_line", "end_line", "source"} <= set(out["context"][0])
    assert any(c["path"] == "shop/web/router.py" and c["source"] == "definition" for c in out["context"])
    assert "context_ms" in out["timings_ms"]


def test_cli_completion_and_explain(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = f"{repo}/shop/app.py:{CALL_LINE}:{CALL_COL}"
    assert main(["complete", target, "--root", str(repo), "--json", "--mode", "single"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["completion"], str) and "first_token_ms" in out["timings_ms"]
    assert main(["complete", target, "--root", str(repo), "--explain", "--context-only"]) == 0
    assert "shop/web/router.py:25" in capsys.readouterr().out


def test_cli_bad_position_and_missing_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["complete", f"{repo}/shop/app.py:500:1", "--root", str(repo), "--context-only"]) == 2
    assert "outside the document" in capsys.readouterr().err
    assert main(["complete", f"{repo}/nope.py:1:1", "--root", str(repo), "--context-only"]) == 2
    with pytest.raises(SystemExit):
        main(["complete", "shop/app.py:x", "--root", str(repo)])
