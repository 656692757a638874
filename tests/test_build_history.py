"""The dev-set history builder's message cleaning and commit filtering, on literal strings.

Network-free and git-free: the pure functions that decide which commits become queries and what
a query says. The end-to-end check (a real bare repository) is the last test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.devset.build_history import (  # noqa: E402
    HistoryError,
    build,
    clean_message,
    commits,
    is_source,
    is_trivial,
    main,
    meaningful_words,
    target_path,
    unique_match,
)


def test_trailers_urls_refs_and_prefixes_are_removed() -> None:
    message = (
        "fix(router): keep the trailing slash when a route is mounted (#1234)\n\n"
        "The mount point lost its slash, see https://example.org/issues/1 and GH-77.\n"
        "Closes #1200\n\n"
        "Signed-off-by: A Person <a@example.org>\n"
        "Co-authored-by: B Person <b@example.org>\n"
        "PiperOrigin-RevId: 816164347\n"
    )
    assert clean_message(message) == (
        "keep the trailing slash when a route is mounted The mount point lost its slash, and."
    )


def test_paths_backticks_and_identifiers_from_the_changed_files_are_removed() -> None:
    code = "func parseArgsLenient(args []string) error { return nil }\nvar max_depth = 3\n"
    message = (
        "Parse arguments leniently in parseArgsLenient\n\n"
        "Moved the check from lib/parse/args.go into `parse()` and flag.go; max_depth now bounds "
        "recursion, and SomeOtherName stays because the files never mention it."
    )
    cleaned = clean_message(message, code)
    for gone in ("parseArgsLenient", "lib/parse/args.go", "parse()", "flag.go", "max_depth", "`"):
        assert gone not in cleaned
    assert cleaned.startswith("Parse arguments leniently in")
    assert "SomeOtherName" in cleaned and "now bounds recursion" in cleaned


def test_squashed_bullets_repeating_the_subject_and_chore_lines_are_dropped() -> None:
    message = (
        "Remove leaky cache of rendered rows\n\n* Remove leaky cache of rendered rows\n* Update changelog\n"
    )
    assert clean_message(message) == "Remove leaky cache of rendered rows"


def test_symfony_component_tags_and_markdown_links_are_removed() -> None:
    assert (
        clean_message("[Console] Fix display of Table on Windows OS") == "Fix display of Table on Windows OS"
    )
    cleaned = clean_message("Explain the [retry policy][0] better\n\n[0]: https://example.org/retry")
    assert cleaned == "Explain the retry policy better"


def test_long_messages_are_cut_at_a_word_boundary() -> None:
    cleaned = clean_message("Handle the case " + "where the buffer grows " * 40)
    assert (
        len(cleaned) <= 300
        and not cleaned.endswith(" ")
        and cleaned.split()[-1] in {"where", "the", "buffer", "grows"}
    )


@pytest.mark.parametrize(
    "subject",
    [
        "Bump version to 1.2.3",
        "Release 4.0.0",
        "v1.9.0",
        "Merge branch 'main' into feature",
        'Revert "Add cache"',
        "Fix typo in docs",
        "chore(deps): bump lodash from 4.17.20 to 4.17.21",
        "build(deps-dev): update eslint",
        "style: run gofmt",
        "docs(readme) mention the flag",
        "Update dependencies",
        "[pre-commit.ci] auto fixes from pre-commit.com hooks",
        "Reformat with black",
    ],
)
def test_trivial_commits_are_skipped(subject: str) -> None:
    assert is_trivial(subject + "\n\nbody text")


@pytest.mark.parametrize(
    "subject",
    [
        "Fix race condition when two hooks fire at once",
        "feat(utils): add a kpairs iterator over non-integer keys",
        "Add int16 flag type",
        "Allow leading hyphen in switch values",
    ],
)
def test_real_changes_are_kept(subject: str) -> None:
    assert not is_trivial(subject + "\n\nUpdate changelog")


def test_symfony_linear_pull_request_merges_are_trivial() -> None:
    assert is_trivial("minor #123 [Console] Fix x (someone)\n\nThis PR was merged into the 5.4 branch.")


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("lib/reply.js", True),
        ("include/spdlog/sinks/systemd_sink.h", True),
        ("entry.go", True),
        ("entry_test.go", False),
        ("test/reply.test.js", False),
        ("lib/reply.test.ts", False),
        ("spec/thor/actions_spec.rb", False),
        ("tests/test_fields.py", False),
        ("src/test/java/org/x/FooTest.java", False),
        ("src/main/java/org/x/FooTest.java", False),
        ("docs/index.md", False),
        ("CHANGELOG.md", False),
        ("package-lock.json", False),
        (".github/workflows/ci.yml", False),
        ("vendor/github.com/x/y.go", False),
        ("third_party/zlib/inflate.c", False),
        ("api/service.pb.go", False),
        ("dist/app.min.js", False),
        ("examples/server.js", False),
    ],
)
def test_which_files_count_as_source(path: str, source: bool) -> None:
    assert is_source(path) is source


def test_meaningful_words_ignore_stopwords_and_single_letters() -> None:
    assert meaningful_words("fix it") == 1
    assert meaningful_words("Add a kpairs iterator over non-integer keys") == 6


def test_target_paths_map_upstream_paths_below_the_indexed_folder() -> None:
    spdlog = {"prefix": "include/spdlog"}
    assert target_path(spdlog, "include/spdlog/logger.h") == "include/spdlog/logger.h"
    assert target_path(spdlog, "src/spdlog.cpp") is None
    logrus = {"prefix": "logrus", "upstream_root": ""}
    assert target_path(logrus, "hooks/syslog/syslog.go") == "logrus/hooks/syslog/syslog.go"
    assert unique_match("logrus/entry.go", ["logrus/entry.go", "logrus/hooks/entry.go"])
    assert not unique_match("entry.go", ["logrus/entry.go", "logrus/hooks/entry.go"])


def test_unreadable_history_and_missing_tags_are_reported_not_raised(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="no git directory"):
        commits(tmp_path / "missing", "v1.0.0")
    repo = tmp_path / "work"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "lib.go").write_text("package lib\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "add", "lib.go"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Add the library entry point for parsing"], check=True)
    subprocess.run([*git, "tag", "v0.1.0"], check=True)
    with pytest.raises(HistoryError, match="not in the history"):
        commits(repo / ".git", "v9.9.9")
    [only] = commits(repo / ".git", "v0.1.0")
    assert only.message == "Add the library entry point for parsing" and only.files == ("lib.go",)


def test_web_edit_defaults_generics_and_a_title_said_twice_are_removed() -> None:
    message = (
        "sanitize invalid preloads for workers\n\n"
        "* sanitize invalid preloads for workers now\n* Update transport.js\n"
        "Suppress allocations around Task<T> in the pool"
    )
    cleaned = clean_message(message, "class Task<T> {}")
    assert cleaned == "sanitize invalid preloads for workers now Suppress allocations around Task in the pool"
    assert (
        clean_message("add plugin hooks for startup add plugin hooks for startup")
        == "add plugin hooks for startup"
    )


def test_pull_request_template_headings_and_mentions_are_removed() -> None:
    message = (
        "prevent crash on appearance change\n\n## Description\n\nThanks to @someone for the report.\n"
        "Closes https://example.org/issues/3\n\n## Changes\n\n- copy the bitmap before returning it"
    )
    assert clean_message(message) == (
        "prevent crash on appearance change Thanks to for the report. copy the bitmap before returning it"
    )


def test_repeated_words_count_once_and_issue_words_go_with_their_reference() -> None:
    assert meaningful_words("Add Add Add PR Simplify") == 3
    message = "Fix thread name in async methods (issue #12)\n\nFix thread name in async methods (issue #12)"
    assert clean_message(message) == "Fix thread name in async methods"
    assert clean_message("Add the shims and note the PR# in docs") == "Add the shims and note the PR in docs"


def test_build_keeps_commits_whose_files_all_exist_in_the_artifact(tmp_path: Path, monkeypatch) -> None:
    """A real git history and a cached artifact: the filters and the newest-first sample, end to end."""
    monkeypatch.setenv("RAGLS_BENCH_CACHE", str(tmp_path / "cache"))
    artifact = tmp_path / "cache" / "src" / "pypi" / "demo-1.0" / "demo-1.0" / "src" / "demo"
    artifact.mkdir(parents=True)
    for name in ("core.py", "io.py"):
        (artifact / name).write_text("def parse_input(data):\n    return data\n")
    repo = tmp_path / "upstream"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]

    def commit(files: dict[str, str], message: str) -> None:
        for path, text in files.items():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(text)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", message], check=True)

    commit(
        {"src/demo/core.py": "def parse_input(data):\n    return data\n"},
        "Add the core parser for input records",
    )
    commit(
        {"src/demo/io.py": "x = 1\n", "tests/test_io.py": "x = 2\n"},
        "Read input records from a stream lazily",
    )
    commit({"setup.py": "x\n", "src/demo/core.py": "y\n"}, "Move packaging metadata next to the core module")
    commit({"src/demo/core.py": "z\n"}, "Fix typo in the core parser docstring")
    commit(
        {"src/demo/core.py": "def parse_input(data):\n    return data[:]\n"},
        "Speed up parse_input on long records by avoiding copies",
    )
    subprocess.run([*git, "tag", "v1.0"], check=True)
    entry = {
        "name": "demo",
        "registry": "pypi",
        "package": "demo",
        "version": "1.0",
        "root": "src/demo",
        "prefix": "src/demo",
        "tag": "v1.0",
    }
    built = build(entry, repo / ".git", sample=5)
    # Newest first; setup.py lies outside the artifact's root, the typo fix is trivial, and the
    # last query lost its quoted identifier but kept enough words.
    assert [(i["query"], i["relevant"]) for i in built.items] == [
        ("Speed up on long records by avoiding copies", ["src/demo/core.py"]),
        ("Read input records from a stream lazily", ["src/demo/io.py"]),
        ("Add the core parser for input records", ["src/demo/core.py"]),
    ]
    assert {i["category"] for i in built.items} == {"history"} and built.dropped_targets == 0


def test_a_repository_without_readable_history_is_skipped_with_one_line(tmp_path: Path, capsys) -> None:
    assert main(["--mirrors", str(tmp_path), "--repos", "thor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("thor: skipped, no git directory at ") and out.count("\n") == 1
