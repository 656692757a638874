"""``ragls arena QUESTION`` (two models answer blind, you vote) and ``ragls arena --leaderboard``.

The answers go to stdout, A then B, with no model names; the vote is asked for on stdin (or given
with ``--vote`` for scripts), and only then are the names shown and the vote written to the votes
file (``arena.votes_file``). Everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack

from rich.markup import escape
from rich.table import Table

from ragls import config as configuration
from ragls.cli.arguments import folder, positive
from ragls.cli.index import err, out, resolve_root
from ragls.cli.recipes import _provider, _ready_index, _verbosity, _verbosity_flags
from ragls.recipes import registry
from ragls.recipes.arena import (
    Match,
    answer_match,
    append_vote,
    as_chat,
    next_match,
    parse_vote,
    votes_path,
)
from ragls.recipes.ask import Conversation
from ragls.recipes.leaderboard import standings

PROMPT = escape("Which answer is better? [a] A, [b] B, [t] tie, [n] both bad: ")


def _arena(args: argparse.Namespace) -> int:
    if args.leaderboard:
        return _leaderboard(args)
    if not args.question:
        raise SystemExit("ragls arena: give a QUESTION, or --leaderboard")
    vote = parse_vote(args.vote) if args.vote else None  # a bad --vote fails before any model runs
    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    pair = next_match(configuration.load(resolve_root(args.root)), names)  # refused before indexing
    with _ready_index(args) as index, ExitStack() as stack:
        providers = {c.name: stack.enter_context(_provider(index, "chat", as_chat(index.cfg, c)))
                     for c in pair}
        conversation = Conversation(index, None, index.cfg.recipes, registry.load(index.root).get("ask"))
        match = answer_match(conversation, args.question, providers, verbosity=_verbosity(index, args),
                             top_k=args.top_k)
        if not args.json:
            _print_match(match)
        if vote is None and not args.json:
            vote = _ask_vote()
        record = match.record(vote) if vote else None
        if record:
            append_vote(votes_path(index.cfg), record)
        if args.json:
            revealed = {"vote": vote, "a_model": match.a.model, "b_model": match.b.model} if record else {}
            sys.stdout.write(json.dumps({**match.shown(), **revealed}) + "\n")
        elif record:
            out.print(f"\nA was [bold]{escape(match.a.model)}[/], B was [bold]{escape(match.b.model)}[/].")
            err.print(f"[dim]vote recorded in {escape(str(votes_path(index.cfg)))}[/]")
        else:
            err.print("no vote: nothing recorded")
    return 0


def _print_match(match: Match) -> None:
    for label, side in (("A", match.a), ("B", match.b)):
        out.print(f"\n[bold]── {label} ──[/]")
        sys.stdout.write((side.answer or "(no answer)") + "\n")
        sys.stdout.flush()
    if match.context:
        labels = ", ".join(s.label for s in match.context)
        err.print(f"[dim]both were given: {escape(labels)}[/]")


def _ask_vote() -> str | None:
    """The vote typed on stdin, asked again until it is one; None at the end of input."""
    while True:
        err.print(PROMPT, end="")
        line = sys.stdin.readline()
        if not sys.stdin.isatty():
            err.print(line.strip())  # what a terminal would have echoed
        if not line:
            return None
        try:
            return parse_vote(line)
        except ValueError as exc:
            err.print(escape(str(exc)))


def _leaderboard(args: argparse.Namespace) -> int:
    board = standings(configuration.load(resolve_root(args.root)), args.kind, args.bootstrap)
    path = escape(str(board.votes_file))
    if board.broken_lines:
        err.print(f"[yellow]note:[/] {board.broken_lines} broken line(s) in {path} skipped")
    if args.json:
        sys.stdout.write(json.dumps(board.as_json()) + "\n")
        return 0
    if not board.rows:
        err.print(f"no {args.kind} votes yet in {path}: ragls arena \"a question\" casts one")
        return 0
    table = Table(title=f"arena leaderboard ({args.kind}s): Bradley-Terry, 95% bootstrap interval")
    for column in ("rank", "model", "score", "95% interval", "win rate", "votes", "W-L-T"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for rank, r in enumerate(board.rows, 1):
        table.add_row(str(rank), escape(r.model), f"{r.score:.0f}", f"{r.low:.0f} - {r.high:.0f}",
                      f"{r.win_rate:.0%}", str(r.votes), f"{r.wins}-{r.losses}-{r.ties}")
    out.print(table)
    err.print(f"[dim]{board.votes} votes from {path}; ties and 'both bad' count half a win each[/]")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("arena", help="two models answer blind, you vote; --leaderboard ranks them")
    p.add_argument("question", nargs="?", help="a question about the repository")
    p.add_argument("--models", metavar="A,B",
                   help="the models compared (default: arena.models): roles, names scan lists, GGUF paths")
    p.add_argument("--vote", help="a, b, tie or both-bad, for scripts (else asked on stdin)")
    p.add_argument("--leaderboard", action="store_true", help="rank the models from the votes so far")
    p.add_argument("--kind", choices=("answer", "completion"), default="answer",
                   help="--leaderboard: which votes (answers, or inline completions accepted)")
    p.add_argument("--bootstrap", type=positive, default=200,
                   help="--leaderboard: resamples for the intervals")
    p.add_argument("--root", type=folder, help="workspace root (default: enclosing git repository or cwd)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the vote only with --vote)")
    p.add_argument("--top-k", type=positive, default=10, help="snippets retrieved (1 or more)")
    _verbosity_flags(p)
    p.set_defaults(run=_arena)
