"""Opening our engine the way the benchmark needs it: isolated, reproducible, optionally cold.

Every benchmark index lives under the bench cache (``RAGLS_CACHE_DIR`` is pointed there), so
benchmark runs never touch the user's own indexes; so do the models ragls derives
(``RAGLS_MODELS_DIR``: the static model, the ONNX export); and the user's config file is masked
(``RAGLS_CONFIG`` points at a file that does not exist) so the numbers are those of the
built-in defaults, whoever runs them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.corpora import cache_dir

if TYPE_CHECKING:
    from ragls.indexer.engine import Index

# Every way the benchmark asks our engine: (search mode, dense tiers used; None = every enabled tier).
SYSTEMS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "hybrid, all tiers": ("hybrid", None),  # the default with a GPU (index.contextual = 'auto')
    "hybrid, static": ("hybrid", ("static",)),  # the default on a CPU
    "hybrid, contextual": ("hybrid", ("contextual",)),
    "hybrid, no dense": ("hybrid", ()),
    "bm25 only": ("bm25", None),
    "dense, static": ("dense", ("static",)),
    "dense, contextual": ("dense", ("contextual",)),
}


def isolate(purpose: str) -> Path:
    """Point the engine's index location at ``<bench cache>/indexes/<purpose>``; return it."""
    folder = cache_dir() / "indexes" / purpose
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["RAGLS_CACHE_DIR"] = str(folder)
    os.environ["RAGLS_CONFIG"] = str(cache_dir() / "no-user-config.toml")
    os.environ["RAGLS_MODELS_DIR"] = str(cache_dir() / "models")
    return folder


def default_config():
    """The built-in configuration (the user's file masked)."""
    from ragls import config

    isolate("models")
    return config.load()


def engine_available() -> str | None:
    """None when ``ragls.indexer.engine`` imports, else the reason it does not (yet)."""
    try:
        from ragls.indexer.engine import Index  # noqa: F401
    except Exception as exc:  # any import failure means: no engine to measure
        return f"{type(exc).__name__}: {exc}"
    return None


def _config(root: Path, embeddings: bool, int8: bool = False):
    from ragls import config

    cfg = config.load(root)
    embedding = dataclasses.replace(cfg.models.embedding, onnx_int8=int8)
    return dataclasses.replace(
        cfg,
        # both tiers, whatever the machine: the benchmark measures each (the CPU default is static only)
        index=dataclasses.replace(cfg.index, embeddings=embeddings, contextual="on"),
        models=dataclasses.replace(cfg.models, embedding=embedding),
    )


def wipe(root: Path, purpose: str) -> None:
    """Delete the engine's index of ``root`` so the next open starts cold (timed separately)."""
    from ragls.indexer.engine import index_dir

    isolate(purpose)
    shutil.rmtree(index_dir(root.resolve(), _config(root, True)), ignore_errors=True)


def open_index(
    root: Path, purpose: str, *, fresh: bool = False, embeddings: bool = True, int8: bool = False
) -> Index:
    """Open (``fresh``: after wiping) the engine's index of ``root`` with default settings
    (``int8``: the contextual model's int8 ONNX weights)."""
    from ragls.indexer.engine import Index

    if fresh:
        wipe(root, purpose)
    isolate(purpose)
    return Index.open(root, _config(root, embeddings, int8))


def all_chunks(index: Index) -> list:
    """Every indexed chunk's (path, start_line, end_line): what ``n_relevant`` is counted over."""
    return index.store.chunks_of_files(list(index.store.files()))
