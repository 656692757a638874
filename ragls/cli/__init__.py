"""The ``ragls`` command. Each command group registers itself from its own module; the
commands call the same engine functions the language server calls.

Every mistake a user can make (an argument, a setting, a refused or broken model) ends with one
line naming what to change and a non-zero exit; a traceback means a bug in ragls, and is also
written to a log file whose path is printed with it.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import platformdirs

from ragls import __version__
from ragls.cli import arena, complete, index, llm, recipes, serve
from ragls.cli.arguments import Parser
from ragls.config import ConfigError
from ragls.indexer.embeddings import EmbeddingError
from ragls.indexer.storage import StoreError
from ragls.llm.base import LLMError
from ragls.privacy import PrivacyError
from ragls.recipes.arena import ArenaError
from ragls.recipes.completion import PositionError
from ragls.recipes.gather import SelectionError
from ragls.recipes.registry import RecipeError

# (exception, what the line says before the message, exit status)
USER_ERRORS: list[tuple[type[BaseException], str, int]] = [
    (ConfigError, "configuration error: ", 2),
    (PrivacyError, "refused by the privacy policy: ", 2),
    ((SelectionError, PositionError, RecipeError, ArenaError), "", 2),
    (LLMError, "model error: ", 1),
    (EmbeddingError, "embedding model error: ", 1),
    (StoreError, "index store error: ", 1),
]


def build_parser() -> Parser:
    parser = Parser(
        prog="ragls", description="A private, model-agnostic, retrieval-augmented code assistant."
    )
    parser.add_argument("--version", action="version", version=f"ragls {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (index, recipes, arena, complete, llm, serve):
        module.register(sub)
    return parser


def crash_log() -> Path:
    return Path(platformdirs.user_log_dir("ragls")) / "crash.log"


def _report_bug(command: str) -> None:
    """Print the traceback and keep a copy (the command's name, never its arguments: they can
    hold code or questions)."""
    text = traceback.format_exc()
    sys.stderr.write(text)
    path = crash_log()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} ragls {__version__} {command}\n{text}")
        where = f"the traceback above is also in {path}"
    except OSError as exc:
        where = f"it could not be saved to {path} ({exc.strerror or exc})"
    print(f"ragls {command}: internal error, a bug in ragls; {where}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    subcommand = getattr(args, "privacy_command", None) or getattr(args, "models_command", None)
    command = " ".join(filter(None, [args.command, subcommand]))
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        for kinds, label, status in USER_ERRORS:
            if isinstance(exc, kinds):
                message = " ".join(str(exc).split())  # one line, whatever the message holds
                print(f"ragls {command}: {label}{message}", file=sys.stderr)
                return status
        _report_bug(command)
        return 70
