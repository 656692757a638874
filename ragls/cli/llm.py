"""Commands about models and privacy: ``ragls models``, ``ragls doctor``, ``ragls privacy audit``.

None of them contacts a remote endpoint: they describe what is configured and what would be
sent, so they are safe to run in ``local`` mode and on an offline machine.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ragls import __version__, config
from ragls.cli.arguments import folder, non_negative
from ragls.config import Config, ConfigError, ModelConfig
from ragls.llm import ROLES, LLMError, create
from ragls.llm.gguf import describe
from ragls.llm.llama_cpp import resolve_path
from ragls.llm.remote import DEFAULT_CONTEXT
from ragls.llm.scan import SOURCES, role_settings, scan, use
from ragls.privacy import REMOTE_PROVIDERS, Privacy, PrivacyError, sends_code_out


def _console() -> Console:
    # Wide when piped, so paths and hashes are not cut to 80 columns.
    return Console(width=None if Console().is_terminal else 400)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="configured model roles: provider, model, license, context, location")
    p.add_argument("--root", type=folder, help="workspace whose .ragls/config.toml applies")
    p.add_argument(
        "--prepare", action="store_true",
        help="build the derived embedding models now (distilled and exported locally, once per machine; "
        "otherwise the first index run does it)",
    )
    p.set_defaults(run=_models)
    models_sub = p.add_subparsers(dest="models_command", metavar="COMMAND")
    scan = models_sub.add_parser(
        "scan", help="models already on this machine (GGUF files in the usual places, servers on loopback)"
    )
    scan.add_argument("--root", type=folder, help="workspace whose .ragls/config.toml applies")
    scan.add_argument("--json", action="store_true", help='print {"models": [...], "skipped": [...]}')
    scan.add_argument("--no-servers", action="store_true", help="look at files only, not at loopback ports")
    scan.set_defaults(run=_scan)
    use = models_sub.add_parser("use", help="make a role use a model scan found (writes the user config)")
    use.add_argument("name", help="a name ragls models scan lists, or the path of a GGUF file")
    use.add_argument("--role", required=True, choices=("chat", "completion", "embedding"))
    use.add_argument("--from", dest="source", choices=SOURCES, help="when several places have the name")
    use.add_argument("--root", type=folder, help="workspace whose .ragls/config.toml applies")
    use.set_defaults(run=_use)

    p = sub.add_parser("doctor", help="install health: model files load, GPU, privacy mode, network use")
    p.add_argument("--root", type=folder, help="workspace whose .ragls/config.toml applies")
    p.set_defaults(run=_doctor)

    privacy = sub.add_parser("privacy", help="privacy policy tools")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True, metavar="COMMAND")
    p = privacy_sub.add_parser("audit", help="the audit log of outbound requests, as a table")
    p.add_argument("--root", type=folder, help="workspace whose .ragls/config.toml applies")
    p.add_argument("--limit", type=non_negative, default=50, help="show the last N entries (0 = all)")
    p.add_argument("--json", action="store_true", help="print the entries as JSON lines")
    p.set_defaults(run=_audit)


# --- ragls models -----------------------------------------------------------------------------


def _models(args: argparse.Namespace) -> int:
    cfg = config.load(args.root)
    if args.prepare:
        return _prepare(cfg)
    privacy = Privacy(cfg.privacy)
    table = Table(title=f"ragls models (privacy.mode = {cfg.privacy.mode})")
    for column in ("role", "provider", "model", "license", "context", "where", "allowed"):
        table.add_column(column, overflow="fold")
    failed = False
    for role in ROLES:
        model: ModelConfig = getattr(cfg.models, role)
        try:
            name, license_, context, where = _describe_model(model)
        except LLMError as exc:
            name, license_, context, where, failed = "?", "?", "?", f"[red]{exc}[/]", True
        table.add_row(role, model.provider, name, license_, context, where, _allowed(privacy, role, model))
    emb = cfg.models.embedding
    table.add_row("embedding", emb.provider, emb.model, "", str(emb.max_tokens), "local", "yes")
    _console().print(table)
    return 1 if failed else 0


def _scan(args: argparse.Namespace) -> int:
    found = scan(config.load(args.root), servers=not args.no_servers)
    if args.json:
        print(json.dumps(found.to_json()))
        return 0
    console = _console()
    if found.models:
        table = Table(title="models on this machine (ragls models use NAME --role chat|completion|embedding)")
        for column in ("name", "source", "family", "size", "quant", "context", "license", "FIM", "where"):
            table.add_column(column, overflow="fold")
        for m in found.models:
            size = " / ".join(filter(None, [m.size, _mib(m.bytes)]))
            table.add_row(
                m.name, m.source, m.family or "?", size or "?", m.quantisation or "?",
                str(m.context_length or "?"), m.license or "?", m.fim or "no", m.path or m.base_url or "",
            )
        console.print(table)
    else:
        console.print("no models found (set models.search_paths to folders holding GGUF files)")
    for reason in found.skipped:
        console.print(f"skipped: {reason}", highlight=False)
    return 0


def _mib(count: int | None) -> str | None:
    return f"{count / 2**20:,.0f} MiB" if count else None


def _use(args: argparse.Namespace) -> int:
    model, path = use(config.load(args.root), args.name, args.role, args.source)
    print(f"models.{args.role} = {model.name} ({model.source}: {model.path or model.base_url}); "
          f"written to {path}")
    effective = getattr(config.load(args.root).models, args.role)
    overridden = [key for key, value in role_settings(model, args.role).items()
                  if getattr(effective, key) != value]
    if overridden:  # the workspace file wins over the user file
        keys = ", ".join(f"models.{args.role}.{key}" for key in overridden)
        print(f"note: {config.workspace_config_path(args.root)} sets {keys} too, and wins in that workspace")
    return 0


def _prepare(cfg: config.Config) -> int:
    """Load every dense tier the index would build, which distils or exports the models it
    derives from the bundled one (the first index run on a new machine would do it otherwise)."""
    from ragls.indexer.embeddings import EmbeddingError
    from ragls.indexer.engine import Index

    scratch_cfg = replace(cfg, index=replace(cfg.index, location="workspace"))
    with tempfile.TemporaryDirectory() as scratch, Index.open(Path(scratch), scratch_cfg) as index:
        for tier in index.enabled_tiers():
            try:
                tier.encoder.load()
            except EmbeddingError as exc:
                _console().print(f"[red]{tier.name}: {exc}[/]")
                return 1
            for notice in tier.encoder.notices:
                _console().print(f"note: {notice}")
            _console().print(f"{tier.name} tier: ready ({tier.encoder.model_id})")
    return 0


def _describe_model(model: ModelConfig) -> tuple[str, str, str, str]:
    """Name, license, context length and location, from the file header or the config only."""
    if model.provider in REMOTE_PROVIDERS:
        from ragls.llm.anthropic import AnthropicProvider
        from ragls.llm.openai import OpenAIProvider

        cls = OpenAIProvider if model.provider == "openai" else AnthropicProvider
        context = model.context_length or DEFAULT_CONTEXT
        return model.model or "?", "(provider terms)", str(context), model.base_url or cls.default_base_url
    path = resolve_path(model)
    if model.provider == "ctransformers":
        return model.model or "?", "?", str(model.context_length or "?"), str(path)
    info = describe(path)
    context = model.context_length or info.context_length
    return info.name or path.stem, info.license or "?", str(context or "?"), str(path)


def _allowed(privacy: Privacy, role: str, model: ModelConfig) -> str:
    try:
        privacy.check(role, model)
    except PrivacyError:
        return f"[red]no[/] (privacy.mode = {privacy.mode})"
    if model.provider in REMOTE_PROVIDERS:
        return "yes (sends code out)" if sends_code_out(model) else "yes (a server on this machine)"
    return "yes"


# --- ragls doctor -----------------------------------------------------------------------------

NUMERIC = {"bytes", "redactions", "rows"}
Check = tuple[str, str, str]  # (what, "ok" | "warn" | "fail" | "info", detail)


def _doctor(args: argparse.Namespace) -> int:
    checks: list[Check] = [("ragls", "ok", f"{__version__} on Python {platform.python_version()}")]
    try:
        cfg = config.load(args.root)
        user = config.user_config_path()
        checks.append(("configuration", "ok", f"{user}" if user.is_file() else f"{user} (absent: defaults)"))
    except ConfigError as exc:
        checks.append(("configuration", "fail", str(exc)))
        cfg = None
    checks += _llama_cpp_checks()
    if cfg is not None:
        checks += [_model_check(cfg, role) for role in ROLES]
        checks += _privacy_checks(cfg)
    checks += [_optional("ctransformers", "GGML-era models (provider = \"ctransformers\")"),
               _optional("keyring", "API keys from the OS keyring"),
               _gpu_check()]
    table = Table(title="ragls doctor")
    for column in ("check", "status", "detail"):
        table.add_column(column, overflow="fold")
    colours = {"ok": "green", "warn": "yellow", "fail": "red", "info": "cyan"}
    for what, status, detail in checks:
        table.add_row(what, f"[{colours[status]}]{status}[/]", detail)
    _console().print(table)
    return 1 if any(status == "fail" for _, status, _ in checks) else 0


def _llama_cpp_checks() -> list[Check]:
    if importlib.util.find_spec("llama_cpp") is None:
        return [("llama-cpp-python", "fail", "not installed: run make install (it sets the safe CPU flags)")]
    import llama_cpp

    features = llama_cpp.llama_print_system_info().decode(errors="replace")
    amx = "AMX_INT8 = 1" in features or "AMX = 1" in features
    return [
        ("llama-cpp-python", "ok", llama_cpp.__version__),
        ("llama.cpp CPU build", "warn" if amx else "ok",
         "built with AMX kernels, which crash on some CPUs: rebuild with make install" if amx
         else features.strip()[:160]),
    ]


def _model_check(cfg: Config, role: str) -> Check:
    model: ModelConfig = getattr(cfg.models, role)
    what = f"models.{role} ({model.provider})"
    if model.provider in REMOTE_PROVIDERS:
        where = "remote" if sends_code_out(model) else "a server on this machine"
        return what, "info", f"{where}, not contacted by doctor: {_describe_model(model)[3]}"
    try:
        provider = create(role, cfg)
    except LLMError as exc:
        return what, "fail", str(exc)
    try:
        meta = provider.metadata()
        tokens = provider.count_tokens("def hello_world():\n    return 42\n")
        detail = f"{meta.model} loads ({meta.path}); context {meta.context_length}; tokenizer ok ({tokens})"
        return what, "ok", detail
    finally:
        provider.close()


def _privacy_checks(cfg: Config) -> list[Check]:
    privacy = Privacy(cfg.privacy)
    remote = []
    for role in ROLES:
        model: ModelConfig = getattr(cfg.models, role)
        if not sends_code_out(model):
            continue
        try:
            privacy.check(role, model)
            remote.append(f"{role} -> {_describe_model(model)[3]}")
        except PrivacyError as exc:
            return [("privacy", "fail", str(exc))]
    network = "expected: " + ", ".join(remote) if remote else "none (every configured model is local)"
    audit = privacy.audit.path
    return [
        ("privacy.mode", "ok", cfg.privacy.mode),
        ("network", "info" if remote else "ok", network),
        ("audit log", "ok", f"{audit} ({'exists' if audit.exists() else 'no requests yet'})"),
    ]


def _optional(module: str, purpose: str) -> Check:
    if importlib.util.find_spec(module) is None:
        return module, "info", f"not installed (optional: {purpose})"
    return module, "ok", f"{importlib.metadata.version(module)} ({purpose})"


def _gpu_check() -> Check:
    detail: list[str] = []
    if importlib.util.find_spec("llama_cpp") is not None:
        import llama_cpp

        detail.append(f"llama.cpp GPU offload: {'yes' if llama_cpp.llama_supports_gpu_offload() else 'no'}")
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        detail.append("CUDA_VISIBLE_DEVICES is empty")
    seen = _nvidia_gpu_seen()
    detail.append("NVIDIA GPU seen" if seen else "no NVIDIA GPU seen")
    return "GPU", "info", "; ".join(detail)


def _nvidia_gpu_seen() -> bool:
    """Without importing torch (seconds of start-up): the driver's device nodes tell."""
    return Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir())


# --- ragls privacy audit ----------------------------------------------------------------------


def _audit(args: argparse.Namespace) -> int:
    log = Privacy(config.load(args.root).privacy).audit
    try:
        entries = log.entries()
    except ValueError as exc:
        print(f"ragls: {exc}", file=sys.stderr)
        return 1
    if args.limit:
        entries = entries[-args.limit:]
    if args.json:
        for entry in entries:
            print(json.dumps(asdict(entry)))
        return 0
    console = _console()
    if not entries:
        console.print(f"no outbound requests recorded in {log.path}")
        return 0
    table = Table(title=f"outbound requests ({log.path})")
    columns: list[tuple[str, Callable]] = [
        ("time", lambda e: e.time), ("provider", lambda e: e.provider), ("model", lambda e: e.model),
        ("endpoint", lambda e: e.endpoint), ("bytes", lambda e: str(e.bytes)),
        ("sha256", lambda e: e.sha256[:16]), ("redactions", lambda e: str(e.redactions)),
        ("traffic", lambda e: "local" if e.local else "remote"),
        ("rows", lambda e: "" if e.rows is None else str(e.rows)),
    ]
    for name, _ in columns:
        table.add_column(name, overflow="fold", justify="right" if name in NUMERIC else "left")
    for entry in entries:
        table.add_row(*(get(entry) for _, get in columns))
    console.print(table)
    return 0
