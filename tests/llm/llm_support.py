"""Test support for the LLM layer: config loading, free ports, a scripted HTTP server and a
recording TCP relay (to see exactly which bytes left the process)."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ragls import config as config_module

LOOPBACK = "127.0.0.1"
# A host name the tests' resolver maps to LOOPBACK (conftest): an endpoint the privacy policy
# must treat as another machine (it decides by the literal, never by DNS) that still reaches
# the test's server.
REMOTE_NAME = "model-host.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> config_module.Config:
    """Load ``text`` through the real config loader (as the user file named by RAGLS_CONFIG)."""
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("RAGLS_CONFIG", str(path))
    return config_module.load()


@dataclass
class Reply:
    """One scripted response: status, headers and body parts; a float part is a pause (seconds),
    ``cut=True`` drops the connection after the parts (no chunked terminator)."""

    status: int = 200
    parts: list[bytes | float] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self.disconnected = threading.Event()  # the client closed while we were still writing
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.received.append(Received(self.path, headers, body))
                reply = server.replies.pop(0) if server.replies else Reply(500, [b'{"error":"unscripted"}'])
                self.send_response(reply.status)
                for k, v in {"content-type": "text/event-stream", **reply.headers}.items():
                    self.send_header(k, v)
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                try:
                    for part in reply.parts:
                        if isinstance(part, float):
                            time.sleep(part)
                            continue
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                        self.wfile.flush()
                    if reply.cut:
                        self.close_connection = True
                        return
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnected.set()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.httpd.server_address[1]}/v1"
        self.remote_url = f"http://{REMOTE_NAME}:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def running(command: list[str], ready: Callable[[], bool], log: Path,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A server process (output to ``log``), once ``ready()`` says it answers; stopped after."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    try:
        while not ready():
            if proc.poll() is not None:
                raise RuntimeError(f"{command[2]} exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[2]} did not come up in 120 s")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class RecordingProxy:
    """A TCP relay to a real server that keeps every byte the client sent (the outbound bytes)."""

    def __init__(self, target_port: int):
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._target = target_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, self._target))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, outbound: bool) -> None:
        try:
            while data := src.recv(65536):
                if outbound:
                    with self._lock:
                        self.sent.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


def write_tiny_gpt2_ggml(path: Path, n_vocab: int = 128, n_ctx: int = 64, n_embd: int = 32) -> Path:
    """A real GGML-era file (unversioned 'ggml' magic, the gpt-2 example's layout) with one layer of
    random f32 weights and a character vocabulary: small, but loadable by ctransformers."""
    import string

    import numpy as np

    rng = np.random.default_rng(0)
    vocab = ["<|endoftext|>", " ", "\n", *string.ascii_letters, *string.digits, *string.punctuation]
    vocab += [f"<unused{i}>" for i in range(n_vocab - len(vocab))]
    out = bytearray(struct.pack("<I", 0x67676D6C))
    out += struct.pack("<6i", n_vocab, n_ctx, n_embd, 2, 1, 0)  # n_head = 2, n_layer = 1, ftype = f32
    out += struct.pack("<i", n_vocab)
    for word in vocab:
        out += struct.pack("<I", len(word.encode())) + word.encode()

    def tensor(name: str, *shape: int) -> bytes:
        gain = name.endswith("/g")  # layer-norm gains start at 1
        data = np.ones(shape, "<f4") if gain else (rng.standard_normal(shape) * 0.1).astype("<f4")
        head = struct.pack(f"<3i{len(shape)}i", len(shape), len(name), 0, *shape)
        return head + name.encode() + data.tobytes()

    e = n_embd
    out += tensor("model/ln_f/g", e) + tensor("model/ln_f/b", e)
    out += tensor("model/wte", e, n_vocab) + tensor("model/wpe", e, n_ctx)
    out += tensor("model/lm_head", e, n_vocab)
    layer = [("ln_1/g", e), ("ln_1/b", e), ("ln_2/g", e), ("ln_2/b", e), ("attn/c_attn/w", e, 3 * e),
             ("attn/c_attn/b", 3 * e), ("attn/c_proj/w", e, e), ("attn/c_proj/b", e),
             ("mlp/c_fc/w", e, 4 * e), ("mlp/c_fc/b", 4 * e), ("mlp/c_proj/w", 4 * e, e), ("mlp/c_proj/b", e)]
    for name, *shape in layer:
        out += tensor(f"model/h0/{name}", *shape)
    path.write_bytes(bytes(out))
    return path
