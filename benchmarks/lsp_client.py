"""A bare-bytes LSP client for ``ragls serve``: what the server benchmark times with, and what the
tests use to send what a well-behaved client library cannot (malformed frames, broken JSON, wrong
types, requests out of order). It answers the server's own requests (progress tokens,
configuration, edits) like a permissive editor would, and keeps every notification it receives."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class RawServer:
    def __init__(self, cwd: Path | None = None, args: tuple[str, ...] = (), env: dict | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ragls", "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        self.messages: queue.Queue[dict] = queue.Queue()
        self.notifications: list[dict] = []
        self._next = 0
        self.stderr: list[bytes] = []
        self._writing = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line.strip() == b"":
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            assert length is not None
            message = json.loads(out.read(length))
            if "method" in message and "id" in message:
                self._answer_server_request(message)
            elif "method" in message:
                self.notifications.append(message)
            else:
                self.messages.put(message)

    def _answer_server_request(self, message: dict) -> None:
        method = message["method"]
        result: Any = None
        if method == "workspace/applyEdit":
            result = {"applied": True}
        elif method == "window/showDocument":
            result = {"success": True}
        elif method == "workspace/configuration":
            result = [None for _ in message["params"]["items"]]
        self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})

    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        with self._writing:  # the reader thread answers the server's requests meanwhile
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        self.send_bytes(frame(json.dumps(message).encode()))

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: Any = None, timeout: float = 60) -> dict:
        """Send a request and return the whole response message (result or error)."""
        self._next += 1
        ident = f"t{self._next}"
        self.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        return self.response(ident, timeout)

    def response(self, ident: Any, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        kept = []
        try:
            while True:
                message = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
                if message.get("id") == ident:
                    return message
                kept.append(message)
        except queue.Empty:
            raise AssertionError(f"no response to {ident!r} within {timeout} s") from None
        finally:
            for message in kept:
                self.messages.put(message)

    def initialize(
        self,
        root: Path | None,
        settings: dict | None = None,
        capabilities: dict | None = None,
        folders: list[Path] | None = None,
    ) -> dict:
        """``initialize`` (on ``root``, or on several workspace ``folders``) then ``initialized``."""
        answer = self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root.as_uri() if root else None,
                "workspaceFolders": [{"uri": f.as_uri(), "name": f.name} for f in folders]
                if folders
                else None,
                "capabilities": capabilities or {},
                "initializationOptions": settings or {},
            },
        )
        self.notify("initialized", {})
        return answer

    def close(self, timeout: float = 30) -> int:
        """shutdown + exit (if still running); the exit code."""
        if self.proc.poll() is None:
            try:
                self.request("shutdown", None, timeout=timeout)
                self.notify("exit")
            except (AssertionError, BrokenPipeError, OSError):
                self.proc.kill()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
