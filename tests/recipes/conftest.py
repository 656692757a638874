"""Fixtures shared by the recipe tests: an indexed copy of the minirepo fixture (one per module),
the bundled chat model (one per session, as the daemon keeps one loaded), and a scripted
OpenAI-compatible endpoint for answers no real model can be made to give."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ragls import config
from ragls.indexer.engine import Index
from ragls.llm.base import Provider

MINIREPO = Path(__file__).parents[1] / "fixtures" / "minirepo"
# The index lives inside the copy, so it outlives the per-test cache dirs of tests/conftest.py.
WORKSPACE_CONFIG = '[index]\nlocation = "workspace"\n'


def make_repo(root: Path) -> Path:
    """A git work tree holding a copy of the minirepo fixture."""
    shutil.copytree(MINIREPO, root, dirs_exist_ok=True)
    (root / ".ragls").mkdir(exist_ok=True)
    (root / ".ragls" / "config.toml").write_text(WORKSPACE_CONFIG)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.fixture(scope="session")
def repo_factory() -> Callable[[Path], Path]:
    """``make_repo`` for modules that adjust their copy (conftest modules are not importable by name)."""
    return make_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("recipes") / "minirepo")


@pytest.fixture(scope="module")
def index(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """``repo`` fully indexed (keyword, symbol and dense layers)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAGLS_CONFIG", str(tmp_path_factory.mktemp("cfg") / "none.toml"))
        idx = Index.open(repo, config.load(repo))
        idx.update()
        idx.embed_pending()
    yield idx
    idx.close()


@pytest.fixture(scope="session")
def chat() -> Iterator[Provider]:
    """The bundled SmolLM2 model with a 2,048-token window (so budgets bind) and greedy sampling."""
    from ragls.config import ModelConfig
    from ragls.llm.llama_cpp import LlamaCppProvider

    provider = LlamaCppProvider(ModelConfig(context_length=2048, temperature=0.0))
    yield provider
    provider.close()


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

    def config(self, audit_log: Path) -> str:
        """Workspace config sending chat to this endpoint (privacy mode 'standard' allows it)."""
        return (
            f'[privacy]\nmode = "standard"\naudit_log = "{audit_log}"\n'
            f'[models.chat]\nprovider = "openai"\nbase_url = "{self.url}"\nmodel = "scripted"\n'
            'api_key_env = "RAGLS_TEST_KEY"\nmax_retries = 0\n'
        )


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    monkeypatch.setenv("RAGLS_TEST_KEY", "test-key")
    served = Endpoint()
    yield served
    served.server.shutdown()
    served.server.server_close()
