"""Fixtures shared by the recipe tests: an indexed copy of the minirepo fixture (one per module),
the bundled chat model (one per session, as the daemon keeps one loaded), and a scripted
OpenAI-compatible endpoint for answers no real model can be made to give."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ragls_testing import Endpoint, scripted_endpoint

from ragls import config
from ragls.indexer.engine import Index
from ragls.llm.base import Provider

MINIREPO = Path(__file__).parents[1] / "fixtures" / "minirepo"
# The index lives inside the copy, so it outlives the per-test cache dirs of tests/conftest.py.
WORKSPACE_CONFIG = '[index]\nlocation = "workspace"\n'


def make_repo(root: Path) -> Path:
    """A git work tree holding a copy of the minirepo fixture."""
    shutil.copytree(MINIREPO, root, dirs_exist_ok=True)
    (root / ".ragls").mkdir(exist_ok=True)
    (root / ".ragls" / "config.toml").write_text(WORKSPACE_CONFIG)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.fixture(scope="session")
def repo_factory() -> Callable[[Path], Path]:
    """``make_repo`` for modules that adjust their copy (conftest modules are not importable by name)."""
    return make_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("recipes") / "minirepo")


@pytest.fixture(scope="module")
def index(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """``repo`` fully indexed (keyword, symbol and dense layers)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAGLS_CONFIG", str(tmp_path_factory.mktemp("cfg") / "none.toml"))
        idx = Index.open(repo, config.load(repo))
        idx.update()
        idx.embed_pending()
    yield idx
    idx.close()


@pytest.fixture(scope="session")
def chat() -> Iterator[Provider]:
    """The bundled SmolLM2 model with a 2,048-token window (so budgets bind) and greedy sampling."""
    from ragls.config import ModelConfig
    from ragls.llm.llama_cpp import LlamaCppProvider

    provider = LlamaCppProvider(ModelConfig(context_length=2048, temperature=0.0))
    yield provider
    provider.close()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    yield from scripted_endpoint(monkeypatch)
