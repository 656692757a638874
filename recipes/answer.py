"""Generating one answer: stream it to the caller as it comes, time it, and look it over
(empty answers, code copied verbatim from the index). Shared by ``ask`` and the prompt recipes.

Length follows ``answers.verbosity``: a prompt that asks for it and a token cap that bounds it.
An answer that reaches the cap is not cut mid-sentence: it ends where the sentence (or line) it
is writing ends, within a small allowance past the cap (``finish_allowance``); one that does not
finish even then ends with " …", so it never looks complete when it is not. A terse answer's cap
is small (``TERSE_TOKENS``): it ends at the first sentence end past it, so it is a sentence or
two whatever the model would have gone on to write (small models barely heed a length asked for).
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
UNFINISHED = " …"  # ends an answer whose sentence did not finish within the allowance past the cap
SENTENCE_END = re.compile(r"(?<=[^\W\d_]|[)\]'\"`])[.!?]+(?=\s)|\n")


TERSE_TOKENS = 8  # a terse answer ends at the first sentence end past this many tokens


def answer_budget(recipe_max_tokens: int, settings: RecipesConfig, verbosity: Verbosity = "normal") -> int:
    """Tokens an answer may take: the recipe's own cap or [recipes] answer_tokens; twice it for a
    detailed one (a detailed answer cut short is worse than none); for a terse one TERSE_TOKENS
    (a third of it, when that is less), so it ends with its first sentence."""
    base = recipe_max_tokens or settings.answer_tokens
    return {"terse": max(1, min(TERSE_TOKENS, base // 3)), "normal": base, "detailed": base * 2}[verbosity]


def finish_allowance(cap: int) -> int:
    """Tokens past the cap an answer may take to finish the sentence it is writing: half the cap,
    from 48 (a long sentence, so a terse answer's first one ends) to 64 (a cap is a cap)."""
    return max(48, min(64, cap // 2))


def _ends_a_sentence(text: str) -> bool:
    return whole_sentences(text, final=True) == len(text.rstrip(" "))


def whole_sentences(text: str, final: bool = False) -> int:
    """Where the last finished sentence or line of ``text`` ends (0: none has). ``final``: the text
    is complete, so a full stop at its very end ends a sentence too."""
    ends = [min(m.end(), len(text)) for m in SENTENCE_END.finditer(text + " " if final else text)]
    return ends[-1] if ends else 0


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
    """Stream a chat answer, handing each delta to ``on_delta``; an empty answer gets a note.
    ``max_tokens`` is the cap: past it the answer ends with the sentence it is writing, which is
    held back until it ends (so what streamed is always the answer: a sentence that does not end
    within the allowance, or falls into a loop, is dropped and the answer ends at the cap with …)."""
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    looping = ended = False
    at_cap: int | None = None  # characters streamed when the cap was reached
    limit = max_tokens + finish_allowance(max_tokens)
    with provider.chat(messages, max_tokens=limit, temperature=temperature, cancel=cancel) as stream:
        for count, delta in enumerate(stream, 1):
            if first is None:
                first = (time.perf_counter() - started) * 1000
            parts.append(delta)
            if at_cap is None and on_delta:
                on_delta(delta)
            if count == max_tokens:
                at_cap = len("".join(parts))
            if " " in delta and repeating("".join(parts)):
                looping = True
                break
            if at_cap is not None and delta.strip(" ") and _ends_a_sentence("".join(parts)):
                ended = True  # the cap is reached and the sentence finished: the answer ends here
                if on_delta and len("".join(parts)) > at_cap:
                    on_delta("".join(parts)[at_cap:])
                break
        reason = "length" if ended or (looping and at_cap is not None) else stream.finish_reason or "stop"
    text = "".join(parts)
    if looping and at_cap is None:
        text, reason = without_repeats(text), "repeat"
    notes = [] if text.strip() or reason == "cancelled" else [EMPTY_ANSWER]
    if looping:
        notes.append(LOOPING)
    if reason == "length":
        how = "it ends with the sentence it was writing"
        if not ended:  # the sentence did not finish within the allowance: the answer ends at the cap
            text = text[:at_cap] + UNFINISHED
            if on_delta:
                on_delta(UNFINISHED)
            how = f"its last sentence did not finish within {limit} tokens, so it ends at the cap with '…'"
        notes.append(f"the answer reached the cap of {max_tokens} tokens ([recipes] answer_tokens, "
                      f"answers.verbosity); {how}")
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
