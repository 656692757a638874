"""Indexing and query speed of our engine, as figures and as ratios to the plain BM25 baseline.

Every measurement runs in its own process (:mod:`benchmarks.speed_worker`), one after the
other, on the ~500-file and ~10,000-file repositories of :func:`corpora.speed_repo`. Dense
embedding of the 10k repository takes hours on a 2-core CPU, so by default it is extrapolated
from the embedding rate measured on the 500-file repository and the 10k repository's exact
count of texts to embed; ``--dense-10k`` measures it instead.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpora import QUALITY_CORPORA, Log, cache_dir, speed_repo, stride_sample
from benchmarks.metrics import percentile
from benchmarks.report import Table, ratio, seconds
from benchmarks.semble_quality import load_queries

SMALL, LARGE = 500, 10_000
EDITS = 5  # files edited one at a time for the re-index timing
IDENTIFIER_QUERIES = 50
DEFINITION = re.compile(r"^\s*(?:class|def|function|export function|export class)\s+([A-Za-z_]\w{3,})", re.M)

TARGETS = {
    "keyword_500": 5.0,  # s
    "query_p95_10k": 50.0,  # ms
    "reindex_keyword": 0.3,  # s
    "reindex_dense": 2.0,  # s
}


def query_set(repo: Path) -> list[str]:
    """semble's 50 natural-language and symbol queries plus names defined in this repository."""
    queries = [q.text for c in QUALITY_CORPORA for q in load_queries(c.name)]
    names: list[str] = []
    for path in stride_sample(sorted(p for p in repo.rglob("*") if p.suffix in {".py", ".js", ".ts"}), 400):
        match = DEFINITION.search(path.read_text(encoding="utf-8", errors="replace"))
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return queries + stride_sample(names, IDENTIFIER_QUERIES)


def edit_targets(repo: Path) -> list[str]:
    """Mid-sized Python files (between the 20th and 60th size percentile): a typical edit."""
    files = sorted((p.stat().st_size, p.relative_to(repo).as_posix()) for p in repo.rglob("*.py"))
    middle = files[len(files) // 5 : (len(files) * 3) // 5]
    return [rel for _, rel in stride_sample(middle, EDITS)]


@dataclass
class Measured:
    result: dict
    launch_to_ready_s: float


def run_worker(job: dict, log: Log) -> Measured:
    """Run one job in a fresh process, relaying its progress lines as they come."""
    launched = time.time()
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.speed_worker", json.dumps(job)],
            cwd=Path(__file__).resolve().parents[1],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        tail: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("  [worker]"):
                log(line.strip())
            tail = [*tail[-40:], line]
        proc.wait()
        stdout.seek(0)
        lines = [line for line in stdout.read().splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"speed worker {job['kind']} failed ({proc.returncode}):\n{''.join(tail)}")
    result = json.loads(lines[-1][len("RESULT ") :])
    return Measured(result, result["ready_wall"] - launched)


@dataclass
class SpeedRun:
    files: dict[int, int]
    baseline: dict[int, Measured]
    engine: dict[int, Measured]
    dense_10k_measured: bool


def run_all(*, dense_10k: bool, log: Log) -> SpeedRun:
    repos = {n: speed_repo(n, log) for n in (SMALL, LARGE)}
    baseline: dict[int, Measured] = {}
    engine: dict[int, Measured] = {}
    for n, repo in repos.items():
        queries_file = cache_dir() / "speed" / f"queries-{n}.json"
        queries_file.write_text(json.dumps(query_set(repo)))
        common = {"root": str(repo), "queries": str(queries_file)}
        log(f"speed, {n} files: plain BM25 baseline ...")
        baseline[n] = run_worker({**common, "kind": "baseline"}, log)
        dense = n == SMALL or dense_10k
        log(f"speed, {n} files: ragls keyword layer{' + dense layer' if dense else ''} ...")
        engine[n] = run_worker(
            {
                **common,
                "kind": "engine",
                "edits": edit_targets(repo),
                "dense": dense,
                "purpose": f"speed-{n}",
            },
            log,
        )
    files = {n: sum(1 for p in repo.rglob("*") if p.is_file()) for n, repo in repos.items()}
    return SpeedRun(files, baseline, engine, dense_10k)


# --- tables ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return percentile(values, 0.5)


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.0f} MiB"


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def _verdict(value: float | None, limit: float) -> str:
    return "—" if value is None else ("yes" if value < limit else "NO")


def tables(run: SpeedRun) -> list[Table]:
    b, e = run.baseline, run.engine
    small, large = e[SMALL].result, e[LARGE].result
    rate = small["embedded"] / small["embed_s"] if small.get("embed_s") else float("nan")
    if run.dense_10k_measured:
        dense_10k, dense_10k_label = large["dense_s"], "measured"
    else:
        dense_10k = large["ready_s"] + large["pending_embeddings"] / rate
        dense_10k_label = f"EXTRAPOLATED: {large['pending_embeddings']:,} texts at {rate:.1f}/s"

    corpus = Table(
        "Speed corpora (deterministic stride samples of real package sources)",
        ["repo", "files on disk", "ragls files", "ragls chunks", "texts to embed", "baseline windows"],
    )
    for n in (SMALL, LARGE):
        r = e[n].result
        corpus.add(
            f"{n:,}-file",
            run.files[n],
            r["files"],
            r["chunks"],
            r["pending_embeddings"],
            b[n].result["units"],
        )
    corpus.notes.append(
        "Built from sdists/tarballs of django, sympy, ansible-core, twisted, sqlalchemy, aiohttp, fastapi "
        "(PyPI) and lodash, rxjs, express (npm): .py/.js/.ts/.html/.md/... files, evenly strided."
    )

    table = Table(
        "Speed on this machine (2-core CPU, no GPU)",
        ["measure", "plain BM25", "ragls", "ragls / BM25", "target", "met"],
    )
    for n in (SMALL, LARGE):
        kw = e[n].result["ready_s"]
        target = TARGETS["keyword_500"] if n == SMALL else None
        table.add(
            f"keyword search ready, {n:,} files",
            seconds(b[n].result["ready_s"]),
            seconds(kw),
            ratio(kw, b[n].result["ready_s"]),
            "< 5 s" if target else "",
            _verdict(kw, target) if target else "",
        )
        table.add(
            f"  same, from process launch ({n:,})",
            seconds(b[n].launch_to_ready_s),
            seconds(e[n].launch_to_ready_s),
            ratio(e[n].launch_to_ready_s, b[n].launch_to_ready_s),
            "",
            "",
        )
    table.add(
        f"dense search complete, {SMALL} files",
        "n/a",
        seconds(small["dense_s"]),
        ratio(small["dense_s"], b[SMALL].result["ready_s"]),
        "",
        "",
    )
    table.add(
        f"dense search complete, {LARGE:,} files ({dense_10k_label})",
        "n/a",
        seconds(dense_10k),
        ratio(dense_10k, b[LARGE].result["ready_s"]),
        "",
        "",
    )
    for mode, label in (("bm25", "bm25 mode"), ("hybrid", "hybrid mode")):
        lat = large["latency_ms"][mode]
        base = b[LARGE].result["latency_ms"]["bm25"]
        note = "" if mode == "bm25" or run.dense_10k_measured else ", no dense layer"
        for q, name in ((0.5, "p50"), (0.95, "p95")):
            ours_q, base_q = percentile(lat, q), percentile(base, q)
            limit = TARGETS["query_p95_10k"] if name == "p95" else None
            table.add(
                f"query {name}, {LARGE:,} files, {label}{note}",
                _ms(base_q),
                _ms(ours_q),
                ratio(ours_q, base_q),
                "< 50 ms" if limit else "",
                _verdict(ours_q, limit) if limit else "",
            )
    if "hybrid_synthetic" in large["latency_ms"]:
        lat = large["latency_ms"]["hybrid_synthetic"]
        base = b[LARGE].result["latency_ms"]["bm25"]
        p95 = percentile(lat, 0.95)
        table.add(
            f"query p50 / p95, {LARGE:,} files, hybrid mode, one synthetic dense vector per chunk",
            f"{_ms(percentile(base, 0.5))} / {_ms(percentile(base, 0.95))}",
            f"{_ms(percentile(lat, 0.5))} / {_ms(p95)}",
            ratio(p95, percentile(base, 0.95)),
            "< 50 ms",
            _verdict(p95, TARGETS["query_p95_10k"]),
        )
    for mode in ("hybrid", "dense"):
        lat = small["latency_ms"][mode]
        base = b[SMALL].result["latency_ms"]["bm25"]
        table.add(
            f"query p50 / p95, {SMALL} files, {mode} mode (with dense)",
            f"{_ms(percentile(base, 0.5))} / {_ms(percentile(base, 0.95))}",
            f"{_ms(percentile(lat, 0.5))} / {_ms(percentile(lat, 0.95))}",
            ratio(percentile(lat, 0.95), percentile(base, 0.95)),
            "",
            "",
        )
    for n in (LARGE, SMALL):
        edits = e[n].result["reindex"]
        kw = [x["keyword_s"] for x in edits]
        table.add(
            f"re-index one edited file, keyword, {n:,} files (median; max)",
            f"{seconds(b[n].result['ready_s'])} (full rebuild)",
            f"{seconds(_median(kw))}; {seconds(max(kw))}",
            ratio(_median(kw), b[n].result["ready_s"]),
            "< 300 ms",
            _verdict(_median(kw), TARGETS["reindex_keyword"]),
        )
    for n in (SMALL, LARGE):
        edits = e[n].result["reindex"]
        if "dense_s" not in edits[0]:
            continue
        dense = [x["dense_s"] for x in edits]
        table.add(
            f"re-index one edited file, keyword + dense, {n:,} files (median; max)",
            "n/a",
            f"{seconds(_median(dense))}; {seconds(max(dense))}",
            "",
            "< 2 s",
            _verdict(_median(dense), TARGETS["reindex_dense"]),
        )
    for n in (SMALL, LARGE):
        r = e[n].result
        table.add(
            f"peak RSS, {n:,} files{' (with dense)' if 'dense_s' in r else ''}",
            _mib(b[n].result["peak_rss"]),
            _mib(r["peak_rss"]),
            ratio(r["peak_rss"], b[n].result["peak_rss"]),
            "",
            "",
        )
        if "dense_s" in r:
            table.add(
                f"  peak RSS, {n:,} files, keyword layer only",
                "",
                _mib(r["rss_keyword"]),
                ratio(r["rss_keyword"], b[n].result["peak_rss"]),
                "",
                "",
            )
    lost = [x["path"] for n in (SMALL, LARGE) for x in e[n].result["reindex"] if not x["found_rank"]]
    table.notes += [
        "plain BM25 = benchmarks/baseline.py: in-memory Okapi BM25 over 50-line windows, bm25s-style "
        "tokens, scipy sparse matrix; no persistence, no incremental update (re-index = full rebuild).",
        "Times are in-process around the Python API (Index.open + update; embed_pending), each "
        "configuration in a fresh process; 'from process launch' adds interpreter start and imports.",
        f"Query latency: warm (one untimed pass), {3} timed passes over semble's 50 queries + 50 "
        "identifiers defined in the repo; re-index: a function appended to 5 mid-sized .py files, "
        "one at a time, timed until update_paths (and embed_pending) return"
        + (
            "; each edited file was then in the top 10 for the new function's name."
            if not lost
            else f"; NOT in the top 10 for the new function's name afterwards: {', '.join(lost)}."
        ),
        "Peak RSS: VmHWM of the measuring process (the dense rows include torch and the model).",
        "1-min load average at the end of each measurement (2 cores; above ~2 means other work competed): "
        + ", ".join(
            f"{who} {n:,}: {m.result['load_after']:.1f}"
            for n in (SMALL, LARGE)
            for who, m in (("baseline", b[n]), ("ragls", e[n]))
        )
        + ".",
    ]
    return [corpus, table]
