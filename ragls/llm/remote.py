"""What every HTTP provider shares: the privacy gate, redaction, audit, retries, SSE streaming.

A remote provider cannot be built unless the privacy policy allows it (so in ``local`` mode no
code path reaches another machine's socket). Every request to another machine is redacted before
it is serialised (one to a loopback or unix-socket server is local and sent as it is); the audit
log gets the hash of exactly the bytes sent; the answer is streamed back with secrets restored.
Subclasses only say how to shape the JSON body and how to read their stream's events.
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx

from ragls.config import ModelConfig
from ragls.llm import sse
from ragls.llm.base import (
    Deltas,
    EndpointError,
    LLMError,
    LLMTimeout,
    Message,
    ModelMetadata,
    Options,
    Provider,
    approx_tokens,
)
from ragls.privacy import Privacy, endpoint
from ragls.privacy.redact import Redaction

RETRY_STATUSES = {408, 429, 500, 502, 503, 504, 529}
CANCEL_POLL = 0.02  # seconds between looks at a request's cancel event while its answer streams
MAX_RETRY_WAIT = 20.0  # seconds; a longer Retry-After fails at once instead of hanging the editor
DEFAULT_CONTEXT = 8192


class RemoteProvider(Provider):
    default_base_url: str
    default_key_env: str
    key_required: bool

    def __init__(self, config: ModelConfig, privacy: Privacy, role: str):
        privacy.check(role, config)
        super().__init__(config)
        self.privacy = privacy
        self.role = role
        self.endpoint = endpoint.parse(config.base_url or self.default_base_url)
        self.base_url = self.endpoint.shown
        self._key = self._api_key()
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        transport = httpx.HTTPTransport(uds=self.endpoint.socket) if self.endpoint.socket else None
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def _api_key(self) -> str | None:
        """From the environment, else the OS keyring; kept only in memory, never logged."""
        env = self.config.api_key_env or self.default_key_env
        key = os.environ.get(env)
        if not key and self.config.keyring_service:
            try:
                import keyring
            except ImportError as exc:
                raise LLMError(
                    f"models.{self.role}.keyring_service is set but the 'keyring' package is not installed "
                    "(pip install keyring)"
                ) from exc
            key = keyring.get_password(self.config.keyring_service, "api_key")
        if not key and self.key_required:
            raise LLMError(
                f"models.{self.role}: provider '{self.kind}' needs an API key: set the environment variable "
                f"{env} (models.{self.role}.api_key_env) or models.{self.role}.keyring_service"
            )
        return key or None

    def describe(self) -> str:
        return f"{self.kind} endpoint {self.base_url} (model {self.config.model or '?'})"

    def _redaction(self) -> Redaction:
        """A local endpoint's requests never leave the machine: nothing to redact."""
        return Redaction(None) if self.endpoint.local else self.privacy.redactor.session()

    def _chat(self, messages: list[Message], opts: Options) -> Deltas:
        redaction = self._redaction()
        safe = [Message(m.role, redaction.redact(m.content)) for m in messages]
        path, body = self._chat_request(safe, opts)
        return (yield from self._stream(path, body, redaction, self._chat_deltas))

    def _complete(self, prompt: str, opts: Options) -> Deltas:
        redaction = self._redaction()
        suffix = None if opts.suffix is None else redaction.redact(opts.suffix)
        path, body = self._complete_request(redaction.redact(prompt), opts, suffix)
        return (yield from self._stream(path, body, redaction, self._complete_deltas, opts.cancel))

    def _stream(
        self, path: str, body: dict[str, Any], redaction: Redaction, parse: Any,
        cancel: threading.Event | None = None,
    ) -> Deltas:
        """POST and stream the answer. ``cancel`` set (a newer keystroke) stops it at once, even
        while the server is still reading the prompt: the connection is shut, which tells the
        server to stop generating; the stream then ends as cancelled."""
        url = self._url(path)
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            with _Abort(cancel) as abort, self._open(path, payload, redaction.count, abort) as response:
                abort.found(response.extensions.get("network_stream"))
                deltas = parse(self._framing(path)(self._lines(response, url)), url)
                try:
                    return (yield from redaction.restorer().restore_stream(deltas))
                finally:
                    deltas.close()
        except LLMError:
            if cancel is not None and cancel.is_set():
                return "cancelled"
            raise

    def _url(self, path: str, target: bool = False) -> str:
        """The URL of ``path``: under the base URL as configured (errors and the audit name it),
        or as requested (``target``: localhost as 127.0.0.1, a unix socket's label host)."""
        return (self.endpoint.url if target else self.base_url) + path

    def _framing(self, path: str) -> Callable[[Iterable[str]], Iterator[Any]]:
        """How the answer to ``path`` is framed: server-sent events, unless a subclass says."""
        return sse.events

    def _lines(self, response: httpx.Response, url: str) -> Iterator[str]:
        """The response's lines, with transport failures turned into errors naming the endpoint."""
        try:
            yield from response.iter_lines()
        except httpx.TimeoutException as exc:
            raise LLMTimeout(
                f"{url}: no data for {self.config.read_timeout:g} s mid-stream "
                f"(models.{self.role}.read_timeout)"
            ) from exc
        except httpx.TransportError as exc:
            raise EndpointError(f"{url}: the stream broke off ({exc or type(exc).__name__})") from exc

    @contextmanager
    def _open(
        self, path: str, payload: bytes, redactions: int, abort: _Abort | None = None
    ) -> Iterator[httpx.Response]:
        """POST with bounded retries on refused connections, 429 and 5xx (honouring Retry-After).
        Errors and the audit name the URL as configured; the request goes to the endpoint's URL
        (localhost as 127.0.0.1, a unix socket's label host). A cancellable request to a local
        server gets a connection of its own, so ``abort`` knows its socket from the start."""
        url = self._url(path)
        headers = self._headers()
        extensions = {}
        if abort is not None and abort.cancel is not None:
            extensions["trace"] = abort.trace
            if self.endpoint.local:
                headers["connection"] = "close"
        for attempt in range(self.config.max_retries + 1):
            last = attempt == self.config.max_retries
            self.privacy.audit.record(
                provider=self.kind, model=self.config.model, endpoint=url, payload=payload,
                redactions=redactions, local=self.endpoint.local,
            )
            try:
                target = self._url(path, target=True)
                request = self._client.build_request(
                    "POST", target, content=payload, headers=headers, extensions=extensions
                )
                response = self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                if last:
                    raise EndpointError(
                        f"{url}: cannot connect ({exc}); is the server running? (models.{self.role}.base_url)"
                    ) from exc
                time.sleep(_backoff(attempt))
                continue
            except httpx.TimeoutException as exc:
                raise LLMTimeout(f"{url}: no answer within the configured timeouts ({type(exc).__name__}; "
                                 f"models.{self.role}.connect_timeout / read_timeout)") from exc
            except httpx.TransportError as exc:  # the server dropped the connection (or we shut it)
                raise EndpointError(f"{url}: the connection broke off ({exc or type(exc).__name__})") from exc
            if response.status_code == 200:
                try:
                    yield response
                finally:
                    response.close()
                return
            error = _error_text(response)
            wait = _retry_after(response.headers.get("retry-after"))
            if response.status_code not in RETRY_STATUSES or last or (wait or 0) > MAX_RETRY_WAIT:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                after = f"; retry after {wait:g} s" if wait else ""
                raise EndpointError(f"{url}: HTTP {response.status_code}{tries}: {error}{after}")
            time.sleep(_backoff(attempt) if wait is None else wait)

    def _headers(self) -> dict[str, str]:
        return {"content-type": "application/json", "accept": "text/event-stream"}

    @abstractmethod
    def _chat_request(self, messages: list[Message], opts: Options) -> tuple[str, dict[str, Any]]: ...

    @abstractmethod
    def _complete_request(
        self, prompt: str, opts: Options, suffix: str | None
    ) -> tuple[str, dict[str, Any]]: ...

    @abstractmethod
    def _chat_deltas(self, events: Iterator[sse.Event], url: str) -> Generator[str, None, str]: ...

    @abstractmethod
    def _complete_deltas(self, events: Iterator[sse.Event], url: str) -> Generator[str, None, str]: ...

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(
            provider=self.kind,
            model=self.config.model,
            context_length=self.config.context_length or DEFAULT_CONTEXT,
            path=self.base_url,
            exact_token_count=False,
        )

    def close(self) -> None:
        self._client.close()


class _Abort:
    """Shuts a request's socket as soon as ``cancel`` is set, from sending it to the end of its
    answer: a read blocked on a server still reading the prompt returns at once (closing alone
    would not wake it), and the server sees the client go. The socket is learnt from the
    connection's trace (a new connection) or from the response (a reused one)."""

    OPENED = ("connection.connect_tcp.complete", "connection.connect_unix_socket.complete",
              "connection.start_tls.complete")

    def __init__(self, cancel: threading.Event | None):
        self.cancel = cancel
        self._stream: Any = None
        self._done = threading.Event()

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name in self.OPENED and info.get("return_value") is not None:
            self._stream = info["return_value"]

    def found(self, stream: Any) -> None:
        self._stream = self._stream or stream

    def __enter__(self) -> _Abort:
        if self.cancel is not None:
            threading.Thread(target=self._watch, name="ragls-cancel-watch", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(CANCEL_POLL):
            if self.cancel is not None and self.cancel.is_set() and self._stream is not None:
                sock = self._stream.get_extra_info("socket")
                if sock is not None:
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return


def parse_json(data: str, url: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise EndpointError(f"{url}: the stream carried invalid JSON ({exc.msg}): {data[:80]!r}") from exc


def truncated(url: str) -> EndpointError:
    return EndpointError(f"{url}: the stream ended before the endpoint said it was complete (truncated)")


def _backoff(attempt: int) -> float:
    return min(0.5 * 2**attempt, 4.0)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(response: httpx.Response) -> str:
    """The endpoint's own error message (OpenAI and Anthropic both nest it under ``error``)."""
    body = response.read().decode("utf-8", errors="replace")
    response.close()
    try:
        error = json.loads(body).get("error")
    except (json.JSONDecodeError, AttributeError):
        return body[:200].strip() or response.reason_phrase
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('message', '')}".strip()
    return str(error)[:200]
