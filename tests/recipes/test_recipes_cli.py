"""Every built-in recipe, ``ragls ask`` and ``ragls recipes`` run as a user runs them: the real
entry point in a subprocess, a real index built on first use, the bundled SmolLM2 model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ragls.recipes.answer import TERSE_TOKENS, finish_allowance
from ragls.recipes.registry import workspace_recipes_dir

# Greedy and short: the tiny model's answers are weak either way, and this keeps the suite quick.
RECIPES_CONFIG = "\n[recipes]\ntemperature = 0.0\nanswer_tokens = 96\n"
CUSTOM = '''title = "Answer a question about the selection"
context = ["selection", "definitions"]
template = """{context}
{question}

```{language}
{selection}
```"""
'''


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, repo_factory: Callable[[Path], Path]) -> Path:
    root = repo_factory(tmp_path_factory.mktemp("cli") / "minirepo")
    with (root / ".ragls" / "config.toml").open("a") as f:
        f.write(RECIPES_CONFIG)
    recipes = workspace_recipes_dir(root)
    recipes.mkdir()
    (recipes / "about.toml").write_text(CUSTOM)
    (recipes / "broken.toml").write_text('title = "Broken"\ntemplate = """\n{selection}\n{colour}\n"""\n')
    (root / "empty.py").write_text("")
    (root / "notes.zzz").write_text("first line of notes\nsecond line of notes\n")
    (root / "legacy.py").write_bytes(b"def caf\xe9(x):\n    return x * 2  # d\xe9j\xe0 vu\n")
    return root


def ragls(repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ragls.cli", *args, "--root", str(repo)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=repo,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )


def run_json(repo: Path, *args: str) -> dict:
    proc = ragls(repo, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_recipes_lists_builtins_and_custom_ones_and_reports_broken_files(repo: Path) -> None:
    proc = ragls(repo, "recipes")
    assert proc.returncode == 0, proc.stderr
    for name in ("explain", "unit-test", "docstring", "smell", "ask", "complete", "about"):
        assert name in proc.stdout
    broken = workspace_recipes_dir(repo) / "broken.toml"
    assert f"{broken}:4: unknown placeholder {{colour}}" in " ".join(proc.stderr.split())
    listed = run_json(repo, "recipes")
    origins = {r["name"]: r["origin"] for r in listed["recipes"]}
    assert origins["explain"] == "built-in"
    assert origins["about"] == str(workspace_recipes_dir(repo) / "about.toml")
    assert listed["problems"] == [
        {"path": str(broken), "line": 4, "message": listed["problems"][0]["message"]}
    ]


def test_explain_streams_an_answer_about_the_selection(repo: Path) -> None:
    proc = ragls(repo, "recipe", "explain", "shop/cart.py:13")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert "shop/cart.py:8-26 (enclosing)" in " ".join(proc.stderr.split())


@pytest.mark.parametrize(
    ("name", "target", "span", "sources"),
    [
        ("explain", "shop/cart.py:13", (12, 14), {"enclosing"}),
        ("docstring", "shop/storage/pool.py:20", None, set()),
        ("smell", "shop/auth/tokens.py", None, set()),
        ("unit-test", "shop/web/router.py:37", (36, 42), {"enclosing", "test"}),
    ],
)
def test_every_prompt_recipe_runs_end_to_end(
    repo: Path, name: str, target: str, span: tuple[int, int] | None, sources: set[str]
) -> None:
    result = run_json(repo, "recipe", name, target)
    assert result["recipe"] == name and result["answer"].strip()
    assert result["path"] == target.split(":")[0]
    if span:
        assert (result["start_line"], result["end_line"]) == span
    assert sources <= {c["source"] for c in result["context"]}
    assert result["timings_ms"]["first_token_ms"] > 0
    if name == "unit-test":
        assert result["target_path"] == "tests/test_router.py"  # beside the existing tests
    if name in ("docstring", "unit-test"):  # code outputs: the code block, or a note saying why not
        assert result["code"] or any("no code block" in n for n in result["notes"])


def test_the_complete_recipe_runs_inline_completion(repo: Path) -> None:
    result = run_json(repo, "recipe", "complete", "shop/cart.py:14")
    assert result["recipe"] == "complete" and (result["start_line"], result["end_line"]) == (14, 14)
    assert isinstance(result["answer"], str) and result["code"] == result["answer"]
    assert result["context"], "completion context was assembled"


def test_a_custom_recipe_with_a_question(repo: Path) -> None:
    result = run_json(repo, "recipe", "about", "shop/cart.py:19", "-q", "What does apply_discount change?")
    assert result["answer"].strip() and result["symbol"] == "cart.Cart.apply_discount"
    proc = ragls(repo, "recipe", "about", "shop/cart.py:19")
    assert proc.returncode == 2 and "pass --question" in proc.stderr


def test_the_ask_recipe_answers_a_question_about_a_selection(repo: Path) -> None:
    result = run_json(repo, "recipe", "ask", "shop/cart.py:19", "-q", "Where is this discount used?")
    assert result["recipe"] == "ask" and result["answer"].strip()
    assert result["symbol"] == "cart.Cart.apply_discount"


def test_ask_answers_with_verified_citations_in_the_documented_json(repo: Path) -> None:
    result = run_json(repo, "ask", "how are routes registered and dispatched?")
    assert set(result) == {"answer", "citations", "dropped_citations", "route", "results"}
    assert result["route"] == "answer" and result["answer"].strip()
    assert isinstance(result["dropped_citations"], int)
    for c in result["citations"]:
        assert set(c) == {"path", "start_line", "end_line"}
        lines = (repo / c["path"]).read_text().count("\n")
        assert 1 <= c["start_line"] <= c["end_line"] <= lines
    assert result["results"][0]["path"] == "shop/web/router.py"


def test_ask_streams_then_prints_sources(repo: Path) -> None:
    proc = ragls(repo, "ask", "how does the connection pool hand out connections?", "--detailed")
    assert proc.returncode == 0, proc.stderr
    assert "sources" in proc.stdout.lower()  # verified citations, or retrieved sources marked as such
    assert "shop/storage/pool.py" in proc.stdout


def test_ask_terse_is_one_question_shorter_and_flags_exclude_each_other(repo: Path) -> None:
    question = "how does the connection pool hand out connections?"
    terse = run_json(repo, "ask", question, "--terse")
    assert terse["route"] == "answer" and terse["answer"].strip()
    # The terse cap plus the allowance to finish a sentence bound its words.
    assert len(terse["answer"].split()) <= TERSE_TOKENS + finish_allowance(TERSE_TOKENS)
    proc = ragls(repo, "ask", question, "--terse", "--detailed")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


def test_ask_with_a_search_returns_results_not_an_answer(repo: Path) -> None:
    result = run_json(repo, "ask", "ConnectionPool")
    assert result["route"] == "search" and result["answer"] == "" and result["citations"] == []
    assert result["results"][0]["path"] == "shop/storage/pool.py"


def test_ask_chat_keeps_the_conversation_across_lines(repo: Path) -> None:
    proc = ragls(repo, "ask", "--chat", "--json",
                 stdin="how does the router dispatch a request?\n\nand where is that tested?\nSlugify\n")
    assert proc.returncode == 0, proc.stderr
    first, follow, search = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["route"] == follow["route"] == "answer" and search["route"] == "search"
    paths = [r["path"] for r in follow["results"]]
    assert "shop/web/router.py" in paths and "tests/test_router.py" in paths
    assert search["results"][0]["path"] == "web/slug.go"


def test_ask_needs_a_question_or_chat(repo: Path) -> None:
    proc = ragls(repo, "ask")
    assert proc.returncode != 0 and "give a QUESTION, or --chat" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("recipe", "explain", "empty.py"), "empty.py is empty"),
        (("recipe", "explain", "shop/cart.py:80"), "shop/cart.py has 26 lines; line 80 is past its end"),
        (("recipe", "explain", "shop/cart.py:9-2"), "is not a line range"),
        (("recipe", "explain", "shop/missing.py"), "no such file"),
        (("recipe", "complete", "shop/cart.py:80"), "past its end"),
        (("recipe", "nonsense", "shop/cart.py"), "no recipe named 'nonsense'"),
    ],
)
def test_bad_input_is_a_clear_message(repo: Path, args: tuple[str, ...], message: str) -> None:
    proc = ragls(repo, *args)
    assert proc.returncode == 2
    assert message in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


def test_files_without_a_grammar_and_with_invalid_utf8_still_work(repo: Path) -> None:
    plain = run_json(repo, "recipe", "explain", "notes.zzz:2")
    assert plain["answer"].strip() and (plain["start_line"], plain["end_line"]) == (2, 2)
    legacy = run_json(repo, "recipe", "smell", "legacy.py")
    assert legacy["answer"].strip()
    assert any("not valid UTF-8" in n for n in legacy["notes"])


# -- answers no real model can be made to give, from a scripted OpenAI-compatible endpoint --------


@pytest.fixture
def scripted(tmp_path: Path, repo_factory: Callable[[Path], Path], endpoint) -> tuple[Path, object]:
    root = repo_factory(tmp_path / "repo")
    with (root / ".ragls" / "config.toml").open("a") as f:
        f.write("embeddings = false\n" + endpoint.config(tmp_path / "audit.jsonl"))
    return root, endpoint


def test_an_empty_answer_is_a_clear_message(scripted) -> None:
    root, endpoint = scripted
    endpoint.replies += [endpoint.stream("", "  \n"), endpoint.stream("")]
    proc = ragls(root, "ask", "how are routes registered?", "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["answer"] == ""
    assert "the model returned an empty answer" in proc.stderr
    proc = ragls(root, "recipe", "explain", "shop/cart.py:13")
    assert proc.returncode == 1 and "the model returned an empty answer" in proc.stderr


def test_a_malformed_stream_is_a_model_error_not_a_traceback(scripted) -> None:
    root, endpoint = scripted
    endpoint.replies.append(b"data: {this is not json\n\n")
    proc = ragls(root, "ask", "how are routes registered?")
    assert proc.returncode == 1
    assert "ragls ask: model error:" in proc.stderr and "Traceback" not in proc.stderr


def test_invented_citations_are_dropped_and_counted(scripted) -> None:
    root, endpoint = scripted
    endpoint.replies.append(endpoint.stream(
        "Totals are in shop/cart.py:25-26, ", "payments in shop/payments.py:1-9 ", "and shop/cart.py:400-410."
    ))
    result = run_json(root, "ask", "how is the cart total computed?")
    assert result["citations"] == [{"path": "shop/cart.py", "start_line": 25, "end_line": 26}]
    assert result["dropped_citations"] == 2
    endpoint.replies.append(endpoint.stream("Routing: shop/web/router.py:99-120."))
    proc = ragls(root, "ask", "how are routes registered?")
    assert proc.returncode == 0
    assert "dropped 1 citation(s) that could not be verified" in " ".join(proc.stderr.split())
    assert "Retrieved sources" in proc.stdout  # nothing verifiable cited: the grounding is shown instead
