"""FIM template selection from model metadata, and the exact prompts each family is sent."""

from __future__ import annotations

import pytest

from ragls.llm.base import FimTemplate, ModelMetadata
from ragls.llm.gguf import bundled_model_path, describe
from ragls.recipes import fim
from ragls.recipes.context import Snippet

STARCODER = FimTemplate("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
QWEN = FimTemplate("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
CODELLAMA = FimTemplate("▁<PRE>", "▁<SUF>", "▁<MID>")  # as llama.cpp's GGUF vocab spells them
DEEPSEEK = FimTemplate("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")


def local(name: str, template: FimTemplate | None) -> ModelMetadata:
    return ModelMetadata(provider="llama_cpp", model=name, context_length=4096, fim=template)


@pytest.mark.parametrize(
    ("meta", "family"),
    [
        (local("StarCoder2 3B", STARCODER), "starcoder2"),
        (local("starcoderbase-1b", STARCODER), "starcoder"),
        (local("some unnamed model", STARCODER), "starcoder"),
        (local("CodeLlama 7B", CODELLAMA), "codellama"),
        (local("deepseek-coder-1.3b-base", DEEPSEEK), "deepseek-coder"),
        (local("Qwen2.5 Coder 1.5B", QWEN), "qwen2.5-coder"),
        (local("codegemma-2b", QWEN), "codegemma"),
        # The file's tokens win over a misleading name; a file without FIM tokens cannot infill.
        (local("codellama-lookalike", STARCODER), "starcoder"),
        (local("CodeLlama 7B Instruct", None), None),
        (local("Smollm2 135M", None), None),
        # Remote endpoints expose no vocabulary: the model id decides.
        (ModelMetadata("openai", "qwen2.5-coder:7b-base", 32768), "qwen2.5-coder"),
        (ModelMetadata("openai", "deepseek-coder-6.7b-base", 16384), "deepseek-coder"),
        (ModelMetadata("openai", "gpt-4o-mini", 128000), None),
    ],
)
def test_family_from_metadata(meta: ModelMetadata, family: str | None) -> None:
    chosen = fim.family_for(meta)
    assert (chosen.name if chosen else None) == family


def test_bundled_model_gets_plain_prefix_completion() -> None:
    info = describe(bundled_model_path())  # the real GGUF header: SmolLM2 declares no FIM tokens
    meta = ModelMetadata("llama_cpp", info.name or "", info.context_length or 0, fim=info.fim)
    assert fim.family_for(meta) is None


def test_gguf_architecture_names_the_family(tmp_path) -> None:
    """A StarCoder2 file whose general.name says nothing is still StarCoder2 (by architecture)."""
    import gguf as writer_module
    path = tmp_path / "model.gguf"
    writer = writer_module.GGUFWriter(str(path), "starcoder2")
    writer.add_name("Some Coder 3B")
    writer.add_token_list(["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "a"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    info = describe(path)
    meta = ModelMetadata("llama_cpp", info.name or "", 4096, fim=info.fim, path=str(path))
    assert fim.family_for(meta) == fim.FAMILIES["starcoder2"]


DEF = Snippet("lib/util.py", 3, 4, "def helper(x):\n    return x", "definition")


def parts(**kw) -> fim.PromptParts:
    base = dict(path="app.py", language="python", prefix="y = hel", suffix="\nprint(y)\n", context=[DEF])
    return fim.PromptParts(**{**base, **kw}, repo="shop")


COMMENTED = "# lib/util.py:3-4 (definition)\n# def helper(x):\n#     return x\n\n# app.py\n"


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("starcoder", "<fim_prefix><fim_suffix>\nprint(y)\n<fim_middle>" + COMMENTED + "y = hel"),
        (
            "starcoder2",
            "<repo_name>shop\n<file_sep>lib/util.py\ndef helper(x):\n    return x\n"
            "<file_sep><fim_prefix><fim_suffix>\nprint(y)\n<fim_middle>app.py\ny = hel",
        ),
        ("codellama", "<PRE> <SUF>\nprint(y)\n <MID> " + COMMENTED + "y = hel"),
        ("deepseek-coder", "<｜fim▁begin｜>" + COMMENTED + "y = hel<｜fim▁hole｜>\nprint(y)\n<｜fim▁end｜>"),
        (
            "qwen2.5-coder",
            "<|repo_name|>shop\n<|file_sep|>lib/util.py\ndef helper(x):\n    return x\n"
            "<|file_sep|>app.py\n<|fim_prefix|>y = hel<|fim_suffix|>\nprint(y)\n<|fim_middle|>",
        ),
        ("codegemma", "<|fim_prefix|>" + COMMENTED + "y = hel<|fim_suffix|>\nprint(y)\n<|fim_middle|>"),
    ],
)
def test_prompt_layout_per_family(family: str, expected: str) -> None:
    assert fim.render(fim.FAMILIES[family], parts()) == expected


def test_plain_prompt_is_commented_context_then_prefix() -> None:
    assert fim.render(None, parts()) == COMMENTED + "y = hel"
    js = fim.render(None, parts(path="app.js", language="javascript", prefix="let y = hel"))
    assert js.startswith("// lib/util.py:3-4 (definition)\n// def helper(x):\n")
    assert js.endswith("// app.js\nlet y = hel")


@pytest.mark.parametrize("family", [None, "starcoder", "starcoder2", "codellama"])
def test_typing_only_appends_for_suffix_first_layouts(family: str | None) -> None:
    chosen = fim.FAMILIES[family] if family else None
    before = fim.render(chosen, parts())
    after = fim.render(chosen, parts(prefix="y = help"))
    assert after == before + "p"


@pytest.mark.parametrize("family", ["deepseek-coder", "qwen2.5-coder", "codegemma"])
def test_typing_keeps_the_head_for_prefix_first_layouts(family: str) -> None:
    chosen = fim.FAMILIES[family]
    before = fim.render(chosen, parts())
    after = fim.render(chosen, parts(prefix="y = help"))
    head = before[: before.index("y = hel") + len("y = hel")]
    assert after.startswith(head + "p")
    assert after.endswith(before[len(head) :])  # only the suffix and the middle token follow


def test_stops_include_the_family_specials() -> None:
    assert "<EOT>" in fim.stops(fim.FAMILIES["codellama"])
    assert "<|file_separator|>" in fim.stops(fim.FAMILIES["codegemma"])
    assert "<|endoftext|>" in fim.stops(None)
