"""An answer's length per request: ``verbosity`` on ``ragls/chat`` over answers.verbosity."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_support import FAST_SETTINGS, indexed, lsp, request
from pygls.exceptions import JsonRpcException

from ragls.recipes.answer import TERSE_TOKENS


async def test_chat_takes_a_verbosity_and_refuses_a_bad_one(repo: Path) -> None:
    settings = {**FAST_SETTINGS, "answers": {"verbosity": "detailed"}}
    async with lsp(repo, settings=settings) as (client, recorder):
        await indexed(client)
        with pytest.raises(JsonRpcException, match="'verbosity' must be 'terse', 'normal' or 'detailed'"):
            await request(client, "ragls/chat", {"question": "How are orders stored?", "verbosity": "loud"})
        started = await request(client, "ragls/chat", {"question": "How are orders stored?",
                                                       "verbosity": "terse"})
        final = await recorder.final(started["chatId"])
    assert final["route"] == "answer" and final["answer"].strip()
    assert recorder.text(started["chatId"]) == final["answer"]  # what streamed is the whole answer
    capped = [n for n in final["notes"] if "reached the cap" in n]
    assert not capped or f"cap of {TERSE_TOKENS} tokens" in capped[0]  # terse: ends with its first sentence
