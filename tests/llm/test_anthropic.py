"""The Anthropic provider against a local server speaking the Messages API wire format:
request shape and headers, every SSE event type, error events and error bodies."""

from __future__ import annotations

import json
import threading

import pytest
from llm_support import Reply, write_config

from ragls.llm import EndpointError, LLMError, Message, create
from ragls.llm.anthropic import API_VERSION, AnthropicProvider
from ragls.privacy import PrivacyError

pytestmark = pytest.mark.loopback

KEY = "sk-ant-api03-test-key-0123456789abcdefghijklmnop"
CANARY_LINE = "QyNTUxOQAAACDcanaryDoNotLeaveThisMachine0123456789abcd"
CANARY_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    f"{CANARY_LINE}\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


def anthropic(tmp_path, monkeypatch, url: str, mode: str = "standard", **extra: object) -> AnthropicProvider:
    keys = "\n".join(f"{k} = {json.dumps(v)}" for k, v in {"max_retries": 0, **extra}.items())
    cfg = write_config(tmp_path, monkeypatch, f"""
[privacy]
mode = "{mode}"
audit_log = "{tmp_path / 'audit.jsonl'}"

[models.chat]
provider = "anthropic"
base_url = "{url}"
model = "claude-test"
api_key_env = "TEST_ANTHROPIC_KEY"
zero_retention = true
{keys}
""")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", KEY)
    p = create("chat", cfg)
    assert isinstance(p, AnthropicProvider)
    return p


def event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def message_stream(texts: list[str], stop_reason: str = "end_turn") -> list[bytes | float]:
    """The documented event sequence, with a ping and an unknown event mixed in."""
    parts: list[bytes | float] = [
        event("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-test",
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}}),
        event("ping", {"type": "ping"}),
        event("future_event_type", {"type": "future_event_type", "whatever": 1}),
    ]
    parts += [event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": t}}) for t in texts]
    parts += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason,
                                                                   "stop_sequence": None},
                                "usage": {"output_tokens": len(texts)}}),
        event("message_stop", {"type": "message_stop"}),
    ]
    return parts


def error_body(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def test_request_shape_headers_and_streamed_text(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(200, message_stream(["Hel", "lo", " there"]))]
    p = anthropic(tmp_path, monkeypatch, scripted.url)
    stream = p.chat([Message("system", "Be brief."), Message("user", "Greet me.")], max_tokens=50,
                    stop=["END"], temperature=0.5)
    assert list(stream) == ["Hel", "lo", " there"]
    assert stream.finish_reason == "stop"
    got = scripted.received[0]
    assert got.path == "/v1/messages"
    assert got.headers["x-api-key"] == KEY
    assert got.headers["anthropic-version"] == API_VERSION
    assert got.headers["content-type"] == "application/json"
    assert "authorization" not in got.headers
    body = json.loads(got.body)
    assert body == {
        "model": "claude-test", "max_tokens": 50, "temperature": 0.5, "stream": True,
        "system": "Be brief.", "messages": [{"role": "user", "content": "Greet me."}],
        "stop_sequences": ["END"],
    }


def test_max_tokens_stop_reason_is_reported_as_length(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(200, message_stream(["a", "b"], stop_reason="max_tokens"))]
    p = anthropic(tmp_path, monkeypatch, scripted.url)
    stream = p.complete("count forever: 1, 2,", max_tokens=2)
    assert stream.text() == "ab" and stream.finish_reason == "length"
    sent = json.loads(scripted.received[0].body)["messages"]
    assert sent == [{"role": "user", "content": "count forever: 1, 2,"}]


def test_error_event_mid_stream(tmp_path, monkeypatch, scripted):
    parts = message_stream(["partial"])[:5] + [event("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}})]
    scripted.replies = [Reply(200, parts)]
    p = anthropic(tmp_path, monkeypatch, scripted.url)
    with pytest.raises(EndpointError, match="overloaded_error: Overloaded"):
        p.chat([Message("user", "hi")]).text()


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (404, "not_found_error")],
)
def test_error_bodies_are_not_retried_and_name_the_endpoint(tmp_path, monkeypatch, scripted, status, kind):
    scripted.replies = [Reply(status, [error_body(kind, "nope")], {"content-type": "application/json"})]
    p = anthropic(tmp_path, monkeypatch, scripted.url, max_retries=3)
    with pytest.raises(EndpointError, match=rf"HTTP {status}: {kind}: nope") as info:
        p.chat([Message("user", "hi")]).text()
    assert scripted.url + "/messages" in str(info.value)
    assert KEY not in str(info.value)
    assert len(scripted.received) == 1


def test_rate_limit_and_overload_are_retried_with_retry_after(tmp_path, monkeypatch, scripted):
    scripted.replies = [
        Reply(429, [error_body("rate_limit_error", "slow")], {"retry-after": "0.1"}),
        Reply(529, [error_body("overloaded_error", "busy")], {"retry-after": "0"}),
        Reply(200, message_stream(["fine"])),
    ]
    p = anthropic(tmp_path, monkeypatch, scripted.url, max_retries=2)
    assert p.chat([Message("user", "hi")]).text() == "fine"
    assert len(scripted.received) == 3
    assert scripted.received[0].body == scripted.received[2].body  # the same bytes, resent


def test_truncated_stream_without_message_stop(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(200, message_stream(["cut"])[:5])]
    p = anthropic(tmp_path, monkeypatch, scripted.url)
    with pytest.raises(EndpointError, match="truncated"):
        p.chat([Message("user", "hi")]).text()


def test_invalid_json_event(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(200, [b"event: content_block_delta\ndata: {oops\n\n"])]
    p = anthropic(tmp_path, monkeypatch, scripted.url)
    with pytest.raises(EndpointError, match="invalid JSON"):
        p.chat([Message("user", "hi")]).text()


def test_cancel_closes_the_connection(tmp_path, monkeypatch, scripted):
    slow = message_stream([f"tok{i} " for i in range(200)])
    parts: list[bytes | float] = []
    for part in slow:
        parts += [part, 0.01]
    scripted.replies = [Reply(200, parts)]
    p = anthropic(tmp_path, monkeypatch, scripted.url)
    cancel = threading.Event()
    stream = p.chat([Message("user", "hi")], cancel=cancel)
    got = []
    for d in stream:
        got.append(d)
        if len(got) == 3:
            cancel.set()
    assert got == ["tok0 ", "tok1 ", "tok2 "] and stream.finish_reason == "cancelled"
    assert scripted.disconnected.wait(5), "the server kept writing to a closed stream"


def test_missing_api_key_names_the_variable(tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch, """
[privacy]
mode = "standard"
[models.chat]
provider = "anthropic"
model = "claude-test"
""")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(LLMError, match=r"ANTHROPIC_API_KEY \(models\.chat\.api_key_env\)"):
        create("chat", cfg)


def test_keyring_is_used_when_the_variable_is_unset(tmp_path, monkeypatch, scripted):
    keyring = pytest.importorskip("keyring")
    monkeypatch.setattr(keyring, "get_password", lambda service, user: f"ring-{service}-{user}")
    scripted.replies = [Reply(200, message_stream(["ok"]))]
    cfg = write_config(tmp_path, monkeypatch, f"""
[privacy]
mode = "standard"
audit_log = "{tmp_path / 'audit.jsonl'}"
[models.chat]
provider = "anthropic"
model = "claude-test"
base_url = "{scripted.url}"
api_key_env = "UNSET_VARIABLE_FOR_TEST"
keyring_service = "ragls-anthropic"
""")
    assert create("chat", cfg).chat([Message("user", "hi")]).text() == "ok"
    assert scripted.received[0].headers["x-api-key"] == "ring-ragls-anthropic-api_key"


def test_canary_private_key_never_leaves_and_is_restored(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(200, message_stream(["Found [[REDACTED_", "SECRET_1]] in the file."]))]
    p = anthropic(tmp_path, monkeypatch, scripted.remote_url, mode="zero-retention")
    repo_file = f"# deploy/key.txt\n{CANARY_KEY}\n"
    answer = p.chat([Message("system", repo_file), Message("user", "What is in deploy/key.txt?")]).text()
    body = scripted.received[0].body
    assert CANARY_LINE.encode() not in body and b"PRIVATE KEY" not in body
    assert answer == f"Found {CANARY_KEY} in the file."


def test_local_mode_refuses_anthropic(tmp_path, monkeypatch, scripted):
    with pytest.raises(PrivacyError, match=r"privacy\.mode is 'local'"):
        anthropic(tmp_path, monkeypatch, scripted.remote_url, mode="local")
    assert scripted.received == []
