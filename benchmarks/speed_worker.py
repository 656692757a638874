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
import shutil
import sys
import threading
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


def engine_job(
    root: Path, queries: list[str], edits: list[str], contextual: int | None, purpose: str
) -> dict:
    """Keyword layer, static tier, contextual tier (all of it when ``contextual`` is None, else
    about that many texts, to measure its rate), each timed from the start of indexing."""
    ours.wipe(root, purpose)
    started, cpu_started = time.perf_counter(), time.process_time()
    index = ours.open_index(root, purpose)
    stats = index.update()
    out: dict = {
        "ready_s": time.perf_counter() - started,
        "ready_cpu_s": time.process_time() - cpu_started,  # all threads; load moves it less than wall time
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
    tier_started, cpu_tier_started = time.perf_counter(), time.process_time()
    out["static_texts"] = index.embed_pending(tiers=["static"])
    out["static_embed_s"] = time.perf_counter() - tier_started
    out["static_s"] = out["ready_s"] + out["static_embed_s"]  # keyword + static, search time excluded
    out["static_cpu_s"] = out["ready_cpu_s"] + time.process_time() - cpu_tier_started
    out["rss_static"] = peak_rss_bytes()
    say(f"static tier complete: {out['static_texts']} texts in {out['static_embed_s']:.1f} s")
    out["latency_ms"]["hybrid_static"] = latencies_ms(lambda q: index.search(q, 10, mode="hybrid"), queries)

    stop = threading.Event()

    def stop_after(done: int, total: int, what: str) -> None:
        if contextual is not None and done >= contextual:
            stop.set()

    tier_started = time.perf_counter()
    out["contextual_texts"] = index.embed_pending(stop_after, stop, tiers=["contextual"])
    out["contextual_embed_s"] = time.perf_counter() - tier_started
    out["contextual_complete"] = index.pending_embeddings() == 0
    if out["contextual_complete"]:
        out["dense_s"] = out["static_s"] + out["contextual_embed_s"]
    say(f"contextual tier: {out['contextual_texts']} texts in {out['contextual_embed_s']:.0f} s")
    if out["contextual_complete"]:
        out["latency_ms"]["hybrid"] = latencies_ms(lambda q: index.search(q, 10, mode="hybrid"), queries)
        out["latency_ms"]["dense"] = latencies_ms(lambda q: index.search(q, 10, mode="dense"), queries)
    else:
        _load_synthetic_vectors(index)
        say(f"synthetic contextual tier: {index.tiers['contextual'].vectors.size} random unit vectors")
        out["latency_ms"]["hybrid_synthetic"] = latencies_ms(
            lambda q: index.search(q, 10, mode="hybrid"), queries
        )
    # an edit re-embeds the tiers that are complete (not the rest of an unfinished contextual tier)
    tiers = ["static", "contextual"] if out["contextual_complete"] else ["static"]
    out["reindex_tiers"] = tiers
    out["reindex"] = [_reindex_one(index, root, rel, i, tiers) for i, rel in enumerate(edits)]
    index.close()
    out["peak_rss"] = peak_rss_bytes()
    return out


def _load_synthetic_vectors(index) -> None:
    """Give every chunk a random contextual unit vector, in memory only: a flat faiss index costs
    the same to search whatever its values, so hybrid query latency at full size can be timed
    without embedding 10,000 files on this CPU (the query itself is embedded for real)."""
    ids = [row[0] for row in index.store.db.execute("SELECT id FROM chunks")]
    tier = index.tiers["contextual"]
    rng = np.random.default_rng(0)
    dim = tier.encoder.encode_query("warm up").shape[0]
    vectors = rng.standard_normal((len(ids), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tier.vectors.add(list(zip(ids, vectors, strict=True)))


def _reindex_one(index, root: Path, rel: str, i: int, tiers: list[str]) -> dict:
    """Append a function to one file, time making it searchable, check it is, restore the file."""
    path = root / rel
    original = path.read_bytes()
    try:
        path.write_bytes(original + _probe(i).encode())
        started = time.perf_counter()
        index.update_paths([path])
        result = {"path": rel, "keyword_s": time.perf_counter() - started}
        index.embed_pending(tiers=tiers)
        result["dense_s"] = time.perf_counter() - started
        top = index.search(f"ragls_bench_probe_{i}", 10, mode="bm25")
        result["found_rank"] = next((r for r, hit in enumerate(top, 1) if hit.path == rel), None)
    finally:
        path.write_bytes(original)
        index.update_paths([path])
        index.embed_pending(tiers=tiers)
    return result


def models_job(fresh: bool) -> dict:
    """The derived models in the benchmark's models folder, which the other jobs use: the static
    model distilled and the ONNX model exported. ``fresh`` empties the folder first, so the times
    are a new machine's first use; otherwise what is there is kept (and the times mean nothing)."""
    from ragls.indexer import model_cache

    ours.isolate("first-use")  # the benchmark's models folder: never the user's derived models
    if fresh:
        shutil.rmtree(model_cache.models_dir(), ignore_errors=True)
    index_cfg = ours.default_config()
    out: dict = {"ready_wall": time.time(), "ready_s": 0.0}
    from ragls.indexer.embeddings import ContextualEncoder
    from ragls.indexer.static_model import StaticEncoder

    started = time.perf_counter()
    StaticEncoder(index_cfg.models.static, index_cfg.models.embedding).load()
    out["distill_s"] = time.perf_counter() - started
    say(f"static model distilled in {out['distill_s']:.0f} s")
    started = time.perf_counter()
    ContextualEncoder(index_cfg.models.embedding).load()
    out["export_s"] = time.perf_counter() - started
    say(f"contextual model exported to ONNX and loaded in {out['export_s']:.0f} s")
    out["peak_rss"] = peak_rss_bytes()
    return out


ENCODER_SAMPLE = 192


def encoders_job(root: Path, purpose: str) -> dict:
    """texts/s of each encoder on the same chunk texts, in one process: the eager PyTorch
    baseline (sentence-transformers, as before this change), ONNX fp32 and int8, static."""
    import dataclasses

    from benchmarks.corpora import stride_sample
    from ragls.indexer.embeddings import ContextualEncoder
    from ragls.indexer.static_model import StaticEncoder

    index = ours.open_index(root, purpose)  # the speed job's index of the same corpus
    ids = [row[0] for row in index.store.db.execute("SELECT id FROM chunks ORDER BY id")]
    inputs = index.store.embed_inputs(stride_sample(ids, ENCODER_SAMPLE))
    texts = list(inputs.values())
    cfg = index.cfg.models.embedding
    encoders = {
        "static": StaticEncoder(index.cfg.models.static, cfg),
        "torch": ContextualEncoder(dataclasses.replace(cfg, backend="torch")),
        "onnx": ContextualEncoder(dataclasses.replace(cfg, backend="onnx")),
        "onnx_int8": ContextualEncoder(dataclasses.replace(cfg, backend="onnx", onnx_int8=True)),
    }
    out: dict = {"ready_wall": time.time(), "ready_s": 0.0, "texts": len(texts), "rate": {}}
    vectors = {}
    for name, encoder in encoders.items():
        encoder.encode(texts[:16])  # load, export if needed, warm up
        started = time.perf_counter()
        vectors[name] = encoder.encode(texts)
        out["rate"][name] = len(texts) / (time.perf_counter() - started)
        say(f"{name}: {out['rate'][name]:.1f} texts/s")
    agreement = np.sum(vectors["onnx_int8"] * vectors["onnx"], axis=1)
    out["int8_cosine"] = {"mean": float(agreement.mean()), "min": float(agreement.min())}
    fp32 = np.sum(vectors["onnx"] * vectors["torch"], axis=1)
    out["onnx_cosine_min"] = float(fp32.min())
    index.close()
    out["peak_rss"] = peak_rss_bytes()
    return out


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    root = Path(job["root"])
    queries = json.loads(Path(job["queries"]).read_text()) if job["queries"] else []
    if job["kind"] == "baseline":
        result = baseline_job(root, queries)
    elif job["kind"] == "encoders":
        result = encoders_job(root, job["purpose"])
    elif job["kind"] == "models":
        result = models_job(job["fresh"])
    else:
        result = engine_job(root, queries, job["edits"], job["contextual"], job["purpose"])
    result["load_after"] = os.getloadavg()[0]  # other work on the machine inflates timings
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
