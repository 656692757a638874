"""Typing sessions: a block of lines that an upstream commit added to a file, typed back into the
dev-set artifact's copy of that file.

A session names the artifact file (``path`` below the repository's ``root`` in
``benchmarks/devset/repos.json``) and the block's lines in it (``start``-``end``, 1-based,
inclusive). Its "before" file is the artifact file without those lines; typing the block back
at the place it was cut from gives the artifact file again. Only these descriptors are committed
(``sessions.json``), never the code they point at.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

SESSIONS_FILE = Path(__file__).resolve().parent / "sessions.json"


@dataclass(frozen=True)
class Session:
    repo: str  # the dev-set name (repos.json)
    language: str
    path: str  # below the repository's root in the artifact
    start: int  # the block's first and last line in the artifact file, 1-based
    end: int
    commit: str  # the upstream commit that added the block
    sha1: str  # of the block's text: the artifact must hold exactly these lines

    @property
    def label(self) -> str:
        return f"{self.repo}:{self.path}:{self.start}-{self.end}"


@dataclass(frozen=True)
class Edit:
    """What the typist does: open ``before``, put the cursor at ``offset``, type ``typed``."""

    before: str
    offset: int  # characters into ``before``
    typed: str


def block_sha1(lines: list[str]) -> str:
    return hashlib.sha1("\n".join(lines).encode("utf-8")).hexdigest()


def find_block(lines: list[str], block: list[str]) -> list[int]:
    """0-based indices where ``block`` occurs as consecutive whole lines of ``lines``."""
    n = len(block)
    if not n:
        return []
    return [i for i in range(len(lines) - n + 1) if lines[i] == block[0] and lines[i : i + n] == block]


def edit_for(text: str, start: int, end: int) -> Edit:
    """The "before" file and the keys that turn it into ``text`` again, for the block of lines
    ``start``-``end`` (1-based). The typist goes to the end of the line above the block, presses
    Enter and types the block, line after line; a block on the first line is typed at the very
    start of the file, each of its lines followed by Enter."""
    lines = text.split("\n")
    real = len(lines) - text.endswith("\n")  # a final newline ends the last line, it starts none
    if not 1 <= start <= end <= real:
        raise ValueError(f"lines {start}-{end} are not inside a {real}-line text")
    block = lines[start - 1 : end]
    if start > 1:
        head = "\n".join(lines[: start - 1])
        typed = "\n" + "\n".join(block)
        tail = text[len(head) + len(typed) :]
        before = head + tail
        offset = len(head)
    else:
        typed = "\n".join(block) + "\n"
        before, offset = text[len(typed) :], 0
    if before[:offset] + typed + before[offset:] != text:  # the block is the whole file
        raise ValueError(f"lines {start}-{end} leave no file to type them into")
    return Edit(before, offset, typed)


def keystrokes(typed: str) -> list[str]:
    """The keys an editor user presses to type ``typed``: one character each, except that Enter
    brings the next line's indentation with it (the editor's auto-indent)."""
    keys: list[str] = []
    i = 0
    while i < len(typed):
        if typed[i] == "\n":
            j = i + 1
            while j < len(typed) and typed[j] in " \t":
                j += 1
            keys.append(typed[i:j])
            i = j
        else:
            keys.append(typed[i])
            i += 1
    return keys


def load(path: Path = SESSIONS_FILE) -> list[Session]:
    return [Session(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]


def dump(sessions: list[Session], path: Path = SESSIONS_FILE) -> None:
    rows = ",\n".join(" " + json.dumps(asdict(s)) for s in sessions)
    path.write_text(f"[\n{rows}\n]\n", encoding="utf-8")
