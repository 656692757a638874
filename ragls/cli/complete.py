"""``ragls complete FILE:LINE:COL``: the inline completion the editor would show, from a shell.

Recently edited files are a daemon-side notion (the server sees edits); a one-shot CLI has
none, so it passes the most recently modified indexed files as a proxy for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.markup import escape

from ragls.cli.arguments import folder, non_negative
from ragls.cli.index import build, err, open_index, out, resolve_root
from ragls.llm.base import LLMError
from ragls.recipes.completion import CompletionResult, PositionError, complete, relative_path

RECENT_FILES = 5


def parse_position(value: str) -> tuple[str, int, int]:
    """``FILE:LINE:COL`` (1-based); the file name itself may contain colons."""
    try:
        path, line, col = value.rsplit(":", 2)
        return path, int(line), int(col)
    except ValueError:
        raise SystemExit(f"ragls complete: expected FILE:LINE:COL (1-based), got {value!r}") from None


def recent_files(index, exclude: str) -> list[str]:
    """The most recently modified indexed files: the CLI's stand-in for the editor's recent edits."""
    records = sorted(index.store.files().values(), key=lambda r: -r.mtime_ns)
    return [r.path for r in records if r.path != exclude][:RECENT_FILES]


def as_json(result: CompletionResult) -> dict:
    return {
        "completion": result.completion,
        "context": [
            {"path": s.path, "start_line": s.start_line, "end_line": s.end_line, "source": s.source}
            for s in result.context
        ],
        "timings_ms": result.timings_ms,
        "copied": [c.as_json() for c in result.copied],
        "mode": result.mode,
        "template": result.template,
        "error": result.error,
        "prompt_tokens": result.prompt_tokens,
        "read_tokens": result.read_tokens,
        "over_budget": result.over_budget,
    }


def _explain(result: CompletionResult) -> None:
    out.rule(f"context ({len(result.context)} snippets, prompt order) · {result.template} · {result.mode}")
    for s in result.context:
        out.print(f"[bold]{escape(s.label)}[/] ({s.source})")
        out.print(escape(s.text.rstrip()), highlight=False)
    timings = ", ".join(f"{k} {v:.0f}" for k, v in result.timings_ms.items())
    read = f"{result.prompt_tokens} tokens, {result.read_tokens} read"
    out.print(f"[dim]prompt: {read}; timings (ms): {timings}[/]")
    if result.over_budget:
        out.print(f"[dim]{escape(result.over_budget)}: a file-only prompt was used (--budget-ms 0: none)[/]")
    for c in result.copied:
        out.print(f"[yellow]copied:[/] {c.tokens} tokens match {c.path}:{c.start_line}-{c.end_line}")


def _run(args: argparse.Namespace) -> int:
    file, line, col = parse_position(args.position)
    root = resolve_root(args.root)
    target = Path(file).expanduser()
    if not target.is_file():
        err.print(f"ragls complete: {file}: no such file")
        return 2
    with open_index(root) as index:
        if index.is_empty():
            # Completion reads the keyword and symbol layers only; `ragls index` adds embeddings.
            build(index, show_progress=err.is_terminal and not args.json, embed=False)
        provider = None
        if not args.context_only:
            from ragls.llm import factory

            try:
                provider = factory.create("completion", index.cfg)
            except (LLMError, ValueError) as exc:
                err.print(f"ragls complete: {exc}")
                return 1
        rel = relative_path(index, target)
        budget = index.cfg.server.latency_budget_ms.invoked if args.budget_ms is None else args.budget_ms
        try:
            result = complete(
                index, provider, target, line, col,
                context_only=args.context_only, mode=args.mode, recent=recent_files(index, rel),
                budget_ms=budget, invoked=True,
            )  # fmt: skip
        except (PositionError, OSError) as exc:
            err.print(f"ragls complete: {file}: {exc}")
            return 2
        finally:
            if provider is not None:
                provider.close()
    # The editor shows nothing when the model fails; a shell gets the reason and a failed status.
    failed = 1 if result.error else 0
    if args.json:
        sys.stdout.write(json.dumps(as_json(result)) + "\n")
        return failed
    sys.stdout.write(result.completion + ("\n" if result.completion else ""))
    if result.error:
        print(f"ragls complete: model error: {' '.join(result.error.split())}", file=sys.stderr)
    if args.explain:
        _explain(result)
    return failed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("complete", help="inline completion at FILE:LINE:COL (1-based)")
    p.add_argument("position", metavar="FILE:LINE:COL")
    p.add_argument("--root", type=folder, help="workspace root (default: enclosing git repository or cwd)")
    p.add_argument("--json", action="store_true", help="print completion, context and timings as JSON")
    p.add_argument("--explain", action="store_true", help="also print the context the prompt used")
    p.add_argument("--context-only", action="store_true", help="assemble the context; do not call the model")
    p.add_argument("--mode", choices=["auto", "single", "multi"], default="auto")
    p.add_argument(
        "--budget-ms", type=non_negative, default=None,
        help="caps the prompt tokens read (default: server.latency_budget_ms.invoked; 0: no limit)",
    )  # fmt: skip
    p.set_defaults(run=_run)
