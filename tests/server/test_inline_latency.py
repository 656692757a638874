"""Inline completion that keeps up with typing, through the real server and the bundled model:
suggestions typed through with no model call, bursts of edits faster than the model, huge files
and lines, positions inside a character, and a model that is still loading."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from lsp_support import FAST_SETTINGS, capabilities, lsp, open_doc, wait_until
from lsprotocol import types
from test_assistant import INLINE, inline_params


def edit(client, uri: str, version: int, line: int, character: int, text: str) -> None:
    """Insert ``text`` at line:character (UTF-16 columns)."""
    at = types.Position(line=line, character=character)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(range=types.Range(start=at, end=at), text=text)
            ],
        )
    )


def logged(client, needle: str) -> list[str]:
    return [m.message for m in client.log_messages if needle in m.message]


async def test_typing_what_the_suggestion_says_is_served_without_the_model(repo: Path) -> None:
    text = "def area(width, height):\n    return "
    async with lsp(repo, caps=INLINE) as (client, _):
        uri = open_doc(client, repo / "shop" / "shapes.py", text)
        first = await client.text_document_inline_completion_async(inline_params(uri, 1, 11))
        (item,) = first.items
        suggestion = item.insert_text
        assert len(suggestion) >= 3, suggestion
        model_calls = len(logged(client, "prompt tokens"))
        edit(client, uri, 2, 1, 11, suggestion[:2])
        second = await client.text_document_inline_completion_async(inline_params(uri, 1, 13, automatic=True))
        assert [i.insert_text for i in second.items] == [suggestion[2:]]
        assert logged(client, "typed through, no model call")
        assert len(logged(client, "prompt tokens")) == model_calls  # the model was not asked
        # Typing something else asks the model again.
        edit(client, uri, 3, 1, 13, "#")
        await client.text_document_inline_completion_async(inline_params(uri, 1, 14))
        assert len(logged(client, "prompt tokens")) == model_calls + 1


async def test_edits_faster_than_answers_build_no_queue(repo: Path) -> None:
    line = "    total = sum(item.price for item in items) + shipping_cost(items)"
    async with lsp(repo, caps=INLINE) as (client, _):
        uri = open_doc(client, repo / "shop" / "orders.py", "def order_total(items):\n")
        await client.text_document_inline_completion_async(inline_params(uri, 0, 0))  # the model loads
        pending = []
        for i, char in enumerate(line):
            edit(client, uri, i + 2, 1, i, char)
            pending.append(
                asyncio.ensure_future(
                    client.text_document_inline_completion_async(inline_params(uri, 1, i + 1, automatic=True))
                )
            )
        answers = await asyncio.wait_for(asyncio.gather(*pending), 300)
        assert len(answers) == len(line)
        # Each keystroke stopped the one before: far fewer requests reached the model than were sent.
        assert len(logged(client, "cancelled")) + len(logged(client, "typed through")) > len(line) // 2
        final = await client.text_document_inline_completion_async(inline_params(uri, 1, len(line)))
        assert isinstance(final, types.InlineCompletionList)


async def test_a_5mb_file_and_20000_character_lines_are_completed(repo: Path) -> None:
    huge = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(180_000))  # ~5 MB
    assert len(huge) > 5_000_000
    wide = "data = [" + "1, " * 6_700 + "]\n" + "name = '" + "y" * 20_000 + "'\nvalue = na"
    async with lsp(repo, caps=INLINE) as (client, _):
        big = open_doc(client, repo / "shop" / "huge.py", huge)
        lines = huge.count("\n")
        for line, character in ((lines, 0), (lines // 2, 4)):
            answer = await client.text_document_inline_completion_async(inline_params(big, line, character))
            assert isinstance(answer, types.InlineCompletionList)
        uri = open_doc(client, repo / "shop" / "wide.py", wide)
        for line, character in ((0, 10_000), (1, 20_005), (2, 10)):
            answer = await client.text_document_inline_completion_async(inline_params(uri, line, character))
            assert isinstance(answer, types.InlineCompletionList)
        assert not [m for m in client.messages if m.type == types.MessageType.Error]


async def test_a_cursor_inside_a_character_is_moved_to_its_end(repo: Path) -> None:
    text = "label = '😀' + na"
    async with lsp(repo, caps=INLINE) as (client, _):
        uri = open_doc(client, repo / "shop" / "emoji.py", text)
        # UTF-16: 😀 is units 9-10; column 10 falls between its two halves.
        answer = await client.text_document_inline_completion_async(inline_params(uri, 0, 10))
        for item in answer.items:
            assert item.range.start == item.range.end == types.Position(line=0, character=11)
        full = await client.text_document_inline_completion_async(inline_params(uri, 0, len(text) + 1))
        assert isinstance(full, types.InlineCompletionList)


async def test_a_model_still_loading_says_so_once_and_never_blocks_typing(repo: Path, tmp_path: Path) -> None:
    """The model file is a FIFO: reading its header waits until the test writes to it, like a load
    that takes minutes. Typing is answered meanwhile; then the (junk) model fails, and says so."""
    fifo = tmp_path / "slow.gguf"
    os.mkfifo(fifo)
    settings = {
        **FAST_SETTINGS,
        "models": {**FAST_SETTINGS["models"], "completion": {"path": str(fifo)}},
        "server": {"debounce_ms": 0},  # the default latency budget: typing does not wait for the load
    }
    async with lsp(repo, caps=INLINE, settings=settings) as (client, recorder):
        uri = open_doc(client, repo / "shop" / "calc.py", "def add(a, b):\n    return a +")
        for character in (13, 14, 15, 16):
            answer = await asyncio.wait_for(
                client.text_document_inline_completion_async(
                    inline_params(uri, 1, character, automatic=True)
                ),
                60,
            )
            assert not answer.items
        loading = [m for m in client.messages if "loading the completion model" in m.message]
        assert len(loading) == 1
        assert len(logged(client, "the model is loading")) == 4

        def release() -> None:
            with open(fifo, "wb") as writer:
                writer.write(b"not a model at all")

        threading.Thread(target=release, daemon=True).start()

        async def refused() -> bool:
            await client.text_document_inline_completion_async(inline_params(uri, 1, 16, automatic=True))
            return any("inline completion is off" in m.message for m in client.messages)

        await wait_until(refused, 60, "the broken model reported")
        assert recorder.model_states == []  # ragls/modelState goes only to clients that declare it


MODEL_STATE = capabilities(experimental={"ragls": {"modelState": True}})
MODEL_STATE.text_document.inline_completion = types.InlineCompletionClientCapabilities()
# Typing does not wait for the model (the default latency budget), and asks at once.
LOADING = {**FAST_SETTINGS, "server": {"debounce_ms": 0}}


async def test_a_client_that_declares_it_is_told_when_the_loading_model_is_ready(repo: Path) -> None:
    """The bundled model takes seconds to load; typing right after opening the file finds it loading:
    ragls/modelState says so once, then says ready, and the same request then gets a suggestion."""
    async with lsp(repo, caps=MODEL_STATE, settings=LOADING) as (client, recorder):
        uri = open_doc(client, repo / "shop" / "calc.py", "def add(a, b):\n    return a +")
        for character in (13, 14):
            params = inline_params(uri, 1, character, automatic=True)
            assert not (await client.text_document_inline_completion_async(params)).items
        assert logged(client, "the model is loading")
        await wait_until(lambda: len(recorder.model_states) == 2, 120, "no second ragls/modelState")
        assert recorder.model_states == [{"role": "completion", "state": "loading"},
                                         {"role": "completion", "state": "ready"}]  # fmt: skip
        params = inline_params(uri, 1, 14, automatic=True)
        again = await client.text_document_inline_completion_async(params)
        assert again.items and again.items[0].insert_text


async def test_a_model_that_fails_to_load_is_reported_failed(repo: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "slow.gguf"
    os.mkfifo(fifo)
    settings = {**LOADING, "models": {**LOADING["models"], "completion": {"path": str(fifo)}}}
    async with lsp(repo, caps=MODEL_STATE, settings=settings) as (client, recorder):
        uri = open_doc(client, repo / "shop" / "calc.py", "def add(a, b):\n    return a +")
        for character in (13, 14, 15):
            params = inline_params(uri, 1, character, automatic=True)
            await client.text_document_inline_completion_async(params)
        assert recorder.model_states == [{"role": "completion", "state": "loading"}]  # once per load
        await asyncio.to_thread(fifo.write_bytes, b"not a model at all")
        await wait_until(lambda: len(recorder.model_states) == 2, 60, "no second ragls/modelState")
        assert recorder.model_states[1] == {"role": "completion", "state": "failed"}
