"""The index engine: incremental updates, embedding cache, bad input, corruption recovery."""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from ragls_testing import PY, consistent, file_chunks, open_index, use_store, write_tree

from ragls.indexer import engine
from ragls.indexer.discovery import LINK_DANGLING, LINK_LEAVES


def test_incremental_update_touches_only_changed_files(tmp_path: Path, store: str) -> None:
    root = use_store(write_tree(tmp_path, {f"m{i}.py": PY.format(name=f"func_{i}") for i in range(5)}), store)
    with open_index(root) as index:
        first = index.update()
        assert (first.added, first.changed, first.removed, first.files) == (5, 0, 0, 5)
        index.embed_pending()
        before = {p: file_chunks(index, p) for p in ("m0.py", "m1.py")}

        (root / "m1.py").write_text(PY.format(name="renamed_function"))
        (root / "m2.py").unlink()
        (root / "new.py").write_text(PY.format(name="brand_new"))
        os.utime(root / "m3.py")  # touched, content unchanged
        second = index.update()
        assert (second.added, second.changed, second.removed) == (1, 1, 1)
        assert second.unchanged == 3
        assert file_chunks(index, "m0.py") == before["m0.py"]  # same rows, same ids
        assert file_chunks(index, "m1.py") != before["m1.py"]
        assert index.search("renamed_function", top_k=1)[0].path == "m1.py"
        assert all(r.path != "m2.py" for r in index.search("func_2", top_k=10))
        assert index.pending_embeddings() == 2  # only the new and the changed file
        assert index.embed_pending() == 2
        consistent(index)


def test_embeddings_cached_by_content(tmp_path: Path, store: str) -> None:
    root = use_store(write_tree(tmp_path, {"a.py": PY.format(name="alpha")}), store)
    with open_index(root) as index:
        index.update()
        assert index.embed_pending() == 1
        (root / "a.py").write_text(PY.format(name="beta"))
        index.update()
        assert index.embed_pending() == 1
        (root / "a.py").write_text(PY.format(name="alpha"))  # back to content seen before
        index.update()
        assert index.pending_embeddings() == 0  # the cached vector is reused, nothing re-embedded
        assert [t.vectors.size for t in index.enabled_tiers()] == [1] * len(index.enabled_tiers())
        consistent(index)


def test_reopen_uses_saved_vectors_and_detects_stale_file(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"a.py": PY.format(name="alpha"), "b.py": PY.format(name="beta")})
    with open_index(root) as index:
        index.update()
        index.embed_pending()
        folder, tiers = index.folder, len(index.enabled_tiers())
    saved = list(folder.glob("vectors-*.faiss"))
    assert len(saved) == tiers  # one per tier
    for damaged in saved:
        damaged.write_bytes(b"garbage")  # a damaged cache file
    with open_index(root) as index:
        for tier in index.enabled_tiers():
            assert tier.vectors.size == 2  # rebuilt from SQLite, not re-embedded
        assert index.pending_embeddings() == 0
        assert index.search("alpha", top_k=1, mode="dense")[0].path == "a.py"


def test_corrupt_database_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"a.py": PY.format(name="alpha")})
    with open_index(root) as index:
        index.update()
        db_path = index.store.path
    db_path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    with open_index(root) as index:
        assert any("could not be used" in n and "moved aside" in n for n in index.notices)
        assert index.is_empty()
        index.update()
        assert index.search("alpha", top_k=1)[0].path == "a.py"
    assert list(db_path.parent.glob("index.sqlite.corrupt-*"))


def test_invalid_utf8_binary_and_grammar_trouble(tmp_path: Path, store: str) -> None:
    root = write_tree(
        tmp_path,
        {
            "latin.py": b"def caf\xe9_order():\n    return 'caf\xe9'\n\n"
            b"def helper_after_bad_bytes():\n    pass\n",
            "blob.dat": b"\x00\x01\x02binary",
            "broken.py": "def broken(:\n    return ((( \n"
            "class Ok:\n    def fine_method(self):\n        pass\n",
            "empty.py": "",
        },
    )
    use_store(root, store)
    with open_index(root) as index:
        stats = index.update()
        assert any(p.startswith("latin.py: invalid UTF-8 at byte 7") for p in stats.problems)
        assert index.search("helper_after_bad_bytes", top_k=1)[0].path == "latin.py"
        assert index.search("fine_method", top_k=1)[0].path == "broken.py"
        assert {s.path: s.reason for s in stats.skipped}["blob.dat"] == "binary"
        assert stats.files == 3


def test_file_vanishing_mid_index(tmp_path: Path, store: str) -> None:
    files = {f"pkg/m{i:03}.py": PY.format(name=f"fn_{i}") for i in range(200)}
    root = use_store(write_tree(tmp_path, files), store)
    deleted = [f"pkg/m{i:03}.py" for i in range(100, 150)]

    def delete_during_first_batch(done: int, total: int, what: str) -> None:
        if done == 64:
            for rel in deleted:
                (root / rel).unlink()

    with open_index(root) as index:
        stats = index.update(progress=delete_during_first_batch)
        assert stats.added == 150
        indexed = set(index.store.files())
        assert not indexed & set(deleted)
        assert len(indexed) == 150
        consistent(index)
        again = index.update()
        assert (again.added, again.removed, again.changed) == (0, 0, 0)


@pytest.mark.skipif(
    os.geteuid() == 0 and not shutil.which("setpriv"), reason="root needs setpriv to drop privileges"
)
def test_unreadable_file_is_reported_not_fatal() -> None:
    """Root reads every file, so the indexer runs as 'nobody' here to meet a real EACCES."""
    base = Path(tempfile.mkdtemp(prefix="ragls-unreadable-"))  # pytest's tmp dirs are private to root
    try:
        root = write_tree(
            base / "ws", {"ok.py": PY.format(name="fine"), "locked.py": PY.format(name="hidden")}
        )
        cache = base / "cache"
        cache.mkdir()
        for p in (base, root, cache):
            p.chmod(0o777)
        (root / "locked.py").chmod(0o000)
        drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        proc = subprocess.run(
            [*drop, sys.executable, "-m", "ragls.cli", "index", str(root), "--no-embed", "-v"],
            capture_output=True,
            text=True,
            env={**os.environ, "RAGLS_CACHE_DIR": str(cache), "RAGLS_CONFIG": str(cache / "none.toml")},
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert "skipped locked.py: unreadable (Permission denied)" in " ".join(proc.stderr.split())
        db = sqlite3.connect(next(cache.glob("*/index.sqlite")))
        assert [r[0] for r in db.execute("SELECT path FROM files")] == ["ok.py"]
        db.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_update_paths_applies_creations_edits_deletions_and_ignores(tmp_path: Path, store: str) -> None:
    root = write_tree(
        tmp_path, {".gitignore": "out/\n", "a.py": PY.format(name="alpha"), "b.py": PY.format(name="beta")}
    )
    use_store(root, store)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    with open_index(root) as index:
        index.update()
        (root / "a.py").write_text(PY.format(name="gamma"))
        (root / "b.py").unlink()
        write_tree(
            root, {"c.py": PY.format(name="delta"), "out/gen.py": PY.format(name="generated"), ".env": "K=1"}
        )
        stats = index.update_paths([root / "a.py", root / "b.py", "c.py", root / "out/gen.py", root / ".env"])
        assert (stats.added, stats.changed, stats.removed) == (1, 1, 1)
        assert sorted(index.store.files()) == [".gitignore", "a.py", "c.py"]
        assert {s.path: s.reason for s in stats.skipped} == {
            "out/gen.py": "ignored",
            ".env": "secret-bearing file (never indexed)",
        }
        consistent(index)


def test_chunks_carry_their_content_hash(tmp_path: Path, store: str) -> None:
    root = use_store(write_tree(tmp_path, {"a.py": PY.format(name="alpha")}), store)
    with open_index(root) as index:
        index.update()
        (row,) = file_chunks(index, "a.py")
        stored = index.store.chunk_text(row.id)
        assert row.hash == hashlib.sha256(stored.encode()).hexdigest()
        lines = (root / "a.py").read_text().splitlines()
        assert stored.splitlines() == lines[row.start_line - 1 : row.end_line]


def test_index_of_an_older_format_is_rebuilt(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"a.py": PY.format(name="alpha")})
    with open_index(root) as index:
        index.update()
        index.store.db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    with open_index(root) as index:
        assert any("schema '0', expected" in n and "rebuilding" in n for n in index.notices)
        index.update()
        assert index.search("alpha", top_k=1)[0].path == "a.py"


def _rows(index) -> list[tuple]:
    """Everything the keyword and symbol layers hold, ids left out (they depend on write order)."""
    db = index.store.db
    return sorted(
        db.execute(
            "SELECT f.path, f.hash, c.start_line, c.end_line, c.symbol, c.kind, c.text FROM chunks c"
            " JOIN files f ON f.id = c.file_id"
        )
    ) + sorted(
        db.execute("SELECT f.path, s.lname, s.role, s.line FROM symbols s JOIN files f ON f.id = s.file_id")
    )


def _many_files(root: Path) -> Path:
    files: dict[str, str | bytes] = {
        f"pkg/m{i}.py": PY.format(name=f"func_{i}") for i in range(engine.PARALLEL_FROM)
    }
    files["pkg/bad.py"] = b"def broken(:\n  \xff\xfe\n"
    return write_tree(root, files)


def test_parsing_in_worker_processes_writes_what_one_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # serial
    with open_index(_many_files(tmp_path / "serial")) as index:
        serial = index.update()
        expected = _rows(index)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # a pool of two workers
    with open_index(_many_files(tmp_path / "pool")) as index:
        pooled = index.update()
        assert _rows(index) == expected
        consistent(index)
    assert (pooled.added, pooled.files, len(pooled.problems)) == (serial.added, serial.files, 1)
    assert "invalid UTF-8" in pooled.problems[0]


PARENT = os.getpid()
REAL_PREPARE = engine.prepare_file


def _dies_in_a_worker(job):
    """``prepare_file``, but a worker given m7.py ends as a parser crash would end it; every
    process that parses leaves its pid in ``$PIDS``."""
    with open(os.environ["PIDS"], "a") as pids:
        pids.write(f"{os.getpid()}\n")
    if os.getpid() != PARENT and job[1] == "pkg/m7.py":
        os._exit(3)
    return REAL_PREPARE(job)


def test_a_worker_that_dies_costs_its_pool_not_the_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("PIDS", str(tmp_path / "pids"))
    monkeypatch.setattr(engine, "prepare_file", _dies_in_a_worker)  # the forked workers inherit it
    with open_index(use_store(_many_files(tmp_path / "ws"), store)) as index:
        stats = index.update()
        assert stats.added == engine.PARALLEL_FROM + 1
        assert index.search("func_7", top_k=1)[0].path == "pkg/m7.py"
        consistent(index)
    pids = set((tmp_path / "pids").read_text().split())
    assert str(PARENT) in pids and len(pids) >= 2  # workers parsed, then this process took over


def test_status_counts_the_links_not_followed(tmp_path: Path) -> None:
    """A link that leaves the repository never reaches the index, and status says why."""
    root = write_tree(tmp_path / "ws", {"a.py": PY.format(name="alpha")})
    write_tree(tmp_path, {"home/.ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\n"})
    os.symlink(tmp_path / "home" / ".ssh" / "id_ed25519", root / "deploy_notes.py")
    os.symlink(tmp_path / "home", root / "home")
    os.symlink("gone.py", root / "dangling.py")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    with open_index(root) as index:
        stats = index.update()
        assert sorted(index.store.files()) == ["a.py"]
        assert index.search("OPENSSH PRIVATE KEY", mode="bm25") == []
        assert {s.path: s.reason for s in stats.skipped} == {
            "deploy_notes.py": LINK_LEAVES, "home": LINK_LEAVES, "dangling.py": LINK_DANGLING
        }
        assert index.status()["symlinks_not_followed"] == {LINK_LEAVES: 2, LINK_DANGLING: 1}
        (root / "dangling.py").unlink()
        index.update_paths([root / "dangling.py"])  # what the watcher does when one goes away
        assert index.status()["symlinks_not_followed"] == {LINK_LEAVES: 2}


def test_a_folder_made_only_of_links_is_indexed_under_its_own_paths(tmp_path: Path) -> None:
    """Indexed on its own, a folder whose every entry links into a sibling folder of the git
    repository (a Swift package's Sources/) holds every linked file once, found by search under
    the path the user opened."""
    repo = tmp_path / "repo"
    names = ["alpha", "beta", "gamma"]
    write_tree(repo, {f"shared/{n}.py": PY.format(name=n) for n in names})
    view = repo / "view"
    view.mkdir()
    for n in names:
        os.symlink(f"../shared/{n}.py", view / f"{n}.py")
    os.symlink("alpha.py", view / "other.py")  # the first link path by name keeps the file
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    with open_index(view) as index:
        stats = index.update()
        assert sorted(index.store.files()) == [f"{n}.py" for n in names]
        duplicate = "same file as alpha.py (indexed there)"
        assert [(s.path, s.reason) for s in stats.skipped] == [("other.py", duplicate)]
        for n in names:
            assert index.search(n, top_k=1)[0].path == f"{n}.py"
        assert index.status()["symlinks_not_followed"] == {}
