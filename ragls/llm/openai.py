"""OpenAI-compatible endpoints: OpenAI, vLLM, llama.cpp's server, Ollama, LM Studio, TGI.

Chat requests carry ``store: false`` (OpenAI's switch that keeps a request out of its stored
completions). The legacy ``/completions`` endpoint, used for raw fill-in-the-middle prompts, has
no storage option, so nothing extra is sent there. As the completion model of a configured
server, the provider asks once how the server fills in the middle (``served``): llama.cpp's
``/infill`` and Ollama's ``/api/generate`` with a suffix take the text before and after the
cursor apart and apply the model's own FIM template.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import httpx

from ragls.config import ModelConfig
from ragls.llm import served
from ragls.llm.base import EndpointError, Message, ModelMetadata, Options
from ragls.llm.remote import RemoteProvider, parse_json, truncated
from ragls.llm.sse import Event
from ragls.privacy import Privacy

INFILL = served.INFILL  # llama.cpp server's, at its root
OLLAMA_GENERATE = "/api/generate"  # Ollama's, at its root
AT_ROOT = (INFILL, OLLAMA_GENERATE, served.OLLAMA_SHOW)


class OpenAIProvider(RemoteProvider):
    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    default_key_env = "OPENAI_API_KEY"
    key_required = False  # local servers (llama.cpp, vLLM, Ollama) usually take none

    def __init__(self, config: ModelConfig, privacy: Privacy, role: str):
        super().__init__(config, privacy, role)
        self._route: served.Route | None = None
        self._route_lock = threading.Lock()

    def route(self) -> served.Route:
        """How this server fills in the middle: asked once, on first use, and kept (a server
        that cannot be reached is asked again next time). Only a configured server's completion
        model is asked; anything else uses ``/completions``."""
        if self.role != "completion" or not self.config.base_url:
            return "completions"
        with self._route_lock:
            if self._route is None:
                try:
                    self._route = served.probe(self._probe_post, self.config.model)
                except httpx.TransportError:
                    return "completions"
            return self._route

    def _probe_post(self, path: str, body: bytes) -> httpx.Response:
        self.privacy.audit.record(
            provider=self.kind, model=self.config.model, endpoint=self._url(path), payload=body,
            redactions=0, local=self.endpoint.local,
        )
        return self._client.post(self._url(path, target=True), content=body,
                                 headers={**self._headers(), "accept": "application/json"},
                                 timeout=served.PROBE_TIMEOUT)

    def metadata(self) -> ModelMetadata:
        route = self.route()
        return dataclasses.replace(super().metadata(), infill=route if route in served.SERVER_FIM else None)

    def _url(self, path: str, target: bool = False) -> str:
        """Ollama's and llama.cpp's own endpoints are at the server's root, not under ``/v1``."""
        base = super()._url("", target)
        return (served.root(base) if path in AT_ROOT else base) + path

    def _framing(self, path: str) -> Callable[[Iterable[str]], Iterator[Any]]:
        """Ollama streams one JSON object a line (NDJSON), not server-sent events."""
        return _json_lines if path == OLLAMA_GENERATE else super()._framing(path)

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        if self._key:
            headers["authorization"] = f"Bearer {self._key}"
        return headers

    def _body(self, opts: Options) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "stream": True,
            "max_tokens": opts.max_tokens,
            "temperature": opts.temperature,
        }
        if opts.stop:
            body["stop"] = list(opts.stop)
        return body

    def _chat_request(self, messages: list[Message], opts: Options) -> tuple[str, dict[str, Any]]:
        messages_json = [{"role": m.role, "content": m.content} for m in messages]
        return "/chat/completions", {**self._body(opts), "messages": messages_json, "store": False}

    def _complete_request(
        self, prompt: str, opts: Options, suffix: str | None
    ) -> tuple[str, dict[str, Any]]:
        if suffix is None:
            return "/completions", {**self._body(opts), "prompt": prompt}
        if self.route() == "ollama":
            options: dict[str, Any] = {"num_predict": opts.max_tokens, "temperature": opts.temperature}
            if opts.stop:
                options["stop"] = list(opts.stop)
            body = {"model": self.config.model, "prompt": prompt, "suffix": suffix, "stream": True}
            return OLLAMA_GENERATE, {**body, "options": options}
        body = {"input_prefix": prompt, "input_suffix": suffix, "prompt": "", "stream": True,
                "n_predict": opts.max_tokens, "temperature": opts.temperature, "cache_prompt": True}
        return INFILL, {**body, "stop": list(opts.stop)} if opts.stop else body

    def _chat_deltas(self, events: Iterator[Event], url: str) -> Generator[str, None, str]:
        return (yield from _deltas(events, url, lambda choice: (choice.get("delta") or {}).get("content")))

    def _complete_deltas(self, events: Iterator[Any], url: str) -> Generator[str, None, str]:
        if url.endswith(OLLAMA_GENERATE):
            return (yield from _ollama_deltas(events, url))
        if url.endswith(INFILL):
            return (yield from _infill_deltas(events, url))
        return (yield from _deltas(events, url, lambda choice: choice.get("text")))


def _deltas(
    events: Iterator[Event], url: str, text_of: Callable[[dict], str | None]
) -> Generator[str, None, str]:
    reason = None
    for event in events:
        if event.data.strip() == "[DONE]":
            return _finish(reason)
        chunk = _object(parse_json(event.data, url), event.data, url)
        for choice in chunk.get("choices") or []:
            text = text_of(choice)
            if text:
                yield text
            reason = choice.get("finish_reason") or reason
    # Some servers end without [DONE]; a finish_reason proves the answer is complete.
    if reason is None:
        raise truncated(url)
    return _finish(reason)


def _finish(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


def _json_lines(lines: Iterable[str]) -> Iterator[str]:
    """NDJSON: each non-empty line is one JSON object."""
    return (line for line in lines if line.strip())


def _ollama_deltas(lines: Iterator[str], url: str) -> Generator[str, None, str]:
    """Ollama's ``/api/generate`` stream: ``{"response": ..., "done": false}`` objects, the last
    with ``done: true`` and a ``done_reason``; an error is ``{"error": ...}``."""
    for line in lines:
        chunk = _object(parse_json(line, url), line, url)
        if chunk.get("response"):
            yield str(chunk["response"])
        if chunk.get("done"):
            return _finish(chunk.get("done_reason"))
    raise truncated(url)


def _infill_deltas(events: Iterator[Event], url: str) -> Generator[str, None, str]:
    """llama.cpp's ``/infill`` stream: events of ``{"content": ..., "stop": false}``, the last with
    ``stop: true`` (``stop_type`` "limit" or ``stopped_limit`` when it ran out of tokens)."""
    for event in events:
        chunk = _object(parse_json(event.data, url), event.data, url)
        if chunk.get("content"):
            yield str(chunk["content"])
        if chunk.get("stop"):
            limit = chunk.get("stop_type") == "limit" or chunk.get("stopped_limit")
            return "length" if limit else "stop"
    raise truncated(url)


def _object(chunk: object, raw: str, url: str) -> dict:
    """A stream chunk as a dict, or the error it carries raised."""
    if not isinstance(chunk, dict):
        raise EndpointError(f"{url}: unexpected stream chunk {raw[:80]!r}")
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise EndpointError(f"{url}: the endpoint reported an error mid-stream: {message}")
    return chunk
