"""The replay benchmark's sessions: finding added blocks in history, the "before" file, the keys."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.replay import runner as replay
from benchmarks.replay import score
from benchmarks.replay.build import additions, candidates, release_commit
from benchmarks.replay.sessions import Session, block_sha1, dump, edit_for, find_block, keystrokes, load
from benchmarks.replay.typist import Key

MINIREPO = Path(__file__).parent / "fixtures" / "minirepo"

TEXT = "def a():\n    return 1\n\n\ndef b():\n    x = 2\n    return x\n"


def test_find_block_matches_whole_consecutive_lines_only() -> None:
    lines = ["x = 1", "y = 2", "x = 1", "y = 2", "x = 10"]
    assert find_block(lines, ["x = 1", "y = 2"]) == [0, 2]
    assert find_block(lines, ["x = 1"]) == [0, 2]  # "x = 10" is not "x = 1"
    assert find_block(lines, ["y = 2", "x = 10"]) == [3]
    assert find_block(lines, ["y = 2", "z"]) == []
    assert find_block(lines, []) == []


def test_the_before_file_lacks_the_block_and_typing_it_back_gives_the_file() -> None:
    edit = edit_for(TEXT, 6, 6)  # "    x = 2"
    assert edit.before == "def a():\n    return 1\n\n\ndef b():\n    return x\n"
    assert edit.before[: edit.offset] == "def a():\n    return 1\n\n\ndef b():"
    assert edit.typed == "\n    x = 2"
    assert edit.before[: edit.offset] + edit.typed + edit.before[edit.offset :] == TEXT


def test_a_block_on_the_first_line_is_typed_at_the_start() -> None:
    edit = edit_for(TEXT, 1, 2)
    assert (edit.offset, edit.typed) == (0, "def a():\n    return 1\n")
    assert edit.before == "\n\ndef b():\n    x = 2\n    return x\n"


def test_the_last_line_of_a_file_without_a_final_newline() -> None:
    text = "a = 1\nb = 2"
    edit = edit_for(text, 2, 2)
    assert (edit.before, edit.offset, edit.typed) == ("a = 1", 5, "\nb = 2")


@pytest.mark.parametrize(("start", "end"), [(0, 1), (3, 2), (8, 8), (1, 8)])
def test_lines_outside_the_text_are_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        edit_for(TEXT, start, end)


def test_the_whole_file_as_a_block_without_a_final_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="no file"):
        edit_for("a = 1\nb = 2", 1, 2)


def test_enter_brings_the_next_lines_indentation() -> None:
    assert keystrokes("\n    x = 1\n\n\tif") == ["\n    ", "x", " ", "=", " ", "1", "\n", "\n\t", "i", "f"]
    assert "".join(keystrokes("\n  a\n  b")) == "\n  a\n  b"


def test_descriptors_round_trip(tmp_path: Path) -> None:
    sessions = [Session("r", "python", "a.py", 3, 4, "c" * 40, block_sha1(["x", "y"]))]
    dump(sessions, tmp_path / "s.json")
    assert load(tmp_path / "s.json") == sessions


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD").strip()


def test_sessions_come_from_pure_additions_that_survive_in_the_artifact(tmp_path: Path) -> None:
    up = tmp_path / "upstream"
    up.mkdir()
    _git(up, "init", "-q")
    _commit(up, {"lib/m.py": "def a():\n    return 1\n", "lib/n.py": "x = 1\n"}, "start")
    added = _commit(up, {"lib/m.py": "def a():\n    value = compute()\n    return 1\n"}, "add a line")
    _commit(
        up, {"lib/m.py": "def a():\n    value = compute()\n    return 2\n"}, "change a line"
    )  # no pure add
    _commit(up, {"lib/n.py": "x = 1\ny = 'not in the artifact'\n"}, "added, later removed")
    _commit(up, {"lib/new.py": "created = 'a whole new file'\n"}, "a new file is not an addition to one")
    _commit(up, {"docs/m.py": "def a():\n    return 1\n# outside the artifact's folder\n"}, "docs")
    _git(up, "tag", "v1.0.0")
    _commit(
        up,
        {"lib/m.py": "def a():\n    value = compute()\n    after = 'the release'\n    return 2\n"},
        "later",
    )
    git_dir = up / ".git"
    assert release_commit(git_dir, "1.0.0-1") == _git(up, "rev-parse", "v1.0.0").strip()
    assert release_commit(git_dir, "9.9.9") == _git(up, "rev-parse", "HEAD").strip()
    found = list(additions(git_dir, "v1.0.0", "lib"))
    assert [(a.path, a.lines) for a in found] == [
        ("lib/n.py", ["y = 'not in the artifact'"]),
        ("lib/m.py", ["    value = compute()"]),
    ]

    artifact = tmp_path / "artifact"  # the registry's copy of lib/, as released
    (artifact).mkdir()
    (artifact / "m.py").write_text("def a():\n    value = compute()\n    return 2\n")
    (artifact / "n.py").write_text("x = 1\n")
    entry = {"name": "demo", "language": "python", "version": "1.0.0", "prefix": "lib", "upstream": "o/demo"}
    rev, sessions = candidates(entry, artifact, git_dir)
    assert sessions == [Session("demo", "python", "m.py", 2, 2, added, block_sha1(["    value = compute()"]))]


# -- scoring what was shown -------------------------------------------------------------------


def _keys(*spec: tuple[str, str, str]) -> list[Key]:
    """(key text, status, item) triples."""
    return [
        Key(text, False, status, 10.0 if status in ("item", "empty") else None, item)
        for text, status, item in spec
    ]


def test_a_suggestion_stays_while_typed_through_and_goes_on_a_mismatch() -> None:
    keys = _keys(
        ("\n    ", "item", "return x"), ("r", "superseded", ""), ("e", "empty", ""), ("X", "superseded", "")
    )
    assert score.ghosts(keys) == ["return x", "eturn x", "turn x", None]


def test_line_starts_compare_the_first_shown_line_with_the_authors_line() -> None:
    keys = _keys(
        ("\n  ", "item", "a = 1\n  b"), *[(c, "superseded", "") for c in "a = 2"], ("\n  ", "empty", "")
    )
    keys += _keys(*[(c, "superseded", "") for c in "zz"])
    starts = score.line_starts(keys)
    assert [(s.wanted, s.shown) for s in starts] == [("a = 2", "a = 1"), ("zz", "")]
    assert [s.exact for s in starts] == [False, False]
    assert starts[0].similarity == pytest.approx(0.8) and starts[1].similarity == 0.0
    assert score.LineStart("x = 1", "x = 1  ").exact
    assert score.levenshtein("kitten", "sitting") == 3


def test_acceptable_keys_need_a_suggestion_that_is_exactly_what_comes_next() -> None:
    # "ab\n  cd": after "a" the suggestion is "b" (one key, nothing saved), after Enter "cd  " (1 saved)
    keys = _keys(
        ("a", "item", "b"),
        ("b", "superseded", ""),
        ("\n  ", "item", "cd  "),
        ("c", "empty", ""),
        ("d", "empty", ""),
    )
    assert score.accepted_keys(keys) == 1
    wrong = _keys(
        ("a", "item", "bX"),
        ("b", "empty", ""),
        ("\n  ", "item", "ce"),
        ("c", "empty", ""),
        ("d", "empty", ""),
    )
    assert score.accepted_keys(wrong) == 0
    whole = _keys(
        ("a", "item", "b\n  cd"),
        ("b", "empty", ""),
        ("\n  ", "empty", ""),
        ("c", "empty", ""),
        ("d", "empty", ""),
    )
    assert score.accepted_keys(whole) == 3  # one Tab for the four keys left


def test_runs_cut_short_are_scored_on_the_sessions_every_config_finished() -> None:
    one, two, three = (Session("r", "go", "a.go", n, n, "0" * 40, "s") for n in (1, 2, 3))
    key = [Key("x", True, "item", 5.0, "y")]
    done = ((one, "b"), (two, "b"), (one, "c"), (two, "c"), (three, "c"))  # b was cut short
    runs = [replay.Replayed(s, config, key, 1.0) for s, config in done]
    kept = [(r.session.start, r.config) for r in replay.paired(runs)]
    assert kept == [(1, "b"), (2, "b"), (1, "c"), (2, "c")]
    assert replay.paired(runs[2:]) == runs[2:]  # one config: every session it finished


# -- the replay against the real server -------------------------------------------------------


def _session(root: Path, path: str, start: int, end: int) -> Session:
    lines = (root / path).read_text().split("\n")[start - 1 : end]
    return Session("minirepo", "python", path, start, end, "0" * 40, block_sha1(lines))


def test_two_sessions_replayed_against_the_real_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One server types both sessions (the second in another file, after the first is restored);
    every key gets an outcome, and the tables count what happened."""
    monkeypatch.setenv("RAGLS_BENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "artifact"
    shutil.copytree(MINIREPO, root)
    sessions = [_session(root, "shop/cart.py", 14, 14), _session(root, "shop/web/router.py", 23, 23)]
    # the file-only configuration (the switch reaches the server); no dense tier: completion does not
    # read it, and the test need not distil the static model
    configs = [
        replay.Config(
            "a", "file only", None, {**replay.CONFIGS["a"].settings, "index": {"embeddings": False}}
        )
    ]
    server_log = tmp_path / "server.log"
    results = replay.replay_repo("minirepo", "python", root, sessions, configs, lambda _: None, server_log)
    logged = server_log.read_text()
    assert logged.startswith("==== minirepo (file only)\n") and f"== {sessions[1].label}\n" in logged
    assert re.search(r"completion at cart\.py:14:\d+: .*prompt tokens", logged)  # what each request read
    assert [(r.config, r.session) for r in results] == [(c.key, s) for c in configs for s in sessions]
    for r in results:
        edit = edit_for((root / r.session.path).read_text(), r.session.start, r.session.end)
        assert "".join(k.text for k in r.keys) == edit.typed
        assert {k.status for k in r.keys} <= {"item", "empty", "superseded", "timeout"}
        assert r.keys[0].status in ("item", "empty")  # the first key is waited for in full
        assert all(k.status != "superseded" for k in r.keys if k.pause)
    work = replay.cache_dir() / "replay" / "a" / "minirepo"
    assert (work / "shop/cart.py").read_text() == (root / "shop/cart.py").read_text()  # restored
    assert (work / "shop/web/router.py").read_text() == edit_for(
        (root / "shop/web/router.py").read_text(), 23, 23
    ).before  # the last session's file is left as it was typed into (before the block)
    replay.dump_keys(results, tmp_path / "keys.json")
    assert [(r.session, r.keys) for r in replay.load_keys(tmp_path / "keys.json")] == [
        (r.session, r.keys) for r in results
    ]
    latency, quality = replay.tables(results, configs)
    assert [row[:4] for row in latency.rows] == [
        ["python", "file only", "2", "35"],
        ["all", "file only", "2", "35"],
    ]
    assert all(row[3] == "2" for row in quality.rows)  # two line starts each: the sessions' Enter keys
