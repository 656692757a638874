"""Running a recipe on ``FILE[:LINE[-LINE]]``: gather what it declares, fit it to the model's
window, stream the answer, and check what came back (citations, code blocks, copied code).

The recipe's ``context`` list is also its priority order: kinds named first are gathered first
and win the budget when not everything fits. The selection is the subject of the prompt (it
goes into ``{selection}``), so it is budgeted before any context and cut, with a note, only when
it alone would not fit.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ragls.config import RecipesConfig
from ragls.llm.base import Message, Provider
from ragls.recipes import context
from ragls.recipes.answer import OnDelta, code_block, copies_in, generate
from ragls.recipes.ask import VERBOSITY, Conversation, snippet_json
from ragls.recipes.citations import Citation, Verifier, parse
from ragls.recipes.context import Snippet
from ragls.recipes.gather import Gatherer, Selection, SelectionError, names_in, select
from ragls.recipes.registry import Recipe

if TYPE_CHECKING:
    from ragls.indexer.engine import Index

RETRIEVED = 4  # search results offered to a recipe: the selection and its definitions come first
TARGET = re.compile(r"(?P<file>.+?)(?::(?P<start>\d+)(?:-(?P<end>\d+))?)?")


def parse_target(target: str) -> tuple[str, int | None, int | None]:
    """``FILE[:LINE[-LINE]]`` → (file, start, end); lines are 1-based."""
    m = TARGET.fullmatch(target.strip())
    if not m:
        raise SelectionError(f"{target!r} is not FILE[:LINE[-LINE]]")
    start, end = m.group("start"), m.group("end")
    return m.group("file"), int(start) if start else None, int(end) if end else None


@dataclass
class RecipeResult:
    recipe: str
    path: str
    start_line: int
    end_line: int
    symbol: str = ""
    answer: str = ""
    code: str | None = None  # the code block of an "edit" or "file" answer
    citations: list[Citation] = field(default_factory=list)
    dropped: list[tuple[Citation, str]] = field(default_factory=list)
    context: list[Snippet] = field(default_factory=list)
    copies: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "recipe": self.recipe,
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "symbol": self.symbol,
            "answer": self.answer,
            "code": self.code,
            "citations": [c.as_json() for c in self.citations],
            "dropped_citations": len(self.dropped),
            "context": [snippet_json(s) for s in self.context],
            "notes": self.notes,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }


def run(
    index: Index,
    recipe: Recipe,
    target: str,
    provider: Provider,
    settings: RecipesConfig,
    *,
    question: str = "",
    on_delta: OnDelta | None = None,
    cancel: threading.Event | None = None,
    cwd: Path | None = None,
) -> RecipeResult:
    """Run ``recipe`` on ``target``. Bad targets raise :class:`SelectionError` (a clear message)."""
    file, start, end = parse_target(target)
    if recipe.runner == "complete":
        return _complete(index, recipe, provider, file, start, cwd, cancel)
    started = time.perf_counter()
    sel = select(index, file, start, end, cwd)
    if recipe.runner == "ask":
        return _ask(index, recipe, provider, settings, sel, question, on_delta, cancel)
    if "{question}" in recipe.template and not question.strip():
        raise SelectionError(f"recipe {recipe.name!r} needs a question (--question)")
    gathered = _gather(index, recipe, sel, question)
    after_gather = time.perf_counter()

    system = recipe.system
    if recipe.output == "text" and system:
        system += "\n" + VERBOSITY[settings.verbosity]
    answer_tokens = recipe.max_tokens or settings.answer_tokens
    window = provider.metadata().context_length
    values = _values(sel, question)
    bare = provider.count_tokens(system + recipe.render(**values))
    notes = list(sel.notes)
    _fit_selection(sel, recipe, provider, window - bare - answer_tokens - context.MARGIN_TOKENS,
                   settings.context_tokens, notes)
    values = _values(sel, question)
    fixed = provider.count_tokens(system + recipe.render(**values))
    room = context.budget(window, fixed, answer_tokens, settings.context_tokens)
    chosen = context.assemble(gathered, room, provider.count_tokens)
    prompt = recipe.render(**values, context=context.render(chosen))
    messages = ([Message("system", system)] if system else []) + [Message("user", prompt)]
    assembled = time.perf_counter()

    generated = generate(provider, messages, max_tokens=answer_tokens, temperature=settings.temperature,
                         on_delta=on_delta, cancel=cancel)
    checked = Verifier(index).check(parse(generated.text))
    code = code_block(generated.text) if recipe.output != "text" else None
    if recipe.output != "text" and generated.text and code is None:
        notes.append("the answer holds no code block; it is shown as text")
    return RecipeResult(
        recipe.name, sel.path, sel.start_line, sel.end_line, sel.symbol,
        answer=generated.text,
        code=code,
        citations=checked.valid,
        dropped=checked.dropped,
        context=chosen,
        copies=copies_in(index, code or generated.text),
        notes=notes + generated.notes,
        timings_ms={
            "gather_ms": (after_gather - started) * 1000,
            "assemble_ms": (assembled - after_gather) * 1000,
            "first_token_ms": generated.first_token_ms or 0.0,
            "generate_ms": generated.total_ms,
        },
    )


def _values(sel: Selection, question: str) -> dict[str, str]:
    return {
        "selection": sel.text,
        "numbered_selection": sel.numbered,
        "language": sel.language,
        "path": sel.path,
        "symbol": sel.symbol or sel.path,
        "lines": f"{sel.start_line}-{sel.end_line}",
        "question": question,
    }


def _gather(index: Index, recipe: Recipe, sel: Selection, question: str) -> list[Snippet]:
    """Snippets of each declared kind, in the recipe's order, minus repeats of the selection
    (the enclosing definition is kept: it is what surrounds the selection)."""
    g = Gatherer(index)
    kinds = {
        "symbol": lambda: g.enclosing(sel),
        "definitions": lambda: g.definitions(sel),
        "tests": lambda: g.tests(sel),
        "retrieved": lambda: g.retrieved(question or names_in(sel) or sel.path, RETRIEVED),
        "readme": g.readme,
    }
    own = Snippet(sel.path, sel.start_line, sel.end_line, sel.text, "selection")
    found = [s for kind in recipe.context if kind in kinds for s in kinds[kind]()]
    return [s for s in found if s.source == "enclosing" or not s.overlaps(own)]


def _fit_selection(sel: Selection, recipe: Recipe, provider: Provider, room: int, cap: int,
                   notes: list[str]) -> None:
    """Cut the selection (whole lines from its start) to what the window and the cap allow."""
    limit = min(room, cap) if cap > 0 else room
    text = sel.numbered if "{numbered_selection}" in recipe.template else sel.text
    kept, cut = context.truncate(text, max(limit, 0), provider.count_tokens)
    if cut:
        shown = max(1, kept.count("\n") + (0 if kept.endswith("\n") else 1)) if kept else 1
        sel.end_line = sel.start_line + shown - 1
        notes.append(f"the selection was cut to lines {sel.start_line}-{sel.end_line} to fit the model's "
                     "context ([recipes] context_tokens, models.chat.context_length)")


def _ask(index: Index, recipe: Recipe, provider: Provider, settings: RecipesConfig, sel: Selection,
         question: str, on_delta: OnDelta | None, cancel: threading.Event | None) -> RecipeResult:
    """A Q&A recipe on a selection: the question is answered with the selection as first context."""
    if not question.strip():
        raise SelectionError(f"recipe {recipe.name!r} answers a question: pass --question")
    own = Snippet(sel.path, sel.start_line, sel.end_line, sel.text, "selection", float("inf"))
    asked = Conversation(index, provider, settings, recipe).ask(
        question, on_delta=on_delta, cancel=cancel, force="answer", first=[own]
    )
    return RecipeResult(
        recipe.name, sel.path, sel.start_line, sel.end_line, sel.symbol,
        answer=asked.answer, citations=asked.citations, dropped=asked.dropped,
        copies=asked.copies, notes=sel.notes + asked.notes, timings_ms=asked.timings_ms,
    )


def _complete(index: Index, recipe: Recipe, provider: Provider, file: str, line: int | None,
              cwd: Path | None, cancel: threading.Event | None) -> RecipeResult:
    """Inline completion with the cursor at the end of LINE (default: the last line), through
    the completion module (``ragls complete FILE:LINE:COL`` places the cursor anywhere)."""
    from ragls.recipes.completion import PositionError, complete
    from ragls.recipes.gather import read_lines, relative

    rel = relative(index, file, cwd)
    lines, _ = read_lines(index.root / rel)
    row = line or max(1, len(lines))
    column = len(lines[row - 1]) + 1 if 1 <= row <= len(lines) else 1
    try:
        done = complete(index, provider, rel, row, column, cancel=cancel)
    except PositionError as exc:
        raise SelectionError(f"{rel}: {exc}") from None
    return RecipeResult(
        recipe.name, rel, row, row, answer=done.completion, code=done.completion, context=done.context,
        copies=done.copied, notes=[done.error] if done.error else [], timings_ms=dict(done.timings_ms),
    )
