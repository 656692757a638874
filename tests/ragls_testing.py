"""Helpers shared by the test modules (a uniquely named module: several conftest.py exist)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import distribution
from pathlib import Path

import pytest

from ragls import config
from ragls.indexer.engine import Index
from ragls.indexer.store import SqliteStore


def missing(why: str) -> None:
    """A prerequisite the test needs is absent (``why`` says which and how to install it): under CI
    (``CI=true``, where ``make install-test`` installed everything) the test fails, elsewhere it skips."""
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create ``files`` (relative path -> content) under root."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def venv_with(root: Path, packages: tuple[str, ...]) -> dict[str, str]:
    """A real virtual environment at ``root/.venv`` (``python -m venv``) holding copies of these
    installed distributions, file by file as their RECORD lists them (nothing is downloaded);
    returns their versions."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    site = next((root / ".venv").glob("lib/python3*/site-packages"))
    return {name: copy_distribution(name, site) for name in packages}


def copy_distribution(name: str, site: Path) -> str:
    """Copy an installed distribution's files (its RECORD) into ``site``; returns its version."""
    dist = distribution(name)
    source = Path(str(dist.locate_file("")))
    for file in dist.files or []:
        if file.parts[0] == ".." or "__pycache__" in file.parts:
            continue
        target = site / file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / file, target)
    return dist.version


PY = "def {name}(value):\n    '''Compute {name}.'''\n    return value * 2\n"


def open_index(root: Path) -> Index:
    return Index.open(root, config.load(root))


def file_chunks(index: Index, path: str) -> list:
    return index.store.chunks_of_files([path])


def use_store(root: Path, store: str, repository: str = "") -> Path:
    """Point the workspace's config at ``store`` ('embedded' or a PostgreSQL DSN)."""
    config = root / ".ragls" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[index]\nstore = {store!r}\nrepository = {repository!r}\nbranch = "main"\n')
    return root


def consistent(index: Index) -> None:
    """The store's tables and each tier's vector search agree: the invariant a crash must never
    break."""
    if isinstance(index.store, SqliteStore):
        consistent_sqlite(index.store.db)
    else:
        consistent_rows(index.store.db)
    for name, tier in index.tiers.items():  # each tier's vector search holds what the store committed
        assert tier.vectors.size == index.store.embedded(name), name


def consistent_rows(db) -> None:
    """In PostgreSQL: no file without its chunks, no chunk without its keyword terms and no terms
    without their chunk (each file's rows are all there or not at all)."""
    missing_chunks = "SELECT count(*) FROM ragls_files f WHERE NOT EXISTS (SELECT 1 FROM ragls_chunks c"
    assert db.execute(f"{missing_chunks} WHERE c.file_id = f.id)").fetchone()[0] == 0
    missing_terms = "SELECT count(*) FROM ragls_chunks c WHERE NOT EXISTS (SELECT 1 FROM ragls_terms t"
    assert db.execute(f"{missing_terms} WHERE t.chunk_id = c.id)").fetchone()[0] == 0
    orphan_terms = "SELECT count(*) FROM ragls_terms t WHERE NOT EXISTS (SELECT 1 FROM ragls_chunks c"
    assert db.execute(f"{orphan_terms} WHERE c.id = t.chunk_id)").fetchone()[0] == 0


def consistent_sqlite(db) -> None:
    """SQLite and its FTS table agree, and no chunk outlives its file."""
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == chunks
    orphans = db.execute(
        "SELECT count(*) FROM chunks c LEFT JOIN files f ON f.id = c.file_id WHERE f.id IS NULL"
    )
    assert orphans.fetchone()[0] == 0


class Endpoint:
    """An OpenAI-compatible chat endpoint on loopback that streams scripted answers: the real
    wire format, for answers a real model cannot be made to give (empty, malformed)."""

    def __init__(self) -> None:
        self.replies: list[bytes] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                body = endpoint.replies.pop(0) if endpoint.replies else b'data: {"error": "unscripted"}\n\n'
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def stream(*deltas: str, finish: str = "stop") -> bytes:
        """An SSE body streaming ``deltas`` as chat content, then the finish reason and [DONE]."""
        events = [{"choices": [{"delta": {"content": d}, "finish_reason": None}]} for d in deltas]
        events.append({"choices": [{"delta": {}, "finish_reason": finish}]})
        return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"

    def settings(self, audit_log: Path) -> dict:
        """What :meth:`config` says, as an editor's settings object (for the language server)."""
        return {
            "privacy": {"mode": "standard", "audit_log": str(audit_log)},
            "models": {"chat": {"provider": "openai", "base_url": self.url, "model": "scripted",
                                "api_key_env": "RAGLS_TEST_KEY", "max_retries": 0}},
        }

    def config(self, audit_log: Path) -> str:
        """Workspace config sending chat to this endpoint (privacy mode 'standard' allows it)."""
        return (
            f'[privacy]\nmode = "standard"\naudit_log = "{audit_log}"\n'
            f'[models.chat]\nprovider = "openai"\nbase_url = "{self.url}"\nmodel = "scripted"\n'
            'api_key_env = "RAGLS_TEST_KEY"\nmax_retries = 0\n'
        )


def scripted_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    """A running :class:`Endpoint` with the API key variable its config names set."""
    monkeypatch.setenv("RAGLS_TEST_KEY", "test-key")
    served = Endpoint()
    yield served
    served.server.shutdown()
    served.server.server_close()


def requantised(folder: Path) -> Path:
    """A second real model: the bundled SmolLM2 file re-quantised from Q4_1 to Q4_0 by llama.cpp's
    own quantizer (0.7 s here). No other model is on this machine, and the arena must compare two
    different models: another file with other weights is one, the same file with other settings
    is not."""
    import llama_cpp

    from ragls.llm.gguf import bundled_model_path

    target = folder / "SmolLM2-135M-Instruct.Q4_0.gguf"
    if not target.exists():
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
        params.allow_requantize = True
        source = str(bundled_model_path()).encode()
        status = llama_cpp.llama_model_quantize(source, str(target).encode(), params)
        assert status == 0, f"llama_model_quantize failed ({status})"
    return target
