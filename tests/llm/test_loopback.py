"""A model served on this machine is a local model (issue 15, item 1): loopback literals,
``localhost`` reached without a resolver, and unix sockets are allowed in ``local`` mode and sent
unredacted, yet still audited as local traffic. A name that only resolves to loopback stays remote.
The servers are llama-cpp-python's, on 127.0.0.1 and on a unix socket."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_socket
from llm_support import LOOPBACK, REMOTE_NAME, RecordingProxy, running, server_config

from ragls.cli import main
from ragls.config import ModelConfig, PrivacyConfig
from ragls.llm import Message, create
from ragls.privacy import Privacy, PrivacyError
from ragls.privacy.audit import AuditLog
from ragls.privacy.endpoint import parse

pytestmark = pytest.mark.loopback

SECRET = "AKIAZ7QCANARY3XK5J2P"  # redacted on the way to another machine, not to this one


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8080/v1", True),
        ("http://127.45.6.7/v1", True),  # all of 127.0.0.0/8
        ("http://[::1]:11434", True),
        ("http://[::ffff:127.0.0.1]:8080/v1", True),
        ("http://localhost:1234/v1", True),
        ("http://LocalHost:1234/v1", True),
        ("http+unix://%2Frun%2Follama.sock/v1", True),
        ("http://128.0.0.1/v1", False),
        ("http://10.0.0.5:8080/v1", False),
        ("https://api.openai.com/v1", False),
        ("http://localtest.me:8080/v1", False),  # public DNS answers 127.0.0.1 for it: still a name
        ("http://localhost.example.com/v1", False),
        ("http://127.1/v1", False),  # inet_aton shorthand: not a literal ipaddress accepts; stays remote
        (f"http://{REMOTE_NAME}:8080/v1", False),
    ],
)
def test_an_endpoint_is_local_by_its_literal_host(url, local):
    assert parse(url).local is local


def test_localhost_and_unix_sockets_are_reached_without_a_resolver():
    assert parse("http://localhost:1234/v1").url == "http://127.0.0.1:1234/v1"
    unix = parse("http+unix://%2Frun%2Fllama.sock/v1")
    assert (unix.socket, unix.url) == ("/run/llama.sock", "http://localhost/v1")


@pytest.mark.parametrize("mode", ["local", "zero-retention", "standard"])
def test_every_mode_allows_a_loopback_server_without_any_attestation(mode):
    privacy = Privacy(PrivacyConfig(mode=mode))
    for url in ("http://127.0.0.1:8080/v1", "http://localhost:11434/v1", "http+unix://%2Ftmp%2Fm.sock"):
        privacy.check("chat", ModelConfig(provider="openai", base_url=url))
        privacy.check("chat", ModelConfig(provider="anthropic", base_url=url))


def test_a_name_that_resolves_to_loopback_is_refused_in_local_mode():
    # The tests' resolver maps REMOTE_NAME to 127.0.0.1; the policy never asks it.
    assert socket.getaddrinfo(REMOTE_NAME, 80)[0][4][0] == LOOPBACK
    with pytest.raises(PrivacyError, match=r"privacy\.mode is 'local'"):
        Privacy(PrivacyConfig()).check("chat", ModelConfig(provider="openai", base_url=f"http://{REMOTE_NAME}/v1"))


def test_local_mode_uses_a_loopback_server_unredacted_and_audits_it_as_local(
    tmp_path, monkeypatch, capsys, llama_server
):
    port = int(llama_server.rsplit(":", 1)[1].split("/")[0])
    proxy = RecordingProxy(port)
    try:
        cfg = server_config(tmp_path, monkeypatch, f"http://{LOOPBACK}:{proxy.port}/v1")
        assert cfg.privacy.mode == "local"
        p = create("chat", cfg)
        answer = p.chat([Message("user", f'KEY = "{SECRET}". Say ok.')], max_tokens=4, temperature=0).text()
    finally:
        proxy.close()
    assert answer.strip()
    assert SECRET.encode() in bytes(proxy.sent)  # the machine's own server gets the prompt as it is
    entries = AuditLog(tmp_path / "audit.jsonl").entries()
    assert [(e.local, e.redactions) for e in entries] == [(True, 0)]
    assert main(["privacy", "audit"]) == 0
    out = capsys.readouterr().out
    assert "local" in out and f"{LOOPBACK}:{proxy.port}" in out


def test_localhost_is_connected_to_as_127_0_0_1_without_asking_the_resolver(
    tmp_path, monkeypatch, llama_server
):
    asked: list[str] = []
    resolve = socket.getaddrinfo

    def refusing(host, *args, **kwargs):
        asked.append(host)
        if host == "localhost":  # a resolver or hosts file could send it anywhere
            raise socket.gaierror("the resolver must not be asked about localhost")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", refusing)
    p = create("chat", server_config(tmp_path, monkeypatch, llama_server.replace(LOOPBACK, "localhost")))
    assert p.chat([Message("user", "Say ok.")], max_tokens=3, temperature=0).text() is not None
    assert "localhost" not in asked
    assert AuditLog(tmp_path / "audit.jsonl").entries()[0].endpoint.startswith("http://localhost:")


@pytest.fixture(scope="module")
def unix_server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """llama-cpp-python's server app under uvicorn on a unix socket (its own CLI binds TCP only)."""
    folder = tmp_path_factory.mktemp("uds")
    sock = folder / "llama.sock"
    settings = {"MODEL": str(gguf_path), "MODEL_ALIAS": "smollm2", "N_CTX": "512", "VERBOSE": "False"}
    command = [sys.executable, "-m", "uvicorn", "--factory", "llama_cpp.server.app:create_app",
               "--uds", str(sock), "--log-level", "warning"]
    with running(command, sock.exists, folder / "server.log", env={**os.environ, **settings}):
        yield sock


def test_local_mode_uses_a_server_on_a_unix_socket(tmp_path, monkeypatch, unix_server):
    pytest_socket.socket_allow_hosts([LOOPBACK], allow_unix_socket=True)  # a marker cannot say it
    url = f"http+unix://{quote(str(unix_server), safe='')}/v1"
    p = create("chat", server_config(tmp_path, monkeypatch, url))
    stream = p.chat([Message("user", "Name a colour.")], max_tokens=4, temperature=0)
    assert "".join(stream).strip() and stream.finish_reason in {"stop", "length"}
    (entry,) = AuditLog(tmp_path / "audit.jsonl").entries()
    assert entry.local and entry.endpoint == url + "/chat/completions"
