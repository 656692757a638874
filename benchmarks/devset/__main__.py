"""``python -m benchmarks.devset``: search quality on the dev set's halves and semble's three.

One run covers the report half, the tune half and semble's three shared repositories.
Every repository is indexed (keyword layer and embeddings) and searched by the plain BM25
baseline, ragls keyword-only (``bm25`` mode), ragls hybrid and ragls dense-only, scored with
semble's NDCG@10 (:mod:`benchmarks.semble_quality` does the work). Prints NDCG@10 per
repository and per category for each half, index times and query p50 per repository, writes
the tables to ``benchmarks/results/devset.md`` and every query's result to
``benchmarks/results/devset.queries.json`` for diffing two runs while tuning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import devset, semble_quality
from benchmarks.corpora import QUALITY_CORPORA, QualityCorpus
from benchmarks.metrics import mean
from benchmarks.report import Table, ratio, seconds
from benchmarks.run import RESULTS, finish, indexing_progress, start
from benchmarks.semble_quality import BASELINE, CATEGORIES, CorpusRun

# (system as semble_quality names it, column label), baseline first.
# ragls as a CPU machine runs it by default: the static dense tier alone (index.contextual = auto).
SYSTEMS = (
    (BASELINE, "plain BM25"),
    ("bm25 only", "ragls keyword"),
    ("hybrid, static", "ragls hybrid"),
    ("dense, static", "ragls dense"),
)
KEYWORD, HYBRID = SYSTEMS[1][0], SYSTEMS[2][0]
GROUPS = (*devset.SPLITS, "semble")
GROUP_LABELS = {"report": "report half", "tune": "tune half", "semble": "semble's 3"}


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
    parser.add_argument("--failures-below", type=float, default=semble_quality.FAILURE_NDCG, metavar="NDCG")
    parser.add_argument("--out", type=Path, default=RESULTS / "devset.md", help="Markdown output file")
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


def _queries(run: CorpusRun) -> int:
    return len({o.query.text for o in run.outcomes})


def quality_table(runs: list[CorpusRun]) -> Table:
    table = Table(
        "Dev set: NDCG@10 per repository",
        ["repo", "language", "half", "queries", *(label for _, label in SYSTEMS)],
    )
    for group in GROUPS:
        members = [r for r in runs if r.corpus.split == group]
        if not members:
            continue
        for run in members:
            table.add(
                run.corpus.name,
                run.corpus.language,
                group,
                _queries(run),
                *(run.ndcg(system) for system, _ in SYSTEMS),
            )
        table.add(
            f"mean, {GROUP_LABELS[group]} ({len(members)} repos)",
            ", ".join(sorted({r.corpus.language for r in members})),
            group,
            sum(_queries(r) for r in members),
            *(mean(r.ndcg(system) for r in members) for system, _ in SYSTEMS),
        )
    table.notes += [
        "Each half's mean averages its per-repo means (as semble does). Targets = relevant + secondary; "
        "top 10 chunks per query; semble's suffix match on paths and line-span overlap.",
        "plain BM25: the speed baseline (50-line windows, bm25s-style tokens); ragls keyword: `mode=bm25`; "
        "ragls hybrid: the default on a CPU (static dense tier); ragls dense: `mode=dense`, static tier.",
        "Issue 11 target for ragls hybrid: mean >= 0.90 on the report half, no repo below 0.80, "
        "every category >= 0.85.",
    ]
    return table


def category_table(runs: list[CorpusRun]) -> Table:
    table = Table(
        "Dev set: NDCG@10 per category",
        ["half / category", "queries", *(label for _, label in SYSTEMS)],
    )
    for group in GROUPS:
        members = [r for r in runs if r.corpus.split == group]
        for category in CATEGORIES:
            pooled = [o for r in members for o in r.outcomes if o.query.category == category]
            if not pooled:
                continue
            table.add(
                f"{GROUP_LABELS[group]}: {category}",
                len({(o.query.repo, o.query.text) for o in pooled}),
                *(mean(o.score.ndcg for o in pooled if o.system == system) for system, _ in SYSTEMS),
            )
    table.notes.append("Queries of a half's repositories pooled per category.")
    return table


def speed_table(runs: list[CorpusRun]) -> Table:
    table = Table(
        "Dev set: index time and query latency per repository (this machine, 2 cores, no GPU)",
        [
            "repo",
            "files",
            "chunks",
            "targets indexed",
            "plain BM25 index",
            "ragls keyword index",
            "ragls embeddings",
            "ragls index / BM25",
            "p50 plain BM25",
            "p50 ragls keyword",
            "p50 ragls hybrid",
            "hybrid / BM25 p50",
        ],
    )
    for run in runs:
        indexed = run.keyword_seconds + run.embed_seconds
        table.add(
            run.corpus.name,
            run.files,
            run.chunks,
            f"{run.targets.indexed}/{run.targets.total}",
            seconds(run.baseline_seconds),
            seconds(run.keyword_seconds),
            seconds(run.embed_seconds),
            ratio(indexed, run.baseline_seconds),
            seconds(run.query_p50(BASELINE)),
            seconds(run.query_p50(KEYWORD)),
            seconds(run.query_p50(HYBRID)),
            ratio(run.query_p50(HYBRID), run.query_p50(BASELINE)),
        )
    table.notes += [
        "targets indexed: annotation targets covered by at least one ragls chunk (semble's n_relevant), "
        "of all targets. ragls index = keyword index + embeddings, both from scratch unless --reuse-index.",
        "p50 over this run's queries of the repository, the search call alone (hybrid includes embedding "
        "the query). Absolute times move with the machine's load; the ratios are against the baseline "
        "measured in the same run.",
    ]
    return table


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    corpora = selected(args.repos)
    session = start()
    if session is None:
        return 1
    with indexing_progress(session.console) as progress:
        runs = semble_quality.run_all(
            fresh=not args.reuse_index,
            whole_project=args.whole_project,
            log=session.console.log,
            progress=progress,
            corpora=corpora,
            systems=[system for system, _ in SYSTEMS],
        )
    tables = [
        quality_table(runs),
        category_table(runs),
        speed_table(runs),
        semble_quality.failures(runs, system=HYBRID, threshold=args.failures_below),
    ]
    finish(
        session,
        tables,
        semble_quality.per_query(runs),
        args.out,
        "ragls dev-set search benchmark",
        "`python -m benchmarks.devset` (or `make bench-devset`)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
