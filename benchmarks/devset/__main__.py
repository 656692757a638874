"""``python -m benchmarks.devset``: search quality on the dev set's halves and semble's three.

One run covers the report half, the tune half and semble's three shared repositories. Each
dev-set repository also gets docstring -> definition queries (:mod:`benchmarks.devset.docstrings`)
and is indexed as a copy with those docstrings blanked. Three rankers answer every query, each as
a CPU runs ragls by default (hybrid, static dense tier): plain BM25 (the baseline), "ragls
before" (commit :data:`PAST`, the commit before issue 19, run in a child process that imports
that commit's code and builds its own index) and "ragls now" (this working tree). The same run
compares the dense tiers (static, contextual, both, none) and times indexing and queries.
Prints NDCG@10 per repository, category and language for each half, the tier comparison with
the contextual tier's cost, and index time and query p50/p95 per repository; writes the tables
to ``benchmarks/results/devset.md`` and every query's result to
``benchmarks/results/devset.queries.json`` for diffing two runs while tuning.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from benchmarks import devset, past, semble_quality, speed
from benchmarks.corpora import QUALITY_CORPORA, QualityCorpus, fetch
from benchmarks.devset import docstrings
from benchmarks.metrics import QueryScore, Target, mean
from benchmarks.report import Table, ratio, seconds
from benchmarks.run import RESULTS, finish, indexing_progress, start
from benchmarks.semble_quality import (
    BASELINE,
    CATEGORIES,
    CorpusRun,
    Hit,
    Outcome,
    Query,
    TargetCounts,
    annotations_dir,
)

PAST = "c4de513"  # the commit before issue 19
NOW = "hybrid, static"  # ragls as a CPU machine runs it by default (index.contextual = auto)
BEFORE = "ragls before"  # the outcomes of NOW as commit PAST ranks them
COMPARED = ((BASELINE, "plain BM25"), (BEFORE, f"ragls before ({PAST})"), (NOW, "ragls now"))
# The dense tiers compared, as ragls now searches with them: (system, column label).
TIERS = (
    ("hybrid, static", "static"),
    ("hybrid, contextual", "contextual"),
    ("hybrid, all tiers", "both"),
    ("hybrid, no dense", "none"),
)
CONTEXTUAL_SYSTEMS = frozenset({"hybrid, contextual", "hybrid, all tiers"})
GROUPS = (*devset.SPLITS, "semble")
GROUP_LABELS = {"report": "report half", "tune": "tune half", "semble": "semble's 3"}
# Categories in this order first, any other found in the annotations after them.
KNOWN_CATEGORIES = tuple(dict.fromkeys((*CATEGORIES, "history", docstrings.CATEGORY)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.devset", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reuse-index",
        action="store_true",
        help="keep the indexes of the previous run (fast loop when tuning ranking; wrong after "
        "chunking or embedding changes, which need a rebuild)",
    )
    parser.add_argument(
        "--repos",
        metavar="NAMES",
        help="comma-separated repositories to run (default: all, both halves and semble's)",
    )
    parser.add_argument(
        "--whole-project",
        action="store_true",
        help="index each whole unpacked artifact (tests, docs, examples, vendored code too), as a "
        "whole repository is, instead of its source folder",
    )
    parser.add_argument(
        "--no-contextual",
        action="store_true",
        help="skip the contextual tier (minutes of embedding per repository on a CPU): the tier "
        "table then compares static and none only",
    )
    parser.add_argument("--failures-below", type=float, default=semble_quality.FAILURE_NDCG, metavar="NDCG")
    parser.add_argument("--out", type=Path, default=RESULTS / "devset.md", help="Markdown output file")
    parser.add_argument("--worker", type=Path, metavar="JOB", help=argparse.SUPPRESS)  # see run_before
    return parser.parse_args(argv)


def selected(names: str | None) -> list[QualityCorpus]:
    """Report half, tune half, then semble's three; ``names`` picks a subset (unknown names fail)."""
    every = [*devset.corpora("report"), *devset.corpora("tune"), *QUALITY_CORPORA]
    if not names:
        return every
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = sorted(set(wanted) - {c.name for c in every})
    if unknown:
        raise SystemExit(f"unknown repositories {unknown}; known: {', '.join(c.name for c in every)}")
    return [c for c in every if c.name in wanted]


def systems(no_contextual: bool) -> list[str]:
    """What the working tree's run answers with: the baseline, then ragls now and the tiers."""
    tiers = [s for s, _ in TIERS if not (no_contextual and s in CONTEXTUAL_SYSTEMS)]
    return [BASELINE, *tiers]


def docstring_labels(
    corpus: QualityCorpus, whole_project: bool, log: Callable[[str], None]
) -> tuple[Path, list[Query]]:
    """The folder to index and the docstring queries of ``corpus``: a dev-set repository is
    indexed as a copy with its sampled docstrings blanked; semble's three stay as semble has them."""
    project = fetch(corpus.package, log)
    root = project if whole_project else project / corpus.benchmark_root
    if corpus.split == "semble":
        return root, []
    docs = docstrings.pick(root, corpus.name)
    key = f"{corpus.package.label}{'-whole' if whole_project else ''}"
    return docstrings.blanked_copy(root, docs, key), docstrings.labels(
        corpus.name, docs, lambda path: corpus.annotation_path(path, whole_project)
    )


# --- ragls before: the earlier commit in a child process ------------------------------------


def _query_json(q: Query) -> dict:
    return {"text": q.text, "category": q.category, "targets": [asdict(t) for t in q.targets]}


def _query_from(raw: dict, repo: str) -> Query:
    return Query(repo, raw["text"], raw["category"], tuple(Target.parse(t) for t in raw["targets"]))


def run_before(
    corpus: QualityCorpus,
    root: Path,
    extra: Sequence[Query],
    *,
    fresh: bool,
    whole_project: bool,
    log: Callable[[str], None],
) -> CorpusRun | None:
    """Index ``root`` and answer the queries with commit :data:`PAST`'s code (None, after saying
    why, when that run fails: the rest of the benchmark goes on)."""
    with tempfile.TemporaryDirectory(prefix="ragls-devset-") as tmp:
        job = Path(tmp) / "job.json"
        result = Path(tmp) / "result.json"
        job.write_text(
            json.dumps(
                {
                    "corpus": corpus.name,
                    "root": str(root),
                    "extra": [_query_json(q) for q in extra],
                    "fresh": fresh,
                    "whole_project": whole_project,
                    "result": str(result),
                }
            ),
            encoding="utf-8",
        )
        command = [sys.executable, "-m", "benchmarks.devset", "--worker", str(job)]
        proc = subprocess.run(command, env=past.environment(PAST), cwd=tmp, stdout=sys.stderr, check=False)
        if proc.returncode != 0 or not result.is_file():
            failed = f"ragls before ({PAST}) failed (exit {proc.returncode}); its columns stay empty"
            log(f"[red]{corpus.name}: {failed}[/red]")
            return None
        raw = json.loads(result.read_text(encoding="utf-8"))
    staged = past.stage(PAST)
    if not Path(raw["ragls"]).is_relative_to(staged):
        raise RuntimeError(f"ragls before imported {raw['ragls']}, not commit {PAST}'s code under {staged}")
    log(f"{corpus.name}: ragls before ran {raw['ragls']}")
    run = CorpusRun(
        corpus,
        raw["files"],
        raw["chunks"],
        raw["keyword_seconds"],
        raw["tier_seconds"],
        float("nan"),
        TargetCounts(**raw["targets"]),
    )
    for o in raw["outcomes"]:
        score = QueryScore(o["ndcg"], tuple(o["ranks"]), o["n_relevant"])
        top = [Hit(*hit) for hit in o["top"]]
        run.outcomes.append(Outcome(_query_from(o["query"], corpus.name), BEFORE, score, top, o["seconds"]))
    return run


def worker(job_file: Path) -> int:
    """The child's side of :func:`run_before`: whatever ``ragls`` this process imports ranks."""
    import ragls.indexer.search

    job = json.loads(job_file.read_text(encoding="utf-8"))
    (corpus,) = selected(job["corpus"])
    run = semble_quality.run_corpus(
        corpus,
        fresh=job["fresh"],
        whole_project=job["whole_project"],
        log=lambda line: print(line, file=sys.stderr),
        systems=[NOW],
        root=Path(job["root"]),
        extra=[_query_from(q, corpus.name) for q in job["extra"]],
        purpose=f"devset-before-{PAST}",
    )
    outcomes = [
        {
            "query": _query_json(o.query),
            "ndcg": o.score.ndcg,
            "ranks": list(o.score.ranks),
            "n_relevant": o.score.n_relevant,
            "top": [[h.path, h.start_line, h.end_line] for h in o.top],
            "seconds": o.seconds,
        }
        for o in run.outcomes
    ]
    result = {
        "ragls": ragls.indexer.search.__file__,
        "files": run.files,
        "chunks": run.chunks,
        "keyword_seconds": run.keyword_seconds,
        "tier_seconds": run.tier_seconds,
        "targets": asdict(run.targets),
        "outcomes": outcomes,
    }
    Path(job["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


# --- tables ---------------------------------------------------------------------------------


def _queries(runs: Iterable[CorpusRun], category: str | None = None) -> int:
    """Distinct queries of ``runs`` (of one category)."""
    return sum(
        len({(o.query.text, o.query.category) for o in r.outcomes if category in (None, o.query.category)})
        for r in runs
    )


def _pooled(runs: Iterable[CorpusRun], system: str, category: str) -> float:
    """NDCG@10 of ``system`` over the queries of ``category`` in ``runs``, pooled."""
    return mean(
        o.score.ndcg for r in runs for o in r.outcomes if o.system == system and o.query.category == category
    )


def _delta(now: float, before: float) -> str:
    difference = now - before
    return "—" if difference != difference else f"{difference:+.3f}"  # nan: one side missing


def categories(runs: Iterable[CorpusRun]) -> list[str]:
    """The categories the loaded queries carry, the known ones first in their usual order."""
    found = {o.query.category for r in runs for o in r.outcomes}
    return [c for c in KNOWN_CATEGORIES if c in found] + sorted(found - set(KNOWN_CATEGORIES))


def _halves(runs: list[CorpusRun]) -> Iterable[tuple[str, list[CorpusRun]]]:
    for group in GROUPS:
        members = [r for r in runs if r.corpus.split == group]
        if members:
            yield group, members


def _compared(values: Callable[[str], float]) -> list[object]:
    """The three rankers' figures and how far ragls now is from ragls before."""
    figures = [values(system) for system, _ in COMPARED]
    return [*figures, _delta(figures[2], figures[1])]


COMPARED_COLUMNS = [*(label for _, label in COMPARED), "now − before"]


def quality_table(runs: list[CorpusRun]) -> Table:
    columns = ["repo", "language", "half", "queries", *COMPARED_COLUMNS]
    table = Table("Dev set: NDCG@10 per repository", columns)
    for group, members in _halves(runs):
        for run in members:
            table.add(run.corpus.name, run.corpus.language, group, _queries([run]), *_compared(run.ndcg))
        table.add(
            f"mean, {GROUP_LABELS[group]} ({len(members)} repos)",
            ", ".join(sorted({r.corpus.language for r in members})),
            group,
            _queries(members),
            *_compared(lambda s, m=members: mean(r.ndcg(s) for r in m)),
        )
    table.notes += [
        "Each half's mean averages its per-repo means (as semble does). Targets = relevant + secondary; "
        "top 10 chunks per query; semble's suffix match on paths and line-span overlap.",
        f"plain BM25: the speed baseline (50-line windows, bm25s-style tokens); ragls before: commit {PAST} "
        "(before issue 19) in a child process with its own index; ragls now: this working tree. Both ragls "
        "columns are hybrid search with the static dense tier, the default on a CPU.",
        "Dev-set repositories are indexed with their sampled docstrings blanked (docstring queries); "
        "semble's three as semble has them.",
    ]
    return table


def category_table(runs: list[CorpusRun]) -> Table:
    table = Table("Dev set: NDCG@10 per category", ["half / category", "queries", *COMPARED_COLUMNS])
    for group, members in _halves(runs):
        for category in categories(members):
            table.add(
                f"{GROUP_LABELS[group]}: {category}",
                _queries(members, category),
                *_compared(lambda s, m=members, c=category: _pooled(m, s, c)),
            )
    table.notes.append(
        "Queries of a half's repositories pooled per category. history: commit messages -> the files they "
        "changed; docstring: a definition's documentation (blanked in the index) -> the definition."
    )
    return table


def language_table(runs: list[CorpusRun]) -> Table:
    table = Table("Dev set: NDCG@10 per language", ["half / language", "repos", "queries", *COMPARED_COLUMNS])
    for group, members in _halves(runs):
        for language in sorted({r.corpus.language for r in members}):
            same = [r for r in members if r.corpus.language == language]
            table.add(
                f"{GROUP_LABELS[group]}: {language}",
                len(same),
                _queries(same),
                *_compared(lambda s, m=same: mean(r.ndcg(s) for r in m)),
            )
    table.notes.append(
        "A language's figure averages the per-repo means of its repositories in that half (languages as "
        "repos.json names them). Issue 19's target: ragls now ahead of ragls before in every language with "
        "at least two repositories on the report half."
    )
    return table


def tier_table(runs: list[CorpusRun]) -> Table:
    tiers = [(s, label) for s, label in TIERS if any(o.system == s for r in runs for o in r.outcomes)]
    table = Table(
        "Dense tiers by evidence: ragls now, hybrid search, NDCG@10",
        ["scope", "repos", "queries", *(label for _, label in tiers)],
    )
    dev = [r for r in runs if r.corpus.split in devset.SPLITS]

    def add(scope: str, members: list[CorpusRun]) -> None:
        figures = (mean(r.ndcg(s) for r in members) for s, _ in tiers)
        table.add(scope, len(members), _queries(members), *figures)

    for language in sorted({r.corpus.language for r in dev}):
        add(f"dev set: {language}", [r for r in dev if r.corpus.language == language])
    for group, members in _halves(runs):
        add(GROUP_LABELS[group], members)
    if dev:
        add(f"dev set, both halves ({len(dev)} repos)", dev)
        for category in categories(dev):
            table.add(
                f"dev set: {category}",
                None,
                _queries(dev, category),
                *(_pooled(dev, s, category) for s, _ in tiers),
            )
    table.notes += [
        "static: the static (distilled) tier alone, the default on a CPU; contextual: the contextual model "
        "alone; both: the two fused, the default with a GPU; none: keyword and symbol ranking without dense "
        "vectors. Rows by language and half average per-repo means; category rows pool queries.",
    ]
    if len(tiers) < len(TIERS):
        table.notes.append("--no-contextual: the contextual tier was not built, so its columns are left out.")
    return table


def tier_cost_table(runs: list[CorpusRun]) -> Table:
    table = Table(
        "Dense tiers: what each costs to build, per repository (this machine, 2 cores, no GPU)",
        ["repo", "chunks", "keyword index", "static tier", "contextual tier", "contextual / static",
         "contextual / keyword index"],
    )  # fmt: skip

    def add(name: str, chunks: int, keyword: float, static: float | None, contextual: float | None) -> None:
        table.add(
            name,
            chunks,
            seconds(keyword),
            seconds(static),
            seconds(contextual),
            ratio(contextual, static),
            ratio(contextual, keyword),
        )

    for run in runs:
        add(run.corpus.name, run.chunks, run.keyword_seconds, run.tier_seconds.get("static"),
            run.tier_seconds.get("contextual"))  # fmt: skip
    if len(runs) > 1:
        add(
            "total",
            sum(r.chunks for r in runs),
            sum(r.keyword_seconds for r in runs),
            sum(r.tier_seconds.get("static", 0.0) for r in runs) or None,
            sum(r.tier_seconds.get("contextual", 0.0) for r in runs) or None,
        )
    table.notes.append(
        "Embedding every chunk of a fresh index, one tier at a time (near zero with --reuse-index; — with "
        "--no-contextual). The contextual tier is what the 'contextual' and 'both' columns pay for."
    )
    return table


def speed_table(runs: list[CorpusRun], before: dict[str, CorpusRun]) -> Table:
    table = Table(
        "Dev set: index time and query latency per repository (this machine, 2 cores, no GPU)",
        [
            "repo", "files", "chunks", "targets indexed", "plain BM25 index", "ragls before index",
            "ragls now index", "now / BM25", "now / before",
            "p50 BM25", "p50 before", "p50 now", "p95 BM25", "p95 before", "p95 now",
            "now / BM25 p50", "now / BM25 p95",
        ],
    )  # fmt: skip

    def built(run: CorpusRun | None) -> float:
        return run.keyword_seconds + run.tier_seconds.get("static", 0.0) if run else float("nan")

    for run in runs:
        now = built(run)
        table.add(
            run.corpus.name,
            run.files,
            run.chunks,
            f"{run.targets.indexed}/{run.targets.total}",
            seconds(run.baseline_seconds),
            seconds(built(before.get(run.corpus.name))),
            seconds(now),
            ratio(now, run.baseline_seconds),
            ratio(now, built(before.get(run.corpus.name))),
            *(seconds(run.query_latency(s, 0.5)) for s, _ in COMPARED),
            *(seconds(run.query_latency(s, 0.95)) for s, _ in COMPARED),
            ratio(run.query_latency(NOW, 0.5), run.query_latency(BASELINE, 0.5)),
            ratio(run.query_latency(NOW, 0.95), run.query_latency(BASELINE, 0.95)),
        )
    table.notes += [
        "targets indexed: annotation targets covered by at least one chunk of ragls now (n_relevant), "
        "of all targets. A ragls index = keyword index + the static tier's embeddings (the CPU default), "
        "from scratch unless --reuse-index; ragls before builds its own index with its own code.",
        "p50/p95 (nearest rank) over this run's queries of the repository, the search call alone (hybrid "
        "includes embedding the query). Absolute times move with the machine's load; the ratios are against "
        "figures measured in the same run.",
    ]
    return table


def tables(runs: list[CorpusRun], before: dict[str, CorpusRun], failures_below: float) -> list[Table]:
    return [
        quality_table(runs),
        category_table(runs),
        language_table(runs),
        tier_table(runs),
        tier_cost_table(runs),
        speed_table(runs, before),
        semble_quality.failures(runs, system=NOW, threshold=failures_below),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker)
    corpora = selected(args.repos)
    files = [f for c in corpora for f in c.annotations or [annotations_dir() / f"{c.name}.json"]]
    if missing := [str(f) for f in files if not f.is_file()]:  # said before an hour of indexing, not after
        raise SystemExit(f"annotations missing ($RAGLS_SEMBLE_DIR: semble's): {', '.join(missing)}")
    session = start()
    if session is None:
        return 1
    log = session.console.log
    try:
        log(f"ragls before: commit {PAST} staged in {past.stage(PAST)}")
    except (RuntimeError, subprocess.CalledProcessError) as exc:  # a checkout without that history
        session.console.print(f"[red]cannot stage ragls before ({PAST}): {exc}[/red]")
        return 1
    log("the derived models (static distill, ONNX export) are made before anything is timed, where missing")
    speed.run_worker({"kind": "models", "fresh": False, "root": "", "queries": ""}, log)
    runs: list[CorpusRun] = []
    before: dict[str, CorpusRun] = {}
    with indexing_progress(session.console) as progress:
        for corpus in corpora:
            root, extra = docstring_labels(corpus, args.whole_project, log)
            run = semble_quality.run_corpus(
                corpus,
                fresh=not args.reuse_index,
                whole_project=args.whole_project,
                log=log,
                progress=progress,
                systems=systems(args.no_contextual),
                root=root,
                extra=extra,
            )
            earlier = run_before(
                corpus, root, extra, fresh=not args.reuse_index, whole_project=args.whole_project, log=log
            )
            if earlier is not None:
                before[corpus.name] = earlier
                run.outcomes += earlier.outcomes
            runs.append(run)
    finish(
        session,
        tables(runs, before, args.failures_below),
        args.out,
        "ragls dev-set search benchmark",
        "`python -m benchmarks.devset` (or `make bench-devset`)",
        semble_quality.per_query(runs),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
