"""The provider interface every model backend implements, and the types it speaks.

Both ``chat`` and ``complete`` return a :class:`Stream` of text deltas so an editor can show
tokens as they come and stop them at any moment: the stream checks the caller's cancel event
and the request deadline between deltas, and closing it closes the underlying generator (and
with it the model's generation loop or the HTTP response).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from os.path import commonprefix
from typing import Literal

from ragls.config import ModelConfig
from ragls.llm.speed import Speed


class LLMError(RuntimeError):
    """A model request failed; the message names the setting or endpoint to look at."""


class ModelError(LLMError):
    """A model file is missing, unreadable or not a model this provider can load."""


class EndpointError(LLMError):
    """A remote endpoint is down, refused the request, or answered something unreadable."""


class LLMTimeout(LLMError):
    """A request ran past its deadline or its endpoint stalled mid-stream."""


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class FimTemplate:
    """The three special tokens of a fill-in-the-middle model."""

    prefix: str
    suffix: str
    middle: str

    @property
    def name(self) -> str:
        return f"{self.prefix}{self.suffix}{self.middle}"

    def render(self, prefix: str, suffix: str) -> str:
        """Suffix-prefix-middle order: the text before the cursor comes last but one, so typing
        only appends to the prompt and the prefix (KV) cache stays valid."""
        return f"{self.suffix}{suffix}{self.prefix}{prefix}{self.middle}"


@dataclass(frozen=True)
class ModelMetadata:
    provider: str
    model: str
    context_length: int
    license: str | None = None
    fim: FimTemplate | None = None
    chat_template: bool = False
    path: str | None = None
    exact_token_count: bool = True
    infill: str | None = None  # how a server fills in the middle itself, its FIM template its
    # own ("ollama", "infill"; see ``served``): ``complete`` then takes the suffix apart


@dataclass(frozen=True)
class Options:
    """One request's generation settings, the config's defaults filled in."""

    max_tokens: int
    stop: tuple[str, ...]
    temperature: float
    timeout: float
    cancel: threading.Event | None = None  # a local model stops reading a long prompt when set
    suffix: str | None = None  # the text after the cursor, for a server that infills itself


FinishReason = str  # "stop" | "length" | "cancelled"
Deltas = Generator[str, None, FinishReason]


class Stream(Iterator[str]):
    """Text deltas of one request. ``finish_reason`` is set once the stream ends."""

    def __init__(self, deltas: Deltas, cancel: threading.Event | None, timeout: float, what: str):
        self._deltas = deltas
        self._cancel = cancel
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        self._what = what
        self.finish_reason: FinishReason | None = None

    def __next__(self) -> str:
        if self.finish_reason is not None:
            raise StopIteration
        if self._cancel is not None and self._cancel.is_set():
            self.close()
            raise StopIteration
        if time.monotonic() > self._deadline:
            self.finish_reason = "timeout"
            self._deltas.close()
            raise LLMTimeout(f"{self._what}: no complete answer within {self._timeout:g} s "
                             "(raise the request timeout or models.<role>.timeout)")
        try:
            return next(self._deltas)
        except StopIteration as stop:
            self.finish_reason = stop.value or "stop"
            raise
        except BaseException:
            self.finish_reason = "error"
            raise

    def close(self) -> None:
        """Stop now: ends the generation loop / closes the HTTP response."""
        if self.finish_reason is None:
            self.finish_reason = "cancelled"
        self._deltas.close()

    def text(self) -> str:
        return "".join(self)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Provider(ABC):
    """A model backend. One instance stays alive for the daemon's lifetime and serves many
    requests (a local model is loaded once)."""

    kind: str

    def __init__(self, config: ModelConfig):
        self.config = config
        self.speed = Speed()  # measured as requests run; inline completion budgets with it
        self._last_prompt = ""

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        stop: Sequence[str] = (),
        temperature: float | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> Stream:
        opts = self._options(max_tokens, stop, temperature, timeout)
        return Stream(self._chat(list(messages), opts), cancel, opts.timeout, self.describe())

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int | None = None,
        stop: Sequence[str] = (),
        temperature: float | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        suffix: str | None = None,
    ) -> Stream:
        """Continue a raw prompt (no chat template): the entry point for fill-in-the-middle.
        With ``suffix`` the prompt is the text before the cursor and the model's server puts
        both in its FIM template (only where ``metadata().infill`` says it can)."""
        if suffix is not None and self.metadata().infill is None:
            raise LLMError(f"{self.describe()} does not fill in the middle itself: render the FIM "
                           "template into the prompt instead")
        opts = self._options(max_tokens, stop, temperature, timeout)
        opts = dataclasses.replace(opts, cancel=cancel, suffix=suffix)
        deltas = self._timed(self._complete(prompt, opts), prompt)
        self._last_prompt = prompt
        return Stream(deltas, cancel, opts.timeout, self.describe())

    def cached_tokens(self, prompt: str) -> int:
        """How many leading tokens of ``prompt`` the model has already read (and will not read
        again). A remote server with a prompt cache keeps the previous prompt: the part shared with
        it is counted."""
        return self.count_tokens(commonprefix([prompt, self._last_prompt]))

    def prefill(self, prompt: str, preempted: Callable[[], bool]) -> bool:
        """Read ``prompt`` ahead of the request that will need it, stopping as soon as
        ``preempted()`` says a request is waiting; True when all of it is read. A remote endpoint
        reads prompts only with requests, so there is nothing to do ahead."""
        return False

    def _timed(self, deltas: Deltas, prompt: str) -> Deltas:
        """Measure a stream: the wait for the first delta is reading the prompt's new tokens, the
        rest is generation (a delta is about a token). llama.cpp's own timings replace this."""
        return self._measured(deltas, self.count_tokens(prompt) - self.cached_tokens(prompt))

    def _measured(self, deltas: Deltas, new_tokens: int) -> Deltas:
        started = time.monotonic()
        first: float | None = None
        count = 0
        try:
            while True:
                try:
                    delta = next(deltas)
                except StopIteration as stop:
                    return stop.value or "stop"
                if first is None:
                    first = time.monotonic()
                    self.speed.observe_prompt(new_tokens, first - started)
                count += 1
                yield delta
        finally:
            deltas.close()  # closing this stream ends the provider's generation too
            if first is not None:
                self.speed.observe_generation(count - 1, time.monotonic() - first)

    def _options(
        self, max_tokens: int | None, stop: Sequence[str], temperature: float | None, timeout: float | None
    ) -> Options:
        c = self.config
        limit = c.max_tokens if max_tokens is None else max_tokens
        if limit < 1:
            # Some backends read 0 as "until the context is full": never let a request run unbounded.
            raise LLMError(f"max_tokens must be at least 1, got {limit} (models.<role>.max_tokens)")
        return Options(
            max_tokens=limit,
            stop=tuple(stop),
            temperature=c.temperature if temperature is None else temperature,
            timeout=c.timeout if timeout is None else timeout,
        )

    def describe(self) -> str:
        """How errors name this model: provider and model or endpoint."""
        return f"{self.kind} model {self.config.model or self.config.path}"

    @abstractmethod
    def _chat(self, messages: list[Message], opts: Options) -> Deltas: ...

    @abstractmethod
    def _complete(self, prompt: str, opts: Options) -> Deltas: ...

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abstractmethod
    def metadata(self) -> ModelMetadata: ...

    @abstractmethod
    def close(self) -> None:
        """Release the model or the connection pool."""


def approx_tokens(text: str) -> int:
    """Budgeting estimate for endpoints without a local tokenizer: ~4 UTF-8 bytes per token
    (deliberately a little pessimistic for code, so budgets are not overrun)."""
    return -(-len(text.encode("utf-8")) // 4)

