"""The watcher keeps the index current and coalesces bursts into one update."""

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ragls_testing import PY, consistent, open_index, write_tree

from ragls.indexer.discovery import LINK_LEAVES
from ragls.indexer.watcher import Watcher


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_watcher_applies_edits_creations_and_deletions(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"a.py": PY.format(name="alpha"), "b.py": PY.format(name="beta")})
    with open_index(root) as index:
        index.update()
        watcher = Watcher(index, debounce=0.2).start()
        try:
            (root / "a.py").write_text(PY.format(name="changed_alpha"))
            (root / "b.py").unlink()
            write_tree(root, {"sub/c.py": PY.format(name="gamma")})
            wait_for(lambda: sorted(index.store.files()) == ["a.py", "sub/c.py"])
            wait_for(lambda: index.pending_embeddings() == 0)
            # the vectors are committed to SQLite a moment before the faiss copy takes them
            wait_for(lambda: all(t.vectors.size == 2 for t in index.enabled_tiers()))
            assert index.search("changed_alpha", top_k=1)[0].path == "a.py"
            assert index.search("gamma", top_k=1, mode="dense")[0].path == "sub/c.py"
            (root / "sub" / "c.py").rename(root / "sub" / "d.py")
            wait_for(lambda: sorted(index.store.files()) == ["a.py", "sub/d.py"])
        finally:
            watcher.stop()
        consistent(index)


def test_burst_of_changes_is_coalesced(tmp_path: Path) -> None:
    """A branch switch rewriting 1,000 files becomes one or a few updates, not 1,000."""
    files = {f"pkg/m{i:04}.py": PY.format(name=f"old_{i}") for i in range(1000)}
    root = write_tree(tmp_path, {".gitignore": "", **files})
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    with open_index(root) as index:
        index.update()
        watcher = Watcher(index, debounce=0.5, embed=False).start()
        try:
            for i in range(1000):
                (root / f"pkg/m{i:04}.py").write_text(PY.format(name=f"new_{i}"))
            names = [f"new_{i}" for i in range(1000)]
            wait_for(lambda: len(index.store.symbol_definitions(names)) == 1000)
            assert index.store.symbol_definitions([f"old_{i}" for i in range(1000)]) == []
            assert [r.path for r in index.search("new_500", top_k=1)] == ["pkg/m0500.py"]
            time.sleep(1.0)
            assert 1 <= watcher.batches <= 5
        finally:
            watcher.stop()
        assert index.store.counts()["files"] == 1001
        consistent(index)


def test_watcher_ignores_git_and_ignored_paths(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {".gitignore": "build/\n", "a.py": PY.format(name="alpha")})
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    with open_index(root) as index:
        index.update()
        watcher = Watcher(index, debounce=0.2, embed=False).start()
        try:
            write_tree(root, {"build/gen.py": PY.format(name="generated"), "ok.py": PY.format(name="fine")})
            wait_for(lambda: "ok.py" in index.store.files())
            time.sleep(0.5)
            assert "build/gen.py" not in index.store.files()
        finally:
            watcher.stop()


def test_reading_files_does_not_retrigger_the_watcher(tmp_path: Path) -> None:
    """The indexer's own reads (open/close events) must not feed back into endless updates."""
    root = write_tree(tmp_path, {"a.py": PY.format(name="alpha")})
    with open_index(root) as index:
        index.update()
        watcher = Watcher(index, debounce=0.1).start()
        try:
            (root / "a.py").write_text(PY.format(name="omega"))
            wait_for(lambda: index.store.symbol_definitions(["omega"]) != [])
            time.sleep(1.0)
            settled = watcher.batches
            (root / "a.py").read_text()  # a reader, like an editor opening the file
            time.sleep(1.5)
            assert watcher.batches == settled
        finally:
            watcher.stop()


def test_watcher_skips_editor_scratch_files(tmp_path: Path) -> None:
    """Emacs's autosave beside the file never reaches the index, and its writes start no update."""
    root = write_tree(tmp_path, {"shop/cart.py": PY.format(name="alpha")})
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    with open_index(root) as index:
        index.update()
        watcher = Watcher(index, debounce=0.2, embed=False).start()
        try:
            for name in ("#cart.py#", ".cart.py.swp", "cart.py~", "cart.py.orig"):
                (root / "shop" / name).write_text(PY.format(name="stale"))
            time.sleep(1.0)
            assert watcher.batches == 0
            (root / "shop" / "new.py").write_text(PY.format(name="fresh"))
            wait_for(lambda: "shop/new.py" in index.store.files())
            assert sorted(index.store.files()) == ["shop/cart.py", "shop/new.py"]
        finally:
            watcher.stop()


def test_watcher_handles_links_like_a_scan(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", {".gitignore": "build/\n", "a.py": PY.format(name="alpha")})
    write_tree(root, {"build/gen/g.py": PY.format(name="generated_gamma")})
    write_tree(tmp_path, {"outside/secret.py": PY.format(name="outside_secret")})
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    with open_index(root) as index:
        index.update()
        watcher = Watcher(index, debounce=0.2, embed=False).start()
        try:
            os.symlink("a.py", root / "alias.py")  # a second name for an indexed file
            os.symlink(tmp_path / "outside" / "secret.py", root / "escape.py")
            os.symlink("build/gen", root / "gen")  # a folder link into an ignored folder
            write_tree(root, {"b.py": PY.format(name="beta")})
            wait_for(lambda: "b.py" in index.store.files() and "gen/g.py" in index.store.files())
            assert sorted(index.store.files()) == [".gitignore", "a.py", "b.py", "gen/g.py"]
            assert index.status()["symlinks_not_followed"] == {LINK_LEAVES: 1}
            (root / "gen").unlink()  # the folder link goes: its files go with it
            wait_for(lambda: "gen/g.py" not in index.store.files())
            assert index.search("outside_secret", mode="bm25") == []
        finally:
            watcher.stop()
        assert sorted(index.update().skipped, key=lambda s: s.path)[0].path == "alias.py"  # a scan agrees
        assert sorted(index.store.files()) == [".gitignore", "a.py", "b.py"]
