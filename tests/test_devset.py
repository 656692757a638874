"""The dev set's files are well-formed: manifest, provenance, split, annotation format and counts.

Network-free: the repositories themselves are fetched only by the benchmark.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

# benchmarks/ is a top-level folder of the checkout, not part of the installed distribution.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import devset  # noqa: E402
from benchmarks.corpora import QUALITY_CORPORA, Package, QualityCorpus, fetch  # noqa: E402
from benchmarks.metrics import Target  # noqa: E402
from benchmarks.semble_quality import CATEGORIES, annotations_dir, load_queries  # noqa: E402

MANIFEST_KEYS = {
    "name",
    "language",
    "split",
    "registry",
    "package",
    "version",
    "root",
    "prefix",
    "license",
    "upstream",
    "tag",
}
OPTIONAL_KEYS = {"upstream_root"}  # where the indexed folder is the whole upstream repository: ""
ANNOTATION_KEYS = {"query", "relevant", "secondary", "category"}
REPOS = devset.manifest()
HAND_WRITTEN = [r for r in REPOS if (devset.ANNOTATIONS / f"{r['name']}.json").is_file()]
HAND_CATEGORIES = ("architecture", "semantic", "symbol")


def len_hand(repo: dict) -> int:
    """How many hand-written queries a repository has (0: history labels only)."""
    return len(_annotations(repo["name"])) if repo in HAND_WRITTEN else 0


def _annotations(name: str) -> list[dict]:
    return json.loads((devset.ANNOTATIONS / f"{name}.json").read_text(encoding="utf-8"))


def test_manifest_entries_are_complete_and_pinned() -> None:
    names = [r["name"] for r in REPOS]
    assert len(names) == len(set(names))
    for repo in REPOS:
        assert MANIFEST_KEYS <= set(repo) <= MANIFEST_KEYS | OPTIONAL_KEYS, repo["name"]
        assert all(
            isinstance(v, str) and (v or k in {"root", "prefix", "upstream_root"}) for k, v in repo.items()
        ), repo["name"]
        assert repo["registry"] in {"pypi", "npm", "debian"}
        assert repo["split"] in devset.SPLITS
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+:~-]*", repo["version"]), repo["version"]  # exact, no range
        assert not repo["root"].startswith("/") and ".." not in repo["root"].split("/")


def test_size_languages_and_split() -> None:
    assert len(REPOS) >= 30
    assert len({r["language"] for r in REPOS}) >= 12
    languages = Counter(r["language"] for r in REPOS)
    assert all(languages[lang] >= 2 for lang in ("cpp", "csharp", "java", "ruby", "go")), languages
    for split in devset.SPLITS:
        half = [r for r in REPOS if r["split"] == split]
        assert len(half) >= 6, split
        assert len({r["language"] for r in half}) >= 6, split
    # No repository of the dev set is one of semble's annotated repositories shared in the project.
    assert not {r["name"] for r in REPOS} & {c.name for c in QUALITY_CORPORA}


EXCLUDED = annotations_dir().parent / "excluded-repos.txt"


@pytest.mark.skipif(not EXCLUDED.is_file(), reason="shared/ is not beside the checkout")
def test_no_repository_is_one_of_sembles_benchmark() -> None:
    excluded = {
        line.strip().lower() for line in EXCLUDED.read_text().splitlines() if line.strip() and line[0] != "#"
    }
    assert len(excluded) > 50
    assert not {r["upstream"].lower() for r in REPOS} & excluded


def test_every_repository_has_annotations_and_provenance_in_the_readme() -> None:
    files = {p.stem for p in devset.ANNOTATIONS.glob("*.json")} | {
        p.stem for p in devset.HISTORY.glob("*.json")
    }
    assert files == {r["name"] for r in REPOS}
    readme = (devset.DEVSET_DIR / "README.md").read_text(encoding="utf-8")
    for repo in REPOS:
        row = next((line for line in readme.splitlines() if line.startswith(f"| {repo['name']} |")), None)
        assert row is not None, f"README has no provenance row for {repo['name']}"
        for key in ("package", "version", "registry", "license", "split", "language"):
            assert f" {repo[key]} " in row, (repo["name"], key)
        assert f"`{repo['root']}`" in row, repo["name"]
        # The history labels' provenance: the upstream tag and how many queries came from it.
        history = devset.HISTORY / f"{repo['name']}.json"
        count = len(json.loads(history.read_text(encoding="utf-8"))) if history.is_file() else 0
        assert any(
            line.startswith(f"| {repo['name']} |")
            and line.endswith(f" {repo['tag']} | {len_hand(repo)} | {count} |")
            for line in readme.splitlines()
        ), f"README has no history provenance row for {repo['name']}"


@pytest.mark.parametrize("repo", HAND_WRITTEN, ids=[r["name"] for r in HAND_WRITTEN])
def test_annotations_are_in_sembles_format(repo: dict) -> None:
    items = _annotations(repo["name"])
    assert 15 <= len(items) <= 25
    queries = [item["query"] for item in items]
    assert len(queries) == len(set(queries)), "duplicate query"
    prefix = repo["prefix"].strip("/") + "/" if repo["prefix"] else ""
    for item in items:
        assert set(item) == ANNOTATION_KEYS, item
        assert isinstance(item["query"], str) and item["query"].strip() == item["query"] != ""
        assert item["category"] in HAND_CATEGORIES
        assert item["relevant"], f"no relevant target: {item['query']}"
        targets = [Target.parse(t) for t in [*item["relevant"], *item["secondary"]]]
        assert len(targets) == len(set(targets)), f"target listed twice: {item['query']}"
        for raw, target in zip([*item["relevant"], *item["secondary"]], targets, strict=True):
            if isinstance(raw, dict):
                assert set(raw) == {"path", "start_line", "end_line"}, raw
                assert target.has_span and 1 <= target.start_line <= target.end_line, raw  # type: ignore[operator]
            assert target.path.startswith(prefix) and ".." not in target.path.split("/"), target.path
        # semble's style: 1 to 3 targets; line spans only where a symbol names a definition.
        assert len(targets) <= 3, item["query"]
        if item["category"] != "symbol":
            assert not any(t.has_span for t in targets), item["query"]
    # Loaded through the benchmark's own loader, nothing is lost.
    loaded = load_queries(repo["name"], [devset.ANNOTATIONS / f"{repo['name']}.json"])
    assert [q.text for q in loaded] == queries


HISTORY = [r for r in REPOS if (devset.HISTORY / f"{r['name']}.json").is_file()]


@pytest.mark.parametrize("repo", HISTORY, ids=[r["name"] for r in HISTORY])
def test_history_annotations_are_whole_files_below_the_prefix(repo: dict) -> None:
    """The commit-message queries: 1 to 5 whole-file targets each, cleaned and capped queries."""
    items = json.loads((devset.HISTORY / f"{repo['name']}.json").read_text(encoding="utf-8"))
    assert 1 <= len(items) <= 25
    assert len({item["query"].lower() for item in items}) == len(items), "duplicate query"
    prefix = repo["prefix"].strip("/") + "/" if repo["prefix"] else ""
    for item in items:
        assert set(item) == ANNOTATION_KEYS and item["category"] == "history" in CATEGORIES, item
        assert 0 < len(item["query"]) <= 300 and item["query"].strip() == item["query"]
        assert not re.search(r"https?://|Signed-off-by|#\d+\b|`", item["query"]), item["query"]
        assert 1 <= len(item["relevant"]) <= 5 and item["secondary"] == []
        assert all(isinstance(p, str) and p.startswith(prefix) for p in item["relevant"]), item
    loaded = load_queries(repo["name"], devset.annotation_files(repo["name"]))
    assert [q.text for q in loaded][-len(items) :] == [item["query"] for item in items]


def test_every_category_in_every_repository_and_about_sembles_proportions() -> None:
    total: Counter[str] = Counter()
    for repo in HAND_WRITTEN:
        counts = Counter(item["category"] for item in _annotations(repo["name"]))
        assert set(counts) == set(HAND_CATEGORIES), repo["name"]
        assert all(n >= 4 for n in counts.values()), (repo["name"], counts)
        total.update(counts)
    share = {c: n / sum(total.values()) for c, n in total.items()}
    assert all(0.2 <= s <= 0.5 for s in share.values()), share


def test_corpora_carry_split_prefix_and_annotation_file() -> None:
    report = devset.corpora("report")
    assert {c.split for c in report} == {"report"}
    assert len(devset.corpora()) == len(REPOS)
    by_name = {c.name: c for c in devset.corpora()}
    for repo in REPOS:
        corpus = by_name[repo["name"]]
        assert corpus.annotations and all(p.is_file() for p in corpus.annotations)
        assert corpus.annotations == devset.annotation_files(repo["name"])
        assert corpus.path_prefix == (repo["prefix"].strip("/") + "/" if repo["prefix"] else "")


def test_the_benchmark_runs_report_then_tune_then_sembles_and_rejects_unknown_names() -> None:
    from benchmarks.devset.__main__ import selected

    every = selected(None)
    splits = [c.split for c in every]
    assert splits == sorted(splits, key=["report", "tune", "semble"].index)
    assert [c.name for c in every[-3:]] == [c.name for c in QUALITY_CORPORA]
    assert [c.name for c in selected("thor, express")] == ["thor", "express"]
    with pytest.raises(SystemExit, match="unknown repositories"):
        selected("thor,no-such-repo")


def test_the_benchmark_scores_systems_the_quality_run_knows_and_ranks_as_a_cpu_does() -> None:
    """The dev set measures ragls as a CPU runs it by default (static tier); a renamed system in
    ``benchmarks/ours.py`` must not leave its columns silently empty."""
    from benchmarks import ours
    from benchmarks.devset.__main__ import NOW, TIERS, systems
    from benchmarks.semble_quality import BASELINE

    assert set(systems(no_contextual=False)) == {BASELINE, *(s for s, _ in TIERS)}
    assert set(systems(no_contextual=False)) <= {*ours.SYSTEMS, BASELINE}
    assert ours.SYSTEMS[NOW] == ("hybrid", ("static",))


def test_path_prefix_defaults_to_the_benchmark_root() -> None:
    pkg = Package("npm", "express", "5.2.1")
    assert QualityCorpus("express", pkg, "lib").path_prefix == "lib/"
    assert QualityCorpus("x", pkg, "a/b/c", prefix="").path_prefix == ""
    assert QualityCorpus("x", pkg, "usr/share/x", prefix="x/").path_prefix == "x/"


def test_whole_project_paths_are_re_rooted_at_the_prefix_below_the_benchmark_root() -> None:
    pkg = Package("debian", "lua-penlight", "1")
    corpus = QualityCorpus("penlight", pkg, "usr/share/lua/5.1/pl", prefix="lua/pl")
    assert corpus.annotation_path("list.lua", whole_project=False) == "lua/pl/list.lua"
    assert corpus.annotation_path("usr/share/lua/5.1/pl/list.lua", whole_project=True) == "lua/pl/list.lua"
    assert corpus.annotation_path("usr/share/doc/lua-penlight/README.md", whole_project=True) == (
        "usr/share/doc/lua-penlight/README.md"
    )
    fastapi = QualityCorpus("fastapi", Package("pypi", "fastapi", "1"), "fastapi")
    assert fastapi.annotation_path("fastapi/routing.py", whole_project=True) == "fastapi/routing.py"
    assert fastapi.annotation_path("tests/test_routing.py", whole_project=True) == "tests/test_routing.py"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_a_cached_debian_package_unpacks_to_its_file_system_tree(tmp_path: Path, monkeypatch) -> None:
    """The Debian path of ``fetch`` without the network: a real .deb built here, placed in the cache."""
    monkeypatch.setenv("RAGLS_BENCH_CACHE", str(tmp_path / "cache"))
    pkg = Package("debian", "ragls-test-src", "1.0-1")
    tree = tmp_path / "build"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: ragls-test-src\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test\n"
    )
    source = tree / "usr" / "share" / "gocode" / "src" / "example" / "lib.go"
    source.parent.mkdir(parents=True)
    source.write_text("package example\n")
    downloads = tmp_path / "cache" / "downloads" / "debian" / pkg.label
    downloads.mkdir(parents=True)
    subprocess.run(
        ["dpkg-deb", "--build", str(tree), str(downloads / "ragls-test-src_1.0-1_all.deb")],
        check=True,
        capture_output=True,
    )
    project = fetch(pkg, log=lambda _: None)
    assert (project / "usr/share/gocode/src/example/lib.go").read_text() == "package example\n"
    assert fetch(pkg, log=lambda _: None) == project  # unpacked once, then reused
