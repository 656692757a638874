"""The assistant through the protocol, with the bundled local model: inline completion (with
debounce, cancel-previous and $/cancelRequest), chat with streamed deltas and verified citations,
recipes as code actions and commands, citations opened in the editor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsp_support import FAST_SETTINGS, capabilities, indexed, lsp, open_doc, request, wait_until
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled

INLINE = capabilities(text_document__inline_completion=types.InlineCompletionClientCapabilities())


def inline_params(
    uri: str, line: int, character: int, automatic: bool = False
) -> types.InlineCompletionParams:
    kind = (
        types.InlineCompletionTriggerKind.Automatic
        if automatic
        else types.InlineCompletionTriggerKind.Invoked
    )
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


TYPED = "def add(a, b):\n    return a +"


async def test_inline_completion_uses_the_unsaved_buffer(repo: Path) -> None:
    async with lsp(repo, caps=INLINE) as (client, _):
        uri = open_doc(client, repo / "shop" / "calc.py", TYPED)  # not on disk: the buffer is all there is
        (repo / "shop" / "calc.py").write_text("")
        result = await client.text_document_inline_completion_async(inline_params(uri, 1, 16))
    (item,) = result.items
    assert item.insert_text.strip() == "b"
    assert item.range.start == item.range.end == types.Position(line=1, character=16)


async def test_completion_fallback_replaces_the_typed_word(repo: Path) -> None:
    async with lsp(repo, caps=capabilities("neovim@v0.11.0")) as (client, _):
        (repo / "shop" / "calc.py").write_text(TYPED)
        uri = open_doc(client, repo / "shop" / "calc.py")
        result = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=1, character=16),
            )
        )
    (item,) = result.items
    assert result.is_incomplete
    assert item.text_edit.new_text.strip() == "b"


async def test_a_newer_keystroke_supersedes_the_pending_request(repo: Path) -> None:
    settings = {**FAST_SETTINGS, "server": {**FAST_SETTINGS["server"], "debounce_ms": 300}}
    async with lsp(repo, caps=INLINE, settings=settings) as (client, _):
        (repo / "shop" / "calc.py").write_text(TYPED)
        uri = open_doc(client, repo / "shop" / "calc.py")
        # Automatic triggers never wait for the model to load; an invoked one does.
        await client.text_document_inline_completion_async(inline_params(uri, 1, 16))
        first = asyncio.ensure_future(
            client.text_document_inline_completion_async(inline_params(uri, 1, 16, True))
        )
        await asyncio.sleep(0.05)
        second = await client.text_document_inline_completion_async(inline_params(uri, 1, 16, True))
        superseded = await first
    assert not superseded.items  # dropped during its debounce, no model call
    assert second.items and second.items[0].insert_text.strip() == "b"


async def test_cancel_request_stops_a_completion_and_the_server_goes_on(repo: Path) -> None:
    async with lsp(repo, caps=INLINE) as (client, _):
        (repo / "shop" / "calc.py").write_text("class Matrix:\n    def __init__(self, rows):\n")
        uri = open_doc(client, repo / "shop" / "calc.py")
        pending = asyncio.ensure_future(
            client.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 2, 0), msg_id="to-cancel"
            )
        )
        await asyncio.sleep(0.3)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="to-cancel"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(pending, 60)
        again = await client.text_document_inline_completion_async(inline_params(uri, 1, 27))
    assert isinstance(again, types.InlineCompletionList)


async def test_chat_streams_deltas_and_cancels_mid_answer(repo: Path) -> None:
    settings = {**FAST_SETTINGS, "recipes": {"answer_tokens": 1500, "context_tokens": 256}}
    async with lsp(repo, settings=settings) as (client, recorder):
        await indexed(client)
        started = await request(client, "ragls/chat", {"question": "Explain how the shopping cart works."})
        chat_id = started["chatId"]
        await wait_until(
            lambda: len([d for d in recorder.deltas if d["chatId"] == chat_id]) >= 5, what="the first deltas"
        )
        assert (await request(client, "ragls/cancelChat", {"chatId": chat_id})) == {"cancelled": True}
        final = await recorder.final(chat_id)
    assert final["cancelled"] is True and final["route"] == "answer"
    assert final["answer"].startswith(recorder.text(chat_id)[:20])
    assert len(final["answer"]) < 1500 * 3  # stopped well before the token cap


async def test_chat_search_route_and_follow_up(repo: Path) -> None:
    async with lsp(repo) as (client, recorder):
        await indexed(client)
        searched = await request(client, "ragls/chat", {"question": "SmtpMailer"})
        final = await recorder.final(searched["chatId"])
        assert final["route"] == "search" and final["results"][0]["path"] == "shop/mailer.py"
        assert not recorder.text(searched["chatId"])  # a search involves no model
        asked = await request(client, "ragls/chat", {"question": "What does SmtpMailer do?"})
        first = await recorder.final(asked["chatId"])
        follow = await request(
            client, "ragls/chat", {"question": "And how is it tested?", "chatId": asked["chatId"]}
        )
        second = await recorder.final(asked["chatId"], turn=2)
    assert follow == {"chatId": asked["chatId"], "turn": 2}
    assert first["route"] == "answer" and first["answer"] == recorder.text(asked["chatId"])
    assert second["route"] == "answer" and second["answer"] == recorder.text(asked["chatId"], turn=2)


def _line_of(path: Path, prefix: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines()) if text.lstrip().startswith(prefix))


async def _actions(client, uri: str, line: int, only: list[str] | None = None) -> dict:
    cursor = types.Range(
        start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)
    )
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=cursor,
            context=types.CodeActionContext(diagnostics=[], only=only),
        )
    )
    return {a.kind: a.command for a in actions or []}


async def _run(client, command: types.Command) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command.command, arguments=command.arguments)
    )


async def test_explain_as_a_code_action_streams_its_answer(repo: Path) -> None:
    async with lsp(repo) as (client, recorder):
        await indexed(client)
        cart = repo / "shop" / "cart.py"
        uri = open_doc(client, cart)
        actions = await _actions(client, uri, _line_of(cart, "def "))
        assert {
            "refactor.ragls.explain",
            "refactor.ragls.docstring",
            "refactor.ragls.unit-test",
            "refactor.ragls.smell",
        } <= set(actions)
        assert await _actions(client, uri, 0, only=[types.CodeActionKind.QuickFix]) == {}
        final = await _run(client, actions["refactor.ragls.explain"])
    assert final["output"] == "text" and final["path"] == "shop/cart.py" and final["answer"]
    assert final["answer"] == recorder.text(final["chatId"])  # streamed, then whole
    assert recorder.edits == []  # a text answer edits nothing


async def test_code_recipes_edit_the_buffer_and_create_test_files(
    repo: Path, endpoint, tmp_path: Path
) -> None:
    """Edits need answers with known code blocks: a scripted OpenAI-compatible endpoint gives them."""
    settings = {**FAST_SETTINGS, **endpoint.settings(tmp_path / "audit.jsonl")}
    documented = 'def total(cart):\n    """The sum of the cart\'s prices."""\n    return 0\n'
    endpoint.replies += [
        endpoint.stream("```python\n", documented, "```\n"),
        endpoint.stream("```python\ndef test_total():\n    assert True\n```\n"),
    ]
    cart = repo / "shop" / "cart.py"
    async with lsp(repo, settings=settings) as (client, recorder):
        await indexed(client)
        uri = open_doc(client, cart)
        line = _line_of(cart, "def ")
        actions = await _actions(client, uri, line)
        docstring = await _run(client, actions["refactor.ragls.docstring"])
        tests = await _run(client, actions["refactor.ragls.unit-test"])
        shown = await wait_until(lambda: client.shown_documents, what="the test file opened")
    assert docstring["applied"] is True and docstring["code"] == documented.rstrip("\n")
    (change,) = recorder.edits[0].edit.document_changes
    assert change.text_document.uri == uri and change.text_document.version == 1  # rejected if typed since
    assert change.edits[0].range.start == types.Position(line=docstring["start_line"] - 1, character=0)
    assert change.edits[0].new_text == documented
    assert tests["applied"] is True and tests["target_path"].startswith("tests/")
    created, inserted = recorder.edits[1].edit.document_changes
    assert created.kind == "create" and created.uri == tests["targetUri"]
    assert "def test_total" in inserted.edits[0].new_text
    assert shown[-1].uri == tests["targetUri"]


async def test_citations_open_in_the_editor(repo: Path) -> None:
    async with lsp(repo) as (client, _):
        await indexed(client)
        results = (await request(client, "ragls/search", {"query": "SmtpMailer"}))["results"]
        target = results[0]
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="ragls.openCitation", arguments=[{"uri": target["uri"], "range": target["range"]}]
            )
        )
        shown = await wait_until(lambda: client.shown_documents, what="window/showDocument")
    assert shown[0].uri == target["uri"]
    assert shown[0].selection.start.line == target["startLine"] - 1
    assert shown[0].take_focus


async def test_a_remote_model_is_refused_in_local_mode_with_the_setting_named(repo: Path) -> None:
    settings = {
        **FAST_SETTINGS,
        # Another machine (TEST-NET-1): a server on loopback would be a local model, allowed.
        "models": {"chat": {"provider": "openai", "base_url": "http://192.0.2.9:9/v1", "model": "x"}},
    }
    async with lsp(repo, settings=settings) as (client, recorder):
        await indexed(client)
        started = await request(client, "ragls/chat", {"question": "How are orders stored?"})
        final = await recorder.final(started["chatId"])
        shown = await wait_until(
            lambda: [m for m in client.messages if "privacy.mode" in m.message],
            what="window/showMessage naming privacy.mode",
        )
    assert "privacy.mode" in final["error"]
    assert shown[0].type == types.MessageType.Error


async def test_unknown_recipe_is_invalid_params(repo: Path) -> None:
    async with lsp(repo) as (client, _):
        uri = open_doc(client, repo / "shop" / "cart.py")
        with pytest.raises(JsonRpcException, match="no recipe named 'nope'"):
            await request(client, "ragls/runRecipe", {"recipe": "nope", "uri": uri})
        listed = await request(client, "ragls/recipes", {"uri": uri})
    assert {"explain", "unit-test", "docstring", "smell", "ask", "complete"} <= {
        r["name"] for r in listed["recipes"]
    }


async def test_completion_is_served_while_a_large_index_is_built(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for n in range(3000):
        module = root / f"pkg{n % 30}" / f"module_{n}.py"
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text(
            "".join(
                f"def compute_{n}_{k}(values):\n    total = 0\n"
                f"    for v in values:\n        total += v * {k}\n    return total\n\n\n"
                for k in range(4)
            )
        )
    (root / "calc.py").write_text(TYPED)
    # The static tier takes seconds; the contextual tier (MiniLM on a CPU) keeps the build busy for minutes.
    settings = {**FAST_SETTINGS, "index": {"embeddings": True, "contextual": "on"}}
    async with lsp(root, caps=INLINE, settings=settings) as (client, _):
        token = await wait_until(
            lambda: [
                t for t, v in client.progress_reports.items() if any(getattr(r, "percentage", 0) for r in v)
            ],
            what="progress",
        )
        uri = open_doc(client, root / "calc.py")
        result = await client.text_document_inline_completion_async(inline_params(uri, 1, 16))
        status = (await request(client, "ragls/indexStatus", {}))["workspaces"][0]
        ended_before = any(
            type(v).__name__ == "WorkDoneProgressEnd" for v in client.progress_reports[token[0]]
        )
        client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token[0]))
        end = await wait_until(
            lambda: [
                v for v in client.progress_reports[token[0]] if type(v).__name__ == "WorkDoneProgressEnd"
            ],
            what="the cancelled end",
        )
        after = (await request(client, "ragls/indexStatus", {}))["workspaces"][0]
    assert result.items and result.items[0].insert_text.strip() == "b"
    assert status["state"] == "indexing" and not ended_before
    assert "cancelled" in end[0].message
    assert after["state"] == "ready" and after["files"] > 0  # what was committed stays usable


async def test_shutdown_while_indexing_ends_the_progress(tmp_path: Path) -> None:
    """An editor must not keep a spinner for a build the server stopped: the end comes before
    the answer to shutdown (no notification may follow it)."""
    root = tmp_path / "busy"
    for n in range(300):
        (root / f"m{n // 50}").mkdir(parents=True, exist_ok=True)
        (root / f"m{n // 50}" / f"f{n}.py").write_text(f"def f{n}(x):\n    return x * {n}\n")
    settings = {**FAST_SETTINGS, "index": {"embeddings": True, "contextual": "on"}}
    async with lsp(root, caps=INLINE, settings=settings) as (client, _):
        [token] = await wait_until(lambda: list(client.progress_reports), what="a progress token")
        await wait_until(lambda: len(client.progress_reports[token]) > 1, what="progress reports")
        await asyncio.wait_for(client.shutdown_async(None), 60)
        last = client.progress_reports[token][-1]
        client.exit(None)
        await asyncio.wait_for(client._server.wait(), 60)
    assert type(last).__name__ == "WorkDoneProgressEnd" and "shutting down" in last.message


async def test_model_settings_apply_live_and_the_audit_shows_remote_requests(
    repo: Path, endpoint, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    endpoint.replies.append(endpoint.stream("Orders are stored by ", "`shop/storage/pool.py:1-5`."))
    async with lsp(repo) as (client, recorder):
        await indexed(client)
        assert (await request(client, "ragls/privacyAudit", {}))["entries"] == []
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"ragls": endpoint.settings(audit)})
        )
        asked = await request(client, "ragls/chat", {"question": "How are orders stored?"})
        remote = await recorder.final(asked["chatId"])
        logged = await request(client, "ragls/privacyAudit", {})
        missing = {"models": {"chat": {"path": str(tmp_path / "no-such-model.gguf")}}}
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=missing))
        again = await request(client, "ragls/chat", {"question": "How are orders stored?"})
        failed = await recorder.final(again["chatId"])
        shown = await wait_until(
            lambda: [m for m in client.messages if "no-such-model.gguf" in m.message],
            what="the missing model",
        )
    assert remote["answer"] == "Orders are stored by `shop/storage/pool.py:1-5`."
    assert remote["citations"][0]["path"] == "shop/storage/pool.py"
    assert logged["mode"] == "standard" and len(logged["entries"]) == 1
    assert logged["entries"][0]["provider"] == "openai" and logged["entries"][0]["bytes"] > 0
    assert "no-such-model.gguf" in failed["error"] and "models.<role>.path" in failed["error"]
    assert shown[0].type == types.MessageType.Error


async def test_a_recipe_runs_on_a_buffer_never_saved(repo: Path) -> None:
    """An editor's new file exists only as the open buffer: recipes read the buffer."""
    async with lsp(repo) as (client, recorder):
        await indexed(client)
        uri = open_doc(client, repo / "shop" / "calc.py", TYPED + " b\n")
        started = await request(client, "ragls/runRecipe", {"recipe": "explain", "uri": uri})
        final = await recorder.final(started["chatId"])
    assert not (repo / "shop" / "calc.py").exists()
    assert "error" not in final, final.get("error")
    assert final["path"] == "shop/calc.py" and final["answer"]
