"""The arena: two real models (the bundled SmolLM2 Q4_1 and a Q4_0 re-quantisation of it) answer
one question blind through ``ragls arena``, the vote is taken and recorded, and the leaderboard
ranks the votes; the same model twice is refused, and a broken votes file loses only its broken
lines."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from ragls_testing import requantised
from test_recipes_cli import ragls

from ragls import config
from ragls.llm.gguf import bundled_model_path
from ragls.recipes.arena import ArenaError, contenders, next_pair, parse_vote, read_votes
from ragls.recipes.leaderboard import leaderboard

QUESTION = "how is a discount applied to the cart total?"
BUNDLED = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return requantised(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, repo_factory: Callable[[Path], Path]) -> Path:
    root = repo_factory(tmp_path_factory.mktemp("arena") / "minirepo")
    with (root / ".ragls" / "config.toml").open("a") as f:
        f.write("\n[recipes]\ntemperature = 0.0\nanswer_tokens = 48\n")
    return root


def user_config(text: str, arena: str = "") -> Path:
    """Write the (per-test, isolated) user config file; returns the votes file it names."""
    path = Path(os.environ["RAGLS_CONFIG"])
    votes = path.parent / "votes.jsonl"
    path.write_text(f'{text}\n[arena]\nvotes_file = "{votes}"\n{arena}\n')
    return votes


def test_one_file_under_two_names_or_settings_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(bundled_model_path(), copy)
    user_config('[models.completion]\ntemperature = 0.9\ncontext_length = 512\n')
    cfg = config.load()
    for names in (["chat", "completion"], ["chat", str(bundled_model_path())], ["chat", str(copy)]):
        with pytest.raises(ArenaError, match="are the same model"):
            contenders(cfg, names)
    with pytest.raises(ArenaError, match="two models or more"):
        contenders(cfg, ["chat"])


def test_the_cli_refuses_the_same_model_before_indexing(repo: Path) -> None:
    proc = ragls(repo, "arena", QUESTION, "--models", "chat,completion")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "ragls arena: 'SmolLM2-135M-Instruct.Q4_1' and 'SmolLM2-135M-Instruct.Q4_1' are the same model "
        "(the same file or the same served model; other settings do not make another model): "
        "choose two different models"
    ]


def test_a_bad_vote_is_refused_before_any_model_runs(repo: Path, second_model: Path) -> None:
    proc = ragls(repo, "arena", QUESTION, "--models", f"chat,{second_model}", "--vote", "maybe")
    assert proc.returncode == 2
    assert "vote 'maybe': choose a, b, tie or both-bad" in proc.stderr
    assert parse_vote(" B\n") == "b" and parse_vote("both-bad") == "both_bad" and parse_vote("t") == "tie"


def test_a_requantised_copy_is_another_model(second_model: Path) -> None:
    user_config("")
    found = contenders(config.load(), ["chat", str(second_model)])
    assert [c.name for c in found] == [BUNDLED, "SmolLM2-135M-Instruct.Q4_0"]


def test_the_cli_shows_both_answers_blind_then_takes_the_vote(repo: Path, second_model: Path) -> None:
    votes_file = user_config("", arena=f'models = ["chat", "{second_model}"]')
    proc = ragls(repo, "arena", QUESTION, stdin="maybe\nb\n")
    assert proc.returncode == 0, proc.stderr
    before_vote, revealed = proc.stdout.split("\nA was ")
    assert "── A ──" in before_vote and "── B ──" in before_vote
    assert "Q4_1" not in before_vote and "Q4_0" not in before_vote  # names hidden until the vote
    assert "vote 'maybe': choose a, b, tie or both-bad" in proc.stderr  # asked again
    (record,), broken = read_votes(votes_file)
    assert broken == 0 and record["vote"] == "b" and record["question"] == QUESTION
    assert {record["a"]["model"], record["b"]["model"]} == {BUNDLED, "SmolLM2-135M-Instruct.Q4_0"}
    assert revealed.startswith(f"{record['a']['model']}, B was {record['b']['model']}.")
    for side in ("a", "b"):  # what was shown is what was recorded
        assert (record[side]["answer"].strip() or "(no answer)") in before_vote


def test_a_scripted_vote_and_the_leaderboard(repo: Path, second_model: Path) -> None:
    votes_file = user_config("")
    proc = ragls(repo, "arena", QUESTION, "--models", f"{second_model},chat", "--vote", "tie", "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["vote"] == "tie" and shown["question"] == QUESTION and shown["context"]
    (record,), _ = read_votes(votes_file)
    assert record["a"] == {"model": shown["a_model"], "answer": shown["a"]}
    assert record["b"] == {"model": shown["b_model"], "answer": shown["b"]}

    board = json.loads(ragls(repo, "arena", "--leaderboard", "--json").stdout)
    assert board["votes"] == 1 and board["broken_lines"] == 0 and board["votes_file"] == str(votes_file)
    assert {m["model"] for m in board["models"]} == {BUNDLED, "SmolLM2-135M-Instruct.Q4_0"}
    assert all(m["votes"] == 1 and m["ties"] == 1 and m["win_rate"] == 0.5 for m in board["models"])


def _vote(a: str, b: str, vote: str) -> dict:
    return {"kind": "answer", "question": "q", "a": {"model": a, "answer": ""},
            "b": {"model": b, "answer": ""}, "vote": vote}


def test_a_broken_votes_file_loses_only_its_broken_lines(repo: Path) -> None:
    votes_file = user_config("")
    good = [_vote("x", "y", "a"), _vote("y", "x", "b"), _vote("x", "y", "tie")]
    lines = [json.dumps(good[0]), '{"kind": "answer", "a": {"mod', json.dumps(good[1]), "",
             json.dumps({"vote": "a", "a": {"model": "x"}, "b": {"model": "x"}}), json.dumps(good[2])]
    votes_file.write_text("\n".join(lines) + "\n")
    board = json.loads(ragls(repo, "arena", "--leaderboard", "--json").stdout)
    assert (board["votes"], board["broken_lines"]) == (3, 2)
    assert [(m["model"], m["wins"], m["losses"], m["ties"]) for m in board["models"]] == [
        ("x", 2, 0, 1), ("y", 0, 2, 1)]
    table = ragls(repo, "arena", "--leaderboard")
    assert table.returncode == 0 and "2 broken line(s)" in table.stderr and "x" in table.stdout


def test_bradley_terry_recovers_known_strengths_with_covering_intervals() -> None:
    strengths = {"weak": -1.0, "middling": 0.0, "strong": 1.0}  # natural-log strengths
    rng = random.Random(7)
    votes = []
    for _ in range(900):
        a, b = rng.sample(sorted(strengths), 2)
        wins = 1 / (1 + math.exp(strengths[b] - strengths[a]))
        votes.append(_vote(a, b, "a" if rng.random() < wins else "b"))
    rows = leaderboard(votes)
    assert [r.model for r in rows] == ["strong", "middling", "weak"]
    for row in rows:
        true = 1000 + 400 / math.log(10) * strengths[row.model]
        assert row.low <= true <= row.high, row
        assert row.low < row.score < row.high


def test_ties_are_half_wins_and_a_model_that_won_everything_stays_finite() -> None:
    even = leaderboard([_vote("x", "y", "tie"), _vote("x", "y", "both_bad")])
    assert [round(r.score) for r in even] == [1000, 1000] and {r.win_rate for r in even} == {0.5}
    rows = leaderboard([_vote("x", "y", "a")] * 5)
    assert rows[0].model == "x" and math.isfinite(rows[0].score) and rows[0].win_rate == 1.0


def test_every_pair_of_a_list_gets_its_votes() -> None:
    names = ["p", "q", "r"]
    votes = [_vote("p", "q", "a"), _vote("q", "p", "b"), _vote("r", "p", "tie")]
    assert next_pair(names, votes, random.Random(0)) == ("q", "r")
    assert next_pair(names, [], random.Random(0)) in {("p", "q"), ("p", "r"), ("q", "r")}
