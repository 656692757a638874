"""The default provider on the bundled SmolLM2 model: streaming, stops, bounds, cancel, cache."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ragls.config import ModelConfig
from ragls.llm import LLMError, LLMTimeout, Message, ModelError
from ragls.llm.llama_cpp import LlamaCppProvider

HELLO = [Message("user", "Say hello.")]


def test_chat_streams_several_deltas(llama):
    stream = llama.chat([Message("user", "List three fruits.")], max_tokens=24, temperature=0)
    deltas = list(stream)
    assert len(deltas) > 3
    assert "".join(deltas).strip()
    assert stream.finish_reason in {"stop", "length"}


def test_complete_continues_raw_prompt_and_honours_stop(llama):
    stream = llama.complete("def add(a, b):\n    return", max_tokens=40, stop=["\n"], temperature=0)
    text = stream.text()
    assert "\n" not in text
    assert "a" in text and "b" in text
    assert stream.finish_reason == "stop"


def test_max_tokens_bounds_a_model_that_never_stops(llama):
    # Counting never ends on its own; only max_tokens stops it.
    stream = llama.complete("1, 2, 3, 4, 5, 6, 7,", max_tokens=16, temperature=0)
    text = stream.text()
    assert stream.finish_reason == "length"
    assert llama.count_tokens(text) <= 17  # detokenisation may merge/split at the edges


def test_zero_max_tokens_is_refused_not_unbounded(llama):
    with pytest.raises(LLMError, match=r"max_tokens must be at least 1"):
        llama.complete("1, 2,", max_tokens=0)


def test_cancel_mid_stream_stops_generation_and_model_keeps_serving(llama):
    cancel = threading.Event()
    stream = llama.complete("1, 2, 3, 4, 5,", max_tokens=200, temperature=0, cancel=cancel)
    got = []
    for delta in stream:
        got.append(delta)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3
    assert stream.finish_reason == "cancelled"
    # The lock was released and the model answers the next request.
    assert llama.chat(HELLO, max_tokens=5).text()


def test_closing_a_stream_early_releases_the_model(llama):
    with llama.complete("Once upon a time", max_tokens=100) as stream:
        next(stream)
    assert stream.finish_reason == "cancelled"
    assert llama.complete("Hello", max_tokens=3).text()


def test_request_deadline_raises_a_timeout_naming_the_setting(llama):
    stream = llama.complete("1, 2, 3,", max_tokens=200, timeout=0.05)
    with pytest.raises(LLMTimeout, match=r"models\.<role>\.timeout"):
        for _ in stream:
            time.sleep(0.02)
    assert llama.complete("Hi", max_tokens=2).text() is not None


def test_concurrent_requests_are_serialised_not_corrupted(llama):
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = llama.complete("The capital of France is", max_tokens=6, temperature=0).text()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(results.values())) == 1 and len(results) == 3  # greedy: same text each time


def test_count_tokens_uses_the_model_tokenizer(llama):
    assert llama.count_tokens("") == 0
    assert 1 <= llama.count_tokens("hello") <= 2
    long = "def function_name(argument):\n    return argument\n" * 20
    assert 100 < llama.count_tokens(long) < len(long)


def test_metadata_reports_file_facts(llama, gguf_path):
    meta = llama.metadata()
    assert meta.provider == "llama_cpp"
    assert meta.license == "apache-2.0"
    assert meta.context_length == 2048  # the configured window, not the file's 8192
    assert meta.chat_template is True
    assert meta.fim is None  # SmolLM2's vocabulary has no FIM tokens
    assert meta.path == str(gguf_path)


def test_prefix_cache_makes_an_appended_prompt_cheap(llama):
    base = "\n".join(f"def function_{i}(x):\n    return x * {i} + {i * 7}" for i in range(40))
    llama.complete("unrelated warm-up text", max_tokens=1).text()  # evict any cached prefix

    def first_token_seconds(prompt: str) -> float:
        start = time.perf_counter()
        with llama.complete(prompt, max_tokens=1, temperature=0) as stream:
            next(stream)
        return time.perf_counter() - start

    cold = first_token_seconds(base)
    cached = first_token_seconds(base + "\ndef function_40(x):\n    return x * 40")
    assert cached < 0.3 * cold, (cold, cached)


def test_missing_model_file_names_the_setting(tmp_path):
    with pytest.raises(ModelError, match=r"does not exist.*models\.<role>\.path"):
        LlamaCppProvider(ModelConfig(path=str(tmp_path / "nope.gguf")))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a model at all", "not a GGUF file"),
        (b"GGUF\x03\x00\x00\x00\x01", "truncated or corrupt"),
        (b"GGUF\x09\x00\x00\x00" + b"\x00" * 16, "version 9"),
    ],
)
def test_corrupt_model_file_is_reported_with_its_path(tmp_path, content, message):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match=message) as info:
        LlamaCppProvider(ModelConfig(path=str(bad)))
    assert str(bad) in str(info.value)


def test_valid_header_but_truncated_weights_fails_cleanly(tmp_path, gguf_path: Path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(gguf_path.read_bytes()[: 4_000_000])  # header intact, tensors missing
    with pytest.raises(ModelError, match="could not load"):
        LlamaCppProvider(ModelConfig(path=str(cut)))


def test_loading_leaves_the_process_output_alone(gguf_path: Path, capfd):
    """Other threads keep writing while a model loads (a language server answering its editor):
    file descriptors 1 and 2 must keep pointing where they did, and the load prints nothing."""
    before = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)}
    seen: set[tuple[int, str]] = set()
    loaded = threading.Event()

    def watch() -> None:
        while not loaded.is_set():
            seen.update((fd, os.readlink(f"/proc/self/fd/{fd}")) for fd in (1, 2))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        provider = LlamaCppProvider(ModelConfig(path=str(gguf_path), context_length=512))
    finally:
        loaded.set()
        watcher.join()
    provider.close()
    assert seen == set(before.items())
    assert capfd.readouterr() == ("", "")
