"""Helpers for the language server's end-to-end tests: the real ``ragls serve`` over stdio, driven
by pytest-lsp's client (a pygls client) with the capabilities a given test needs. A module of its
own, not ``conftest``: test modules import it by a name no other test folder uses."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

MINIREPO = Path(__file__).parents[1] / "fixtures" / "minirepo"
# Small and deterministic: greedy sampling, short answers, no dense layer unless a test asks.
FAST_SETTINGS: dict[str, Any] = {
    "index": {"embeddings": False},
    "models": {
        "chat": {"temperature": 0.0, "context_length": 2048},
        "completion": {"temperature": 0.0, "context_length": 2048},
    },
    "recipes": {"answer_tokens": 48, "context_tokens": 512},
    # No latency budget: what a test gets does not depend on how busy the machine is.
    "server": {"debounce_ms": 0, "latency_budget_ms": {"automatic": 0, "invoked": 0}},
}


def plain(value: Any) -> Any:
    """pygls turns our custom methods' JSON into namedtuples on the client side; back to JSON."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def make_repo(root: Path) -> Path:
    """A git work tree holding a copy of the minirepo fixture."""
    shutil.copytree(MINIREPO, root, dirs_exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


class Recorder:
    """What the server sent the client besides answers: ragls/chatDelta, applied edits."""

    def __init__(self, client: LanguageClient) -> None:
        self.deltas: list[dict] = []
        self.edits: list[types.ApplyWorkspaceEditParams] = []
        self.registrations: list[types.RegistrationParams] = []
        self.model_states: list[dict] = []  # ragls/modelState, for clients that declare it
        self.finals: dict[str, asyncio.Future] = {}  # chatId#turn -> final message
        self.apply_edits = True
        self.server_capabilities: types.ServerCapabilities | None = None
        recorder = self

        @client.feature("ragls/chatDelta")
        def on_delta(params: Any) -> None:
            delta = plain(params)
            recorder.deltas.append(delta)
            if delta.get("done"):
                recorder._final(delta["chatId"], delta["turn"]).set_result(delta)

        @client.feature("ragls/modelState")
        def on_model_state(params: Any) -> None:
            recorder.model_states.append(plain(params))

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def on_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            recorder.edits.append(params)
            return types.ApplyWorkspaceEditResult(applied=recorder.apply_edits)

        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def on_register(params: types.RegistrationParams) -> None:
            recorder.registrations.append(params)

    def _final(self, chat_id: str, turn: int) -> asyncio.Future:
        key = f"{chat_id}#{turn}"
        if key not in self.finals:
            self.finals[key] = asyncio.get_running_loop().create_future()
        return self.finals[key]

    async def final(self, chat_id: str, turn: int = 1, timeout: float = 120) -> dict:
        """The final ``ragls/chatDelta`` of a turn."""
        return await asyncio.wait_for(self._final(chat_id, turn), timeout)

    def text(self, chat_id: str, turn: int = 1) -> str:
        """The streamed deltas of a turn, joined."""
        return "".join(
            d.get("delta", "")
            for d in self.deltas
            if d["chatId"] == chat_id and d["turn"] == turn and not d.get("done")
        )


def capabilities(client: str = "visual-studio-code", **changes: Any) -> types.ClientCapabilities:
    """A real client's published capabilities (pytest-lsp ships them), with ``changes`` applied
    by dotted lsprotocol attribute path (None removes a capability)."""
    caps = client_capabilities(client)
    for dotted, value in changes.items():
        target: Any = caps
        *parents, last = dotted.split("__")
        for part in parents:
            target = getattr(target, part)
        setattr(target, last, value)
    return caps


def _fix_code_action_hook(client: LanguageClient) -> None:
    """lsprotocol 2025.0.0 reads any ``Command | CodeAction`` that has a ``command`` key as a
    Command, so a CodeAction carrying a command arrives garbled; tell them apart by its type."""
    converter = client.protocol._converter

    def structure(obj: Any, _: type) -> types.Command | types.CodeAction:
        is_command = isinstance(obj.get("command"), str)
        return converter.structure(obj, types.Command if is_command else types.CodeAction)

    converter.register_structure_hook(types.Command | types.CodeAction, structure)
    converter.register_structure_hook(Union[types.Command, types.CodeAction], structure)  # noqa: UP007


@asynccontextmanager
async def lsp(
    root: Path | None,
    *,
    settings: dict | None = None,
    caps: types.ClientCapabilities | None = None,
    folders: list[Path] | None = None,
) -> AsyncIterator[tuple[LanguageClient, Recorder]]:
    """A started, initialized ``ragls serve`` session on ``root`` (None: no folder)."""
    client = make_test_lsp_client()
    _fix_code_action_hook(client)
    recorder = Recorder(client)
    # pytest-lsp forwards the server's stderr (its log) to the test's captured stderr.
    await client.start_io(sys.executable, "-m", "ragls", "serve", "--verbose")
    chosen = folders if folders is not None else ([root] if root else [])
    params = types.InitializeParams(
        capabilities=caps or capabilities(),
        root_uri=root.as_uri() if root else None,
        workspace_folders=[types.WorkspaceFolder(uri=f.as_uri(), name=f.name) for f in chosen] or None,
        initialization_options=FAST_SETTINGS if settings is None else settings,
    )
    try:
        recorder.server_capabilities = (await client.initialize_session(params)).capabilities
        yield client, recorder
    except BaseException:
        server = client._server
        if server is not None and server.returncode is None:
            server.send_signal(signal.SIGUSR1)  # every thread's stack joins the server's log
            await asyncio.sleep(1)
            server.kill()
            await server.wait()
        raise
    finally:
        if client._server is not None and client._server.returncode is None:
            await asyncio.wait_for(client.shutdown_session(), 60)
        await client.stop()


async def request(client: LanguageClient, method: str, params: Any, timeout: float = 120) -> Any:
    """A ``ragls/`` request, its result as plain JSON."""
    return plain(await asyncio.wait_for(client.protocol.send_request_async(method, params), timeout))


async def wait_until(predicate: Callable[[], Any], timeout: float = 120, what: str = "") -> Any:
    """Poll ``predicate`` (a coroutine function or a function) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)


async def indexed(client: LanguageClient, timeout: float = 180) -> dict:
    """Wait for every workspace folder's first index run to end; their status."""

    async def ready() -> dict | None:
        status = await request(client, "ragls/indexStatus", {})
        states = {w["state"] for w in status["workspaces"]}
        return status if status["workspaces"] and states <= {"ready", "error"} else None

    return await wait_until(ready, timeout, "indexing to finish")


def open_doc(client: LanguageClient, path: Path, text: str | None = None, language: str = "python") -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri,
                language_id=language,
                version=1,
                text=path.read_text() if text is None else text,
            )
        )
    )
    return uri
