"""Helpers shared by the test modules (a uniquely named module: several conftest.py exist)."""

from __future__ import annotations

from pathlib import Path

from ragls import config
from ragls.indexer.engine import Index


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create ``files`` (relative path -> content) under root."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


PY = "def {name}(value):\n    '''Compute {name}.'''\n    return value * 2\n"


def open_index(root: Path) -> Index:
    return Index.open(root, config.load(root))


def file_chunks(index: Index, path: str) -> list:
    return index.store.chunks_of_files([path])


def consistent(index: Index) -> None:
    """SQLite, FTS and faiss agree: the invariant a crash must never break."""
    db = index.store.db
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == chunks
    orphans = db.execute(
        "SELECT count(*) FROM chunks c LEFT JOIN files f ON f.id = c.file_id WHERE f.id IS NULL"
    )
    assert orphans.fetchone()[0] == 0
    assert index.vectors.size == index.store.counts()["embedded"]
