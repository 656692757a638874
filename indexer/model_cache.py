"""Models ragls derives from the bundled ones (a distilled static model, an ONNX export), cached on
disk once per machine and checked before every use.

A derived model is built into a scratch folder and renamed into place only when complete, with a
manifest naming what it was built from and the SHA-256 of every file. A folder whose manifest is
missing, names another recipe or whose files no longer match their hashes is not trusted: it is
moved aside and built again, and the caller is told why. Nothing here downloads anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

MANIFEST = "ragls-manifest.json"


def models_dir() -> Path:
    """Derived models are shared by every workspace: ``$RAGLS_MODELS_DIR`` or the user cache dir."""
    override = os.environ.get("RAGLS_MODELS_DIR")
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("ragls")) / "models"


def fingerprint(model_dir: str) -> str:
    """Identifies a source model directory without reading its weights: names, sizes, mtimes."""
    path = Path(model_dir)
    if not path.is_dir():
        return model_dir  # a name resolved by the library's own cache
    parts = [str(path.resolve())]
    for item in sorted(path.rglob("*")):
        if item.is_file():
            st = item.stat()
            parts.append(f"{item.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Derived:
    """A verified derived model: its folder and the hash of its files (its version)."""

    path: Path
    version: str  # changes whenever the files change, even when rebuilt from the same recipe


def _verify(folder: Path, recipe: dict) -> str | None:
    """None if ``folder`` holds a complete build of ``recipe``, else what is wrong with it."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no manifest (an interrupted build?)"
    except (OSError, ValueError) as exc:
        return f"unreadable manifest ({exc})"
    if manifest.get("recipe") != recipe:
        return "built from another model or with other settings"
    for name, expected in manifest.get("files", {}).items():
        try:
            if _sha256(folder / name) != expected:
                return f"{name} does not match its recorded hash"
        except OSError as exc:
            return f"{name} unreadable ({exc.strerror or exc})"
    return None


def _version(folder: Path) -> str:
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    return hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()[:16]


def obtain(
    kind: str, recipe: dict, build: Callable[[Path], None], notices: list[str] | None = None
) -> Derived:
    """The derived model for ``recipe`` under ``models_dir()/kind``, built by ``build(folder)``
    when missing; a damaged or mismatched copy is moved aside, rebuilt, and reported in ``notices``."""
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    final = models_dir() / kind / key
    if final.exists():
        problem = _verify(final, recipe)
        if problem is None:
            return Derived(final, _version(final))
        aside = final.with_name(f"{key}.bad-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        with contextlib.suppress(OSError):
            final.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
        if notices is not None:
            notices.append(f"cached {kind} model at {final} was not usable ({problem}); rebuilt it")
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        build(scratch)
        files = {
            p.relative_to(scratch).as_posix(): _sha256(p) for p in sorted(scratch.rglob("*")) if p.is_file()
        }
        (scratch / MANIFEST).write_text(json.dumps({"recipe": recipe, "files": files}, indent=1))
        try:
            scratch.rename(final)
        except OSError:
            if _verify(final, recipe) is not None:  # not another process's complete build: ours fails
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Derived(final, _version(final))
