"""Shared fixtures: every test gets its own cache dir and no user config leaks in."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("RAGLS_CACHE_DIR", str(cache))
    monkeypatch.setenv("RAGLS_CONFIG", str(cache / "no-user-config.toml"))
    return cache
