"""The OpenAI-compatible provider against a real server (llama-cpp-python's, on loopback), and
against a scripted server for failures a real server cannot be made to produce."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest
from llm_support import LOOPBACK, REMOTE_NAME, RecordingProxy, Reply, free_port, write_config

from ragls.llm import EndpointError, LLMTimeout, Message, create
from ragls.llm.openai import OpenAIProvider
from ragls.privacy import Privacy, PrivacyError
from ragls.privacy.audit import AuditLog

pytestmark = pytest.mark.loopback

CANARY = "AKIAZ7QCANARY3XK5J2P"  # an AWS-key-shaped secret planted in the "repository"


def openai_config(tmp_path, monkeypatch, base_url: str, mode: str = "standard", zero_retention: bool = True,
                  **extra: object):
    keys = "\n".join(f"{k} = {json.dumps(v)}" for k, v in extra.items())
    return write_config(tmp_path, monkeypatch, f"""
[privacy]
mode = "{mode}"
audit_log = "{tmp_path / 'audit.jsonl'}"

[models.chat]
provider = "openai"
base_url = "{base_url}"
model = "smollm2"
zero_retention = {json.dumps(zero_retention)}
{keys}
""")


def provider(tmp_path, monkeypatch, base_url: str, **extra: object) -> OpenAIProvider:
    extra.setdefault("max_retries", 0)
    p = create("chat", openai_config(tmp_path, monkeypatch, base_url, **extra))
    assert isinstance(p, OpenAIProvider)
    return p


# --- against the real llama.cpp server -------------------------------------------------------


def test_streaming_chat_from_a_real_server(tmp_path, monkeypatch, llama_server):
    p = provider(tmp_path, monkeypatch, llama_server)
    stream = p.chat([Message("user", "Name three colours.")], max_tokens=20, temperature=0)
    deltas = list(stream)
    assert len(deltas) > 3 and "".join(deltas).strip()
    assert stream.finish_reason in {"stop", "length"}


def test_streaming_completion_with_stop_sequence(tmp_path, monkeypatch, llama_server):
    p = provider(tmp_path, monkeypatch, llama_server)
    stream = p.complete("def add(a, b):\n    return", max_tokens=30, stop=["\n"], temperature=0)
    text = stream.text()
    assert text.strip() and "\n" not in text
    assert stream.finish_reason == "stop"


def test_max_tokens_bounds_a_model_that_never_stops(tmp_path, monkeypatch, llama_server):
    p = provider(tmp_path, monkeypatch, llama_server)
    stream = p.complete("1, 2, 3, 4, 5, 6,", max_tokens=8, temperature=0)
    stream.text()
    assert stream.finish_reason == "length"


def test_cancel_mid_stream_closes_the_response(tmp_path, monkeypatch, llama_server):
    p = provider(tmp_path, monkeypatch, llama_server)
    cancel = threading.Event()
    got = []
    stream = p.complete("1, 2, 3, 4, 5,", max_tokens=300, temperature=0, cancel=cancel)
    for delta in stream:
        got.append(delta)
        if len(got) == 2:
            cancel.set()
    assert len(got) == 2 and stream.finish_reason == "cancelled"
    # The server keeps serving (its generation for the dropped client was abandoned).
    assert p.complete("Hello", max_tokens=3).text() is not None


def test_outbound_bytes_carry_store_false_and_never_the_canary(tmp_path, monkeypatch, llama_server):
    port = int(llama_server.rsplit(":", 1)[1].split("/")[0])
    proxy = RecordingProxy(port)
    try:
        # A name that reaches the proxy on loopback but is not a loopback literal: remote, redacted.
        p = provider(tmp_path, monkeypatch, f"http://{REMOTE_NAME}:{proxy.port}/v1", mode="zero-retention")
        context = f'# settings.py\nAWS_ACCESS_KEY_ID = "{CANARY}"\nregion = "eu-west-1"\n'
        question = [Message("system", context), Message("user", "What region is configured?")]
        p.chat(question, max_tokens=8).text()
        p.complete(context + "def region():\n    return", max_tokens=4).text()
    finally:
        proxy.close()
    sent = bytes(proxy.sent)
    assert b"/v1/chat/completions" in sent and b"/v1/completions" in sent
    assert CANARY.encode() not in sent
    assert b"[[REDACTED_SECRET_1]]" in sent and b"eu-west-1" in sent
    chat_body = json.loads(sent.split(b"\r\n\r\n", 1)[1].split(b"POST ", 1)[0])
    assert chat_body["store"] is False
    # The audit log holds the hash of exactly the bytes that went out, and no content.
    entries = AuditLog(tmp_path / "audit.jsonl").entries()
    assert [e.redactions for e in entries] == [1, 1]
    bodies = [chunk.split(b"\r\n\r\n", 1)[1] for chunk in sent.split(b"POST ")[1:]]
    assert {hashlib.sha256(b).hexdigest() for b in bodies} == {e.sha256 for e in entries}
    log_text = (tmp_path / "audit.jsonl").read_text()
    assert CANARY not in log_text and "eu-west-1" not in log_text and "region" not in log_text


def test_endpoint_down_names_the_url_and_setting(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/v1"
    p = provider(tmp_path, monkeypatch, url, max_retries=1)
    start = time.monotonic()
    with pytest.raises(EndpointError, match=r"cannot connect.*models\.chat\.base_url") as info:
        p.chat([Message("user", "hi")]).text()
    assert url in str(info.value)
    assert time.monotonic() - start < 5  # one bounded backoff, not a hang


def test_privacy_modes_gate_the_provider(tmp_path, monkeypatch, llama_server):
    remote = llama_server.replace(LOOPBACK, REMOTE_NAME)
    cfg = openai_config(tmp_path, monkeypatch, remote, mode="local")
    with pytest.raises(PrivacyError, match=r"privacy\.mode is 'local'"):
        create("chat", cfg)
    cfg = openai_config(tmp_path, monkeypatch, remote, mode="zero-retention", zero_retention=False)
    with pytest.raises(PrivacyError, match=r"models\.chat\.zero_retention = true"):
        create("chat", cfg)
    # The check sits in the provider itself, so bypassing the factory does not bypass it.
    with pytest.raises(PrivacyError):
        OpenAIProvider(cfg.models.chat, Privacy(cfg.privacy), "chat")


# --- scripted failures ------------------------------------------------------------------------


def sse(*chunks: dict | str) -> list[bytes | float]:
    return [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n".encode() for c in chunks]


def delta(text: str, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def test_429_with_retry_after_is_retried_then_succeeds(tmp_path, monkeypatch, scripted):
    scripted.replies = [
        Reply(429, [b'{"error": {"type": "rate_limit", "message": "slow down"}}'],
              {"retry-after": "0.2", "content-type": "application/json"}),
        Reply(200, sse(delta("ok"), delta("", "stop"), "[DONE]")),
    ]
    p = provider(tmp_path, monkeypatch, scripted.url, max_retries=2)
    start = time.monotonic()
    assert p.chat([Message("user", "hi")]).text() == "ok"
    assert time.monotonic() - start >= 0.2
    assert len(scripted.received) == 2


def test_500_retries_are_bounded_then_the_error_is_clear(tmp_path, monkeypatch, scripted):
    error = Reply(500, [b'{"error": {"type": "server_error", "message": "boom"}}'], {"retry-after": "0"})
    scripted.replies = [error, error, error, error]
    p = provider(tmp_path, monkeypatch, scripted.url, max_retries=2)
    with pytest.raises(EndpointError, match=r"HTTP 500 after 3 attempts: server_error: boom") as info:
        p.chat([Message("user", "hi")]).text()
    assert scripted.url in str(info.value)
    assert len(scripted.received) == 3


def test_a_long_retry_after_fails_at_once(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(429, [b"{}"], {"retry-after": "3600"})]
    p = provider(tmp_path, monkeypatch, scripted.url, max_retries=3)
    with pytest.raises(EndpointError, match="retry after 3600 s"):
        p.chat([Message("user", "hi")]).text()
    assert len(scripted.received) == 1


def test_invalid_json_in_the_stream(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(200, sse(delta("a"), "{not json"))]
    p = provider(tmp_path, monkeypatch, scripted.url)
    with pytest.raises(EndpointError, match="invalid JSON"):
        p.chat([Message("user", "hi")]).text()


def test_truncated_stream_is_an_error_not_a_short_answer(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(200, sse(delta("par"), delta("tial")), cut=True)]
    p = provider(tmp_path, monkeypatch, scripted.url)
    stream = p.chat([Message("user", "hi")])
    got = []
    with pytest.raises(EndpointError, match="truncated|broke off"):
        for d in stream:
            got.append(d)
    assert "".join(got) == "partial"


def test_stall_mid_stream_times_out_naming_read_timeout(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(200, [*sse(delta("a")), 2.0, *sse(delta("b", "stop"), "[DONE]")])]
    p = provider(tmp_path, monkeypatch, scripted.url, read_timeout=0.3)
    with pytest.raises(LLMTimeout, match=r"mid-stream \(models\.chat\.read_timeout\)"):
        p.chat([Message("user", "hi")]).text()


def test_error_object_inside_the_stream(tmp_path, monkeypatch, scripted):
    scripted.replies = [Reply(200, sse(delta("a"), {"error": {"message": "context overflow"}}))]
    p = provider(tmp_path, monkeypatch, scripted.url)
    with pytest.raises(EndpointError, match="context overflow"):
        p.chat([Message("user", "hi")]).text()


def test_echoed_placeholder_is_restored_even_when_split_across_deltas(tmp_path, monkeypatch, scripted):
    pieces = ["The key is [[RED", "ACTED_SEC", "RET_1", "]", "] ok"]
    scripted.replies = [Reply(200, sse(*(delta(x) for x in pieces), delta("", "stop"), "[DONE]"))]
    p = provider(tmp_path, monkeypatch, scripted.remote_url)
    answer = p.chat([Message("user", f'key = "{CANARY}"; what is the key?')]).text()
    assert answer == f"The key is {CANARY} ok"
    assert CANARY.encode() not in scripted.received[0].body


def test_api_key_goes_in_the_header_only_and_is_never_logged(tmp_path, monkeypatch, scripted):
    monkeypatch.setenv("MY_OPENAI_KEY", "sk-test-abcdefghijklmnopqrstuvwxyz012345")
    scripted.replies = [Reply(200, sse(delta("x", "stop"), "[DONE]"))]
    p = provider(tmp_path, monkeypatch, scripted.url, api_key_env="MY_OPENAI_KEY")
    p.chat([Message("user", "hi")]).text()
    got = scripted.received[0]
    assert got.headers["authorization"] == "Bearer sk-test-abcdefghijklmnopqrstuvwxyz012345"
    assert b"sk-test" not in got.body
    assert "sk-test" not in (tmp_path / "audit.jsonl").read_text()
