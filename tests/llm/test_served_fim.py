"""Inline completion through model servers (issue 15, item 3): the provider asks a configured
server once how it fills in the middle, and completes through Ollama's ``/api/generate`` with a
suffix, llama.cpp server's ``/infill``, or ``/v1/completions`` with a prompt ragls renders.

The real server here is llama-cpp-python's (``python -m llama_cpp.server``): it has no
``/infill`` (its routes are the OpenAI ones and ``/extras``), so it is the ``/v1/completions``
case. Ollama and llama.cpp's own server cannot run here: ``WireServer`` speaks their documented
wire formats. A newer keystroke stops the HTTP stream even before its first token."""

from __future__ import annotations

import json
import threading
import time

import pytest
from llm_support import LOOPBACK, RecordingProxy, WireServer, server_config, write_config

from ragls import config as config_module
from ragls.cli import main
from ragls.llm import LLMError, create
from ragls.llm.openai import OpenAIProvider
from ragls.privacy.audit import AuditLog
from ragls.recipes.fim import family_for

pytestmark = pytest.mark.loopback

ANSWER = "a + b\n"
SOURCE = "def add(a, b):\n    return \n\n\ndef twice(x):\n    return add(x, x)\n"


def completion_provider(tmp_path, monkeypatch, base_url: str, model: str) -> OpenAIProvider:
    p = create("completion", server_config(tmp_path, monkeypatch, base_url, "completion", model))
    assert isinstance(p, OpenAIProvider)
    return p


def complete_in_repo(tmp_path, capsys) -> dict:
    """``ragls complete`` at the empty ``return`` of SOURCE, as a shell user runs it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "calc.py").write_text(SOURCE)
    position = f"{repo / 'calc.py'}:2:12"
    assert main(["complete", position, "--root", str(repo), "--json", "--budget-ms", "0"]) in (0, 1)
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def ollama():
    server = WireServer("ollama", ANSWER, {"qwen2.5-coder:1.5b": ["completion", "insert"],
                                           "llama3.2:1b": ["completion", "tools"]})
    yield server
    server.close()


@pytest.fixture
def llama_cpp():
    server = WireServer("llama.cpp", ANSWER, {"qwen2.5-coder-1.5b-q8_0.gguf": ["completion", "infill"]})
    yield server
    server.close()


def test_a_scanned_ollama_model_completes_through_generate_with_the_suffix(tmp_path, monkeypatch, capsys,
                                                                           ollama):
    write_config(tmp_path, monkeypatch, f"[models]\nscan_ports = [{ollama.port}]\n")
    assert main(["models", "use", "qwen2.5-coder:1.5b", "--role", "completion", "--from", "server"]) == 0
    capsys.readouterr()
    result = complete_in_repo(tmp_path, capsys)
    assert (result["completion"], result["template"], result["error"]) == ("a + b", "server ollama", None)
    # Asked once which way it infills (no code in the question), then one generation.
    assert [path for path, _ in ollama.received] == ["/api/show", "/api/generate"]
    assert ollama.received[0][1] == {"model": "qwen2.5-coder:1.5b"}
    [body] = ollama.generated("/api/generate")
    assert body["model"] == "qwen2.5-coder:1.5b" and body["stream"] is True
    assert body["prompt"].endswith("def add(a, b):\n    return ")
    assert body["suffix"].startswith("\n\n\ndef twice(x):")
    assert body["options"]["num_predict"] == 48 and "raw" not in body  # Ollama applies its template


def test_a_model_ollama_cannot_infill_gets_the_template_through_v1(tmp_path, monkeypatch, ollama):
    p = completion_provider(tmp_path, monkeypatch, ollama.url, "llama3.2:1b")
    assert p.route() == "completions" and p.metadata().infill is None
    # A coder model is asked for too; Ollama says it can insert.
    coder = completion_provider(tmp_path, monkeypatch, ollama.url, "qwen2.5-coder:1.5b")
    assert coder.metadata().infill == "ollama"
    assert family_for(p.metadata()) is None


def test_the_route_is_asked_once_and_audited_as_local(tmp_path, monkeypatch, ollama):
    p = completion_provider(tmp_path, monkeypatch, ollama.url, "qwen2.5-coder:1.5b")
    for _ in range(3):
        assert p.metadata().infill == "ollama"
    assert [path for path, _ in ollama.received] == ["/api/show"]
    [entry] = AuditLog(tmp_path / "audit.jsonl").entries()
    assert entry.local and entry.endpoint == f"http://{LOOPBACK}:{ollama.port}/api/show"
    text = p.complete("def add(a, b):\n    return ", suffix="\n", max_tokens=1).text()
    capped = p.complete("x", suffix="", max_tokens=2)
    assert text == "a" and capped.text() == "a +" and capped.finish_reason == "length"


def test_a_suffix_is_refused_for_a_model_the_server_cannot_infill_with(tmp_path, monkeypatch, ollama):
    p = completion_provider(tmp_path, monkeypatch, ollama.url, "llama3.2:1b")
    with pytest.raises(LLMError, match="does not fill in the middle itself"):
        p.complete("def f():", suffix="\n")  # refused before anything is sent
    assert [path for path, _ in ollama.received] == ["/api/show"]


def test_a_listed_model_that_errors_mid_answer_is_an_error_naming_the_endpoint(tmp_path, monkeypatch):
    server = WireServer("ollama", ANSWER, {"coder:7b": ["completion", "insert", "breaks"]})
    try:
        p = completion_provider(tmp_path, monkeypatch, server.url, "coder:7b")
        with pytest.raises(LLMError, match=r"/api/generate: the endpoint reported an error mid-stream: "
                                           "model runner has unexpectedly stopped"):
            p.complete("def add(a, b):\n    return ", suffix="\n").text()
    finally:
        server.close()


def test_llama_cpp_infill_takes_prefix_and_suffix_apart(tmp_path, monkeypatch, llama_cpp):
    p = completion_provider(tmp_path, monkeypatch, llama_cpp.url, "qwen2.5-coder-1.5b-q8_0.gguf")
    assert p.metadata().infill == "infill"
    stream = p.complete("def add(a, b):\n    return ", suffix="\n\ndef twice(x):\n", stop=["\n"],
                        max_tokens=10, temperature=0)
    assert stream.text() == "a + b" and stream.finish_reason == "stop"
    probe, infill = llama_cpp.generated("/infill")
    assert probe["n_predict"] == 1 and probe["input_prefix"] == probe["input_suffix"] == ""
    assert infill == {"input_prefix": "def add(a, b):\n    return ", "input_suffix": "\n\ndef twice(x):\n",
                      "prompt": "", "stream": True, "n_predict": 10, "temperature": 0,
                      "cache_prompt": True, "stop": ["\n"]}
    capped = p.complete("def add(a, b):\n    return ", suffix="", max_tokens=2)
    assert capped.text() == "a +" and capped.finish_reason == "length"


def test_llama_cpp_with_a_model_without_fim_tokens_falls_back_to_completions(tmp_path, monkeypatch):
    server = WireServer("llama.cpp", ANSWER, {"smollm2": ["completion"]})
    try:
        p = completion_provider(tmp_path, monkeypatch, server.url, "smollm2")
        assert p.metadata().infill is None  # /infill answered 501: not supported by this model
    finally:
        server.close()


def test_a_newer_keystroke_stops_the_stream_while_the_server_reads_the_prompt(tmp_path, monkeypatch):
    server = WireServer("llama.cpp", ANSWER, {"coder.gguf": ["infill"]}, first_token_delay=30.0)
    try:
        p = completion_provider(tmp_path, monkeypatch, server.url, "coder.gguf")
        assert p.route() == "infill"
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        stream = p.complete("def add(a, b):\n    return ", suffix="\n", cancel=cancel)
        assert stream.text() == "" and stream.finish_reason == "cancelled"
        assert time.monotonic() - started < 20  # not the server's 30 s: the read was woken
        assert server.disconnected.wait(5)  # the server saw the client go (and stops generating)
    finally:
        server.close()


def test_llama_cpp_python_server_has_no_infill_so_completion_goes_through_v1(tmp_path, monkeypatch, capsys,
                                                                            llama_server):
    server_config(tmp_path, monkeypatch, llama_server, "completion")
    cfg = config_module.load()
    p = create("completion", cfg)
    assert p.metadata().infill is None  # /api/show and /infill: 404 Not Found
    assert [e.endpoint.rsplit("/", 1)[1] for e in AuditLog(tmp_path / "audit.jsonl").entries()] == [
        "show", "infill"]
    p.close()
    result = complete_in_repo(tmp_path, capsys)
    assert result["template"] == "plain" and result["error"] is None
    assert result["prompt_tokens"] > 0


def test_a_newer_keystroke_stops_the_request_while_the_real_server_reads_the_prompt(tmp_path, monkeypatch,
                                                                                   llama_server):
    port = int(llama_server.rsplit(":", 1)[1].split("/")[0])
    proxy = RecordingProxy(port)  # to see when the whole request has reached the server
    try:
        p = completion_provider(tmp_path, monkeypatch, f"http://{LOOPBACK}:{proxy.port}/v1", "smollm2")
        prompt = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30))
        prompt += "def add(a, b):\n    return"
        cancel = threading.Event()

        def keystroke() -> None:  # the next keystroke comes as soon as the request is out
            while prompt.encode()[-40:].replace(b"\n", b"\\n") not in bytes(proxy.sent):
                time.sleep(0.001)
            cancel.set()

        threading.Thread(target=keystroke, daemon=True).start()
        stream = p.complete(prompt, max_tokens=200, cancel=cancel)
        assert stream.text() == "" and stream.finish_reason == "cancelled"  # no token came: it did not wait
    finally:
        proxy.close()
