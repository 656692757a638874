"""Test support for the LLM layer: config loading, free ports, a scripted HTTP server and a
recording TCP relay (to see exactly which bytes left the process)."""

from __future__ import annotations

import contextlib
import json
import re
import select
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


def server_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base_url: str, role: str = "chat",
                  model: str = "smollm2") -> config_module.Config:
    """The default (``local``) privacy mode, auditing to tmp_path, and ``role`` served at ``base_url``."""
    return write_config(tmp_path, monkeypatch, f"""
[privacy]
audit_log = "{tmp_path / 'audit.jsonl'}"

[models.{role}]
provider = "openai"
base_url = "{base_url}"
model = "{model}"
max_retries = 0
""")


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


class WireServer:
    """A model server that cannot run here, speaking its documented wire format: Ollama
    (``/api/tags``, ``/api/show``, ``/api/generate`` streaming NDJSON with ``suffix``) or llama.cpp's
    server (``/v1/models``, ``/infill`` streaming server-sent events; 501 for a model without FIM
    tokens). Its "model" writes ``answer`` a word at a time, bounded by the request's token cap
    and stop strings, after ``first_token_delay`` seconds of "reading the prompt"; a client that
    goes meanwhile is noticed (``disconnected``), as both servers stop generating for it."""

    def __init__(self, kind: str, answer: str, models: dict[str, list[str]], first_token_delay: float = 0.0):
        self.kind, self.answer, self.models, self.delay = kind, answer, models, first_token_delay
        self.received: list[tuple[str, dict]] = []
        self.disconnected = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._get(self)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                server.received.append((self.path, body))
                server._post(self, body)

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def generated(self, path: str) -> list[dict]:
        """The bodies of the generation requests received at ``path``."""
        return [body for p, body in self.received if p == path]

    # -- routes ---------------------------------------------------------------------------------

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v1/models":
            data = [{"id": name, "object": "model", "owned_by": "llamacpp"} for name in self.models]
            return _send_json(h, 200, {"object": "list", "data": data})
        if h.path == "/api/tags" and self.kind == "ollama":
            listed = [{"name": n, "model": n, "size": 1, "details": {"family": "qwen2"}} for n in self.models]
            return _send_json(h, 200, {"models": listed})
        _send_json(h, 404, {"error": "not found"})

    def _post(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        if self.kind == "ollama" and h.path in ("/api/show", "/api/generate"):
            name = body.get("model")
            if name not in self.models:
                return _send_json(h, 404, {"error": f"model '{name}' not found"})
            capabilities = self.models[name]
            if h.path == "/api/show":
                template = "{{ .Prompt }}" + ("{{ .Suffix }}" if "insert" in capabilities else "")
                return _send_json(h, 200, {"template": template, "capabilities": capabilities,
                                           "details": {"family": "qwen2"}})
            if body.get("suffix") and "insert" not in capabilities:
                error = f"registry.ollama.ai/library/{name} does not support insert"
                return _send_json(h, 400, {"error": error})
            options = body.get("options") or {}
            words, reason = self._write(options.get("num_predict", -1), options.get("stop") or [])
            lines = [{"model": name, "response": w, "done": False} for w in words]
            if "breaks" in capabilities:  # listed, but its runner dies mid-answer (Ollama's error line)
                lines = [*lines[:1], {"error": "model runner has unexpectedly stopped"}]
            else:
                lines.append({"model": name, "response": "", "done": True, "done_reason": reason})
            return self._stream(h, "application/x-ndjson", [json.dumps(x).encode() + b"\n" for x in lines],
                                body.get("stream", True))
        if self.kind == "llama.cpp" and h.path == "/infill":
            fim = any("infill" in caps for caps in self.models.values())
            if not fim:
                message = "Infill is not supported by this model: prefix token is missing."
                error = {"code": 501, "message": message, "type": "not_supported_error"}
                return _send_json(h, 501, {"error": error})
            words, reason = self._write(body.get("n_predict", -1), body.get("stop") or [])
            events = [{"content": w, "stop": False} for w in words]
            stop_type = "limit" if reason == "length" else "eos"
            events.append({"content": "", "stop": True, "stop_type": stop_type})
            sse = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
            return self._stream(h, "text/event-stream", sse, body.get("stream", False))
        _send_json(h, 404, {"error": "File Not Found"})

    def _write(self, cap: int, stops: list[str]) -> tuple[list[str], str]:
        text = self.answer
        for stop in stops:
            if stop in text:
                text = text[: text.index(stop)]
        words = re.findall(r"\s*\S+|\s+", text)
        if 0 <= cap < len(words):
            return words[:cap], "length"
        return words, "stop"

    def _stream(self, h: BaseHTTPRequestHandler, kind: str, parts: list[bytes], stream: bool) -> None:
        if not stream:  # one object: what the stream's pieces add up to
            whole = [json.loads(p.removeprefix(b"data: ")) for p in parts]
            key = "response" if self.kind == "ollama" else "content"
            return _send_json(h, 200, {**whole[-1], key: "".join(w[key] for w in whole)})
        h.send_response(200)
        h.send_header("content-type", kind)
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        h.wfile.flush()
        readable, _, _ = select.select([h.connection], [], [], self.delay)
        if readable and not h.connection.recv(1, socket.MSG_PEEK):
            self.disconnected.set()  # the client went while the prompt was being read
            h.close_connection = True
            return
        try:
            for part in parts:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.disconnected.set()
            h.close_connection = True


def _send_json(h: BaseHTTPRequestHandler, status: int, body: object) -> None:
    data = json.dumps(body).encode()
    h.send_response(status)
    h.send_header("content-type", "application/json")
    h.send_header("content-length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)
