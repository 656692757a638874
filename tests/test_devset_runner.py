"""The dev-set runner: docstring -> definition labels, the blanked copy that is indexed, the
tables grouped by half, category and language, and the child process that runs an earlier commit.

Network-free and model-free: docstrings come from small literal files, the tables from
fabricated outcomes; the child imports a commit of this checkout's own history.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# benchmarks/ is a top-level folder of the checkout, not part of the installed distribution.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import past  # noqa: E402
from benchmarks.corpora import Package, QualityCorpus  # noqa: E402
from benchmarks.devset import docstrings  # noqa: E402
from benchmarks.devset.__main__ import (  # noqa: E402
    BEFORE,
    NOW,
    PAST,
    TIERS,
    category_table,
    language_table,
    quality_table,
    speed_table,
    systems,
    tier_table,
)
from benchmarks.metrics import QueryScore, Target  # noqa: E402
from benchmarks.semble_quality import BASELINE, CorpusRun, Outcome, Query, TargetCounts, _tiers_used  # noqa: E402

PYTHON = b'''"""Module docstring that belongs to no definition and is never a label."""


class Registry:
    """Keep every schema class by name so nested fields can find it later."""

    @classmethod
    def get_class(cls, name):
        """Retrieve a class from the registry by its full or short name.

        :param name: the name
        """
        return name


def short():
    """Too short to ask for."""


def one_line(): """An inline docstring shares its line with code and cannot be blanked."""
'''

GO = b"""package flags

// ParseAll parses flag definitions from the argument list, calling fn for each flag.
// It stops at the first error.
func (f *FlagSet) ParseAll(arguments []string, fn func(*Flag) error) error {
	return nil
}

// Flag represents the state of a flag as the FlagSet knows it.
type Flag struct {
	Name string
}

var x = 1 // a trailing comment above nothing worth a label at all
func helper() {}
"""

RUST = b"""//! Inner documentation of the crate, which describes the module and not the item below.
/// Returns an iterator adaptor that groups consecutive elements by a `key` function.
///
/// # Examples
/// ```
/// let groups = data.group_by(|x| x);
/// ```
#[inline]
pub fn group_by<K>(self) -> GroupBy<K> {
    todo!()
}
"""

JAVA = b"""package org.example;

class Proxies {
  /**
   * Creates a proxy object that forwards every call to the {@link Handler} it is given.
   *
   * @param handler receives the calls
   */
  @Override
  public Object createProxy(Handler handler) {
    return null;
  }
}
"""

RUBY = b"""# Turns the arguments of a command line into a hash of options and leftovers.
class Options
  # Parses the given arguments and returns the ones no option consumed.
  def parse(args)
    args
  end
end
"""

CPP = b"""/**
 * Writes the formatted message to every sink registered with the logger.
 */
template <typename T>
void log_it(const T &msg, int level) {}
"""


def _by_name(path: str, data: bytes) -> dict[str, docstrings.Doc]:
    return {d.name: d for d in docstrings.extract(path, data)}


def test_python_docstrings_become_queries_with_their_definition_spans() -> None:
    docs = _by_name("registry.py", PYTHON)
    assert set(docs) == {"Registry", "get_class"}  # short and inline docstrings make no label
    cls, method = docs["Registry"], docs["get_class"]
    assert cls.query == "Keep every schema class by name so nested fields can find it later."
    assert (cls.doc_rows, cls.span) == ((4, 4), (4, 13))
    # first paragraph only, without the parameter field; the span starts at the decorator
    assert method.query == "Retrieve a class from the registry by its full or short name."
    assert (method.doc_rows, method.span) == ((8, 11), (7, 13))


def test_go_doc_comments_lose_the_definitions_own_name() -> None:
    docs = _by_name("flag.go", GO)
    assert set(docs) == {"ParseAll", "Flag"}
    parse_all = docs["ParseAll"]
    # "ParseAll parses ..." asks without the name; the sentence is long enough on its own
    assert parse_all.query == "Parses flag definitions from the argument list, calling fn for each flag."
    assert (parse_all.doc_rows, parse_all.span) == ((2, 3), (5, 7))
    assert docs["Flag"].query == "Represents the state of a flag as the FlagSet knows it."
    assert docs["Flag"].span == (10, 12)


def test_rust_java_ruby_and_cpp_doc_comments() -> None:
    rust = _by_name("lib.rs", RUST)["group_by"]
    # the inner doc above is not part of the item's comment; the attribute sits between
    assert rust.query == "Returns an iterator adaptor that groups consecutive elements by a key function."
    assert rust.doc_rows == (1, 6) and rust.span == (9, 11)
    java = _by_name("Proxies.java", JAVA)["createProxy"]
    assert java.query == "Creates a proxy object that forwards every call to the Handler it is given."
    assert java.doc_rows == (3, 7) and java.span == (9, 12)
    ruby = _by_name("options.rb", RUBY)
    assert (
        ruby["Options"].query == "Turns the arguments of a command line into a hash of options and leftovers."
    )
    assert ruby["parse"].query == "Parses the given arguments and returns the ones no option consumed."
    assert ruby["parse"].doc_rows == (2, 2) and ruby["parse"].span == (4, 6)
    cpp = _by_name("log.hpp", CPP)["log_it"]
    assert cpp.query == "Writes the formatted message to every sink registered with the logger."
    assert cpp.doc_rows == (0, 2) and cpp.span == (4, 5)


def test_cleaning_drops_markup_tags_names_and_legal_text() -> None:
    clean = docstrings.clean
    assert clean('/// <summary>Sends the <see cref="Request"/> to the server and waits.</summary>', []) == (
        "Sends the Request to the server and waits."
    )
    assert clean("# Call `Foo.bar()` to flush every **pending** write to_disk now.", ["bar"]) == (
        "Call to flush every pending write to_disk now."
    )
    assert clean("// Copyright 2020 The Authors. Licensed under the MIT license, see LICENSE.", []) is None
    assert clean("# Too few words here.", []) is None
    long = "# " + " ".join(["word"] * 60)
    assert len(clean(long, []).split()) == docstrings.MAX_WORDS  # type: ignore[union-attr]


def test_blanking_empties_the_doc_lines_and_keeps_every_line_number() -> None:
    doc = _by_name("flag.go", GO)["ParseAll"]
    blanked = docstrings.blank(GO, [doc.doc_rows])
    before, after = GO.split(b"\n"), blanked.split(b"\n")
    assert len(after) == len(before)
    assert after[2] == after[3] == b""
    assert [line for i, line in enumerate(after) if i not in (2, 3)] == [
        line for i, line in enumerate(before) if i not in (2, 3)
    ]
    assert "ParseAll" not in _by_name("flag.go", blanked)  # nothing left to find the words in
    crlf = docstrings.blank(b"a\r\n// doc\r\nb\r\n", [(1, 1)])
    assert crlf == b"a\r\n\r\nb\r\n"


def test_the_sample_is_seeded_skips_tests_and_shared_docs_and_the_copy_is_blanked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGLS_BENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "flag.go").write_bytes(GO)
    (root / "pkg" / "flag_test.go").write_bytes(GO.replace(b"ParseAll", b"ParseAllTest"))
    (root / "options.rb").write_bytes(RUBY)
    (root / "copy.rb").write_bytes(RUBY.replace(b"class Options", b"class Other"))  # same docs twice
    (root / "log.hpp").write_bytes(CPP)
    (root / "linked.go").symlink_to(root / "pkg" / "flag.go")  # not a second copy of its docs
    picked = docstrings.pick(root, "repo", n=3)
    assert picked == docstrings.pick(root, "repo", n=3)  # deterministic
    # tests, links and docs two definitions share are left out
    assert {(d.path, d.name) for d in picked} == {
        ("pkg/flag.go", "ParseAll"),
        ("pkg/flag.go", "Flag"),
        ("log.hpp", "log_it"),
    }
    assert len(docstrings.pick(root, "repo", n=2)) == 2
    labels = docstrings.labels("repo", picked, lambda path: "up/" + path)
    assert {q.category for q in labels} == {"docstring"}
    assert [q.targets[0] for q in labels] == [Target("up/" + d.path, *d.span) for d in picked]
    copy = docstrings.blanked_copy(root, picked, "repo-1.0")
    assert copy != root and docstrings.blanked_copy(root, picked, "repo-1.0") == copy
    for d in picked:
        original = (root / d.path).read_bytes().split(b"\n")
        blanked = (copy / d.path).read_bytes().split(b"\n")
        assert len(blanked) == len(original)
        assert all(blanked[r] == b"" for r in range(d.doc_rows[0], d.doc_rows[1] + 1))
    assert (copy / "options.rb").read_bytes() == RUBY  # files without a sampled doc are unchanged


# --- tables on fabricated outcomes ----------------------------------------------------------


def _run(name: str, language: str, split: str, scores: dict[tuple[str, str], float]) -> CorpusRun:
    """A repository whose query ``(category, system)`` scored as given (one query per category)."""
    corpus = QualityCorpus(name, Package("pypi", name, "1"), "src", language=language, split=split)
    run = CorpusRun(corpus, 3, 10, 1.0, {"static": 2.0}, 0.5, TargetCounts(1, 1, 1))
    for (category, system), ndcg in scores.items():
        query = Query(name, f"{category} query of {name}", category, (Target("src/a.py"),))
        run.outcomes.append(Outcome(query, system, QueryScore(ndcg, (1,), 1), [], 0.01))
    return run


def _row(table, label: str) -> list[str]:
    return next(row for row in table.rows if row[0] == label)


def _scores(category: str, bm25: float, before: float, now: float) -> dict[tuple[str, str], float]:
    return {(category, BASELINE): bm25, (category, BEFORE): before, (category, NOW): now}


def test_language_and_category_tables_group_by_half_and_say_now_minus_before() -> None:
    runs = [
        _run("a", "go", "report", _scores("symbol", 0.5, 0.6, 0.8) | _scores("history", 0.1, 0.2, 0.3)),
        _run("b", "go", "report", _scores("symbol", 0.3, 0.4, 0.4)),
        _run("c", "ruby", "tune", _scores("docstring", 0.2, 0.5, 0.4)),
        _run("fastapi", "python", "semble", _scores("semantic", 1.0, 1.0, 1.0)),
    ]
    languages = language_table(runs)
    # go: repo a averages (0.6+0.2)/2 = 0.4 before and (0.8+0.3)/2 = 0.55 now; repo b 0.4 and 0.4
    assert _row(languages, "report half: go") == [
        "report half: go",
        "2",
        "3",
        "0.300",
        "0.400",
        "0.475",
        "+0.075",
    ]
    assert _row(languages, "tune half: ruby")[3:] == ["0.200", "0.500", "0.400", "-0.100"]
    assert [row[0] for row in languages.rows] == ["report half: go", "tune half: ruby", "semble's 3: python"]
    categories = category_table(runs)
    # categories found in the data, known order first; queries pooled over the half's repos
    assert [row[0] for row in categories.rows] == [
        "report half: symbol",
        "report half: history",
        "tune half: docstring",
        "semble's 3: semantic",
    ]
    assert _row(categories, "report half: symbol")[1:] == ["2", "0.400", "0.500", "0.600", "+0.100"]
    means = quality_table(runs)
    assert _row(means, "mean, report half (2 repos)")[4:] == ["0.300", "0.400", "0.475", "+0.075"]


def test_the_tier_table_covers_both_halves_per_language_and_leaves_out_tiers_not_built() -> None:
    static, contextual, both, none = (system for system, _ in TIERS)
    runs = [
        _run("a", "go", "report", {("symbol", static): 0.6, ("symbol", none): 0.4}),
        _run("b", "go", "tune", {("symbol", static): 0.8, ("symbol", none): 0.2}),
    ]
    table = tier_table(runs)
    assert table.columns == ["scope", "repos", "queries", "static", "none"]
    assert _row(table, "dev set: go")[1:] == ["2", "2", "0.700", "0.300"]
    assert _row(table, "dev set, both halves (2 repos)")[1:] == ["2", "2", "0.700", "0.300"]
    runs[0].outcomes.append(Outcome(runs[0].outcomes[0].query, contextual, QueryScore(0.9, (1,), 1), [], 0.0))
    runs[0].outcomes.append(Outcome(runs[0].outcomes[0].query, both, QueryScore(1.0, (1,), 1), [], 0.0))
    assert tier_table(runs).columns == ["scope", "repos", "queries", "static", "contextual", "both", "none"]


def test_the_speed_table_reports_p95_and_ratios_to_the_baseline_and_to_before() -> None:
    run = _run("a", "go", "report", {})
    query = Query("a", "q", "symbol", (Target("src/a.py"),))
    for system, times in ((BASELINE, [0.001] * 19 + [0.002]), (NOW, [0.004] * 19 + [0.010])):
        run.outcomes += [Outcome(query, system, QueryScore(1.0, (1,), 1), [], t) for t in times]
    earlier = _run("a", "go", "report", {})
    earlier.keyword_seconds, earlier.tier_seconds = 3.0, {"static": 3.0}
    row = speed_table([run], {"a": earlier}).rows[0]
    columns = speed_table([run], {}).columns
    cell = dict(zip(columns, row, strict=True))
    assert cell["ragls now index"] == "3.0 s" and cell["ragls before index"] == "6.0 s"
    assert cell["now / BM25"] == "×6.00" and cell["now / before"] == "×0.50"
    assert cell["p95 BM25"] == "1.00 ms" and cell["p95 now"] == "4.00 ms"  # 19 of 20 samples at or under
    assert cell["now / BM25 p50"] == "×4.00"
    assert speed_table([run], {}).rows[0][columns.index("ragls before index")] == "—"


def test_the_run_embeds_the_contextual_tier_only_when_asked() -> None:
    assert _tiers_used(systems(no_contextual=True)) == {"static"}
    assert _tiers_used(systems(no_contextual=False)) is None  # "both" searches every enabled tier
    assert NOW in systems(no_contextual=True) and BASELINE in systems(no_contextual=True)


def test_a_child_with_the_past_environment_imports_the_earlier_commits_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``ragls before`` rests on: the child's ``ragls`` is the staged commit, not this tree,
    even when the child starts in this checkout (whose own ``ragls/`` would otherwise win)."""
    monkeypatch.setenv("RAGLS_BENCH_CACHE", str(tmp_path / "cache"))
    try:
        past.resolve(PAST)
    except RuntimeError as exc:  # a shallow clone has no history to stage from
        pytest.skip(str(exc))
    staged = past.stage(PAST)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ragls.indexer.search as s, benchmarks; print(s.__file__); print(benchmarks.__file__)",
        ],
        env=past.environment(PAST),
        cwd=past.REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    search_file, benchmarks_file = proc.stdout.split()
    assert Path(search_file).is_relative_to(staged)
    assert Path(benchmarks_file).is_relative_to(past.REPO / "benchmarks")
    assert (staged / "ragls" / "indexer" / "search.py").read_bytes() == subprocess.run(
        ["git", "-C", str(past.REPO), "show", f"{PAST}:indexer/search.py"], capture_output=True, check=True
    ).stdout


def test_missing_annotations_stop_the_run_before_any_indexing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """semble's files live beside the checkout; from elsewhere the run says so up front."""
    from benchmarks.devset.__main__ import main

    monkeypatch.setenv("RAGLS_SEMBLE_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("RAGLS_BENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit, match="annotations missing.*nowhere/annotations/fastapi.json"):
        main(["--repos", "pflag,fastapi"])
    assert not (tmp_path / "cache" / "indexes").exists()
