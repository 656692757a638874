"""Anthropic's Messages API, streamed.

Wire format: POST ``{base_url}/messages`` with headers ``x-api-key`` and ``anthropic-version``;
the SSE stream is ``message_start``, then per content block ``content_block_start``,
``content_block_delta`` (``text_delta``) and ``content_block_stop``, then ``message_delta``
(carrying ``stop_reason``) and ``message_stop``; ``ping`` may come at any time, ``error`` ends
the stream. Unknown event types are skipped, as Anthropic asks clients to do.

Retention: the Messages API has no per-request no-storage option; zero data retention is an
agreement on the organisation's account. ragls therefore sends nothing extra and, in
``zero-retention`` mode, relies on the user's ``zero_retention = true`` attestation for the
endpoint. The Messages API has no raw-completion endpoint either: ``complete`` sends the prompt
as the single user turn.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from ragls.llm.base import EndpointError, Message, Options
from ragls.llm.remote import RemoteProvider, parse_json, truncated
from ragls.llm.sse import Event

API_VERSION = "2023-06-01"
# Anthropic requires max_tokens; the stop reasons that mean "cut off by the cap".
_LENGTH_REASONS = {"max_tokens", "model_context_window_exceeded"}


class AnthropicProvider(RemoteProvider):
    kind = "anthropic"
    default_base_url = "https://api.anthropic.com/v1"
    default_key_env = "ANTHROPIC_API_KEY"
    key_required = True

    def _headers(self) -> dict[str, str]:
        assert self._key is not None
        return {**super()._headers(), "x-api-key": self._key, "anthropic-version": API_VERSION}

    def _chat_request(self, messages: list[Message], opts: Options) -> tuple[str, dict[str, Any]]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        body: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": opts.max_tokens,
            "temperature": opts.temperature,
            "stream": True,
            "messages": [{"role": m.role, "content": m.content} for m in messages if m.role != "system"],
        }
        if system:
            body["system"] = system
        if opts.stop:
            body["stop_sequences"] = list(opts.stop)
        return "/messages", body

    def _complete_request(
        self, prompt: str, opts: Options, suffix: str | None
    ) -> tuple[str, dict[str, Any]]:  # suffix: always None (no server-side infill here)
        return self._chat_request([Message("user", prompt)], opts)

    def _chat_deltas(self, events: Iterator[Event], url: str) -> Generator[str, None, str]:
        reason = "stop"
        for event in events:
            if event.event == "ping":
                continue
            data = parse_json(event.data, url)
            kind = data.get("type", event.event) if isinstance(data, dict) else event.event
            if kind == "error":
                error = data.get("error") or {}
                raise EndpointError(
                    f"{url}: the endpoint reported an error mid-stream: "
                    f"{error.get('type', 'error')}: {error.get('message', '')}"
                )
            if kind == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield delta["text"]
            elif kind == "message_delta":
                stop = (data.get("delta") or {}).get("stop_reason")
                reason = "length" if stop in _LENGTH_REASONS else reason
            elif kind == "message_stop":
                return reason
        raise truncated(url)

    _complete_deltas = _chat_deltas
