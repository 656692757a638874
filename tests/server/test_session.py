"""The server's life with an editor: capabilities, document sync, background indexing with
progress, search, file changes, unsaved buffers, workspace folders and live settings."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from lsp_support import FAST_SETTINGS, capabilities, indexed, lsp, open_doc, request, wait_until
from lsprotocol import types
from pygls.exceptions import JsonRpcException


async def test_capabilities_follow_the_client(repo: Path) -> None:
    inline = capabilities(text_document__inline_completion=types.InlineCompletionClientCapabilities())
    async with lsp(repo, caps=inline) as (_, recorder):
        caps = recorder.server_capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is None  # inline completion makes the fallback unnecessary
    assert caps.code_action_provider is not None
    assert {"ragls.runRecipe", "ragls.openCitation", "ragls.reindex"} <= set(
        caps.execute_command_provider.commands
    )
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    assert caps.position_encoding == types.PositionEncodingKind.Utf16

    async with lsp(repo, caps=capabilities("neovim@v0.11.0")) as (_, recorder):
        caps = recorder.server_capabilities
    assert caps.completion_provider is not None  # no inline completion in that client
    assert caps.position_encoding == types.PositionEncodingKind.Utf8  # Neovim offers UTF-8


async def test_incremental_sync_counts_lines_and_columns_as_the_client_does(repo: Path) -> None:
    """UTF-16 columns across an astral character, a form feed (not a line break in LSP) and CRLF."""
    original = "a = '😀x'\f\r\nb = 2\rc = 3\n"
    async with lsp(repo) as (client, _):
        uri = open_doc(client, repo / "shop" / "sync.py", original)
        edits = [
            ((0, 7, 0, 8), "Y"),  # after the emoji (2 UTF-16 units): replaces x
            ((1, 4, 1, 5), "20"),  # line 1 starts after \f\r\n; \f is inside line 0
            ((2, 0, 2, 0), "# c\n"),  # a line after the lone \r
        ]
        for version, ((l1, c1, l2, c2), text) in enumerate(edits, 2):
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(
                                start=types.Position(line=l1, character=c1),
                                end=types.Position(line=l2, character=c2),
                            ),
                            text=text,
                        )
                    ],
                )
            )
        state = await request(client, "ragls/documentState", {"uri": uri})
    expected = "a = '😀Y'\f\r\nb = 20\r# c\nc = 3\n"
    assert state["version"] == 4
    assert state["sha256"] == hashlib.sha256(expected.encode()).hexdigest()
    assert state["lines"] == 5


async def test_indexing_reports_progress_and_search_answers(repo: Path) -> None:
    async with lsp(repo) as (client, _):
        status = await indexed(client)
        reports = client.progress_reports
        found = await request(client, "ragls/search", {"query": "smtp mailer send", "topK": 3})
    (ws,) = status["workspaces"]
    assert ws["state"] == "ready" and ws["files"] >= 8 and ws["chunks"] > 0
    (token,) = [t for t in reports if str(t).startswith("ragls-index")]
    kinds = [type(v).__name__ for v in reports[token]]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    assert "WorkDoneProgressReport" in kinds
    percentages = [v.percentage for v in reports[token] if getattr(v, "percentage", None) is not None]
    assert percentages == sorted(percentages) and all(0 <= p <= 100 for p in percentages)
    assert "indexed" in reports[token][-1].message
    top = found["results"][0]
    assert top["path"] == "shop/mailer.py"
    assert top["uri"] == (repo / "shop" / "mailer.py").resolve().as_uri()
    assert top["range"]["start"]["line"] == top["startLine"] - 1


async def test_changed_files_and_unsaved_buffers_reach_the_index(repo: Path) -> None:
    caps = capabilities()  # VS Code watches files for the server
    async with lsp(repo, caps=caps) as (client, recorder):
        await indexed(client)
        assert any(
            r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
            for p in recorder.registrations
            for r in p.registrations
        )

        async def hits(query: str) -> list[str]:
            return [r["path"] for r in (await request(client, "ragls/search", {"query": query}))["results"]]

        new = repo / "shop" / "inventory.py"
        new.write_text("def restock_xylophone_gizmo(count):\n    return count\n")
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[types.FileEvent(uri=new.as_uri(), type=types.FileChangeType.Created)]
            )
        )
        await wait_until(
            lambda: _contains(hits("restock_xylophone_gizmo"), "shop/inventory.py"),
            what="the created file in search",
        )

        # Typed, not saved: retrieval sees the buffer once typing pauses.
        cart = repo / "shop" / "cart.py"
        uri = open_doc(client, cart)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangeWholeDocument(
                        text=cart.read_text() + "\n\ndef quokka_zanzibar_voucher(cart):\n    return cart\n"
                    )
                ],
            )
        )
        await wait_until(
            lambda: _contains(hits("quokka_zanzibar_voucher"), "shop/cart.py"),
            what="the unsaved function in search",
        )
        # Closed without saving: the disk copy is back.
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        await wait_until(
            lambda: _lacks(hits("quokka_zanzibar_voucher"), "shop/cart.py"),
            what="the unsaved function gone after close",
        )


async def test_watchdog_keeps_the_index_current_when_the_client_cannot_watch(repo: Path) -> None:
    caps = capabilities(workspace__did_change_watched_files=None)
    async with lsp(repo, caps=caps) as (client, recorder):
        await indexed(client)
        assert not recorder.registrations
        (repo / "shop" / "ledger.py").write_text(
            "def reconcile_wombat_ledger(entries):\n    return entries\n"
        )

        async def found() -> bool:
            results = (await request(client, "ragls/search", {"query": "reconcile_wombat_ledger"}))["results"]
            return any(r["path"] == "shop/ledger.py" for r in results)

        await wait_until(found, what="watchdog to pick up a new file")


async def test_workspace_folders_come_and_go(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "pkg").mkdir(parents=True)
    (other / "pkg" / "geometry.py").write_text("def polygon_kumquat_shoelace(points):\n    return 0\n")
    async with lsp(repo) as (client, _):
        await indexed(client)
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri=other.as_uri(), name="other")], removed=[]
                )
            )
        )
        status = await indexed(client)
        assert {w["root"] for w in status["workspaces"]} == {str(repo.resolve()), str(other.resolve())}
        results = (await request(client, "ragls/search", {"query": "polygon_kumquat_shoelace"}))["results"]
        assert results[0]["root"] == str(other.resolve()) and results[0]["path"] == "pkg/geometry.py"
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[], removed=[types.WorkspaceFolder(uri=other.as_uri(), name="other")]
                )
            )
        )
        status = await request(client, "ragls/indexStatus", {})
        assert [w["root"] for w in status["workspaces"]] == [str(repo.resolve())]


async def test_settings_apply_live_and_bad_ones_are_refused(repo: Path) -> None:
    async with lsp(repo) as (client, _):
        await indexed(client)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"ragls": {"index": {"max_file_bytez": 5}}})
        )
        message = await wait_until(
            lambda: [m for m in client.messages if "max_file_bytez" in m.message],
            what="the refused setting shown",
        )
        assert message[0].type == types.MessageType.Error and "max_file_bytes" in message[0].message
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"ragls": "fast please"})
        )
        await wait_until(
            lambda: [m for m in client.messages if "settings must be an object" in m.message],
            what="non-object settings refused",
        )
        # Lua clients encode an empty table as []: that is empty settings, not an error.
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ragls": []}))
        assert (await request(client, "ragls/indexStatus", {}))["workspaces"][0]["state"] == "ready"
        assert len([m for m in client.messages if m.type == types.MessageType.Error]) == 2

        # A new exclude pattern re-indexes the folder without the excluded files.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"ragls": {"index": {**FAST_SETTINGS["index"], "exclude": ["shop/**"]}}}
            )
        )

        async def reindexed_without_shop() -> bool:
            status = (await request(client, "ragls/indexStatus", {}))["workspaces"][0]
            results = (await request(client, "ragls/search", {"query": "smtp mailer send"}))["results"]
            return status["state"] == "ready" and not any(r["path"].startswith("shop/") for r in results)

        await wait_until(reindexed_without_shop, what="re-indexing with the new exclude")


async def test_reindex(repo: Path) -> None:
    async with lsp(repo) as (client, _):
        await indexed(client)
        started = await request(client, "ragls/reindex", {})
        assert started["started"] == [str(repo.resolve())]
        assert (await indexed(client))["workspaces"][0]["state"] == "ready"
        with pytest.raises(JsonRpcException, match="not inside a workspace folder"):
            await request(client, "ragls/reindex", {"uri": "file:///not/a/folder"})


async def _contains(hits, path: str) -> bool:
    return path in await hits


async def _lacks(hits, path: str) -> bool:
    return path not in await hits


def test_the_status_asked_for_when_the_progress_ends_says_ready(repo: Path) -> None:
    """An editor refreshes its status bar when the indexing progress ends (the VS Code extension
    does): that request, answered while the build is still settling, must read "ready", or the
    status stays "indexing" for good (seen in the VS Code workbench test, about 1 run in 3)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ragls import config
    from server.methods import _status
    from server.workspaces import BuildEvents, Workspace

    seen: list[str] = []
    readers: list[threading.Thread] = []

    def progress_ended(ws: Workspace, error: str | None) -> None:
        reader = threading.Thread(target=lambda: seen.append(_status(ws)["state"]))
        reader.start()
        reader.join(0.5)  # the answer to ragls/indexStatus, while the build is still ending
        readers.append(reader)

    with ThreadPoolExecutor(1) as writer:
        events = BuildEvents(
            lambda ws: None, lambda ws, progress: None, progress_ended, lambda ws, message: None
        )
        ws = Workspace(repo, config.load(repo, [("test", FAST_SETTINGS)]), FAST_SETTINGS, writer, events)
        assert ws.build()
        deadline = time.monotonic() + 180
        while not readers and time.monotonic() < deadline:
            time.sleep(0.1)
    readers[0].join(5)
    assert seen == ["ready"]
