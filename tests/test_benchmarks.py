"""The benchmark's metric code: semble's NDCG@10 protocol and the helpers around it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest

# benchmarks/ is a top-level folder of the checkout, not part of the installed distribution.
from benchmarks.corpora import stride_sample
from benchmarks.metrics import Target, covered, ndcg_at_k, path_matches, percentile, score_query


@dataclass
class R:
    path: str
    start_line: int = 1
    end_line: int = 10


def test_path_suffix_match_is_on_path_components() -> None:
    assert path_matches("fastapi/routing.py", "fastapi/routing.py")
    assert path_matches("/tmp/x/fastapi/routing.py", "fastapi/routing.py")
    assert not path_matches("myfastapi/routing.py", "fastapi/routing.py")
    assert not path_matches("fastapi/routing.pyi", "fastapi/routing.py")


def test_target_parse() -> None:
    assert Target.parse("a.py") == Target("a.py")
    assert Target.parse({"path": "a.py", "start_line": 3, "end_line": 9}) == Target("a.py", 3, 9)


def test_first_hit_rank_and_ideal_for_two_targets() -> None:
    targets = [Target("lib/a.js"), Target("lib/b.js")]
    results = [R("lib/c.js"), R("lib/a.js"), R("lib/a.js"), R("lib/b.js")]
    score = score_query(results, targets, [True, True])
    assert score.ranks == (2, 4)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert score.ndcg == pytest.approx(expected)


def test_span_targets_need_overlap() -> None:
    target = Target("fastapi/params.py", 746, 749)
    results = [R("fastapi/params.py", 1, 745), R("fastapi/params.py", 749, 800)]
    assert score_query(results, [target], [True]).ranks == (2,)
    assert score_query(results[:1], [target], [True]).ndcg == 0.0


def test_only_top_k_counts_and_unindexed_targets_lower_the_ideal() -> None:
    targets = [Target("a.py"), Target("gone.py")]
    results = [R(f"x{i}.py") for i in range(10)] + [R("a.py")]
    assert score_query(results, targets, [True, False]).ndcg == 0.0
    # gone.py is covered by no indexed chunk, so a perfect answer for a.py alone scores 1.
    assert score_query([R("a.py")], targets, [True, False]).ndcg == pytest.approx(1.0)
    assert ndcg_at_k([1], 0) == 0.0


def test_covered_uses_spans() -> None:
    chunks = [R("f.py", 1, 20), R("f.py", 21, 40)]
    targets = [Target("f.py", 30, 31), Target("f.py", 50, 60), Target("g.py")]
    assert covered(chunks, targets) == [True, False, False]


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0], 0.95) == 3.0


def test_stride_sample_is_deterministic_and_spread() -> None:
    items = list(range(100))
    assert stride_sample(items, 4) == [0, 25, 50, 75]
    assert stride_sample(items, 200) == items


def test_plain_bm25_baseline_ranks_the_window_with_the_rare_term_first(tmp_path: Path) -> None:
    from benchmarks.baseline import WINDOW_LINES, PlainBM25

    (tmp_path / "a.py").write_text("def common():\n    return 1\n" * 40)
    (tmp_path / "b.py").write_text("x = 1\n" * WINDOW_LINES + "def frobnicate_widget():\n    pass\n")
    (tmp_path / "blob.bin").write_bytes(b"\0frobnicate")
    index = PlainBM25.build(tmp_path)
    assert index.files == 2
    top = index.search("frobnicate_widget", 10)
    assert [(w.path, w.start_line) for w in top] == [("b.py", WINDOW_LINES + 1)]
    assert index.search("nothing-like-this", 10) == []


def test_arena_benchmark_recovers_the_true_order_from_many_votes() -> None:
    import numpy as np

    from benchmarks.bench_arena import elo, measure

    strengths = np.linspace(-1.0, 1.0, 4)
    found = measure(strengths, votes_per_draw=1000, draws=3, tie_rate=0.0, rounds=20, seed=1)
    assert found["bt_rho"] > 0.9 and found["bt_exact"] > 0 and 0 < found["coverage"] <= 1
    ratings = elo([{"a": {"model": "m0"}, "b": {"model": "m1"}, "vote": "a"}], 2)
    assert list(ratings) == [1016.0, 984.0]  # an upset-free first vote moves each by K/2
