"""The semble metric (NDCG@10 over chunk hits), kept free of I/O so it can be unit-tested.

Mirrors semble's ``benchmarks/common.py`` and ``bench_hybrid.py``: targets are
``relevant + secondary``; a returned chunk hits a target when its path suffix-matches the
target path and, if the target has a line span, the line spans overlap; a target's rank is the
first hit; ``n_relevant`` counts targets that at least one indexed chunk covers; the gain is 1
per hit target, discounted by log2(rank + 1), normalised by the ideal DCG of
min(k, n_relevant) hits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Target:
    """A file (``start_line is None``) or a line span of a file that a query should find."""

    path: str
    start_line: int | None = None
    end_line: int | None = None

    @classmethod
    def parse(cls, raw: str | dict) -> Target:
        if isinstance(raw, str):
            return cls(raw)
        start, end = raw.get("start_line"), raw.get("end_line")
        if start is None or end is None:
            return cls(str(raw["path"]))
        return cls(str(raw["path"]), int(start), int(end))

    @property
    def has_span(self) -> bool:
        return self.start_line is not None and self.end_line is not None

    def __str__(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}" if self.has_span else self.path


class Span(Protocol):
    """Anything with a path and a 1-based inclusive line span (search results, indexed chunks)."""

    path: str
    start_line: int
    end_line: int


def path_matches(file_path: str, target_path: str) -> bool:
    """semble's suffix match: equal, or ``file_path`` ends with ``/`` + ``target_path``."""
    file_path = file_path.replace("\\", "/")
    target_path = target_path.replace("\\", "/")
    return file_path == target_path or file_path.endswith("/" + target_path)


def hits(span: Span, target: Target) -> bool:
    if not path_matches(span.path, target.path):
        return False
    if not target.has_span:
        return True
    return not (span.end_line < target.start_line or span.start_line > target.end_line)  # type: ignore[operator]


def target_rank(results: Sequence[Span], target: Target) -> int | None:
    """1-based rank of the first result that hits ``target``, or None."""
    return next((rank for rank, span in enumerate(results, 1) if hits(span, target)), None)


def dcg(relevances: Iterable[int]) -> float:
    return sum(rel / math.log2(i + 2) for i, rel in enumerate(relevances))


def ndcg_at_k(ranks: Iterable[int], n_relevant: int, k: int = 10) -> float:
    """NDCG@k from the 1-based hit ranks; 0 when no target is indexed at all (as semble does)."""
    if n_relevant <= 0:
        return 0.0
    relevances = [0] * k
    for rank in ranks:
        if 1 <= rank <= k:
            relevances[rank - 1] = 1
    return dcg(relevances) / dcg([1] * min(k, n_relevant))


@dataclass(frozen=True)
class QueryScore:
    ndcg: float
    ranks: tuple[int | None, ...]  # per target, in annotation order
    n_relevant: int


def score_query(
    results: Sequence[Span], targets: Sequence[Target], indexed: Sequence[bool], k: int = 10
) -> QueryScore:
    """Score one query's ranked results; ``indexed[i]`` says whether any chunk covers target i."""
    top = results[:k]
    ranks = tuple(target_rank(top, t) for t in targets)
    n_relevant = sum(indexed)
    return QueryScore(ndcg_at_k([r for r in ranks if r is not None], n_relevant, k), ranks, n_relevant)


def covered(chunks: Iterable[Span], targets: Sequence[Target]) -> list[bool]:
    """For each target, whether at least one indexed chunk hits it (semble's ``n_relevant``)."""
    found = [False] * len(targets)
    for chunk in chunks:
        for i, target in enumerate(targets):
            if not found[i] and hits(chunk, target):
                found[i] = True
    return found


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation): the value a fraction ``q`` of samples stay under."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
