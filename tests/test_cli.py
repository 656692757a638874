"""The ragls command, run as a user would run it (a subprocess with the real entry point)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "minirepo"


def ragls(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ragls.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "RAGLS_CACHE_DIR": str(CACHE)},
        timeout=600,
    )


CACHE = Path()  # one index cache for the whole module, set by the repo fixture


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    global CACHE
    CACHE = tmp_path_factory.mktemp("cli-cache")
    root = tmp_path_factory.mktemp("cli") / "minirepo"
    shutil.copytree(FIXTURE, root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def test_search_builds_the_index_first_and_prints_json(repo: Path) -> None:
    proc = ragls("search", "ConnectionPool", "--root", str(repo), "--json", "--top-k", "3")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert 1 <= len(results) <= 3
    assert set(results[0]) == {"path", "start_line", "end_line", "score", "symbol"}
    assert results[0]["path"] == "shop/storage/pool.py"
    assert results[0]["start_line"] <= 8 <= results[0]["end_line"]  # the class definition line
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_index_prints_summary_table(repo: Path) -> None:
    (repo / "shop" / "extra.py").write_text("def extra_helper():\n    return 1\n")
    proc = ragls("index", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert "files" in proc.stdout and "chunks" in proc.stdout and "languages" in proc.stdout
    assert "1 / 0 / 0" in proc.stdout, proc.stdout  # one file added since the first build
    assert "python" in proc.stdout


def test_search_stdin_answers_each_line(repo: Path) -> None:
    queries = "Router\nexponential backoff with jitter\n\nSlugify\n"
    proc = ragls("search", "--stdin", "--root", str(repo), "--json", "--top-k", "2", stdin=queries)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4
    answers = [json.loads(line) for line in lines]
    assert answers[0][0]["path"] == "shop/web/router.py"
    assert answers[1][0]["path"] == "web/retry.js"
    assert answers[2] == []
    assert answers[3][0]["path"] == "web/slug.go"


def test_human_search_and_status(repo: Path) -> None:
    proc = ragls("search", "verify_token", "--top-k", "2", cwd=repo / "shop")  # root = enclosing git repo
    assert proc.returncode == 0, proc.stderr
    assert "shop/auth/tokens.py" in proc.stdout
    status = ragls("status", "--root", str(repo), "--json")
    data = json.loads(status.stdout)
    assert data["files"] >= 11 and data["pending_embeddings"] == 0
    for tier in data["tiers"].values():
        if tier["enabled"]:
            assert tier["vectors"] == tier["embedded"] == data["chunks"]
    assert data["tiers"]["static"]["enabled"]


def test_config_error_is_reported(repo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[index]\nmax_file_bytes = 'lots'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "ragls.cli", "status", "--root", str(repo)],
        capture_output=True,
        text=True,
        env={**os.environ, "RAGLS_CONFIG": str(bad)},
        timeout=120,
    )
    assert proc.returncode == 2
    assert f"{bad}: 'index.max_file_bytes' must be int, got str 'lots'" in proc.stderr


def test_first_search_on_a_big_folder_answers_before_embedding(tmp_path: Path) -> None:
    root = tmp_path / "big"
    shutil.copytree(FIXTURE, root)
    (root / ".ragls").mkdir()
    config_text = '[search]\nfirst_search_embed_limit = 5\n[index]\ncontextual = "on"\n'
    (root / ".ragls" / "config.toml").write_text(config_text)
    proc = ragls("search", "ConnectionPool", "--root", str(root), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["path"] == "shop/storage/pool.py"
    assert "chunks still need contextual embeddings" in " ".join(proc.stderr.split())
    status = json.loads(ragls("status", "--root", str(root), "--json").stdout)
    tiers = status["tiers"]
    assert tiers["static"]["embedded"] == status["chunks"]  # the fast tier is always built
    assert tiers["contextual"]["embedded"] == 0 and status["pending_embeddings"] == status["chunks"]


def test_index_json_reports_progress_then_the_result(repo: Path) -> None:
    """What the language server reads from the `ragls index` child it starts."""
    settings = json.dumps({"search": {"top_k": 3}})
    first = str(repo / "shop" / "cart.py")
    proc = ragls("index", str(repo), "--json", "--settings", settings, "--first", first)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {e["event"] for e in events[:-1]} == {"progress"}
    done = events[-1]
    assert done["event"] == "done" and done["files"] >= 8 and done["root"] == str(repo.resolve())
    bad = ragls("index", str(repo), "--json", "--settings", "{not json")
    assert bad.returncode == 2 and "--settings is not valid JSON" in bad.stderr


def test_search_takes_a_device(repo: Path) -> None:
    """--device once reached the config loader as --settings JSON and was refused."""
    proc = ragls("search", "ConnectionPool", "--root", str(repo), "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["path"] == "shop/storage/pool.py"
