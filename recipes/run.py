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

from ragls.config import RecipesConfig, Verbosity
from ragls.llm.base import Message, Provider
from ragls.recipes import context
from ragls.recipes.answer import VERBOSITY, OnDelta, answer_budget, code_block, copies_in, generate
from ragls.recipes.ask import Conversation, snippet_json
from ragls.recipes.citations import Citation, Verifier, parse
from ragls.recipes.context import Snippet
from ragls.recipes.gather import (
    Gatherer,
    Selection,
    SelectionError,
    names_in,
    new_test_path,
    read_lines,
    relative,
    select,
)
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
    target_path: str | None = None  # the file a "file" answer belongs in (it may exist: add to it)
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
            "target_path": self.target_path,
            "citations": [c.as_json() for c in self.citations],
            "dropped_citations": len(self.dropped),
            "context": [snippet_json(s) for s in self.context],
            "notes": self.notes,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }


@dataclass
class Prepared:
    """A recipe request checked and its context gathered: everything that needs no model, so bad
    input is reported before a model is loaded."""

    recipe: Recipe
    question: str
    selection: Selection | None = None  # None for inline completion
    cursor: tuple[str, int, int] | None = None  # inline completion: (path, line, column), 1-based
    gathered: list[Snippet] = field(default_factory=list)
    gather_ms: float = 0.0


def prepare(index: Index, recipe: Recipe, target: str, *, question: str = "",
            cwd: Path | None = None, text: str | None = None) -> Prepared:
    """Check ``target`` and gather the recipe's context; bad input raises :class:`SelectionError`.
    ``text`` is the editor's unsaved buffer of the target file."""
    started = time.perf_counter()
    file, start, end = parse_target(target)
    if recipe.runner == "complete":
        return Prepared(recipe, question, cursor=_cursor(index, file, start, cwd))
    sel = select(index, file, start, end, cwd, text)
    if (recipe.runner == "ask" or "{question}" in recipe.template) and not question.strip():
        raise SelectionError(f"recipe {recipe.name!r} answers a question: pass --question")
    gathered = [] if recipe.runner == "ask" else _gather(index, recipe, sel, question)
    elapsed = (time.perf_counter() - started) * 1000
    return Prepared(recipe, question, sel, gathered=gathered, gather_ms=elapsed)


def run(index: Index, recipe: Recipe, target: str, provider: Provider, settings: RecipesConfig, *,
        question: str = "", on_delta: OnDelta | None = None, cancel: threading.Event | None = None,
        cwd: Path | None = None, verbosity: Verbosity = "normal") -> RecipeResult:
    """Run ``recipe`` on ``target`` (``FILE[:LINE[-LINE]]``)."""
    prepared = prepare(index, recipe, target, question=question, cwd=cwd)
    return answer(index, prepared, provider, settings, on_delta=on_delta, cancel=cancel, verbosity=verbosity)


def answer(index: Index, prepared: Prepared, provider: Provider, settings: RecipesConfig, *,
           on_delta: OnDelta | None = None, cancel: threading.Event | None = None,
           verbosity: Verbosity = "normal") -> RecipeResult:
    """Fit the prepared context to the model's window, stream the answer, check it. ``verbosity``
    sets a text answer's length (code answers keep the recipe's own cap)."""
    recipe, question, sel = prepared.recipe, prepared.question, prepared.selection
    if prepared.cursor is not None:
        return _complete(index, recipe, provider, prepared.cursor, cancel)
    assert sel is not None
    if recipe.runner == "ask":
        return _ask(index, recipe, provider, settings, sel, question, on_delta, cancel, verbosity)
    started = time.perf_counter()
    system = recipe.system
    if recipe.output != "text":
        verbosity = "normal"
    elif system:
        system += "\n" + VERBOSITY[verbosity]
    answer_tokens = answer_budget(recipe.max_tokens, settings, verbosity)
    window = provider.metadata().context_length
    bare = provider.count_tokens(system + recipe.render(**_values(sel, question)))
    notes = list(sel.notes)
    _fit_selection(sel, recipe, provider, window - bare - answer_tokens - context.MARGIN_TOKENS,
                   settings.context_tokens, notes)
    values = _values(sel, question)
    fixed = provider.count_tokens(system + recipe.render(**values))
    room = context.budget(window, fixed, answer_tokens, settings.context_tokens)
    chosen = context.assemble(prepared.gathered, room, provider.count_tokens)
    prompt = recipe.render(**values, context=context.render(chosen))
    messages = ([Message("system", system)] if system else []) + [Message("user", prompt)]
    assembled = time.perf_counter()

    generated = generate(provider, messages, max_tokens=answer_tokens, temperature=settings.temperature,
                         on_delta=on_delta, cancel=cancel)
    checked = Verifier(index, [s for s in chosen if s.repository]).check(parse(generated.text))
    code = code_block(generated.text) if recipe.output != "text" else None
    if recipe.output != "text" and generated.text and code is None:
        notes.append("the answer holds no code block; it is shown as text")
    return RecipeResult(
        recipe.name, sel.path, sel.start_line, sel.end_line, sel.symbol,
        answer=generated.text,
        code=code,
        target_path=new_test_path(index, sel, prepared.gathered) if recipe.output == "file" else None,
        citations=checked.valid,
        dropped=checked.dropped,
        context=chosen,
        copies=copies_in(index, code or generated.text),
        notes=notes + generated.notes,
        timings_ms={
            "gather_ms": prepared.gather_ms,
            "assemble_ms": (assembled - started) * 1000,
            "first_token_ms": prepared.gather_ms + (assembled - started) * 1000
            + (generated.first_token_ms or 0.0),
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
         question: str, on_delta: OnDelta | None, cancel: threading.Event | None,
         verbosity: Verbosity) -> RecipeResult:
    """A Q&A recipe on a selection: the question is answered with the selection as first context."""
    own = Snippet(sel.path, sel.start_line, sel.end_line, sel.text, "selection", float("inf"))
    asked = Conversation(index, provider, settings, recipe).ask(
        question, on_delta=on_delta, cancel=cancel, force="answer", first=[own], verbosity=verbosity
    )
    return RecipeResult(
        recipe.name, sel.path, sel.start_line, sel.end_line, sel.symbol,
        answer=asked.answer, citations=asked.citations, dropped=asked.dropped,
        copies=asked.copies, notes=sel.notes + asked.notes, timings_ms=asked.timings_ms,
    )


def _cursor(index: Index, file: str, line: int | None, cwd: Path | None) -> tuple[str, int, int]:
    """The cursor of an inline completion: the end of LINE (default: the last line)."""
    rel = relative(index, file, cwd)
    try:
        lines, _ = read_lines(index.root / rel)
    except OSError as exc:
        raise SelectionError(f"{rel}: cannot read ({exc.strerror or exc})") from None
    row = line or max(1, len(lines))
    if row > max(1, len(lines)):
        raise SelectionError(f"{rel} has {len(lines)} lines; line {row} is past its end")
    return rel, row, len(lines[row - 1]) + 1 if lines else 1


def _complete(index: Index, recipe: Recipe, provider: Provider, cursor: tuple[str, int, int],
              cancel: threading.Event | None) -> RecipeResult:
    """Inline completion through the completion module (``ragls complete FILE:LINE:COL`` places
    the cursor anywhere; a recipe completes at the end of a line)."""
    from ragls.recipes.completion import PositionError, complete

    rel, row, column = cursor
    try:
        done = complete(index, provider, rel, row, column, cancel=cancel)
    except PositionError as exc:
        raise SelectionError(f"{rel}: {exc}") from None
    return RecipeResult(
        recipe.name, rel, row, row, answer=done.completion, code=done.completion, context=done.context,
        copies=done.copied, notes=[done.error] if done.error else [], timings_ms=dict(done.timings_ms),
    )
