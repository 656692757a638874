"""Generating one answer: stream it to the caller as it comes, time it, and look it over
(empty answers, code copied verbatim from the index). Shared by ``ask`` and the prompt recipes.

Length follows ``answers.verbosity``: a prompt that asks for it and a token cap that bounds it.
An answer that reaches the cap is never shown cut mid-sentence: the stream is handed on a whole
sentence (or line) at a time, and the unfinished last one is left out.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ragls.config import RecipesConfig, Verbosity
from ragls.llm.base import Message, Provider

if TYPE_CHECKING:
    from ragls.indexer.engine import Index

OnDelta = Callable[[str], None]
FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
EMPTY_ANSWER = "the model returned an empty answer (try again, or a larger model: models.chat.path)"
LOOPING = "the model started repeating itself; the repeats were cut"
REPEAT_WORDS = 8  # a run this long, written three times, is a loop, not emphasis
WORD = re.compile(r"\S+")


VERBOSITY: dict[Verbosity, str] = {
    "terse": "Answer in one or two sentences: the answer itself, no preamble, no lists.",
    "normal": "Answer briefly and directly: a few sentences or bullets, no preamble.",
    "detailed": "Answer in detail: explain how the code works step by step, citing each part you use.",
}
# A sentence ends at . ! or ? after a letter, a closing bracket, quote or backtick (not "1." of a
# list), before whitespace; a line ends at a newline.
UNFINISHED = " …"  # ends an answer whose first sentence the cap stopped (nothing whole to show)
SENTENCE_END = re.compile(r"(?<=[^\W\d_]|[)\]'\"`])[.!?]+(?=\s)|\n")


def answer_budget(recipe_max_tokens: int, settings: RecipesConfig, verbosity: Verbosity = "normal") -> int:
    """Tokens an answer may take: the recipe's own cap or [recipes] answer_tokens; a third of it
    for a terse answer, twice it for a detailed one (a detailed answer cut short is worse than none)."""
    base = recipe_max_tokens or settings.answer_tokens
    return {"terse": max(1, base // 3), "normal": base, "detailed": base * 2}[verbosity]


def whole_sentences(text: str, final: bool = False) -> int:
    """Where the last finished sentence or line of ``text`` ends (0: none has). ``final``: the text
    is complete, so a full stop at its very end ends a sentence too."""
    ends = [min(m.end(), len(text)) for m in SENTENCE_END.finditer(text + " " if final else text)]
    return ends[-1] if ends else 0


class SentenceGate:
    """Hands streamed text on a finished sentence or line at a time, holding back the rest until
    it ends, so an answer stopped by the token cap never shows half a sentence."""

    def __init__(self, on_delta: OnDelta | None):
        self.on_delta = on_delta
        self.held = ""
        self.sent = 0  # characters handed on so far

    def feed(self, delta: str) -> None:
        self.held += delta
        self._send(whole_sentences(self.held))

    def flush(self, end: int | None = None, mark: str = "") -> None:
        """Hand on what is held, up to character ``end`` of the whole stream (None: all of it),
        then ``mark``."""
        if mark:
            self.held = self.held.rstrip() + mark
        self._send(len(self.held) if end is None else max(0, end - self.sent))
        self.held = ""

    def _send(self, cut: int) -> None:
        if cut and self.on_delta:
            self.on_delta(self.held[:cut])
        self.sent += cut
        self.held = self.held[cut:]


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
    gate = SentenceGate(on_delta)
    with provider.chat(messages, max_tokens=max_tokens, temperature=temperature, cancel=cancel) as stream:
        for delta in stream:
            if first is None:
                first = (time.perf_counter() - started) * 1000
            parts.append(delta)
            gate.feed(delta)
            if " " in delta and repeating("".join(parts)):
                looping = True
                break
        reason = stream.finish_reason or "stop"
    text = "".join(parts)
    if looping:
        text, reason = without_repeats(text), "repeat"
    unfinished = ""
    if reason == "length":  # stopped by the cap: it ends with its last finished sentence
        whole = whole_sentences(text, final=True)
        if whole:
            unfinished = "; its unfinished last sentence was left out" if text[whole:].strip() else ""
            text = text[:whole]
            gate.flush(whole)
        elif text.strip():  # not one sentence finished: shown as it stopped, marked unfinished
            unfinished = "; no sentence finished within it, so it ends with " + UNFINISHED.strip()
            text = text.rstrip() + UNFINISHED
            gate.flush(mark=UNFINISHED)
    elif not looping:
        gate.flush()
    notes = [] if text.strip() or reason == "cancelled" else [EMPTY_ANSWER]
    if looping:
        notes.append(LOOPING)
    if reason == "length":
        notes.append(f"the answer reached the cap of {max_tokens} tokens ([recipes] answer_tokens, "
                      f"answers.verbosity){unfinished}")
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
