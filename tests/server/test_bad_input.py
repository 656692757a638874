"""Bad input over the wire: each message gets the error code the specification gives (or is
ignored where it says so), and the server keeps answering. Driven with raw bytes, since a client
library will not send malformed frames."""

from __future__ import annotations

import json
import random
from pathlib import Path

from benchmarks.lsp_client import RawServer, frame

# Models that cannot load: anything reaching a model fails at once with a clear error instead of
# generating (the fuzz test must not spend minutes in generation).
NO_MODELS = {
    "index": {"embeddings": False},
    "models": {
        "chat": {"path": "/nonexistent/model.gguf"},
        "completion": {"path": "/nonexistent/model.gguf"},
    },
    "server": {"debounce_ms": 0},
}


def error_code(response: dict) -> int | None:
    return response.get("error", {}).get("code")


def open_text(srv: RawServer, path: Path, text: str) -> str:
    uri = path.as_uri()
    srv.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
    )
    return uri


def test_lifecycle_order(repo: Path) -> None:
    srv = RawServer()
    early = srv.request("ragls/indexStatus", {})
    assert error_code(early) == -32002  # ServerNotInitialized
    assert error_code(srv.request("textDocument/inlineCompletion", {})) == -32002
    srv.notify(
        "textDocument/didOpen",
        {
            "textDocument": {
                "uri": (repo / "x.py").as_uri(),
                "languageId": "python",
                "version": 1,
                "text": "x",
            }
        },
    )  # dropped, no answer
    answer = srv.initialize(repo, NO_MODELS)
    caps = answer["result"]["capabilities"]
    assert caps["positionEncoding"] == "utf-16"
    assert caps["inlineCompletionProvider"] is not None
    assert (
        error_code(srv.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}}))
        == -32600
    )
    assert srv.request("shutdown")["result"] is None
    assert error_code(srv.request("ragls/indexStatus", {})) == -32600  # after shutdown
    srv.notify("exit")
    assert srv.proc.wait(timeout=30) == 0


def test_exit_without_shutdown_is_an_error_exit(repo: Path) -> None:
    srv = RawServer()
    srv.initialize(repo, NO_MODELS)
    srv.notify("exit")
    assert srv.proc.wait(timeout=30) == 1


def test_utf8_is_chosen_when_offered(repo: Path) -> None:
    srv = RawServer()
    caps = {"general": {"positionEncodings": ["utf-32", "utf-8", "utf-16"]}}
    assert srv.initialize(repo, NO_MODELS, caps)["result"]["capabilities"]["positionEncoding"] == "utf-8"
    assert srv.close() == 0


def test_malformed_messages_get_the_specified_errors(repo: Path) -> None:
    srv = RawServer()
    srv.initialize(repo, NO_MODELS)
    srv.send_bytes(frame(b"{not json"))
    assert error_code(srv.response(None)) == -32700  # parse error, id null
    srv.send(["a", "batch"])
    assert error_code(srv.response(None)) == -32600
    srv.send({"jsonrpc": "1.0", "id": 5, "method": "ragls/indexStatus"})
    assert error_code(srv.response(5)) == -32600
    srv.send({"jsonrpc": "2.0", "id": 6})
    assert error_code(srv.response(6)) == -32600
    srv.send({"jsonrpc": "2.0", "id": {"an": "object"}, "method": "ragls/indexStatus"})
    assert error_code(srv.response(None)) == -32600
    srv.send_bytes(b"X-Garbage: yes\r\nContent-Length: nope\r\n\r\n")  # a frame that cannot be read
    srv.send_bytes(frame(b"\xff\xfe not utf-8"))
    assert error_code(srv.response(None)) == -32700

    bad_types = srv.request("textDocument/inlineCompletion", {"textDocument": 5, "position": "here"})
    assert error_code(bad_types) == -32602
    assert error_code(srv.request("no/such/method", {})) == -32601
    assert error_code(srv.request("ragls/search", {"query": 5})) == -32602
    assert error_code(srv.request("ragls/chat", {"question": ""})) == -32602
    assert error_code(srv.request("ragls/runRecipe", {"recipe": "explain", "uri": "untitled:1"})) == -32602
    assert (
        error_code(srv.request("workspace/executeCommand", {"command": "ragls.runRecipe", "arguments": [7]}))
        == -32602
    )

    # edits to a document never opened are ignored; the server goes on
    srv.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": (repo / "never.py").as_uri(), "version": 2},
            "contentChanges": [{"text": "x"}],
        },
    )
    uri = open_text(srv, repo / "shop" / "cart.py", "a = 1\nb = 2\n")
    past_end = srv.request(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": 40, "character": 0},
            "context": {"triggerKind": 1},
        },
    )
    assert error_code(past_end) == -32602 and "past the end" in past_end["error"]["message"]
    not_open = srv.request(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": (repo / "shop" / "mailer.py").as_uri()},
            "position": {"line": 0, "character": 0},
            "context": {"triggerKind": 1},
        },
    )
    assert error_code(not_open) == -32602
    assert "result" in srv.request("ragls/indexStatus", {})
    assert srv.close() == 0


def test_huge_and_binary_documents_are_served(repo: Path) -> None:
    srv = RawServer()
    srv.initialize(repo, NO_MODELS)
    huge = "x = 1\n" * 400_000  # 2.4 MB, over index.max_file_bytes
    uri = open_text(srv, repo / "shop" / "cart.py", huge)
    srv.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [
                {
                    "range": {
                        "start": {"line": 399_999, "character": 0},
                        "end": {"line": 399_999, "character": 5},
                    },
                    "text": "y = 2",
                }
            ],
        },
    )
    state = srv.request("ragls/documentState", {"uri": uri})["result"]
    assert state["version"] == 2 and state["length"] == len(huge)
    binary = open_text(srv, repo / "blob.py", "\x00\x01\x02 binary \x00")
    answer = srv.request(
        "textDocument/completion", {"textDocument": {"uri": binary}, "position": {"line": 0, "character": 3}}
    )
    assert "result" in answer  # nothing to complete (the model cannot load), but an answer
    assert "result" in srv.request("ragls/indexStatus", {})
    assert srv.close() == 0


def test_client_disconnecting_mid_stream_ends_the_server_cleanly(repo: Path) -> None:
    srv = RawServer()
    srv.initialize(repo, {"index": {"embeddings": False}, "recipes": {"answer_tokens": 400}})
    srv.request("ragls/chat", {"question": "How does the cart compute its total price, step by step?"})
    assert srv.proc.stdin is not None
    srv.proc.stdin.close()  # the editor is gone, mid-answer
    assert srv.proc.wait(timeout=60) == 1


def _random_json(rng: random.Random, depth: int = 0) -> object:
    keys = [
        "textDocument",
        "uri",
        "position",
        "line",
        "character",
        "range",
        "start",
        "end",
        "query",
        "question",
        "chatId",
        "recipe",
        "context",
        "triggerKind",
        "settings",
        "text",
        "version",
        "contentChanges",
        "id",
        "x",
    ]
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**31, -(2**63), 7, 1.5])
    if kind == 3:
        return "".join(rng.choice('ab\u00e9\U0001f600 \n\t\\"') for _ in range(rng.randrange(12)))
    if kind == 4:
        return rng.choice(["", "untitled:x", "x://y", "%%%", "\x00"])
    if kind == 5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def test_fuzz_then_a_normal_request_is_answered(repo: Path) -> None:
    rng = random.Random(20261202)
    methods = [
        "textDocument/inlineCompletion",
        "textDocument/completion",
        "textDocument/codeAction",
        "textDocument/didOpen",
        "textDocument/didChange",
        "textDocument/didClose",
        "textDocument/didSave",
        "workspace/didChangeConfiguration",
        "workspace/didChangeWatchedFiles",
        "workspace/executeCommand",
        "$/cancelRequest",
        "ragls/chat",
        "ragls/search",
        "ragls/recipes",
        "ragls/runRecipe",
        "ragls/indexStatus",
        "ragls/cancelChat",
        "ragls/privacyAudit",
        "ragls/documentState",
        "window/workDoneProgress/cancel",
        "no/such",
        "$/unknown",
    ]
    srv = RawServer()
    srv.initialize(repo, NO_MODELS)
    for n in range(3000):
        roll = rng.random()
        if roll < 0.1:
            srv.send_bytes(frame(bytes(rng.randrange(256) for _ in range(rng.randrange(40)))))
        elif roll < 0.2:
            srv.send_bytes(frame(json.dumps(_random_json(rng)).encode()))
        else:
            message: dict = {"jsonrpc": "2.0", "method": rng.choice(methods), "params": _random_json(rng)}
            if rng.random() < 0.6:
                message["id"] = rng.choice([n, f"f{n}", None, True, 1.5, [n]])
            srv.send(message)
    status = srv.request("ragls/indexStatus", {}, timeout=120)
    assert status["result"]["workspaces"][0]["root"] == str(repo.resolve())
    assert srv.proc.poll() is None
    assert srv.close() == 0


def test_what_a_library_prints_goes_to_the_log_not_to_the_editor(repo: Path) -> None:
    """The messages leave on a private copy of stdout; file descriptor 1 is the log, so a library
    that prints, or points fd 1 elsewhere while it loads a model, cannot touch the protocol."""
    srv = RawServer()
    srv.initialize(repo, NO_MODELS)
    fds = Path(f"/proc/{srv.proc.pid}/fd")
    stdout, stderr = (fds / "1").readlink(), (fds / "2").readlink()
    assert stdout == stderr
    assert srv.request("ragls/indexStatus", {})["result"]["workspaces"]  # still answers on the pipe
    assert srv.close() == 0
