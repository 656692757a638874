"""The speed model inline completion budgets with: moving averages of measured rates."""

from __future__ import annotations

import pytest

from ragls.llm.speed import Speed


def test_rates_are_moving_averages_and_the_first_one_is_kept() -> None:
    speed = Speed()
    assert speed.prompt_tokens_within(1000) is None  # unmeasured: no limit
    assert speed.generation_ms(10) == 0.0
    speed.observe_prompt(100, 1.0)
    speed.observe_prompt(300, 1.0)
    assert speed.prompt_tps == pytest.approx(0.7 * 100 + 0.3 * 300)
    assert speed.first_prompt_tps == 100
    assert speed.prompt_tokens_within(500) == 80
    assert speed.prompt_tokens_within(-20) == 0
    speed.observe_generation(50, 1.0)
    assert speed.generation_ms(10) == pytest.approx(200)


def test_spans_too_short_to_time_are_ignored() -> None:
    speed = Speed()
    speed.observe_prompt(5, 0.0001)
    speed.observe_generation(0, 1.0)
    assert speed.prompt_tps is None and speed.generate_tps is None
