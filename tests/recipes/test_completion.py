"""Inline completion end to end: real index, real tree-sitter, the bundled SmolLM2 model."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from ragls import config
from ragls.cli import main
from ragls.indexer.engine import Index
from ragls.llm import factory
from ragls.llm.llama_cpp import PREFILL_CHUNK
from ragls.llm.speed import Speed
from ragls.recipes.completion import (
    PositionError,
    _prefix_window,
    clear_sticky_context,
    complete,
    cursor_offset,
    definition_start,
    forget_document,
    imported_modules,
    resolve_mode,
)
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


def test_the_context_stays_while_the_cursor_stays_in_a_definition(index: Index) -> None:
    clear_sticky_context()
    text = APP + "    cart.apply_discount(10)\n    router.dispatch("
    first = complete(index, None, "shop/app.py", CALL_LINE, CALL_COL, text=text, context_only=True)
    line = text.count("\n") + 1
    second = complete(index, None, "shop/app.py", line, len("    router.dispatch(") + 1, text=text,
                      context_only=True)  # fmt: skip
    assert second.context is first.context  # byte-identical prompt head: llama.cpp's cache holds
    assert "shop/web/router.py:36-42" not in [s.label for s in second.context]  # `dispatch`, named later


def test_entering_another_definition_keeps_shared_snippets_in_place(index: Index) -> None:
    clear_sticky_context()
    text = APP + "    cart.apply_discount(10)\n\n\ndef ship(cart):\n    total = cart.total_with_tax()\n"
    text += "    router.add_route(router.dispatch("
    first = complete(index, None, "shop/app.py", CALL_LINE, CALL_COL, text=text, context_only=True)
    line = text.count("\n") + 1
    second = complete(index, None, "shop/app.py", line, len(text.rsplit("\n", 1)[1]) + 1, text=text,
                      context_only=True)  # fmt: skip
    before = [s.label for s in first.context]
    after = [s.label for s in second.context]
    shared = [label for label in before if label in after]
    assert shared and after[: len(shared)] == shared  # the prompt head is unchanged up to the new snippets
    assert "shop/web/router.py:36-42" in after[len(shared) :]  # `dispatch`, newly referenced, comes after


@pytest.mark.parametrize(
    ("prefix", "start"),
    [
        ("import os\n\n\ndef f(x):\n    y = x\n    return (\n", 3),  # a blank or indented line: above
        ("def f(x):\n    return x\n\n\n@cache\ndef g(", 5),  # typing the signature: its own line
        ("func A() {\n}\n\n// B does b.\n// It\n", 0),  # a closing brace, comments: the function above
        ("class A\n  def b\n  end\nend\n", 0),
        ("  indented only\n", 0),
    ],
)
def test_definition_start(prefix: str, start: int) -> None:
    assert definition_start(prefix) == start


def test_the_window_start_stays_until_the_window_outgrows_itself() -> None:
    prefix = "".join(f"value_{i} = compute({i})\n" for i in range(100))
    window, first = _prefix_window(prefix, 375)
    grown, kept = _prefix_window(prefix + "x = compute(1) + compute(2)\ny = ", 375, first)
    assert kept == first and grown.startswith(window)  # the prompt only grew at its end
    moved, start = _prefix_window(prefix + "z = 1\n" * 40, 375, first)
    assert start > first and len(moved) <= 375


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


# -- the latency budget and the prompt cache (real model; speeds fed in where a test needs known ones)


@pytest.fixture
def fed(provider):
    """Set the provider's measured speeds to known figures for one test."""
    saved = provider.speed

    def feed(prompt_tps: float, generate_tps: float) -> None:
        provider.speed = Speed(prompt_tps, generate_tps, first_prompt_tps=prompt_tps)

    yield feed
    provider.speed = saved


LONG = "".join(f"def helper_{i}(value):\n    return value * {i} + len(str(value))\n\n\n" for i in range(60))


def test_a_prompt_that_fits_the_budget_is_used_whole(index: Index, provider, fed) -> None:
    fed(prompt_tps=1_000, generate_tps=100)  # 10 s: room for ~9,900 prompt tokens, whatever the load
    text = LONG + APP
    line = text.count("\n")
    provider.llama.reset()
    result = complete(
        index, provider, "shop/app.py", line, CALL_COL, text=text, mode="single", budget_ms=10_000
    )
    assert result.over_budget is None and result.context
    assert result.read_tokens == result.prompt_tokens > 1_000


def test_a_slow_model_gets_a_shorter_prompt_and_an_automatic_trigger_reads_it_late(
    index: Index, provider, fed
) -> None:
    text = LONG + APP
    line, col = text.count("\n"), CALL_COL
    fed(prompt_tps=20_000, generate_tps=2_000)
    fast = complete(index, provider, "shop/app.py", line, col, text=text, context_only=True)
    fast_prompt = complete(index, provider, "shop/app.py", line, col, text=text, mode="single")
    fed(prompt_tps=100, generate_tps=100)
    slow = complete(index, provider, "shop/app.py", line, col, text=text, context_only=True)
    provider.llama.reset()  # cold: nothing of the prompt is cached
    before = provider.evaluated()
    automatic = complete(index, provider, "shop/app.py", line, col, text=text, mode="single", budget_ms=250)
    # over budget, yet read whole (an editor asks once per change: answering nothing would leave a
    # pause without a suggestion); the next keystroke's cancel would stop it with its work kept
    assert automatic.over_budget is None and automatic.context
    assert provider.evaluated()[0] - before[0] >= automatic.prompt_tokens - 2  # read in batches, all of it
    assert automatic.prompt_tokens < fast_prompt.prompt_tokens  # less of the file and the context
    assert sum(len(s.text) for s in slow.context) <= sum(len(s.text) for s in fast.context)
    assert provider.count_tokens(automatic.warm_prompt) == automatic.prompt_tokens  # what to read ahead


def test_an_invoked_trigger_over_budget_reads_a_short_prompt(index: Index, provider, fed) -> None:
    text = LONG + APP
    line = text.count("\n")
    fed(prompt_tps=100, generate_tps=100)
    provider.llama.reset()
    before = provider.evaluated()
    result = complete(
        index, provider, "shop/app.py", line, CALL_COL, text=text, mode="single", budget_ms=1000, invoked=True
    )
    read = provider.evaluated()[0] - before[0]
    assert result.over_budget and result.context == []
    assert 0 < result.read_tokens <= 100  # the lines that fit the budget (or 48 tokens if more)
    assert read <= result.read_tokens  # llama.cpp's own count of prompt tokens read in batches


def test_a_keystroke_reads_only_the_new_tokens(repo: Path, index: Index, provider) -> None:
    text = LONG + (repo / "shop" / "app.py").read_text() + "    result = checkout(cart)\n    log = "
    line, col = text.count("\n") + 1, len("    log = ") + 1
    provider.llama.reset()
    before = provider.evaluated()
    cold = complete(index, provider, "shop/app.py", line, col, text=text, mode="single")
    after_cold = provider.evaluated()
    warm = complete(index, provider, "shop/app.py", line, col + 3, text=text + "str", mode="single")
    after_warm = provider.evaluated()
    assert cold.read_tokens == cold.prompt_tokens > 100
    assert after_cold[0] - before[0] >= cold.read_tokens - 2  # read in batches (a last lone token is not)
    assert warm.read_tokens <= 4  # "str" and the token it may merge with
    assert after_warm[0] - after_cold[0] <= warm.read_tokens


def test_typing_a_block_reads_only_what_each_key_adds(repo: Path, index: Index, provider) -> None:
    """Lines typed in one definition, calling a function defined in another file (on main that
    brought its definition into the context and the whole prompt after it was read again): every
    keystroke finds its prompt cached but for what it typed."""
    clear_sticky_context()
    text = LONG + (repo / "shop" / "app.py").read_text()
    provider.llama.reset()
    cold = complete(index, provider, "shop/app.py", text.count("\n") + 1, 1, text=text, mode="single")
    assert cold.read_tokens == cold.prompt_tokens > 100
    for key in "    router.dispatch(cart)\n    x":
        text += key
        tail = text.rsplit("\n", 1)[1]
        before = provider.evaluated()
        warm = complete(index, provider, "shop/app.py", text.count("\n") + 1, len(tail) + 1, text=text,
                        mode="single")  # fmt: skip
        read = provider.evaluated()[0] - before[0]
        assert warm.read_tokens <= 3 and read <= 3, (key, warm.read_tokens, read)
        assert warm.context is cold.context


def test_a_files_first_automatic_request_answers_from_what_fits_and_reads_the_rest_ahead(
    index: Index, provider, fed
) -> None:
    """Nothing of a freshly opened file's prompt is cached: its first automatic request answers
    from the window's last lines that read within FIRST_KEY_MS at the measured speed, with no
    context; its whole file-only window is what is read ahead, so the next key adds to that."""
    clear_sticky_context()
    fed(prompt_tps=100, generate_tps=100)  # ~90 prompt tokens fit in 1 s
    text = LONG + APP + "    total = checkout(cart)\n    log = "
    line, col = text.count("\n") + 1, len("    log = ") + 1
    provider.llama.reset()
    before = provider.evaluated()
    first = complete(index, provider, "shop/app.py", line, col, text=text, mode="single", budget_ms=250)
    read = provider.evaluated()[0] - before[0]
    assert first.context == [] and first.over_budget
    assert 0 < first.read_tokens <= 100 and read <= first.read_tokens  # llama.cpp's own count
    assert first.prompt_tokens > 200 and "checkout" in first.warm_prompt  # the whole window, to read ahead
    assert provider.prefill(first.warm_prompt, lambda: False)  # what the server's read-ahead does
    text += "str("
    second = complete(index, provider, "shop/app.py", line, col + 4, text=text, mode="single", budget_ms=250)
    assert second.over_budget is None and second.context == []
    assert second.read_tokens <= 3 and second.warm_prompt.startswith(first.warm_prompt)
    clear_sticky_context()
    asked = complete(index, provider, "shop/app.py", line, col + 4, text=text, mode="single")
    assert asked.context  # not automatic (the CLI, an invoked trigger): the whole prompt


def test_a_reopened_document_answers_its_first_keystroke_as_a_first_one(index: Index, provider, fed) -> None:
    """Closing a document forgets its prompt head: reopened, its first automatic request answers
    from what fits again instead of reading a whole prompt the model's cache no longer holds."""
    clear_sticky_context()
    fed(prompt_tps=100, generate_tps=100)
    text = LONG + APP + "    total = checkout(cart)\n    log = "
    line, col = text.count("\n") + 1, len("    log = ") + 1
    first = complete(index, provider, "shop/app.py", line, col, text=text, mode="single", budget_ms=250)
    assert first.over_budget
    assert provider.prefill(first.warm_prompt, lambda: False)
    kept = complete(index, provider, "shop/app.py", line, col, text=text, mode="single", budget_ms=250)
    assert kept.over_budget is None and kept.read_tokens <= 3  # open all along: the head is kept
    forget_document(index, index.root / "shop" / "app.py")
    provider.llama.reset()  # meanwhile the model read other documents' prompts
    reopened = complete(index, provider, "shop/app.py", line, col, text=text, mode="single", budget_ms=250)
    assert reopened.over_budget and reopened.context == [] and reopened.read_tokens < reopened.prompt_tokens


def test_a_files_first_keystroke_past_its_time_ends_a_block_with_its_first_line(
    index: Index, provider
) -> None:
    """A block is written until it ends, but a file's first automatic request, once FIRST_KEY_MS
    have passed, shows the first line it finished rather than wait for the rest."""
    text = "def numbers():\n" + "".join(f"    n{i} = {i}\n" for i in range(1, 12)) + "    "
    line, col = text.count("\n") + 1, 5

    def finished_lines(raw: str) -> int:
        return sum(1 for row in raw.split("\n")[:-1] if row.strip())

    clear_sticky_context()
    whole = complete(index, provider, "shop/numbers.py", line, col, text=text, mode="multi", budget_tokens=0)
    assert finished_lines(whole.raw) >= 3, whole.raw  # the model goes on with the pattern
    clear_sticky_context()
    late = complete(
        index, provider, "shop/numbers.py", line, col, text=text, mode="multi", budget_tokens=0,
        budget_ms=250, arrived=time.perf_counter() - 5,
    )  # fmt: skip
    assert finished_lines(late.raw) == 1, late.raw


def test_reading_ahead_leaves_only_the_keystroke_to_read_and_yields_between_chunks(
    index: Index, provider
) -> None:
    text = LONG + APP
    line = text.count("\n")
    provider.llama.reset()
    probe = complete(index, provider, "shop/app.py", line, CALL_COL, text=text, mode="single")
    provider.llama.reset()
    calls = []
    assert not provider.prefill(probe.warm_prompt, lambda: len(calls) > 2 or calls.append(1))
    assert provider.cached_tokens(probe.warm_prompt) == 3 * PREFILL_CHUNK  # stopped, what it read kept
    assert provider.prefill(probe.warm_prompt, lambda: False)
    typed = text[:-1] + "'\n"  # one more key at the cursor
    result = complete(index, provider, "shop/app.py", line, CALL_COL + 1, text=typed, mode="single")
    assert result.read_tokens <= 2  # the quote, and the token before it if the two merge


def test_an_invoked_trigger_at_the_end_of_a_line_shows_the_next_one(index: Index, provider) -> None:
    text = "def add(a, b):\n    total = a + b"
    end = len("    total = a + b") + 1
    result = complete(index, provider, "shop/calc.py", 2, end, text=text, invoked=True)
    assert result.raw.strip()  # the bundled model writes something here...
    assert result.completion and result.empty_reason() is None  # ...so an item is shown


def test_a_short_prefix_window_still_shows_the_lines_above() -> None:
    prefix = "".join(f"value_{i} = compute({i})\n" for i in range(100)) + "x = "
    window, first = _prefix_window(prefix, 375)  # the window of a slow model (an eighth)
    assert window.endswith("value_99 = compute(99)\nx = ") and window.count("\n") >= 10
    assert first % 2 == 0  # its start still moves in steps (stable while typing)
