"""The ``ragls`` command. Each command group registers itself from its own module; the
commands call the same engine functions the language server calls."""

from __future__ import annotations

import argparse
import sys

from ragls import __version__
from ragls.cli import complete, index, llm, recipes, serve
from ragls.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ragls", description="A private, model-agnostic, retrieval-augmented code assistant."
    )
    parser.add_argument("--version", action="version", version=f"ragls {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (index, recipes, complete, llm, serve):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"ragls: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

