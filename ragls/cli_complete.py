"""Placeholder replaced by the recipes work (issue 4)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Adds no commands yet."""
