"""GGUF header reading: metadata of the bundled model, FIM detection, damaged files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ragls.llm import FimTemplate, ModelError
from ragls.llm.gguf import describe, fim_template, read_metadata


def write_gguf(path: Path, kv: dict[str, object]) -> Path:
    """A header-only GGUF v3 file with string, u32 and string-array values."""
    def s(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for key, value in kv.items():
        out += s(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + s(value)
        elif isinstance(value, int):
            out += struct.pack("<II", 4, value)
        else:
            assert isinstance(value, list)
            out += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(s(v) for v in value)
    path.write_bytes(out)
    return path


def test_bundled_model_header(gguf_path):
    info = describe(gguf_path)
    assert info.architecture == "llama"
    assert info.license == "apache-2.0"
    assert info.context_length == 8192
    assert "im_start" in (info.chat_template or "")
    assert info.fim is None


def test_fim_tokens_declared_by_id(tmp_path):
    tokens = ["<s>", "a", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]
    path = write_gguf(tmp_path / "coder.gguf", {
        "general.architecture": "qwen2", "general.name": "tiny coder", "qwen2.context_length": 4096,
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.fim_pre_token_id": 2, "tokenizer.ggml.fim_suf_token_id": 3,
        "tokenizer.ggml.fim_mid_token_id": 4,
    })
    info = describe(path)
    assert info.name == "tiny coder" and info.context_length == 4096 and info.license is None
    assert info.fim == FimTemplate("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
    # Suffix-prefix-middle: what the user types only ever appends to the prompt.
    assert info.fim.render("def f(", "):\n") == "<|fim_suffix|>):\n<|fim_prefix|>def f(<|fim_middle|>"


def test_fim_tokens_found_by_spelling_when_ids_are_absent():
    meta = {"tokenizer.ggml.tokens": ["<fim_prefix>", "<fim_middle>", "<fim_suffix>", "x"]}
    assert fim_template(meta) == FimTemplate("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
    assert fim_template({"tokenizer.ggml.tokens": ["<fim_prefix>", "x"]}) is None


def test_out_of_range_fim_ids_are_ignored():
    meta = {"tokenizer.ggml.tokens": ["a"], "tokenizer.ggml.prefix_token_id": 7,
            "tokenizer.ggml.suffix_token_id": 8, "tokenizer.ggml.middle_token_id": 9}
    assert fim_template(meta) is None


def test_corrupt_lengths_are_caught_before_allocation(tmp_path):
    bad = tmp_path / "huge.gguf"
    bad.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40))
    with pytest.raises(ModelError, match="corrupt GGUF header"):
        read_metadata(bad)


def test_unreadable_path(tmp_path):
    with pytest.raises(ModelError, match="cannot read"):
        read_metadata(tmp_path)  # a directory
