"""OpenAI-compatible endpoints: OpenAI, vLLM, llama.cpp's server, Ollama, LM Studio, TGI.

Chat requests carry ``store: false`` (OpenAI's switch that keeps a request out of its stored
completions). The legacy ``/completions`` endpoint, used for raw fill-in-the-middle prompts, has
no storage option, so nothing extra is sent there.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

from ragls.llm.base import EndpointError, Message, Options
from ragls.llm.remote import RemoteProvider, parse_json, truncated
from ragls.llm.sse import Event


class OpenAIProvider(RemoteProvider):
    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    default_key_env = "OPENAI_API_KEY"
    key_required = False  # local servers (llama.cpp, vLLM, Ollama) usually take none

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

    def _complete_request(self, prompt: str, opts: Options) -> tuple[str, dict[str, Any]]:
        return "/completions", {**self._body(opts), "prompt": prompt}

    def _chat_deltas(self, events: Iterator[Event], url: str) -> Generator[str, None, str]:
        return (yield from _deltas(events, url, lambda choice: (choice.get("delta") or {}).get("content")))

    def _complete_deltas(self, events: Iterator[Event], url: str) -> Generator[str, None, str]:
        return (yield from _deltas(events, url, lambda choice: choice.get("text")))


def _deltas(
    events: Iterator[Event], url: str, text_of: Callable[[dict], str | None]
) -> Generator[str, None, str]:
    reason = None
    for event in events:
        if event.data.strip() == "[DONE]":
            return _finish(reason)
        chunk = parse_json(event.data, url)
        if not isinstance(chunk, dict):
            raise EndpointError(f"{url}: unexpected stream chunk {event.data[:80]!r}")
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise EndpointError(f"{url}: the endpoint reported an error mid-stream: {message}")
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
