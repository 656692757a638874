"""The arena through ``ragls serve``: two real models (the bundled SmolLM2 Q4_1 and its Q4_0
re-quantisation) answer and complete blind, the vote reveals the names and is recorded, an
accepted completion is its vote (``ragls.arenaAccept``), and the leaderboard ranks them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lsp_support import FAST_SETTINGS, indexed, lsp, open_doc, request
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from ragls_testing import requantised

NAMES = {"SmolLM2-135M-Instruct.Q4_1", "SmolLM2-135M-Instruct.Q4_0"}


async def test_arena_answers_and_completions_blind_then_votes(repo: Path, tmp_path: Path) -> None:
    votes_file = tmp_path / "votes.jsonl"
    second = requantised(tmp_path)
    arena = {"models": ["chat", str(second)], "votes_file": str(votes_file), "completions": True}
    settings = {**FAST_SETTINGS, "arena": arena}
    async with lsp(repo, settings=settings) as (client, _):
        await indexed(client)
        with pytest.raises(JsonRpcException, match="are the same model"):
            await request(client, "ragls/arena", {"question": "why?", "models": ["chat", "completion"]})
        with pytest.raises(JsonRpcException, match="'question' must be a non-empty string"):
            await request(client, "ragls/arena", {"question": " "})

        shown = await request(client, "ragls/arena", {"question": "how is a discount applied?"}, timeout=300)
        assert set(shown) == {"id", "kind", "question", "a", "b", "context"}  # no names before the vote
        assert shown["kind"] == "answer" and shown["context"]
        with pytest.raises(JsonRpcException, match="choose one of a, b, tie, both_bad"):
            await request(client, "ragls/arenaVote", {"id": shown["id"], "vote": "A!"})
        revealed = await request(client, "ragls/arenaVote", {"id": shown["id"], "vote": "a"})
        assert {revealed["a"], revealed["b"]} == NAMES and revealed["votesFile"] == str(votes_file)
        with pytest.raises(JsonRpcException, match="not yet voted on"):
            await request(client, "ragls/arenaVote", {"id": shown["id"], "vote": "b"})

        source = repo / "shop" / "cart.py"
        uri = open_doc(client, source)
        lines = source.read_text().splitlines()
        position = {"line": len(lines) - 1, "character": len(lines[-1])}
        completions = await request(client, "ragls/arenaCompletion", {"uri": uri, "position": position},
                                    timeout=300)
        assert completions["kind"] == "completion" and completions["question"].startswith("shop/cart.py:")
        accepted = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="ragls.arenaAccept", arguments=[completions["id"], "b"])
        )
        assert {accepted["a"], accepted["b"]} == NAMES

        # Arena mode for inline completions: an invoked trigger gets A and B as two items, each
        # accepted with the command that is its vote (LSP clients run an item's command on accept).
        invoked = types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)
        items = (await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), context=invoked,
            position=types.Position(**position)))).items
        assert items and all(i.command.command == "ragls.arenaAccept" for i in items)
        assert len({i.command.arguments[0] for i in items}) == 1  # one match
        assert [i.command.arguments[1] for i in items] in (["a", "b"], ["a"], ["b"])  # empty: left out
        accepted_inline = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=items[-1].command.command, arguments=items[-1].command.arguments))
        assert {accepted_inline["a"], accepted_inline["b"]} == NAMES

        board = await request(client, "ragls/arenaLeaderboard", {})
        completion_board = await request(client, "ragls/arenaLeaderboard", {"kind": "completion"})

    lines = votes_file.read_text().splitlines()
    answer_vote, completion_vote, inline_vote = (json.loads(line) for line in lines)
    assert answer_vote["vote"] == "a" and answer_vote["a"]["model"] == revealed["a"]
    assert (answer_vote["a"]["answer"], answer_vote["b"]["answer"]) == (shown["a"], shown["b"])
    assert completion_vote["kind"] == "completion" and completion_vote["vote"] == "b"
    assert completion_vote["b"] == {"model": accepted["b"], "answer": completions["b"]}
    winner = revealed["a"]
    assert board["votes"] == 1 and board["models"][0]["model"] == winner and board["models"][0]["wins"] == 1
    assert completion_board["votes"] == 2
    chosen = items[-1].command.arguments[1]
    assert inline_vote["kind"] == "completion" and inline_vote["vote"] == chosen
    assert inline_vote[chosen]["answer"] == items[-1].insert_text
