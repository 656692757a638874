"""The yardstick for the speed ratios: a plain, in-memory BM25 over fixed line windows.

What a competent "just BM25" tool does, and nothing more: walk the tree, read every text file,
cut it into 50-line windows, tokenize like ``bm25s`` does by default (lower-cased ``\\w\\w+``
words; no identifier splitting, stemming or stop words), and precompute Okapi BM25 weights
(k1 = 1.5, b = 0.75) into a sparse term-by-window matrix, so a query is a sum of a few sparse
columns (the "eager" scoring ``bm25s`` uses). It has no persistence, no incremental update, no
symbols and no embeddings, so re-indexing one file means rebuilding everything.
Being plain, it also gives a no-frills BM25 NDCG@10 on the semble queries for context.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

WINDOW_LINES = 50
K1 = 1.5
B = 0.75
MAX_FILE_BYTES = 1_000_000
TOKEN = re.compile(r"\w\w+")


@dataclass(frozen=True)
class Window:
    path: str
    start_line: int
    end_line: int


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def walk(root: Path) -> list[Path]:
    """Every regular file below root except hidden folders and files (.git and friends)."""
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "node_modules")
        out.extend(Path(folder) / f for f in sorted(files) if not f.startswith("."))
    return out


def read_text(path: Path) -> str | None:
    """File text, or None for binaries and oversized files (a NUL byte marks a binary)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


class PlainBM25:
    """Build with :meth:`build`; :meth:`search` returns the top windows, best first."""

    def __init__(self, windows: list[Window], weights: sparse.csc_matrix, vocab: dict[str, int], files: int):
        self.windows = windows
        self.weights = weights  # windows x terms
        self.vocab = vocab
        self.files = files

    @classmethod
    def build(cls, root: Path) -> PlainBM25:
        windows: list[Window] = []
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[int] = []
        lengths: list[int] = []
        files = 0
        for path in walk(root):
            text = read_text(path)
            if text is None:
                continue
            files += 1
            rel = path.relative_to(root).as_posix()
            lines = text.splitlines()
            for start in range(0, max(len(lines), 1), WINDOW_LINES):
                counts = Counter(tokenize("\n".join(lines[start : start + WINDOW_LINES])))
                row = len(windows)
                windows.append(Window(rel, start + 1, min(start + WINDOW_LINES, max(len(lines), 1))))
                lengths.append(sum(counts.values()))
                for term, tf in counts.items():
                    rows.append(row)
                    cols.append(vocab.setdefault(term, len(vocab)))
                    tfs.append(tf)
        r, c, tf = np.asarray(rows), np.asarray(cols), np.asarray(tfs, dtype=np.float32)
        length = np.asarray(lengths, dtype=np.float32)
        n = max(len(windows), 1)
        df = np.bincount(c, minlength=len(vocab)).astype(np.float32)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        norm = K1 * (1 - B + B * length[r] / max(float(length.mean()) if len(length) else 1.0, 1.0))
        data = idf[c] * tf * (K1 + 1) / (tf + norm)
        weights = sparse.csc_matrix((data, (r, c)), shape=(len(windows), len(vocab)), dtype=np.float32)
        return cls(windows, weights, vocab, files)

    def search(self, query: str, top_k: int = 10) -> list[Window]:
        ids = sorted({self.vocab[t] for t in tokenize(query) if t in self.vocab})
        if not ids:
            return []
        scores = np.asarray(self.weights[:, ids].sum(axis=1)).ravel()
        k = min(top_k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [self.windows[i] for i in top if scores[i] > 0]
