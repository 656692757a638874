"""Fixtures for the LLM layer's tests.

Sockets: every test in this folder runs with sockets disabled (pytest-socket) unless it is
marked ``loopback``; those may connect to 127.0.0.1 only. Servers the tests talk to: the real
``python -m llama_cpp.server`` with the bundled model (one per session), and a scripted HTTP
server for wire formats and failures a real server cannot be made to produce (429, cut-off
streams, Anthropic's Messages API).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_support import LOOPBACK, REMOTE_NAME, ScriptedServer, free_port, running

from ragls.llm.gguf import bundled_model_path

HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "loopback: the test talks to a server on 127.0.0.1 (and nowhere else)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in Path(item.path).parents:
            continue
        if item.get_closest_marker("loopback"):
            item.add_marker(pytest.mark.allow_hosts([LOOPBACK]))
        else:
            item.add_marker(pytest.mark.disable_socket)


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    return bundled_model_path()


@pytest.fixture(scope="session")
def llama(gguf_path: Path):
    """One loaded bundled model shared by the tests (the daemon keeps one loaded too)."""
    from ragls.config import ModelConfig
    from ragls.llm.llama_cpp import LlamaCppProvider

    provider = LlamaCppProvider(ModelConfig(context_length=2048))
    yield provider
    provider.close()


@pytest.fixture(scope="session")
def llama_server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on loopback; yields its base URL (…/v1)."""
    import httpx

    port = free_port()
    base = f"http://{LOOPBACK}:{port}/v1"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/models", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path), "--host", LOOPBACK,
               "--port", str(port), "--model_alias", "smollm2", "--n_ctx", "2048", "--verbose", "False"]
    with running(command, ready, tmp_path_factory.mktemp("server") / "llama_server.log"):
        yield base


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture
def no_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _remote_name_resolves_to_loopback(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In loopback tests, REMOTE_NAME resolves to 127.0.0.1, as a hosts file or resolver could make
    any name do (no real resolver can be configured here); every other name resolves as usual.
    (Only there: elsewhere pytest-socket has replaced getaddrinfo, and undoing this patch after
    its own teardown would put its blocked version back for good.)"""
    if not request.node.get_closest_marker("loopback"):
        return
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real(LOOPBACK if host == REMOTE_NAME else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own config or writes their audit log."""
    monkeypatch.setenv("RAGLS_CONFIG", str(tmp_path / "absent-config.toml"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
