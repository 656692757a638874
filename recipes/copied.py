"""Copied-code detection: does generated code reproduce a long verbatim run of indexed code?

Winnowing (Schleimer, Wilkerson & Aiken, "Winnowing: local algorithms for document
fingerprinting", 2003): hash every k-gram of normalised tokens and keep the minimum hash of each
window of w consecutive hashes. Any shared run of at least w + k - 1 tokens is guaranteed to share
a fingerprint, while only ~2/(w+1) of the hashes are kept. Tokens ignore layout and comments'
position (whitespace is dropped, string and number literals are normalised), so reformatting
does not hide a copy, but identifiers are kept: renaming everything is not "verbatim".

Candidates come from the keyword index (BM25 over the generated text's rarest identifiers), so
detection costs a few chunk reads, not a scan of the repository.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragls.indexer.search import fts_query
from ragls.indexer.tokens import query_terms

if TYPE_CHECKING:
    from ragls.indexer.engine import Index

K = 6  # tokens per k-gram
WINDOW = 4  # winnowing window (hashes)
MIN_TOKENS = 40  # shortest run worth reporting (~3-5 lines of code)
CANDIDATES = 20  # chunks fingerprinted per check
RARE_TERMS = 12  # identifiers sent to the keyword index

_TOKEN = re.compile(
    r"""(?P<str>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)"""
    r"|(?P<num>\b\d[\w.]*)"
    r"|(?P<id>[^\W\d]\w*)"
    r"|(?P<op>[^\s\w])"
)


@dataclass(frozen=True)
class Token:
    text: str  # normalised
    line: int  # 0-based line in its text


@dataclass(frozen=True)
class Copy:
    """A run of generated code found verbatim (up to layout and literals) in indexed code."""

    path: str
    start_line: int  # 1-based, inclusive, in the indexed file
    end_line: int
    tokens: int  # length of the matched run
    generated_start_line: int  # 1-based lines of the run in the generated text
    generated_end_line: int

    def as_json(self) -> dict:
        return {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "tokens": self.tokens,
            "generated_lines": [self.generated_start_line, self.generated_end_line],
        }


def tokenize(text: str) -> list[Token]:
    """Normalised tokens: identifiers and keywords as written, literals as STR / NUM, operators."""
    tokens = []
    line = 0
    last = 0
    for m in _TOKEN.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        kind = m.lastgroup
        tokens.append(Token("STR" if kind == "str" else "NUM" if kind == "num" else m.group(), line))
    return tokens


def _hash(gram: tuple[str, ...]) -> int:
    return int.from_bytes(hashlib.blake2b("\x00".join(gram).encode(), digest_size=8).digest(), "big")


def fingerprints(tokens: list[Token]) -> dict[int, list[int]]:
    """Winnowed k-gram hashes -> the token positions where each k-gram starts."""
    texts = [t.text for t in tokens]
    hashes = [_hash(tuple(texts[i : i + K])) for i in range(len(texts) - K + 1)]
    chosen: dict[int, list[int]] = {}
    last = -1
    for start in range(max(0, len(hashes) - WINDOW + 1)):
        window = hashes[start : start + WINDOW]
        low = min(window)
        pos = start + max(i for i, h in enumerate(window) if h == low)  # rightmost minimum
        if pos != last:
            chosen.setdefault(hashes[pos], []).append(pos)
            last = pos
    if 0 < len(hashes) < WINDOW:  # shorter than one window: keep its minimum
        low = min(hashes)
        chosen.setdefault(low, []).append(hashes.index(low))
    return chosen


def _runs(gen: list[Token], src: list[Token], min_tokens: int) -> list[tuple[int, int, int]]:
    """Maximal shared runs (gen start, src start, length) of at least ``min_tokens`` tokens,
    found by extending each shared fingerprint in both directions."""
    src_prints = fingerprints(src)
    g, s = [t.text for t in gen], [t.text for t in src]
    found: list[tuple[int, int, int]] = []
    covered: set[tuple[int, int]] = set()  # (gen pos - src pos, src pos) already inside a run
    for h, gen_positions in fingerprints(gen).items():
        for i in gen_positions:
            for j in src_prints.get(h, ()):
                if (i - j, j) in covered:
                    continue
                a, b = i, j
                while a > 0 and b > 0 and g[a - 1] == s[b - 1]:
                    a, b = a - 1, b - 1
                n = 0
                while a + n < len(g) and b + n < len(s) and g[a + n] == s[b + n]:
                    n += 1
                covered.update((a - b, b + m) for m in range(n))
                if n >= min_tokens:
                    found.append((a, b, n))
    return found


def _rare_terms(text: str) -> list[str]:
    """Identifiers most likely to single out the source: long compound names first."""
    terms = query_terms(" ".join(m.group() for m in re.finditer(r"[^\W\d]\w{3,}", text)))
    return sorted(terms, key=lambda t: (-len(t), t))[:RARE_TERMS]


def find_copies(index: Index, generated_text: str, min_tokens: int = MIN_TOKENS) -> list[Copy]:
    """Indexed code that ``generated_text`` reproduces in runs of at least ``min_tokens`` tokens,
    longest first, one report per source span."""
    gen = tokenize(generated_text)
    terms = _rare_terms(generated_text)
    if len(gen) < min_tokens or not terms:
        return []
    hits = index.store.keyword_search(fts_query(terms), CANDIDATES)
    rows = index.store.chunk_rows(cid for cid, _ in hits)
    copies: dict[tuple[str, int, int], Copy] = {}
    for chunk_id, row in rows.items():
        src = tokenize(index.store.chunk_text(chunk_id) or "")
        for a, b, n in _runs(gen, src, min_tokens):
            copy = Copy(
                path=row.path,
                start_line=row.start_line + src[b].line,
                end_line=row.start_line + src[b + n - 1].line,
                tokens=n,
                generated_start_line=gen[a].line + 1,
                generated_end_line=gen[a + n - 1].line + 1,
            )
            key = (copy.path, copy.start_line, copy.end_line)
            if key not in copies or copies[key].tokens < n:
                copies[key] = copy
    return sorted(copies.values(), key=lambda c: (-c.tokens, c.path, c.start_line))
