"""Index commands: ``ragls index``, ``ragls search``, ``ragls status``, ``ragls watch``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from contextlib import closing, contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragls import config
from ragls.cli.arguments import folder, positive
from ragls.indexer.deps.build import build as build_deps
from ragls.indexer.deps.build import deps_store
from ragls.indexer.deps.lookup import SCOPES, scoped_search
from ragls.indexer.embeddings import EmbeddingError
from ragls.indexer.engine import Index, UpdateStats
from ragls.indexer.search import SearchResult

err = Console(stderr=True)
out = Console()


def default_root() -> Path:
    """The enclosing git work tree of the current directory, else the current directory."""
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        return Path(top) if top else Path.cwd()
    except (OSError, subprocess.SubprocessError):
        return Path.cwd()


def resolve_root(value: Path | None) -> Path:
    """The folder given (``arguments.folder`` checked it), else the default one."""
    return value or default_root().resolve()


def open_index(
    root: Path, settings: str | None = None, device: str | None = None, store: dict[str, str] | None = None
) -> Index:
    """The workspace's index; ``settings`` is a JSON object layered over the config files (what an
    editor sends the language server, which passes it on to the ``ragls index`` it starts);
    ``device`` (``--device``) overrides models.embedding.device, ``store`` (``--store``,
    ``--repository``, ``--branch``) the index.* keys it names."""
    overrides = []
    if settings:
        try:
            overrides.append(("--settings", json.loads(settings)))
        except json.JSONDecodeError as exc:
            raise config.ConfigError(f"--settings is not valid JSON: {exc}") from None
    if device:
        overrides.append(("--device", {"models": {"embedding": {"device": device}}}))
    if store:
        overrides.append(("--store", {"index": store}))
    index = Index.open(root, config.load(root, overrides))
    print_notices(index)
    return index


def print_notices(index: Index) -> None:
    for notice in index.notices:
        err.print(f"[yellow]note:[/] {notice}")
    index.notices.clear()


@contextmanager
def progress_bar(enabled: bool):
    """A rich progress bar on stderr, or a no-op callback when output is not for a person."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def report(done: int, total: int, what: str) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield report


def build(
    index: Index,
    show_progress: bool,
    embed: bool = True,
    embed_limit: int | None = None,
    contextual: bool = True,
) -> tuple[UpdateStats, float]:
    """Keyword layer, then the static tier (seconds), then (``contextual``) the contextual tier,
    skipped with a note when more than ``embed_limit`` chunks wait; returns the stats and the
    seconds spent embedding."""
    with progress_bar(show_progress) as report:
        stats = index.update(report)
        started = time.perf_counter()
        try:
            if embed:
                index.embed_pending(report, tiers=["static"])
                print_notices(index)
                if contextual:
                    embed_contextual(index, report, embed_limit)
        except EmbeddingError as exc:
            err.print(f"[red]dense embeddings unavailable:[/] {exc}")
        finally:
            print_notices(index)
    return stats, time.perf_counter() - started


def _json_lines(done: int, total: int, what: str) -> None:
    sys.stdout.write(json.dumps({"event": "progress", "what": what, "done": done, "total": total}) + "\n")
    sys.stdout.flush()


def embed_contextual(index: Index, report, embed_limit: int | None) -> None:
    """The contextual tier in the foreground, unless more than ``embed_limit`` texts wait for it."""
    pending = index.store.count_pending("contextual")
    if not index.contextual_enabled() or not pending:
        return
    if embed_limit is not None and pending > embed_limit:
        err.print(
            f"note: {pending} chunks still need contextual embeddings; answering from the keyword, "
            "symbol and static layers (search.first_search_embed_limit); `ragls index` completes them."
        )
        return
    index.embed_pending(report, tiers=["contextual"])


def _index(args: argparse.Namespace) -> int:
    root = resolve_root(args.path)
    store = {key: value for key in ("store", "repository", "branch") if (value := getattr(args, key))}
    if args.status:
        return _show_status(root, as_json=False, store=store)
    with open_index(root, args.settings, args.device, store) as index:
        index.prioritize(args.first)
        if args.json:
            stats = index.update(_json_lines)
            _json_lines(0, index.pending_embeddings(), "embedding")
            embedded = 0 if args.no_embed else index.embed_pending(_json_lines)
            sys.stdout.write(json.dumps({
                "event": "done", "added": stats.added, "changed": stats.changed, "removed": stats.removed,
                "embedded": embedded, "problems": stats.problems[:20], **index.status(),
            }) + "\n")
            return 0
        stats, embed_seconds = build(
            index, show_progress=err.is_terminal or args.progress, embed=not args.no_embed
        )
        if index.cfg.deps.enabled and not args.no_deps:
            with progress_bar(err.is_terminal or args.progress) as report, closing(deps_store()) as store:
                build_deps(index, store, report)
        status = index.status()
    table = Table(title=f"ragls index: {root}", show_header=False)
    table.add_row("files", str(status["files"]))
    table.add_row("  added / changed / removed", f"{stats.added} / {stats.changed} / {stats.removed}")
    table.add_row("  skipped", str(len(stats.skipped)) + ("" if args.verbose else " (-v lists them)"))
    refused = ", ".join(f"{reason} {n}" for reason, n in status["symlinks_not_followed"].items())
    table.add_row("  symlinks not followed", refused or "none")
    table.add_row("chunks", str(status["chunks"]))
    table.add_row("symbols (definitions)", str(status["symbols"]))
    for name, tier in status["tiers"].items():
        if tier["enabled"]:
            table.add_row(f"embedded chunks, {name} tier", f"{tier['embedded']} of {status['chunks']}")
    langs = ", ".join(f"{k} {v}" for k, v in list(status["languages"].items())[:12])
    table.add_row("languages", langs or "-")
    table.add_row("dependencies", dependencies_line(status["dependencies"]))
    table.add_row("seconds (keyword layer)", f"{stats.seconds:.2f}")
    table.add_row("seconds (embeddings)", f"{embed_seconds:.2f}")
    table.add_row("index", status["store"])
    out.print(table)
    for problem in stats.problems[:20]:
        err.print(f"[yellow]warning:[/] {problem}")
    if args.verbose:
        for skip in stats.skipped:
            err.print(f"skipped {skip.path}: {skip.reason}")
    return 0


def dependencies_line(summary: dict) -> str:
    """The dependency tier in one line: packages, chunks, bytes read, where, what was skipped."""
    if summary["environment"] is None and not summary["packages"]:
        return "; ".join(summary["notes"]) or "not built (ragls deps)"
    return (
        f"{summary['packages']} packages, {summary['chunks']} chunks,"
        f" {summary['bytes'] / 1e6:.1f} MB of source from {summary['environment']};"
        f" {len(summary['skipped'])} skipped (ragls deps -v lists them)"
    )


def _deps(args: argparse.Namespace) -> int:
    """Build the dependency tier (the workspace's own index first, if it has none)."""
    root = resolve_root(args.path)
    with open_index(root, args.settings) as index:
        if index.is_empty():
            index.update()
        report = _json_lines if args.json else None
        shown = not args.json and (err.is_terminal or args.progress)
        with progress_bar(shown) as bar, closing(deps_store()) as store:
            selection = build_deps(index, store, report or bar)
    summary = selection.summary()
    if args.json:
        sys.stdout.write(json.dumps({"event": "done", "seconds": selection.seconds, **summary}) + "\n")
        return 0
    table = Table(title=f"ragls deps: {root}", show_header=False)
    table.add_row("environment", str(summary["environment"]))
    table.add_row("packages", ", ".join(selection.packages) or "none")
    table.add_row("chunks", str(summary["chunks"]))
    table.add_row("source read", f"{summary['bytes'] / 1e6:.1f} MB")
    table.add_row("skipped", str(len(summary["skipped"])) + ("" if args.verbose else " (-v lists them)"))
    table.add_row("seconds", f"{selection.seconds:.2f}")
    table.add_row("store", str(store.path))
    out.print(table)
    for note in summary["notes"]:
        err.print(f"[yellow]note:[/] {note}")
    if args.verbose:
        for what, reason in summary["skipped"].items():
            err.print(f"skipped {what}: {reason}")
    return 0


def _print_results(results: list[SearchResult], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps([r.as_json() for r in results]) + "\n")
        sys.stdout.flush()
        return
    table = Table(show_header=True)
    shared = any(r.repository for r in results)  # a shared index answered: say which repository
    for column in ("#", *(["repository"] if shared else []), "path", "lines", "symbol", "score"):
        table.add_column(column)
    for rank, r in enumerate(results, 1):
        where = [r.repository or "(this workspace)"] if shared else []
        table.add_row(str(rank), *where, r.path, f"{r.start_line}-{r.end_line}", r.symbol, f"{r.score:.4f}")
    out.print(table)


def embed_in_background(index: Index, stop: threading.Event) -> threading.Thread:
    """Every tier's missing vectors (static first, then contextual) on a thread; searches meanwhile
    use whatever each tier has committed."""
    thread = threading.Thread(target=index.embed_pending, kwargs={"stop": stop}, daemon=True)
    thread.start()
    return thread


def _search(args: argparse.Namespace) -> int:
    if not args.stdin and not args.query:
        raise SystemExit("ragls search: give a QUERY or --stdin")
    root = resolve_root(args.root)
    with open_index(root, device=args.device) as index:
        if index.is_empty():
            build(
                index,
                show_progress=err.is_terminal and not args.json,
                embed_limit=index.cfg.search.first_search_embed_limit,
            )
        if not args.stdin:
            scope = "all" if args.deps else args.scope
            results = scoped_search(index, args.query, args.top_k, args.mode, scope)
            print_notices(index)  # e.g. a shared index left out
            _print_results(results, args.json)
            return 0
        return _serve_stdin(index, args)


def _serve_stdin(index: Index, args: argparse.Namespace) -> int:
    """One query per input line, one answer per output line; the engine stays loaded and the
    index stays current (changed files are picked up and embedded in the background)."""
    from ragls.indexer.watcher import Watcher

    index.update()
    stop = threading.Event()
    embedder = embed_in_background(index, stop)
    watcher = Watcher(index).start() if args.watch else None
    try:
        for line in sys.stdin:
            query = line.strip()
            try:
                results = index.search(query, args.top_k, args.mode) if query else []
            except Exception as exc:  # one bad query must not end the session
                err.print(f"ragls search: {query!r}: {exc}")
                results = []
            print_notices(index)
            _print_results(results, as_json=True)
    finally:
        stop.set()
        if watcher:
            watcher.stop()
        embedder.join()
    return 0


def _status(args: argparse.Namespace) -> int:
    return _show_status(resolve_root(args.root), args.json)


def _show_status(root: Path, as_json: bool, store: dict[str, str] | None = None) -> int:
    """What the index holds, each dense tier on its own line (no model is loaded for it)."""
    with open_index(root, store=store) as index:
        status = index.status()
    if as_json:
        print(json.dumps(status))
        return 0
    table = Table(title=f"ragls status: {root}", show_header=False)
    for key, value in status.items():
        if key == "tiers":
            for name, tier in value.items():
                state = f"off (index.contextual = '{index.cfg.index.contextual}')"
                if tier["enabled"]:
                    state = f"{tier['embedded']} of {status['chunks']} chunks, {tier['pending']} pending"
                table.add_row(f"{name} tier", f"{state}; model {tier['model'] or '-'}")
            continue
        if key == "dependencies":
            table.add_row("dependencies", dependencies_line(value))
            continue
        shown = str(value)
        if isinstance(value, dict):
            shown = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        table.add_row(key.replace("_", " "), shown)
    out.print(table)
    return 0


def _watch(args: argparse.Namespace) -> int:
    from ragls.indexer.watcher import Watcher

    root = resolve_root(args.path)
    with open_index(root, device=args.device) as index:
        build(index, show_progress=err.is_terminal, contextual=False)
        stop = threading.Event()
        embedder = embed_in_background(index, stop)

        def report(stats: UpdateStats) -> None:
            err.print(
                f"updated: +{stats.added} ~{stats.changed} -{stats.removed} files"
                f" in {stats.seconds * 1000:.0f} ms"
            )

        watcher = Watcher(index, on_update=report).start()
        err.print(f"watching {root} (Ctrl-C to stop)")
        try:
            threading.Event().wait()
        finally:
            stop.set()
            watcher.stop()
            embedder.join()
    return 0


def _device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        help="where the contextual model runs (default: models.embedding.device); "
        "cuda without a GPU falls back to the CPU with a note",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index a folder (incremental)")
    p.add_argument(
        "path", nargs="?", type=folder, help="workspace root (default: enclosing git repository or cwd)"
    )
    p.add_argument("--no-embed", action="store_true", help="build only the keyword and symbol layers")
    p.add_argument(
        "--no-deps", action="store_true", help="do not index the dependencies afterwards (`ragls deps`)"
    )
    p.add_argument("--status", action="store_true", help="only report what the index holds (`ragls status`)")
    _device_option(p)
    p.add_argument(
        "--progress", action="store_true", help="show the progress bar even when not on a terminal"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="list skipped files and why")
    p.add_argument(
        "--json", action="store_true", help="print progress and the result as JSON lines (for programs)"
    )
    p.add_argument("--settings", metavar="JSON", help="a JSON object layered over the config files")
    p.add_argument(
        "--first", metavar="FILE", action="append", default=[],
        help="embed this file's chunks first (repeatable; the language server names the open files)",
    )
    p.add_argument(
        "--store", metavar="DSN",
        help="index into this PostgreSQL database (postgresql://...; the password from PGPASSWORD or "
        "~/.pgpass) instead of index.store",
    )
    p.add_argument("--repository", metavar="NAME", help="the repository's name in a PostgreSQL store")
    p.add_argument("--branch", metavar="NAME", help="the branch's name in a PostgreSQL store")
    p.set_defaults(run=_index)

    p = sub.add_parser("search", help="search the index (builds it first if there is none)")
    p.add_argument("query", nargs="?")
    p.add_argument("--root", type=folder, help="workspace root (default: enclosing git repository or cwd)")
    p.add_argument("--top-k", type=positive, default=10, help="results to print (1 or more)")
    p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    p.add_argument("--json", action="store_true", help="print a JSON list of results")
    p.add_argument(
        "--stdin", action="store_true", help="read one query per line, print one JSON list per line"
    )
    p.add_argument("--watch", action="store_true", help="with --stdin: keep the index current while running")
    p.add_argument(
        "--scope", choices=SCOPES, default="workspace",
        help="search the workspace, its dependencies' signatures (`ragls deps` builds them) or both",
    )
    p.add_argument("--deps", action="store_true", help="the same as --scope all")
    _device_option(p)
    p.set_defaults(run=_search)

    p = sub.add_parser(
        "deps", help="index the signatures and docstrings of the packages the workspace imports, as installed"
    )
    p.add_argument(
        "path", nargs="?", type=folder, help="workspace root (default: enclosing git repository or cwd)"
    )
    p.add_argument("--json", action="store_true", help="print progress and the result as JSON lines")
    p.add_argument(
        "--progress", action="store_true", help="show the progress bar even when not on a terminal"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="list skipped packages and files and why")
    p.add_argument("--settings", metavar="JSON", help="a JSON object layered over the config files")
    p.set_defaults(run=_deps)

    p = sub.add_parser("status", help="what the index holds")
    p.add_argument("--root", type=folder, help="workspace root (default: enclosing git repository or cwd)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_status)

    p = sub.add_parser("watch", help="index, then keep the index current as files change")
    p.add_argument(
        "path", nargs="?", type=folder, help="workspace root (default: enclosing git repository or cwd)"
    )
    _device_option(p)
    p.set_defaults(run=_watch)
