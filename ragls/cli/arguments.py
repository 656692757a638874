"""Argument checking shared by every command: numbers in range, and one line per mistake.

A bad argument ends with one line naming the argument and what it takes (argparse would print
its whole usage first); ``--help`` still shows the usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (sub-commands inherit it)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    parse.__name__ = "whole number"  # what argparse names in its own messages
    return parse


positive = whole_number(1)
non_negative = whole_number(0)


def folder(text: str) -> Path:
    """An argparse type: a workspace folder that exists and can be listed (resolved)."""
    path = Path(text).expanduser()
    if not path.is_dir():
        problem = "not a folder" if path.exists() else "no such folder"
        raise argparse.ArgumentTypeError(f"{text}: {problem}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: the folder cannot be read (permissions)")
    return path.resolve()
