"""Recipe commands: ``ragls ask``, ``ragls recipe NAME FILE[:LINE[-LINE]]``, ``ragls recipes``.

Answers stream to stdout as the model writes them; notes, warnings and progress go to stderr,
so ``ragls ask Q > answer.md`` captures the answer and its sources only.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack, contextmanager
from itertools import chain
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from ragls.cli.arguments import folder, positive
from ragls.cli.index import _print_results as print_results
from ragls.cli.index import build, err, open_index, out, resolve_root
from ragls.config import Config, Verbosity
from ragls.indexer.engine import Index
from ragls.llm import factory
from ragls.recipes import registry
from ragls.recipes.ask import AskResult, Conversation, route
from ragls.recipes.citations import Citation
from ragls.recipes.run import RecipeResult, answer, prepare


@contextmanager
def _ready_index(args: argparse.Namespace):
    """The workspace index, built first if there is none and brought up to date otherwise
    (citations are verified against it, so it must match the files on disk)."""
    root = resolve_root(args.root)
    with open_index(root) as index:
        if index.is_empty():
            build(index, show_progress=err.is_terminal and not args.json,
                  embed_limit=index.cfg.search.first_search_embed_limit)
        else:
            index.update()
        yield index


@contextmanager
def _provider(index: Index, role: str, cfg: Config | None = None):
    """The model for ``role`` under the index's settings (or ``cfg``: the arena's), closed after."""
    provider = factory.create(role, cfg or index.cfg)
    try:
        yield provider
    finally:
        provider.close()


def _stream_to_stdout(enabled: bool):
    if not enabled:
        return None

    def write(delta: str) -> None:
        sys.stdout.write(delta)
        sys.stdout.flush()

    return write


def _verbosity(index: Index, args: argparse.Namespace) -> Verbosity:
    """--terse / --detailed for this question, else answers.verbosity."""
    return args.verbosity or index.cfg.answers.verbosity


def _print_citations(citations: list[Citation], dropped: list[tuple[Citation, str]]) -> None:
    if citations:
        out.print("\n[bold]Sources[/] (cited in the answer, verified in the index):")
        for c in citations:
            out.print(f"  {escape(c.label)}")
    if dropped:
        shown = ", ".join(f"{c.label} ({why})" for c, why in dropped[:8])
        err.print(f"[yellow]note:[/] dropped {len(dropped)} citation(s) that could not be verified: "
                  f"{escape(shown)}")


def _print_notes(notes: list[str], copies: list) -> None:
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    for copy in copies:
        err.print(f"[yellow]copied code:[/] {escape(str(copy))}")


def _ask(args: argparse.Namespace) -> int:
    if not args.question and not args.chat:
        raise SystemExit("ragls ask: give a QUESTION, or --chat to read questions from stdin")
    status = 0
    with _ready_index(args) as index, ExitStack() as stack:
        recipe = registry.load(index.root).get("ask")
        conversation = Conversation(index, None, index.cfg.recipes, recipe)
        questions = chain([args.question] if args.question else [], sys.stdin if args.chat else [])
        for question in (q.strip() for q in questions):
            if not question:
                continue
            if route(question) == "answer" and conversation.provider is None:  # loaded once, when needed
                conversation.provider = stack.enter_context(_provider(index, recipe.role))
            result = conversation.ask(question, top_k=args.top_k, on_delta=_stream_to_stdout(not args.json),
                                      verbosity=_verbosity(index, args))
            if args.json:
                sys.stdout.write(json.dumps(result.as_json()) + "\n")
                sys.stdout.flush()
                _print_notes(result.notes, result.copies)
            else:
                _print_ask(result)
            status = 1 if result.route == "answer" and not result.answer else 0
    return status


def _print_ask(result: AskResult) -> None:
    if result.route == "search":
        err.print("[dim]the query reads as a search (ask a question for an answer)[/]")
        print_results(result.hits, as_json=False)
        return
    sys.stdout.write("\n")
    _print_citations(result.citations, result.dropped)
    if result.answer and not result.citations and result.sources:
        out.print("\n[bold]Retrieved sources[/] (what the answer was given; it cited none of it verifiably):")
        for s in result.sources:
            out.print(f"  {escape(s.label)}")
    _print_notes(result.notes, result.copies)


def _recipe(args: argparse.Namespace) -> int:
    with _ready_index(args) as index:
        reg = registry.load(index.root)
        for problem in reg.problems:
            err.print(f"[yellow]warning:[/] recipe file {escape(str(problem))}")
        try:
            recipe = reg.get(args.name)
        except KeyError as exc:
            err.print(f"ragls recipe: {exc.args[0]}")
            return 2
        prepared = prepare(index, recipe, args.target, question=args.question or "", cwd=Path.cwd())
        with _provider(index, recipe.role) as provider:
            result = answer(index, prepared, provider, index.cfg.recipes,
                            on_delta=_stream_to_stdout(not args.json), verbosity=_verbosity(index, args))
    if args.json:
        sys.stdout.write(json.dumps(result.as_json()) + "\n")
        _print_notes(result.notes, result.copies)
    else:
        _print_recipe(result, recipe)
    # An empty completion is an answer ("nothing worth suggesting"); an empty explanation is not.
    return 0 if result.answer or recipe.runner == "complete" else 1


def _print_recipe(result: RecipeResult, recipe: registry.Recipe) -> None:
    if recipe.runner == "complete":
        sys.stdout.write(result.answer)
        if not result.answer:
            err.print("[yellow]note:[/] no completion: nothing worth suggesting at the end of that line")
    sys.stdout.write("\n")
    _print_citations(result.citations, result.dropped)
    if result.target_path:
        err.print(f"[dim]belongs in: {escape(result.target_path)}[/]")
    if result.context:
        labels = ", ".join(f"{s.label} ({s.source})" for s in result.context)
        err.print(f"[dim]context: {escape(labels)}[/]")
    _print_notes(result.notes, result.copies)


def _recipes(args: argparse.Namespace) -> int:
    root = resolve_root(args.root)
    reg = registry.load(root)
    if args.json:
        sys.stdout.write(json.dumps(reg.as_json()) + "\n")
        return 0
    table = Table(title="recipes")
    for column in ("name", "title", "output", "role", "context", "from"):
        table.add_column(column, overflow="fold")
    for r in sorted(reg.recipes.values(), key=lambda r: r.name):
        replaced = reg.overridden.get(r.name)
        origin = r.origin + (f" (overrides {', '.join(replaced)})" if replaced else "")
        table.add_row(r.name, r.title, r.output, r.role, ", ".join(r.context), origin)
    out.print(table)
    for problem in reg.problems:
        err.print(f"[yellow]warning:[/] recipe file not loaded: {escape(str(problem))}")
    return 0


def _verbosity_flags(p: argparse.ArgumentParser) -> None:
    """This answer's length, over answers.verbosity."""
    group = p.add_mutually_exclusive_group()
    for level, help_ in (("terse", "a sentence or two"), ("normal", "a few sentences or bullets"),
                         ("detailed", "step by step")):
        group.add_argument(f"--{level}", dest="verbosity", action="store_const", const=level,
                           help=f"{help_} (answers.verbosity)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="ask about the repository: a cited answer, or search results for a search")
    p.add_argument("question", nargs="?", help="a question (answered), or a symbol / path / keywords")
    p.add_argument("--root", type=folder, help="workspace root (default: enclosing git repository or cwd)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    _verbosity_flags(p)
    p.add_argument(
        "--top-k", type=positive, default=10, help="search results / snippets retrieved (1 or more)"
    )
    p.add_argument("--chat", action="store_true",
                   help="then read follow-up questions from stdin, one per line (context is kept)")
    p.set_defaults(run=_ask)

    p = sub.add_parser("recipe", help="run a recipe (explain, unit-test, docstring, smell, ...) on code")
    p.add_argument("name", help="recipe name (see `ragls recipes`)")
    p.add_argument("target", metavar="FILE[:LINE[-LINE]]", help="file and optional line or line range")
    p.add_argument("--root", type=folder, help="workspace root (default: enclosing git repository or cwd)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    p.add_argument("-q", "--question", help="the question, for recipes that take one")
    _verbosity_flags(p)
    p.set_defaults(run=_recipe)

    p = sub.add_parser("recipes", help="list recipes, where each comes from, and recipe files that failed")
    p.add_argument("--root", type=folder, help="workspace root (default: enclosing git repository or cwd)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_recipes)
