"""Fill-in-the-middle prompt templates for the major code-model families, and plain prefix
completion for models without FIM tokens.

Every layout keeps what changes while the user types at the very end, so llama.cpp's prefix
(KV) cache is reused across keystrokes (DESIGN.md: ~4 s cold vs ~0.25 s for an appended
900-token prompt). Cross-file context comes first (it is sticky while typing, see
``completion``), then the suffix (unchanged while typing at the cursor), then the prefix:

- families trained with suffix-prefix-middle use it, in the exact form of their training code:
  StarCoder/StarCoder2 ``<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}`` ("SPM variant 2
  from the FIM paper" in bigcode's Megatron-LM ``permute``), CodeLlama
  ``<PRE> <SUF>{suffix} <MID> {prefix}`` (``infilling_prompt_tokens(suffix_first=True)``);
  the prefix is the last thing in the prompt, so typing only appends;
- prefix-suffix-middle-only families (DeepSeek-Coder, Qwen2.5-Coder, CodeGemma) keep the context
  and the prefix as a stable, growing head; only the (short, capped) suffix and the middle token
  after the cursor are re-read on each keystroke.

Cross-file snippets go in the family's repository format where it has one (StarCoder2
``<file_sep>``, Qwen2.5-Coder ``<|repo_name|>``/``<|file_sep|>``), else as commented files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ragls.llm import gguf
from ragls.llm.base import ModelError, ModelMetadata
from ragls.recipes.context import Snippet

LOCAL_PROVIDERS = ("llama_cpp", "ctransformers")

# Line-comment markers for commented context; "#" for anything not listed.
_SLASHES = (
    "c", "cpp", "c_sharp", "java", "javascript", "typescript", "tsx", "go", "rust", "kotlin", "scala",
    "swift", "dart", "php", "objc", "groovy", "zig", "solidity", "proto",
)  # fmt: skip
_DASHES = ("lua", "sql", "haskell", "elm", "ada")
_SEMICOLONS = ("commonlisp", "clojure", "scheme", "racket", "elisp")


@dataclass(frozen=True)
class FimFamily:
    """One model family's FIM special tokens and how its prompts are laid out."""

    name: str
    prefix: str
    suffix: str
    middle: str
    spm: bool  # trained on suffix-prefix-middle (SPM variant 2): prefix last in the prompt
    file_sep: str | None = None  # starts each context file in the family's repository format
    repo_name: str | None = None  # precedes the repository's name in that format
    path_in_prefix: bool = False  # the edited file's path opens the FIM prefix (StarCoder2), or
    # follows its file_sep before the FIM tokens (Qwen2.5-Coder)
    stop: tuple[str, ...] = ()  # end-of-middle and special tokens a completion must not contain

    def render(self, prefix: str, suffix: str) -> str:
        """The FIM part of the prompt, exactly as the family was trained on it."""
        if self.spm:
            return f"{self.prefix}{self.suffix}{suffix}{self.middle}{prefix}"
        return f"{self.prefix}{prefix}{self.suffix}{suffix}{self.middle}"


STARCODER_STOPS = ("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<file_sep>")
QWEN_STOPS = (
    "<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<|im_start|>", "<|im_end|>",
)  # fmt: skip

FAMILIES: dict[str, FimFamily] = {
    f.name: f
    for f in (
        FimFamily(
            "starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", spm=True, stop=STARCODER_STOPS
        ),
        FimFamily(
            "starcoder2", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", spm=True,
            file_sep="<file_sep>", repo_name="<repo_name>", path_in_prefix=True, stop=STARCODER_STOPS,
        ),  # fmt: skip
        # SentencePiece spells these "▁<PRE>" etc.: the spaces belong to the tokens.
        FimFamily("codellama", "<PRE>", " <SUF>", " <MID> ", spm=True, stop=("<EOT>", " <EOT>")),
        FimFamily(
            "deepseek-coder", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", spm=False,
            stop=("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
        ),  # fmt: skip
        FimFamily(
            "qwen2.5-coder", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", spm=False,
            file_sep="<|file_sep|>", repo_name="<|repo_name|>", stop=QWEN_STOPS,
        ),  # fmt: skip
        FimFamily(
            "codegemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", spm=False,
            stop=("<|file_separator|>", "<eos>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
        ),  # fmt: skip
    )
}

# The FIM prefix token a GGUF file declares, to the family that spells it so (before names refine it).
_BY_PREFIX_TOKEN = {
    "<fim_prefix>": "starcoder",
    "<PRE>": "codellama",
    "▁<PRE>": "codellama",
    "<｜fim▁begin｜>": "deepseek-coder",
    "<|fim_prefix|>": "qwen2.5-coder",
}
# Substrings of a lower-cased model name (GGUF general.name, file name or remote model id).
_BY_NAME = (
    ("starcoder2", "starcoder2"),
    ("starcoder", "starcoder"),
    ("santacoder", "starcoder"),
    ("codellama", "codellama"),
    ("code-llama", "codellama"),
    ("code llama", "codellama"),
    ("deepseek-coder", "deepseek-coder"),
    ("deepseek coder", "deepseek-coder"),
    ("qwen2.5-coder", "qwen2.5-coder"),
    ("qwen2.5 coder", "qwen2.5-coder"),
    ("qwen3-coder", "qwen2.5-coder"),
    ("codegemma", "codegemma"),
)


@lru_cache(maxsize=16)
def _gguf_architecture(path: str) -> str | None:
    """``general.architecture`` of a GGUF file ("starcoder2" names the family outright)."""
    try:
        return gguf.describe(Path(path)).architecture
    except (ModelError, OSError):
        return None


def _family_by_name(*names: str | None) -> str | None:
    text = " ".join(n.lower() for n in names if n)
    return next((family for needle, family in _BY_NAME if needle in text), None)


def family_for(meta: ModelMetadata) -> FimFamily | None:
    """The FIM family of a model, or None for plain prefix completion.

    A local model file is trusted for whether it has FIM tokens at all (a file without them
    cannot infill, whatever it is called); its name, file name and GGUF architecture then tell
    apart families that share spellings (StarCoder vs StarCoder2, Qwen vs CodeGemma). Remote
    endpoints expose no vocabulary, so their model id alone decides.
    """
    arch = _gguf_architecture(meta.path) if meta.path and meta.path.endswith(".gguf") else None
    by_name = _family_by_name(meta.model, meta.path, arch)
    if meta.fim is None:
        return None if meta.provider in LOCAL_PROVIDERS else FAMILIES.get(by_name or "")
    by_token = _BY_PREFIX_TOKEN.get(meta.fim.prefix)
    if by_token is None:
        return None
    if by_name is not None and FAMILIES[by_name].prefix.strip() == FAMILIES[by_token].prefix.strip():
        return FAMILIES[by_name]
    return FAMILIES[by_token]


def comment_marker(language: str | None) -> str:
    if language in _SLASHES:
        return "//"
    if language in _DASHES:
        return "--"
    if language in _SEMICOLONS:
        return ";;"
    return "#"


def _commented(snippets: Sequence[Snippet], marker: str) -> str:
    """Context files as comments: what a plain code model reads naturally before the code."""
    parts = []
    for s in snippets:
        body = "\n".join(f"{marker} {line}".rstrip() for line in s.text.rstrip().split("\n"))
        parts.append(f"{marker} {s.label} ({s.source})\n{body}\n\n")
    return "".join(parts)


@dataclass(frozen=True)
class PromptParts:
    path: str  # the edited file, relative to the workspace root
    language: str | None
    prefix: str  # text before the cursor (already trimmed to its window)
    suffix: str  # text after the cursor (already trimmed)
    context: Sequence[Snippet]  # cross-file snippets in prompt order (best last)
    repo: str = ""


def render(family: FimFamily | None, parts: PromptParts) -> str:
    """The whole prompt: context, then the family's FIM layout (or plain prefix completion)."""
    marker = comment_marker(parts.language)
    if family is None:
        return f"{_commented(parts.context, marker)}{marker} {parts.path}\n{parts.prefix}"
    if family.file_sep is None:
        head = _commented(parts.context, marker) + f"{marker} {parts.path}\n"
        return family.render(head + parts.prefix, parts.suffix)
    repo = f"{family.repo_name}{parts.repo}\n" if family.repo_name and parts.repo else ""
    files = "".join(f"{family.file_sep}{s.path}\n{s.text.rstrip()}\n" for s in parts.context)
    header = parts.path + "\n"
    if family.path_in_prefix:
        return repo + files + family.file_sep + family.render(header + parts.prefix, parts.suffix)
    return repo + files + family.file_sep + header + family.render(parts.prefix, parts.suffix)


def stops(family: FimFamily | None) -> tuple[str, ...]:
    """Strings that end a completion: the family's specials, or a new file in plain mode."""
    return family.stop if family is not None else ("<|endoftext|>", "<file_sep>", "<|im_end|>")
