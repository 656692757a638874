"""The ctransformers provider on a real GGML-era file it loads (written by the test)."""

from __future__ import annotations

import threading

import pytest
from llm_support import write_config, write_tiny_gpt2_ggml

from ragls.llm import Message, ModelError, create
from ragls.llm.ctransformers import CTransformersProvider

pytest.importorskip("ctransformers")


@pytest.fixture(scope="module")
def ggml_file(tmp_path_factory):
    return write_tiny_gpt2_ggml(tmp_path_factory.mktemp("ggml") / "tiny-gpt2.bin")


@pytest.fixture
def provider(tmp_path, monkeypatch, ggml_file):
    cfg = write_config(tmp_path, monkeypatch, f"""
[models.completion]
provider = "ctransformers"
path = "{ggml_file}"
model = "gpt2"
""")
    p = create("completion", cfg)
    assert isinstance(p, CTransformersProvider)
    yield p
    p.close()


def test_loads_and_describes_the_file(provider, ggml_file):
    meta = provider.metadata()
    assert meta.model == "gpt2 (ggml)" and meta.context_length == 64 and meta.path == str(ggml_file)


def test_streams_and_max_tokens_bounds_generation(provider):
    stream = provider.complete("hello world", max_tokens=10, temperature=0)
    deltas = list(stream)
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert provider.count_tokens("".join(deltas)) == 10 and stream.finish_reason == "length"
    # Greedy decoding is deterministic: the model state is reset between requests.
    assert provider.complete("hello world", max_tokens=10, temperature=0).text() == "".join(deltas)


def test_tokenizer_counts(provider):
    assert provider.count_tokens("abc") == 3  # a character vocabulary


def test_chat_and_cancel(provider):
    assert isinstance(provider.chat([Message("user", "hi")], max_tokens=4, temperature=0).text(), str)
    cancel = threading.Event()
    got = []
    stream = provider.complete("abc", max_tokens=40, temperature=0, cancel=cancel)
    for delta in stream:
        got.append(delta)
        if len(got) == 2:
            cancel.set()
    assert len(got) == 2 and stream.finish_reason == "cancelled"


def test_ggml_file_without_model_type_is_explained(ggml_file):
    from ragls.config import ModelConfig

    with pytest.raises(ModelError, match=r"do not record their architecture.*models\.<role>\.model"):
        CTransformersProvider(ModelConfig(provider="ctransformers", path=str(ggml_file)))


def test_not_a_model_file(tmp_path):
    from ragls.config import ModelConfig

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(ModelError, match="not a GGML/GGUF model file"):
        CTransformersProvider(ModelConfig(provider="ctransformers", path=str(junk), model="gpt2"))


def test_current_gguf_files_fail_cleanly(gguf_path):
    from ragls.config import ModelConfig

    with pytest.raises(ModelError, match="ctransformers could not load this model"):
        CTransformersProvider(ModelConfig(provider="ctransformers", path=str(gguf_path)))
