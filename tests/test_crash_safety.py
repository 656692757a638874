"""Kill -9 the indexer while it writes, then check the index opens, is consistent and answers."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ragls_testing import PY, consistent, open_index, write_tree

N_FILES = 400


def start_indexing(root: Path, cache: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ragls.cli", "index", str(root)],
        env={**os.environ, "RAGLS_CACHE_DIR": str(cache)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def poll(cache: Path, sql: str) -> int:
    """Read a count from the child's database (WAL lets readers in while it writes)."""
    found = list(cache.glob("*/index.sqlite"))
    if not found:
        return 0
    try:
        db = sqlite3.connect(f"file:{found[0]}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(sql).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def kill_when(
    proc: subprocess.Popen, cache: Path, sql: str, low: int, high: int, deadline: float = 240
) -> int:
    """SIGKILL the child as soon as ``low <= count < high``; returns the count seen."""
    end = time.monotonic() + deadline
    while time.monotonic() < end and proc.poll() is None:
        seen = poll(cache, sql)
        if low <= seen < high:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return seen
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"never saw {low} <= ({sql}) < {high}; exit code {proc.poll()}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {f"pkg{i % 7}/mod_{i}.py": PY.format(name=f"handler_{i}") * 3 for i in range(N_FILES)}
    # the contextual tier commits in small groups: a kill lands mid-pass
    return write_tree(tmp_path / "ws", {**files, ".ragls/config.toml": '[index]\ncontextual = "on"\n'})


def _processes_indexing(repo: Path) -> list[str]:
    """Pids of live processes whose command line names ``repo`` (the indexer and its workers)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes()
            if str(repo).encode() in args and b"index" in args:
                stat = (cmdline.parent / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":  # not a zombie
                    found.append(cmdline.parent.name)
        except OSError:
            continue
    return found


def test_kill_during_keyword_layer(repo: Path, isolated_env: Path) -> None:
    proc = start_indexing(repo, isolated_env)
    kill_when(proc, isolated_env, "SELECT count(*) FROM files", 1, N_FILES)
    deadline = time.monotonic() + 10
    while _processes_indexing(repo) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_indexing(repo)  # its parse workers died with it
    with open_index(repo) as index:
        consistent(index)
        partial = index.store.counts()["files"]
        assert 0 < partial < N_FILES
        stats = index.update()
        assert stats.added == N_FILES - partial
        assert stats.changed == 0
        index.embed_pending()
        consistent(index)
        assert index.search("handler_399", top_k=1)[0].path == "pkg0/mod_399.py"


def test_kill_during_embedding_then_resume(repo: Path, isolated_env: Path) -> None:
    proc = start_indexing(repo, isolated_env)
    seen = kill_when(proc, isolated_env, "SELECT count(*) FROM vectors WHERE tier = 'contextual'", 1, N_FILES)
    with open_index(repo) as index:
        consistent(index)
        assert index.store.counts()["files"] == N_FILES
        assert index.update().added == 0
        assert index.pending_embeddings() <= N_FILES - seen  # nothing embedded twice
        index.embed_pending()
        consistent(index)
        assert index.pending_embeddings() == 0
        assert index.search("handler_123", top_k=1, mode="dense")[0].path == "pkg4/mod_123.py"


def test_repeated_kills_at_random_moments(repo: Path, isolated_env: Path) -> None:
    for delay in (3.0, 4.5, 6.0, 8.0):
        proc = start_indexing(repo, isolated_env)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with open_index(repo) as index:
            consistent(index)
    with open_index(repo) as index:
        index.update()
        index.embed_pending()
        consistent(index)
        assert index.store.counts()["files"] == N_FILES
        assert index.search("handler_7", top_k=1)[0].path == "pkg0/mod_7.py"
