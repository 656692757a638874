"""Fixtures of the language server's end-to-end tests (their helpers are in ``lsp_support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lsp_support import make_repo
from ragls_testing import Endpoint, scripted_endpoint


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "minirepo")


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    """A scripted OpenAI-compatible endpoint on loopback (for answers with known code blocks)."""
    yield from scripted_endpoint(monkeypatch)
