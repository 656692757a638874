"""One speed measurement in its own process: ``python -m benchmarks.speed_worker '<json job>'``.

A fresh process per measurement makes peak RSS (``ru_maxrss`` of that process) mean exactly
"this workload", and keeps one run's warm caches (models, SQLite pages, Python objects) out
of the next. Timings are taken in-process around the Python API; the job's result is printed
as one ``RESULT {json}`` line on stdout, progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import ours
from benchmarks.baseline import PlainBM25

WARMUP_PASSES = 1
TIMED_PASSES = 3


def say(message: str) -> None:
    print(f"  [worker] {message}", file=sys.stderr, flush=True)


def peak_rss_bytes() -> int:
    """This process's peak RSS. Linux's ``ru_maxrss`` survives fork + exec (a worker would
    report its parent's peak), so the per-image ``VmHWM`` is read where it exists."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def latencies_ms(search: Callable[[str], object], queries: list[str]) -> list[float]:
    """Warm per-query latencies: one untimed pass (loads models, fills caches), then timed passes."""
    for _ in range(WARMUP_PASSES):
        for q in queries:
            search(q)
    out = []
    for _ in range(TIMED_PASSES):
        for q in queries:
            started = time.perf_counter()
            search(q)
            out.append((time.perf_counter() - started) * 1000)
    return out


def baseline_job(root: Path, queries: list[str]) -> dict:
    started = time.perf_counter()
    index = PlainBM25.build(root)
    ready = time.perf_counter() - started
    ready_wall = time.time()
    return {
        "ready_s": ready,
        "ready_wall": ready_wall,
        "files": index.files,
        "units": len(index.windows),
        "latency_ms": {"bm25": latencies_ms(lambda q: index.search(q, 10), queries)},
        "peak_rss": peak_rss_bytes(),
    }


def _probe(i: int) -> str:
    return f"\n\ndef ragls_bench_probe_{i}(value):\n    return value + {i}\n"


def engine_job(root: Path, queries: list[str], edits: list[str], dense: bool, purpose: str) -> dict:
    ours.wipe(root, purpose)
    started = time.perf_counter()
    index = ours.open_index(root, purpose)
    stats = index.update()
    out: dict = {
        "ready_s": time.perf_counter() - started,
        "ready_wall": time.time(),
        "files": stats.files,
        "chunks": stats.chunks,
        "pending_embeddings": index.pending_embeddings(),
        "problems": len(stats.problems),
        "rss_keyword": peak_rss_bytes(),
        "latency_ms": {},
    }
    say(f"keyword layer ready: {stats.files} files, {stats.chunks} chunks, {out['ready_s']:.1f} s")
    out["latency_ms"]["bm25"] = latencies_ms(lambda q: index.search(q, 10, mode="bm25"), queries)
    if dense:
        embed_started = time.perf_counter()
        out["embedded"] = index.embed_pending()
        out["embed_s"] = time.perf_counter() - embed_started
        out["dense_s"] = time.perf_counter() - started
        say(f"dense layer complete: {out['embedded']} texts in {out['embed_s']:.0f} s")
    else:
        say("no dense layer: hybrid below runs on keyword + symbol + path signals only")
    out["latency_ms"]["hybrid"] = latencies_ms(lambda q: index.search(q, 10, mode="hybrid"), queries)
    if dense:
        out["latency_ms"]["dense"] = latencies_ms(lambda q: index.search(q, 10, mode="dense"), queries)
    else:
        _load_synthetic_vectors(index)
        say(f"synthetic dense layer: {index.vectors.size} random unit vectors (query cost only)")
        out["latency_ms"]["hybrid_synthetic"] = latencies_ms(
            lambda q: index.search(q, 10, mode="hybrid"), queries
        )
    out["reindex"] = [_reindex_one(index, root, rel, i, dense) for i, rel in enumerate(edits)]
    index.close()
    out["peak_rss"] = peak_rss_bytes()
    return out


def _load_synthetic_vectors(index) -> None:
    """Give every chunk a random unit vector, in memory only: a flat faiss index costs the same
    to search whatever its values, so hybrid query latency at full size can be timed without
    the hour it takes to embed 10,000 files on this CPU (the query itself is embedded for real)."""
    ids = [row[0] for row in index.store.db.execute("SELECT id FROM chunks")]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(ids), index.embedder.encode_query("warm up").shape[0])).astype(
        np.float32
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index.vectors.add(list(zip(ids, vectors, strict=True)))


def _reindex_one(index, root: Path, rel: str, i: int, dense: bool) -> dict:
    """Append a function to one file, time making it searchable, check it is, restore the file."""
    path = root / rel
    original = path.read_bytes()
    try:
        path.write_bytes(original + _probe(i).encode())
        started = time.perf_counter()
        index.update_paths([path])
        result = {"path": rel, "keyword_s": time.perf_counter() - started}
        if dense:
            index.embed_pending()
            result["dense_s"] = time.perf_counter() - started
        top = index.search(f"ragls_bench_probe_{i}", 10, mode="bm25")
        result["found_rank"] = next((r for r, hit in enumerate(top, 1) if hit.path == rel), None)
    finally:
        path.write_bytes(original)
        index.update_paths([path])
        if dense:
            index.embed_pending()
    return result


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    root = Path(job["root"])
    queries = json.loads(Path(job["queries"]).read_text())
    if job["kind"] == "baseline":
        result = baseline_job(root, queries)
    else:
        result = engine_job(root, queries, job["edits"], job["dense"], job["purpose"])
    result["load_after"] = os.getloadavg()[0]  # other work on the machine inflates timings
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
