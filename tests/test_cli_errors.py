"""Every mistake a user can make on the command line ends in one line and a non-zero exit.

The walk reads the real argparse parser, so a new command or option is covered the day it is
added: each option is classified by its type (numbers, choices, folders) or listed below; an
option or positional nobody classified fails the walk instead of being skipped.
"""

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ragls_testing import write_tree

from ragls import __version__, cli
from ragls.cli import arguments
from ragls.cli import index as index_commands

# A valid value for each positional argument, so that the one bad thing in a call is the tested one.
POSITIONALS = {
    "query": "cart total",
    "question": "how is the cart total computed?",
    "name": "explain",
    "target": "shop/cart.py:1",
    "position": "shop/cart.py:1:1",
    "path": "{root}",
}
# A valid value for each required option (the tested option, given after it, overrides it).
REQUIRED_OPTIONS = {"--role": "completion"}
# Free-text options: any value is a valid one.
FREE_TEXT = {"--question", "--first", "--repository", "--branch", "--models"}
# Text options with a format, and a value that breaks it.
BAD_TEXT = {"--settings": "{not json", "--tcp": "no-port-here", "--store": "not-a-dsn", "--vote": "maybe"}
# Commands that do not stop on a bad user config file, and why.
CONFIG_EXEMPT = {
    "serve": "reads each workspace's config when an editor opens it and tells the editor",
    "doctor": "reports the configuration error as one of its checks (test_doctor_reports_bad_configuration)",
    "recipes": "lists recipe files; it reads no setting",
}


def leaves(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaves(sub, (*prefix, name))
            return
    yield prefix, parser


COMMANDS = list(leaves(cli.build_parser()))
CONFIGURED = [(words, parser) for words, parser in COMMANDS if words[0] not in CONFIG_EXEMPT]


def positionals(parser: argparse.ArgumentParser, root: Path, **given: str) -> list[str]:
    """Valid values for the command's positional arguments, but for those ``given``, and for its
    required options."""
    values = []
    for action in parser._actions:
        if action.required and action.option_strings:
            name = action.option_strings[-1]
            assert name in REQUIRED_OPTIONS, f"tests/test_cli_errors.py: add a valid {name}"
            values += [name, REQUIRED_OPTIONS[name]]
        elif not action.option_strings:
            assert action.dest in POSITIONALS, f"tests/test_cli_errors.py: add a valid {action.dest!r}"
            values.append(given.get(action.dest, POSITIONALS[action.dest].format(root=root)))
    return values


def bad_values(action: argparse.Action, tmp: Path) -> list[str]:
    """Values the option must refuse in one line (empty: nothing can be wrong with it)."""
    if action.nargs == 0 or action.option_strings == ["-h", "--help"]:
        return []
    if action.choices:
        return ["bogus"]
    if action.type is arguments.positive:
        return ["-3", "0", "many"]
    if action.type is arguments.non_negative:
        return ["-1", "many"]
    if action.type is arguments.folder:
        return [str(tmp / "missing"), str(tmp / "a-file.txt")]
    name = action.option_strings[-1]
    if name in BAD_TEXT:
        return [BAD_TEXT[name]]
    assert name in FREE_TEXT and action.type is None, f"tests/test_cli_errors.py: classify option {name}"
    return []


def ragls(*args: str, config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragls.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "400", "RAGLS_CONFIG": str(config)},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def assert_one_line(proc: subprocess.CompletedProcess[str], *names: str) -> None:
    said = f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "Traceback" not in proc.stderr, said
    assert proc.returncode != 0, said
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, said
    assert any(name in lines[0] for name in names), said


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tree(
        tmp_path_factory.mktemp("cli-errors") / "ws",
        {"shop/cart.py": "def total(items):\n    return sum(items)\n"},
    )
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "a-file.txt").write_text("not a folder\n")
    return root


@pytest.mark.parametrize(("words", "parser"), COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_bad_arguments_get_one_line(
    words: tuple[str, ...], parser: argparse.ArgumentParser, workspace: Path, tmp_path: Path
) -> None:
    config = tmp_path / "none.toml"
    walked = 0
    for action in parser._actions:
        for value in bad_values(action, workspace) if action.option_strings else []:
            proc = ragls(
                *words,
                *positionals(parser, workspace),
                action.option_strings[-1],
                value,
                config=config,
                cwd=workspace,
            )
            assert_one_line(proc, action.option_strings[-1], action.dest)
            walked += 1
    for action in parser._actions:  # a bad folder given as a positional
        if not action.option_strings and action.type is arguments.folder:
            for value in bad_values(action, workspace):
                args = positionals(parser, workspace, **{action.dest: value})
                assert_one_line(ragls(*words, *args, config=config, cwd=workspace), action.dest)
                walked += 1
    if words != ("serve",):  # serve's only options are flags and --tcp
        assert walked, f"ragls {' '.join(words)}: no bad argument was tried"


@pytest.mark.parametrize(("words", "parser"), CONFIGURED, ids=[" ".join(w) for w, _ in CONFIGURED])
@pytest.mark.parametrize(
    "text", ["[index]\nlines_per_chunk = 0\n", "[search]\ntop_k = -3\n", '[privacy]\nmode = "open"\n']
)
def test_bad_configuration_gets_one_line(
    words: tuple[str, ...], parser: argparse.ArgumentParser, text: str, workspace: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    proc = ragls(*words, *positionals(parser, workspace), config=config, cwd=workspace)
    key = text.split("\n")[1].split(" =")[0]
    assert_one_line(proc, key)
    assert str(config) in proc.stderr  # names the file to change, too


def test_doctor_reports_bad_configuration(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[index]\nlines_per_chunk = 0\n")
    proc = ragls("doctor", "--root", str(workspace), config=config, cwd=workspace)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "'index.lines_per_chunk' must be greater than 0, got 0" in proc.stdout


REFUSING = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
MODEL_PROBLEMS = {
    "privacy refusal": (
        '[models.chat]\nprovider = "openai"\nmodel = "gpt-x"\n'
        '[models.completion]\nprovider = "openai"\nmodel = "gpt-x"\n',
        "privacy.mode",
    ),
    "model file that will not load": (
        '[models.chat]\nprovider = "llama_cpp"\npath = "{bad}"\n'
        '[models.completion]\nprovider = "llama_cpp"\npath = "{bad}"\n',
        "{bad}",
    ),
    "endpoint that refuses": (
        '[privacy]\nmode = "standard"\n'
        '[models.chat]\nprovider = "openai"\nmodel = "x"\nbase_url = "{refusing}"\nmax_retries = 0\n'
        '[models.completion]\nprovider = "openai"\nmodel = "x"\nbase_url = "{refusing}"\nmax_retries = 0\n',
        "base_url",
    ),
}


@pytest.mark.parametrize("problem", MODEL_PROBLEMS)
@pytest.mark.parametrize(
    "words",
    [
        ("ask", "how is the cart total computed?"),
        ("recipe", "explain", "shop/cart.py:1"),
        ("complete", "shop/cart.py:2:5"),
    ],
    ids=["ask", "recipe", "complete"],
)
def test_model_problems_get_one_line(
    problem: str, words: tuple[str, ...], workspace: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model at all" * 100)
    text, named = MODEL_PROBLEMS[problem]
    config = tmp_path / "config.toml"
    config.write_text(text.format(bad=bad, refusing=REFUSING) + "[index]\nembeddings = false\n")
    assert_one_line(ragls(*words, config=config, cwd=workspace), named.format(bad=bad))


def test_settings_with_a_bad_number_get_one_line(workspace: Path, tmp_path: Path) -> None:
    proc = ragls(
        "index",
        str(workspace),
        "--settings",
        '{"index": {"lines_per_chunk": 0}}',
        config=tmp_path / "none",
        cwd=workspace,
    )
    assert_one_line(proc, "--settings")
    assert "'index.lines_per_chunk' must be greater than 0, got 0" in proc.stderr


def test_a_bug_prints_its_traceback_and_names_the_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], workspace: Path
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("an unexpected state")

    monkeypatch.setattr(index_commands, "_status", broken)
    assert cli.main(["status", "--root", str(workspace)]) == 70
    said = capsys.readouterr().err
    log = cli.crash_log()
    assert "Traceback" in said and "RuntimeError: an unexpected state" in said
    assert (
        said.strip().splitlines()[-1]
        == f"ragls status: internal error, a bug in ragls; the traceback above is also in {log}"
    )
    kept = log.read_text()
    assert kept.splitlines()[0].endswith(f"ragls {__version__} status")  # the command, not its arguments
    assert "RuntimeError: an unexpected state" in kept and str(workspace) not in kept
