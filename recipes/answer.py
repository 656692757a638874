"""Generating one answer: stream it to the caller as it comes, time it, and look it over
(empty answers, code copied verbatim from the index). Shared by ``ask`` and the prompt recipes."""

from __future__ import annotations

import importlib.util
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ragls.config import RecipesConfig
from ragls.llm.base import Message, Provider

if TYPE_CHECKING:
    from ragls.indexer.engine import Index

OnDelta = Callable[[str], None]
FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
EMPTY_ANSWER = "the model returned an empty answer (try again, or a larger model: models.chat.path)"
LOOPING = "the model started repeating itself; the repeats were cut"
REPEAT_WORDS = 8  # a run this long, written three times, is a loop, not emphasis
WORD = re.compile(r"\S+")


def answer_budget(recipe_max_tokens: int, settings: RecipesConfig) -> int:
    """Tokens an answer may take: the recipe's own cap or [recipes] answer_tokens, twice that
    when the user asked for detail (a detailed answer cut short is worse than none)."""
    base = recipe_max_tokens or settings.answer_tokens
    return base * 2 if settings.verbosity == "detailed" else base


@dataclass
class Generated:
    text: str
    finish_reason: str
    first_token_ms: float | None  # None: nothing came
    total_ms: float
    notes: list[str] = field(default_factory=list)


def generate(
    provider: Provider,
    messages: Sequence[Message],
    *,
    max_tokens: int,
    temperature: float,
    on_delta: OnDelta | None = None,
    cancel: threading.Event | None = None,
) -> Generated:
    """Stream a chat answer, handing each delta to ``on_delta``; an empty answer gets a note."""
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    looping = False
    with provider.chat(messages, max_tokens=max_tokens, temperature=temperature, cancel=cancel) as stream:
        for delta in stream:
            if first is None:
                first = (time.perf_counter() - started) * 1000
            parts.append(delta)
            if on_delta:
                on_delta(delta)
            if " " in delta and repeating("".join(parts)):
                looping = True
                break
        reason = stream.finish_reason or "stop"
    text = "".join(parts)
    if looping:
        text, reason = without_repeats(text), "repeat"
    notes = [] if text.strip() or reason == "cancelled" else [EMPTY_ANSWER]
    if looping:
        notes.append(LOOPING)
    if reason == "length":
        notes.append(f"the answer was cut at {max_tokens} tokens ([recipes] answer_tokens)")
    elapsed = (time.perf_counter() - started) * 1000
    return Generated(text if text.strip() else "", reason, first, elapsed, notes)


def _ngrams(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """(offset, words) of every run of REPEAT_WORDS words in ``text`` outside code blocks
    (code repeats itself legitimately)."""
    prose = FENCE.sub(lambda m: " " * len(m.group()), text)
    words = [(m.start(), m.group().lower()) for m in WORD.finditer(prose)]
    return [
        (words[i][0], tuple(w for _, w in words[i : i + REPEAT_WORDS]))
        for i in range(len(words) - REPEAT_WORDS + 1)
    ]


def repeating(text: str) -> bool:
    """Small models fall into loops: a run of words written a third time means one has started."""
    counts: dict[tuple[str, ...], int] = {}
    for _, gram in _ngrams(text):
        counts[gram] = counts.get(gram, 0) + 1
        if counts[gram] >= 3:
            return True
    return False


def without_repeats(text: str) -> str:
    """``text`` up to where it first repeats an earlier run of words: where the loop began."""
    seen: set[tuple[str, ...]] = set()
    for offset, gram in _ngrams(text):
        if gram in seen:
            return text[:offset].rstrip() + "\n"
        seen.add(gram)
    return text


def code_block(text: str) -> str | None:
    """The first fenced code block of an answer (an unclosed one runs to the end), if any."""
    found = FENCE.search(text)
    return found.group(1).rstrip("\n") if found and found.group(1).strip() else None


def copies_in(index: Index, text: str) -> list:
    """Runs of indexed code that the code in ``text`` reproduces verbatim: each fenced block is
    checked on its own (prose and fences are not code), or the whole text when it has none.
    Empty when copied-code detection is not installed (it is optional here)."""
    blocks = [m.group(1) for m in FENCE.finditer(text)] or [text]
    blocks = [b for b in blocks if b.strip()]
    if not blocks or importlib.util.find_spec("ragls.recipes.copied") is None:
        return []
    from ragls.recipes.copied import find_copies

    return [copy for block in blocks for copy in find_copies(index, block)]
