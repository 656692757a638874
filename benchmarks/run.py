"""``python -m benchmarks.run``: every search benchmark of ragls in one command.

Fetches the corpora (first run only), runs the semble-protocol quality benchmark and the speed
benchmark, prints the tables and writes them as Markdown to ``benchmarks/results/latest.md``
(with the commit and machine they were measured on) for pasting into the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from benchmarks import ours, semble_quality, speed
from benchmarks.report import Table, markdown, print_tables

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quality-only", action="store_true", help="skip the speed benchmark")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality benchmark")
    parser.add_argument(
        "--reuse-index",
        action="store_true",
        help="quality: keep the indexes of the previous run (fast loop when tuning ranking; "
        "wrong after chunking or embedding changes, which need a rebuild)",
    )
    parser.add_argument(
        "--whole-project",
        action="store_true",
        help="quality: index the whole unpacked sdist/tarball (docs, tests, examples too) instead of "
        "semble's benchmark_root; harder than the published protocol",
    )
    parser.add_argument(
        "--dense-10k",
        action="store_true",
        help="speed: measure dense embedding of the 10,000-file repository (hours on a 2-core CPU) "
        "instead of extrapolating it",
    )
    parser.add_argument(
        "--first-use",
        action="store_true",
        help="speed: also time what a new machine pays once (distilling the static model, exporting "
        "the ONNX model; minutes on a 2-core CPU)",
    )
    parser.add_argument("--failures-below", type=float, default=semble_quality.FAILURE_NDCG, metavar="NDCG")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.md", help="Markdown output file")
    return parser.parse_args(argv)


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def snapshot() -> str:
    """What is about to be measured (taken at the start: others may commit during a long run)."""
    measured = ("pyproject.toml", "ragls", "indexer", "recipes", "server", "benchmarks")
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--", *measured) else ""
    return f"commit `{_git('rev-parse', '--short', 'HEAD')}`{dirty}"


def header(code: str, load_before: tuple[float, ...], command: str) -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
        platform.machine(),
    )
    return (
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} at {code}; "
        f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}; "
        f"1-min load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
        "(other work on the machine slows the timings).\n"
        f"Reproduce with {command}.\n"
    )


def write_report(
    out: Path, title: str, command: str, code: str, load_before: tuple[float, ...], tables: list[Table]
) -> None:
    """The Markdown copy of a benchmark's tables, headed by what was measured where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"## {title}\n\n{header(code, load_before, command)}\n{markdown(tables)}", encoding="utf-8"
    )


@dataclass(frozen=True)
class Session:
    """What a benchmark run takes before measuring: where it logs, the commit, the load."""

    console: Console
    code: str
    load_before: tuple[float, ...]
    started: float  # perf_counter at the start: finish says how long the run took


def begin() -> Session:
    """Open a run: what is measured and the load, taken before anything starts."""
    return Session(Console(stderr=True, log_path=False), snapshot(), os.getloadavg(), time.perf_counter())


def start() -> Session | None:
    """Open a run; None (after saying why) when ragls' engine does not import."""
    session = begin()
    missing = ours.engine_available()
    if missing:
        session.console.print(f"[red]ragls' engine does not import ({missing}); nothing to benchmark.[/red]")
        return None
    return session


@contextmanager
def indexing_progress(console: Console) -> Iterator[Callable[[int, int, str], None]]:
    """A transient progress bar for the engine's ``progress(done, total, what)`` callbacks."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("indexing", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        yield progress


def finish(
    session: Session, tables: list[Table], out: Path, title: str, command: str, details: list[dict] = ()
) -> None:
    """Print the tables, write their Markdown copy and (if any) the per-query JSON beside it."""
    terminal = Console()
    print_tables(tables, terminal if terminal.is_terminal else Console(width=200))
    write_report(out, title, command, session.code, session.load_before, tables)
    took = time.perf_counter() - session.started
    session.console.print(f"done in {took:.0f} s; Markdown tables written to {out}")
    if details:
        per_query_file = out.with_suffix(".queries.json")
        per_query_file.write_text(json.dumps(details, indent=1), encoding="utf-8")
        session.console.print(f"Per-query results (every system, top 10) written to {per_query_file}")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    session = start()
    if session is None:
        return 1
    log = session.console.log
    tables: list[Table] = []
    details: list[dict] = []
    with indexing_progress(session.console) as progress:
        if not args.speed_only:
            runs = semble_quality.run_all(
                fresh=not args.reuse_index, whole_project=args.whole_project, log=log, progress=progress
            )
            tables += semble_quality.tables(runs, args.whole_project)
            tables.append(semble_quality.failures(runs, threshold=args.failures_below))
            details = semble_quality.per_query(runs)
        if not args.quality_only:
            tables += speed.tables(speed.run_all(dense_10k=args.dense_10k, first_use=args.first_use, log=log))
    command = "`python -m benchmarks.run` (or `make bench`)"
    finish(session, tables, args.out, "ragls search benchmarks", command, details)
    return 0


if __name__ == "__main__":
    sys.exit(main())
