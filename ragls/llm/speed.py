"""How fast a model reads a prompt and writes an answer, as measured, so inline completion can
decide how many prompt tokens a request may evaluate within its latency budget.

Both rates are exponential moving averages of what requests actually took (llama.cpp's own
timings for a local model, time to first token and stream time for a remote one): a machine
that gets busy, or a model server that gets a GPU, is followed within a few requests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

ALPHA = 0.3  # weight of the newest observation
MIN_SECONDS = 0.005  # shorter spans are timer noise, not a rate


@dataclass
class Speed:
    prompt_tps: float | None = None  # prompt tokens evaluated per second; None until measured
    generate_tps: float | None = None  # tokens generated per second
    first_prompt_tps: float | None = None  # the first measurement (a local model's load probe),
    # kept: prompt sizes follow it rather than the average, so they do not change as it wavers
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def observe_prompt(self, tokens: int, seconds: float) -> None:
        if tokens > 0 and seconds >= MIN_SECONDS:
            with self._lock:
                self.prompt_tps = _ema(self.prompt_tps, tokens / seconds)
                self.first_prompt_tps = self.first_prompt_tps or self.prompt_tps

    def observe_generation(self, tokens: int, seconds: float) -> None:
        if tokens > 0 and seconds >= MIN_SECONDS:
            with self._lock:
                self.generate_tps = _ema(self.generate_tps, tokens / seconds)

    def generation_ms(self, tokens: int) -> float:
        """Expected time to generate ``tokens`` (0 while unmeasured)."""
        return 1000 * tokens / self.generate_tps if self.generate_tps else 0.0

    def prompt_tokens_within(self, ms: float) -> int | None:
        """How many prompt tokens can be evaluated in ``ms``; None while unmeasured (no limit)."""
        if not self.prompt_tps:
            return None
        return max(0, int(ms * self.prompt_tps / 1000))


def _ema(old: float | None, new: float) -> float:
    return new if old is None else (1 - ALPHA) * old + ALPHA * new
