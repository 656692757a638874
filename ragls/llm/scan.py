"""Find the models a user already has, so using one is a command, not hand-written TOML.

Two kinds: GGUF files where the usual tools keep them (Ollama's store, whose manifests name each
model's blob; LM Studio's and GPT4All's model folders; the Hugging Face hub cache;
``models.search_paths``), described from their headers without loading them; and model servers
answering on loopback at their usual ports (``models.scan_ports``): Ollama's ``/api/tags``, else
an OpenAI-compatible ``/v1/models``. Nothing is downloaded and no model is loaded. What is looked
at and cannot be used (a truncated file, a manifest naming a missing blob, a port held by
something else) is reported in ``skipped`` with the reason, and the scan goes on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import platformdirs

from ragls.config import Config, update_user_file
from ragls.llm import gguf
from ragls.llm.base import ModelError, ModelMetadata

LOOPBACK = "127.0.0.1"
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_LICENSE_LAYER = "application/vnd.ollama.image.license"
OLLAMA_REGISTRY = "registry.ollama.ai"
# Shards 2..n of a split GGUF model carry no header worth listing; shard 1 stands for the model.
_LATER_SHARD = re.compile(r"-(\d{5})-of-\d{5}\.gguf$")
PROBE_TIMEOUT = httpx.Timeout(2.0, connect=0.5)
SENTENCE_TRANSFORMERS = "sentence-transformers"  # the family of embedding models (models.embedding)

# Where a model can be found, as `ragls models use --from` names it.
SOURCES = ("ollama", "lm-studio", "gpt4all", "huggingface", "search-path", "server")


@dataclass(frozen=True)
class FoundModel:
    """One usable model: a GGUF file (``path``) or a model a loopback server serves (``base_url``)."""

    name: str  # what `ragls models use` takes
    source: str  # one of SOURCES
    family: str | None = None  # the architecture (llama, qwen2, starcoder2, ...)
    size: str | None = None  # parameter count as stated, e.g. "135M"
    bytes: int | None = None
    quantisation: str | None = None
    context_length: int | None = None
    license: str | None = None
    fim: str | None = None  # the fill-in-the-middle format ragls would use; None = prefix only
    path: str | None = None
    base_url: str | None = None


@dataclass
class Scan:
    models: list[FoundModel] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "where: why", for what could not be used

    def to_json(self) -> dict[str, Any]:
        """What ``ragls models scan --json`` prints and the ``ragls/models`` request returns."""
        return {"models": [asdict(m) for m in self.models], "skipped": list(self.skipped)}


def scan(config: Config, servers: bool = True) -> Scan:
    """Every model found on this machine: files first (by place), then servers (by port)."""
    result = Scan()
    seen: set[Path] = set()
    for source, folder in gguf_places(config):
        if source == "ollama":
            _scan_ollama(folder, result, seen)
            continue
        for path in _gguf_files(folder):
            _add_file(path, source, path.stem, result, seen)
        if source == "huggingface":
            result.models += _sentence_transformers(folder)
    if servers:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for models, skipped in pool.map(probe_port, config.models.scan_ports):
                result.models += models
                result.skipped += skipped
    return result


def choose(found: Scan, name: str, role: str, source: str | None = None) -> FoundModel:
    """The model ``name`` (as scan lists it, or a GGUF file's path) for ``role``. Several rows of
    one name (an Ollama blob and the Ollama server serving it): the first, a file before a
    server, unless ``source`` picks."""
    if name.lower().endswith(".gguf") and Path(name).expanduser().is_file():
        path = Path(name).expanduser().resolve()
        model = describe_file(path, "file", path.stem)
        if model is None:
            raise ModelError(f"{path}: an add-on file (adapter or projector), not a model")
        return _fits(model, role)
    rows = [m for m in found.models if m.name == name and source in (None, m.source)]
    if not rows:
        known = ", ".join(sorted({m.name for m in found.models})) or "none found"
        within = f" from {source}" if source else ""
        raise ModelError(f"no model named {name!r}{within}; ragls models scan lists: {known}")
    fitting = [m for m in rows if _role_error(m, role) is None]
    if not fitting:
        raise ModelError(_role_error(rows[0], role) or "")
    return fitting[0]


def use(config: Config, name: str, role: str, source: str | None = None) -> tuple[FoundModel, Path]:
    """Make ``role`` use the model ``name``: found (a scan, servers asked only for a name that is
    not a file), then written into the user config file; the model and the file written."""
    found = scan(config, servers=not name.lower().endswith(".gguf"))
    model = choose(found, name, role, source)
    return model, update_user_file(("models", role), role_settings(model, role))


def role_settings(model: FoundModel, role: str) -> dict[str, str]:
    """The ``[models.<role>]`` keys that make ragls use ``model``."""
    _fits(model, role)
    if role == "embedding":
        return {"model": str(model.path)}
    if model.path:
        return {"provider": "llama_cpp", "path": model.path}
    return {"provider": "openai", "base_url": str(model.base_url), "model": model.name}


def _fits(model: FoundModel, role: str) -> FoundModel:
    error = _role_error(model, role)
    if error:
        raise ModelError(error)
    return model


def _role_error(model: FoundModel, role: str) -> str | None:
    embeds = model.family == SENTENCE_TRANSFORMERS
    if role == "embedding" and not embeds:
        return (f"{model.name}: models.embedding takes a sentence-transformers model (scan lists those "
                "from the Hugging Face cache); GGUF files and model servers serve chat and completion")
    if role != "embedding" and embeds:
        return f"{model.name}: a sentence-transformers model can only be used with --role embedding"
    return None


def gguf_places(config: Config) -> list[tuple[str, Path]]:
    """(source, folder) for each place GGUF files usually are, that exists on this machine."""
    home = Path.home()
    hf_home = Path(os.environ.get("HF_HOME") or Path(platformdirs.user_cache_dir()) / "huggingface")
    hf_hub = Path(os.environ.get("HF_HUB_CACHE") or hf_home / "hub")
    ollama = os.environ.get("OLLAMA_MODELS")
    places = [("ollama", Path(ollama).expanduser())] if ollama else []
    places += [
        ("ollama", home / ".ollama" / "models"),
        ("ollama", Path("/usr/share/ollama/.ollama/models")),  # the Linux installer's service user
        ("lm-studio", home / ".lmstudio" / "models"),
        ("lm-studio", home / ".cache" / "lm-studio" / "models"),  # before LM Studio 0.3
        ("gpt4all", Path(platformdirs.user_data_dir()) / "nomic.ai" / "GPT4All"),
        ("huggingface", hf_hub),
        *(("search-path", Path(p).expanduser()) for p in config.models.search_paths),
    ]
    unique: dict[Path, str] = {}
    for source, folder in places:
        if folder.is_dir():
            unique.setdefault(folder.resolve(), source)
    return [(source, folder) for folder, source in unique.items()]


def _gguf_files(folder: Path) -> Iterator[Path]:
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(files):
            if name.lower().endswith(".gguf") and not _is_later_shard(name):
                yield Path(root) / name


def _is_later_shard(name: str) -> bool:
    m = _LATER_SHARD.search(name)
    return bool(m) and int(m.group(1)) > 1


def _add_file(
    path: Path, source: str, name: str, result: Scan, seen: set[Path], license_: str | None = None
) -> None:
    real = path.resolve()
    if real in seen:
        return
    seen.add(real)
    try:
        found = describe_file(path, source, name, license_)
    except ModelError as exc:
        result.skipped.append(str(exc))
        return
    if found is not None:
        result.models.append(found)


def describe_file(path: Path, source: str, name: str, license_: str | None = None) -> FoundModel | None:
    """A GGUF file's row, from its header; None for add-on files (adapters, vision projectors)."""
    info = gguf.describe(path)
    if info.kind not in (None, "model"):
        return None
    return FoundModel(
        name=name,
        source=source,
        family=info.architecture,
        size=info.size_label,
        bytes=path.stat().st_size,
        quantisation=info.quantisation,
        context_length=info.context_length,
        license=info.license or license_,
        fim=_fim(ModelMetadata("llama_cpp", info.name or name, info.context_length or 0, fim=info.fim,
                               path=str(path))),
        path=str(path),
    )


def _fim(meta: ModelMetadata) -> str | None:
    from ragls.recipes.fim import family_for  # the completion prompt's own decision

    family = family_for(meta)
    return family.name if family else None


def _sentence_transformers(hub: Path) -> list[FoundModel]:
    """Embedding models in the hub cache (models--org--name/snapshots/<rev>/modules.json): what
    models.embedding can use, as a model folder (so nothing is looked up online)."""
    found = []
    for repo in sorted(hub.glob("models--*")):
        snapshots = sorted(repo.glob("snapshots/*/modules.json"), key=lambda p: p.stat().st_mtime)
        if not snapshots:
            continue
        folder = snapshots[-1].parent
        try:
            settings = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
            window = settings.get("max_seq_length")
        except (OSError, ValueError, AttributeError):
            window = None
        found.append(FoundModel(
            name=repo.name.removeprefix("models--").replace("--", "/"),
            source="huggingface",
            family=SENTENCE_TRANSFORMERS,
            bytes=sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
            context_length=window if isinstance(window, int) else None,
            path=str(folder),
        ))
    return found


# --- Ollama's store ---------------------------------------------------------------------------


def _scan_ollama(store: Path, result: Scan, seen: set[Path]) -> None:
    """Each manifest (manifests/<registry>/<namespace>/<model>/<tag>, JSON) names its model blob."""
    manifests = store / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        name = ollama_name(manifest.relative_to(manifests).parts)
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8"))["layers"]
            by_type = {layer["mediaType"]: layer["digest"] for layer in layers}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            result.skipped.append(f"{manifest}: not an Ollama manifest ({type(exc).__name__}: {exc})")
            continue
        digest = by_type.get(OLLAMA_MODEL_LAYER)
        if digest is None:
            result.skipped.append(f"{manifest}: Ollama model {name} has no model layer")
            continue
        blob = _ollama_blob(store, digest)
        if blob is None:
            missing = f"names blob {digest}, which is missing from {store / 'blobs'}"
            result.skipped.append(f"{manifest}: Ollama model {name} {missing}")
            continue
        license_blob = _ollama_blob(store, by_type.get(OLLAMA_LICENSE_LAYER, ""))
        _add_file(blob, "ollama", name, result, seen, _first_line(license_blob))


def ollama_name(parts: tuple[str, ...]) -> str:
    """The name ``ollama list`` shows: ``model:tag``, ``namespace/model:tag`` or ``host/ns/model:tag``."""
    *path, tag = parts
    if len(path) == 3 and path[0] == OLLAMA_REGISTRY:
        path = path[2:] if path[1] == "library" else path[1:]
    return "/".join(path) + ":" + tag


def _ollama_blob(store: Path, digest: str) -> Path | None:
    if not digest.startswith("sha256:"):
        return None
    for spelling in (digest.replace(":", "-"), digest):  # sha256-<hex> since 2024, sha256:<hex> before
        blob = store / "blobs" / spelling
        if blob.is_file():
            return blob
    return None


def _first_line(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return f.readline().strip()[:60] or None
    except OSError:
        return None


# --- servers on loopback ----------------------------------------------------------------------


def probe_port(port: int) -> tuple[list[FoundModel], list[str]]:
    """The models a loopback server lists: Ollama's API first, then OpenAI's. A closed port is
    nothing to report; an open one that answers neither is skipped with what it said."""
    base = f"http://{LOOPBACK}:{port}"
    with httpx.Client(timeout=PROBE_TIMEOUT) as client:
        try:
            tags = _get_json(client, base + "/api/tags")
        except httpx.ConnectError:
            return [], []
        except (httpx.HTTPError, ValueError) as exc:
            tags = exc
        if isinstance(tags, dict) and isinstance(tags.get("models"), list):
            listed = [m for m in tags["models"] if isinstance(m, dict) and m.get("name")]
            return [_ollama_served(m, base) for m in listed], []
        try:
            listing = _get_json(client, base + "/v1/models")
        except (httpx.HTTPError, ValueError) as exc:
            return [], [f"{base}: answers, but not as a model server ({_why(tags)}; /v1/models: {_why(exc)})"]
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        return [], [f"{base}: answers, but /v1/models lists no models ({json.dumps(listing)[:80]})"]
    return [_openai_served(m, base) for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)], []


def _get_json(client: httpx.Client, url: str) -> object:
    response = client.get(url)
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}")
    return response.json()  # ValueError (JSONDecodeError) when it is not JSON


def _why(result: object) -> str:
    if isinstance(result, Exception):
        return str(result) or type(result).__name__
    return "unexpected JSON"


def _ollama_served(model: dict, base: str) -> FoundModel:
    details = model.get("details") if isinstance(model.get("details"), dict) else {}
    name = str(model["name"])
    return FoundModel(
        name=name,
        source="server",
        family=details.get("family"),
        size=details.get("parameter_size"),
        bytes=model.get("size") if isinstance(model.get("size"), int) else None,
        quantisation=details.get("quantization_level"),
        fim=_fim(ModelMetadata("openai", name, 0)),
        base_url=base + "/v1",  # Ollama's OpenAI-compatible API
    )


def _openai_served(model: dict, base: str) -> FoundModel:
    name = model["id"]
    fim = _fim(ModelMetadata("openai", name, 0))
    return FoundModel(name=name, source="server", fim=fim, base_url=base + "/v1")
