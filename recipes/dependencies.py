"""Dependency signatures in a completion's context: when the cursor's line names a symbol of an
installed dependency (``np.einsum(``, ``session.``), its signature and docstring at the installed
version, cited as ``name==version:path:lines``.

They join the context within its token budget, ahead of everything else when it is tight (the
call being typed is what the model most needs to get right), and are laid out after the context
already shown, so a prompt whose context stays the same keeps its cached head.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ragls.indexer.deps import lookup
from ragls.indexer.deps.lookup import definitions_at
from ragls.recipes.context import Snippet, TokenCounter, fit

if TYPE_CHECKING:
    from ragls.indexer.engine import Index


def dependency_snippets(index: Index, prefix: str, full_text: str) -> list[Snippet]:
    """The surface chunks of the dependency symbols on the cursor's line, nearest first."""
    return [
        Snippet(c.source, c.start_line, c.end_line, c.text, "dependency", score=-rank)
        for rank, c in enumerate(definitions_at(index, prefix, full_text))
    ]


def library_snippets(index: Index, question: str, top_k: int = 3) -> list[Snippet]:
    """For a question that names a package the workspace imports (``how do I set a timeout on an
    httpx client``): the best keyword matches among that package's installed surface."""
    found = lookup.view(index)
    if found is None:
        return []
    words = set(re.findall(r"[\w@/-]+", question.lower()))
    named = {key for name, key in found.selection.imports.items() if name.lower() in words}
    hits = [(c, score) for c, score in lookup.search(index, question, 40) if c.package in named]
    return [
        Snippet(c.source, c.start_line, c.end_line, c.text, "dependency", score) for c, score in hits[:top_k]
    ]


def with_dependencies(
    context: list[Snippet], found: list[Snippet], budget: int, count_tokens: TokenCounter
) -> list[Snippet]:
    """``context`` plus the ``found`` snippets it lacks, fitted to the budget (dependencies first
    when something must go), in the context's order with the new ones last."""
    shown = {s.label for s in context}
    new = [s for s in found if s.label not in shown]
    if not new:
        return context
    kept = {s.label for s in fit(new + context, budget, count_tokens)}
    return [s for s in context if s.label in kept] + [s for s in new if s.label in kept]
