"""What a replayed session was worth to the typist: what was shown when, and what it would have saved.

The suggestion on screen ("ghost text") is the newest item answered in time; while the user types
the characters it shows, it stays (shortened by what was typed), as VS Code keeps it; a key it
does not show removes it. Quality is measured on that ghost text: at every line start (after
Enter, when the author's line is not blank) its first line against the line the author typed
(exact, and edit similarity 1 - Levenshtein / longer length), and the share of keystrokes the user
could have accepted instead of typing: walking the keys, whenever the ghost text is exactly what
the author types next (trailing blanks aside) and covers at least two keys, one Tab replaces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.replay.typist import Key


def ghosts(keys: Sequence[Key]) -> list[str | None]:
    """The ghost text on screen after each key (and its answer, if that came in time)."""
    out: list[str | None] = []
    ghost: str | None = None
    for key in keys:
        if ghost is not None:
            ghost = ghost[len(key.text) :] if ghost.startswith(key.text) else None
            ghost = ghost or None
        if key.status == "item":
            ghost = key.item
        out.append(ghost)
    return out


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def similarity(shown: str, wanted: str) -> float:
    longest = max(len(shown), len(wanted))
    return 1.0 - levenshtein(shown, wanted) / longest if longest else 1.0


@dataclass(frozen=True)
class LineStart:
    wanted: str  # the author's line, without the indentation Enter brought
    shown: str  # the first line of the ghost text ("" when nothing was shown)

    @property
    def exact(self) -> bool:
        return self.shown.rstrip() == self.wanted.rstrip()

    @property
    def similarity(self) -> float:
        return similarity(self.shown.rstrip(), self.wanted.rstrip())


def line_starts(keys: Sequence[Key]) -> list[LineStart]:
    typed = "".join(k.text for k in keys)
    out = []
    end = 0
    for key, ghost in zip(keys, ghosts(keys), strict=True):
        end += len(key.text)
        if key.text.startswith("\n"):
            wanted = typed[end:].split("\n", 1)[0]
            if wanted.strip():
                out.append(LineStart(wanted, (ghost or "").split("\n", 1)[0]))
    return out


def accepted_keys(keys: Sequence[Key]) -> int:
    """Keystrokes saved by accepting (Tab) every ghost text that is exactly what comes next."""
    typed = "".join(k.text for k in keys)
    ends, total = [], 0
    for key in keys:
        total += len(key.text)
        ends.append(total)
    shown = ghosts(keys)
    saved, i = 0, 0
    while i < len(keys):
        ghost = (shown[i] or "").rstrip()
        if ghost and typed.startswith(ghost, ends[i]):
            j = i + 1
            while j < len(keys) and ends[j] <= ends[i] + len(ghost):
                j += 1
            covered = j - i - 1
            if covered >= 2:
                saved += covered - 1
                i = j - 1
                continue
        i += 1
    return saved
