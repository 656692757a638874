"""Indexing and query speed of our engine, as figures and as ratios to the plain BM25 baseline.

Every measurement runs in its own process (:mod:`benchmarks.speed_worker`), one after the
other, on the ~500-file and ~10,000-file repositories of :func:`corpora.speed_repo`: first the
one-time cost of a new machine (distilling the static model, exporting the ONNX model), then per
repository the keyword layer, the static tier and the contextual tier, then the encoders side by
side on the same texts. The contextual tier of the 10k repository takes most of an hour on a
2-core CPU, so by default it is measured over its first ~1,000 texts and extrapolated from that
rate and the exact count of texts left; ``--dense-10k`` measures all of it.
"""

from __future__ import annotations

import json
import os
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

CONTEXTUAL_SAMPLE = 1024  # texts of the contextual tier measured by default (the rest extrapolated)

TARGETS = {
    "static_10k": 60.0,  # s, keyword + static tier (hybrid search with a dense tier)
    "rss": 2**30,  # bytes
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
    models: dict  # one-time costs of a new machine
    encoders: dict  # texts/s of each encoder on the same texts


def run_all(*, dense_10k: bool, first_use: bool, log: Log) -> SpeedRun:
    repos = {n: speed_repo(n, log) for n in (SMALL, LARGE)}
    baseline: dict[int, Measured] = {}
    engine: dict[int, Measured] = {}
    # Made before anything is timed (the tables time indexing, not this once-per-machine cost).
    what = "a new machine's first use, timed" if first_use else "untimed, where missing"
    log(f"speed: the static model distilled and the ONNX model exported ({what}) ...")
    prepared = run_worker({"kind": "models", "fresh": first_use, "root": "", "queries": ""}, log).result
    models = prepared if first_use else {}
    for n, repo in repos.items():
        queries_file = cache_dir() / "speed" / f"queries-{n}.json"
        queries_file.write_text(json.dumps(query_set(repo)))
        common = {"root": str(repo), "queries": str(queries_file)}
        log(f"speed, {n} files: plain BM25 baseline ...")
        baseline[n] = run_worker({**common, "kind": "baseline"}, log)
        whole = dense_10k
        sample = "" if whole else " (sample)"
        log(f"speed, {n} files: ragls keyword layer, static tier, contextual tier{sample} ...")
        engine[n] = run_worker(
            {
                **common,
                "kind": "engine",
                "edits": edit_targets(repo),
                "contextual": None if whole else CONTEXTUAL_SAMPLE,
                "purpose": f"speed-{n}",
            },
            log,
        )
    log("speed: encoders side by side on the same chunk texts ...")
    encoders = run_worker(
        {"kind": "encoders", "root": str(repos[SMALL]), "queries": "", "purpose": f"speed-{SMALL}"}, log
    )
    files = {n: sum(1 for p in repo.rglob("*") if p.is_file()) for n, repo in repos.items()}
    return SpeedRun(files, baseline, engine, dense_10k, models, encoders.result)


# --- tables ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return percentile(values, 0.5)


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.0f} MiB"


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def _verdict(value: float | None, limit: float) -> str:
    return "—" if value is None else ("yes" if value < limit else "NO")


def _contextual_total(r: dict) -> tuple[float, str]:
    """Seconds until the contextual tier is complete, and how that figure was obtained."""
    if r["contextual_complete"]:
        return r["dense_s"], "measured"
    rate = r["contextual_texts"] / r["contextual_embed_s"]
    left = r["pending_embeddings"] - r["contextual_texts"]
    return (
        r["static_s"] + r["contextual_embed_s"] + left / rate,
        f"EXTRAPOLATED: {r['contextual_texts']:,} texts measured at {rate:.1f}/s, {left:,} more",
    )


def tables(run: SpeedRun) -> list[Table]:
    b, e = run.baseline, run.engine
    small, large = e[SMALL].result, e[LARGE].result

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

    tiers = Table(
        "Time to each search layer, per tier (2-core CPU, no GPU)",
        ["measure", "plain BM25", f"ragls {SMALL:,} files", f"ragls {LARGE:,} files", "target", "met"],
    )
    tiers.add(
        "keyword search ready",
        f"{seconds(b[SMALL].result['ready_s'])} / {seconds(b[LARGE].result['ready_s'])}",
        seconds(small["ready_s"]),
        seconds(large["ready_s"]),
        "",
        "",
    )
    tiers.add(
        "hybrid search with a dense tier ready (keyword + static tier)",
        "n/a",
        seconds(small["static_s"]),
        seconds(large["static_s"]),
        f"< {TARGETS['static_10k']:.0f} s at {LARGE:,}",
        _verdict(large["static_s"], TARGETS["static_10k"]),
    )
    tiers.add(
        "  CPU-seconds of the indexing process itself for it (its threads, not its parse workers)",
        "",
        seconds(small["static_cpu_s"]),
        seconds(large["static_cpu_s"]),
        "",
        "",
    )
    totals = {n: _contextual_total(e[n].result) for n in (SMALL, LARGE)}
    tiers.add(
        "fully contextual (static + contextual tiers complete)",
        "n/a",
        seconds(totals[SMALL][0]),
        seconds(totals[LARGE][0]),
        "",
        "",
    )
    for name in ("static", "contextual"):
        tiers.add(
            f"{name} tier, chunk texts embedded per second",
            "n/a",
            *(
                f"{e[n].result[f'{name}_texts'] / e[n].result[f'{name}_embed_s']:,.1f}"
                for n in (SMALL, LARGE)
            ),
            "",
            "",
        )
    for key, label in (
        ("rss_keyword", "peak RSS, keyword layer"),
        ("rss_static", "peak RSS, keyword + static tier"),
        ("peak_rss", "peak RSS, whole run (contextual tier, queries, re-index)"),
    ):
        tiers.add(
            label,
            f"{_mib(b[SMALL].result['peak_rss'])} / {_mib(b[LARGE].result['peak_rss'])}",
            _mib(small[key]),
            _mib(large[key]),
            "< 1,024 MiB",
            _verdict(max(small[key], large[key]), TARGETS["rss"]),
        )
    if run.models:
        tiers.add(
            "once per machine: distil the static model (model2vec, offline)",
            "",
            seconds(run.models["distill_s"]),
            "",
            "",
            "",
        )
        tiers.add(
            "once per machine: export the contextual model to ONNX",
            "",
            seconds(run.models["export_s"]),
            "",
            "",
            "",
        )
    tiers.notes += [
        "Each time is from the start of indexing in a fresh process (Index.open + update, then "
        "embed_pending per tier), with the derived models already on disk (--first-use adds the "
        "'once per machine' rows: that cost, paid by the first index a machine builds).",
        f"Contextual tier at {LARGE:,} files: {totals[LARGE][1]}; at {SMALL:,}: {totals[SMALL][1]}",
        "plain BM25 column: its build time and peak RSS at 500 / 10,000 files (the baseline below).",
    ]

    rate = run.encoders["rate"]
    encoders = Table(
        f"Encoders on the same {run.encoders['texts']} chunk texts (one process, one after the other)",
        ["encoder", "texts/s", "vs PyTorch eager (before)", "vectors vs fp32"],
    )
    encoders.add(
        "contextual, PyTorch eager (sentence-transformers; the previous default)", rate["torch"], "×1.00", ""
    )
    encoders.add(
        "contextual, ONNX Runtime fp32, length-sorted batches (the new CPU default)",
        rate["onnx"],
        ratio(rate["onnx"], rate["torch"]),
        f"min cosine {run.encoders['onnx_cosine_min']:.5f}",
    )
    encoders.add(
        "contextual, ONNX Runtime int8 (models.embedding.onnx_int8)",
        rate["onnx_int8"],
        ratio(rate["onnx_int8"], rate["torch"]),
        "cosine mean {mean:.4f}, min {min:.4f}".format(**run.encoders["int8_cosine"]),
    )
    encoders.add(
        "static (model2vec distilled from the same model)",
        rate["static"],
        ratio(rate["static"], rate["torch"]),
        "",
    )
    encoders.notes.append(
        f"Threads: all {os.cpu_count()} cores for each (torch's default; ONNX Runtime intra-op threads = "
        "cores). Texts: a stride sample of the 500-file repository's chunks as the index embeds them "
        "(path, symbol, code)."
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
            f"hybrid with the static tier ready, {n:,} files",
            seconds(b[n].result["ready_s"]),
            seconds(e[n].result["static_s"]),
            ratio(e[n].result["static_s"], b[n].result["ready_s"]),
            "< 60 s" if n == LARGE else "",
            _verdict(e[n].result["static_s"], TARGETS["static_10k"]) if n == LARGE else "",
        )
        table.add(
            f"fully contextual, {n:,} files ({totals[n][1]})",
            "n/a",
            seconds(totals[n][0]),
            ratio(totals[n][0], b[n].result["ready_s"]),
            "",
            "",
        )
    for n, r in ((LARGE, large), (SMALL, small)):
        base = b[n].result["latency_ms"]["bm25"]
        for key, label in (
            ("bm25", "bm25 mode"),
            ("hybrid_static", "hybrid mode, static tier only"),
            ("hybrid_synthetic", "hybrid mode, static + one synthetic contextual vector per chunk"),
            ("hybrid", "hybrid mode, both tiers"),
            ("dense", "dense mode, both tiers"),
        ):
            lat = r["latency_ms"].get(key)  # the contextual modes exist only where that tier is complete
            if lat is None:
                continue
            p95 = percentile(lat, 0.95)
            table.add(
                f"query p50 / p95, {n:,} files, {label}",
                f"{_ms(percentile(base, 0.5))} / {_ms(percentile(base, 0.95))}",
                f"{_ms(percentile(lat, 0.5))} / {_ms(p95)}",
                ratio(p95, percentile(base, 0.95)),
                "< 50 ms" if n == LARGE else "",
                _verdict(p95, TARGETS["query_p95_10k"]) if n == LARGE else "",
            )
    for n in (LARGE, SMALL):
        edits = e[n].result["reindex"]
        kw = [x["keyword_s"] for x in edits]
        dense = [x["dense_s"] for x in edits]
        table.add(
            f"re-index one edited file, keyword, {n:,} files (median; max)",
            f"{seconds(b[n].result['ready_s'])} (full rebuild)",
            f"{seconds(_median(kw))}; {seconds(max(kw))}",
            ratio(_median(kw), b[n].result["ready_s"]),
            "< 300 ms",
            _verdict(_median(kw), TARGETS["reindex_keyword"]),
        )
        table.add(
            f"re-index one edited file, keyword + {' + '.join(e[n].result['reindex_tiers'])} tier,"
            f" {n:,} files (median; max)",
            "n/a",
            f"{seconds(_median(dense))}; {seconds(max(dense))}",
            "",
            "< 2 s",
            _verdict(_median(dense), TARGETS["reindex_dense"]),
        )
    for n in (SMALL, LARGE):
        r = e[n].result
        table.add(
            f"peak RSS, {n:,} files",
            _mib(b[n].result["peak_rss"]),
            _mib(r["peak_rss"]),
            ratio(r["peak_rss"], b[n].result["peak_rss"]),
            "",
            "",
        )
    lost = [x["path"] for n in (SMALL, LARGE) for x in e[n].result["reindex"] if not x["found_rank"]]
    table.notes += [
        "plain BM25 = benchmarks/baseline.py: in-memory Okapi BM25 over 50-line windows, bm25s-style "
        "tokens, scipy sparse matrix; no persistence, no incremental update (re-index = full rebuild).",
        "Times are in-process around the Python API (Index.open + update; embed_pending per tier), each "
        "configuration in a fresh process; 'from process launch' adds interpreter start and imports.",
        f"Query latency: warm (one untimed pass), {3} timed passes over semble's 50 queries + 50 "
        "identifiers defined in the repo; re-index: a function appended to 5 mid-sized .py files, "
        "one at a time, timed until update_paths (and embed_pending) return"
        + (
            "; each edited file was then in the top 10 for the new function's name."
            if not lost
            else f"; NOT in the top 10 for the new function's name afterwards: {', '.join(lost)}."
        ),
        "Peak RSS: VmHWM of the measuring process.",
        "1-min load average at the end of each measurement (2 cores; above ~2 means other work competed): "
        + ", ".join(
            f"{who} {n:,}: {m.result['load_after']:.1f}"
            for n in (SMALL, LARGE)
            for who, m in (("baseline", b[n]), ("ragls", e[n]))
        )
        + f", encoders: {run.encoders['load_after']:.1f}.",
    ]
    return [corpus, tiers, encoders, table]
