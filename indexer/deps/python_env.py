"""A Python workspace's environment and the installed distributions its code imports.

Nothing here runs the environment's interpreter (it may be broken, or for another platform): the
site-packages folders are found on disk, and distributions are read from their ``.dist-info``
metadata with :mod:`importlib.metadata` (``top_level.txt``, else the first folder of each
``RECORD`` entry, says which import names a distribution provides).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from importlib.metadata import Distribution, PathDistribution
from pathlib import Path

import platformdirs

# Folders a project's own virtual environment is usually created in (uv, venv, virtualenv, poetry
# with virtualenvs.in-project).
ENV_FOLDERS = (".venv", "venv", "env", ".virtualenv")
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import\b|import[ \t]+([^#\n;]+))", re.M)
_SOURCE_SUFFIXES = (".py", ".pyi")
_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")


@dataclass
class Environment:
    """Where a workspace's packages are installed; ``notes`` say what was odd on the way."""

    prefix: Path | None  # the environment's folder (None: none found)
    site_packages: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Package:
    """One installed distribution the workspace imports: its files, relative to ``base``."""

    name: str
    version: str
    base: Path  # the folder its import packages live in (site-packages, or an editable source tree)
    files: tuple[str, ...]  # '/'-separated, below ``base``; .py and .pyi only
    imports: tuple[str, ...]  # top-level import names the workspace uses from it
    compiled: int  # extension modules it ships (their API has no source to read)

    @property
    def key(self) -> str:
        return f"{self.name}=={self.version}"


def find_environment(root: Path, configured: str = "") -> Environment:
    """The workspace's environment: ``configured`` (a folder or an interpreter), a virtual
    environment folder in the root, or the one poetry keeps in its cache for this project."""
    env = Environment(None)
    candidates: list[Path] = []
    if configured:
        path = Path(configured).expanduser()
        path = path if path.is_absolute() else root / path
        candidates.append(path.parent.parent if path.name.startswith("python") else path)
    candidates += [root / name for name in ENV_FOLDERS]
    candidates += _poetry_environments(root)
    for prefix in candidates:
        if prefix.is_symlink() and not prefix.exists():
            env.notes.append(f"{_shown(prefix, root)} is a broken symlink (to {os.readlink(prefix)})")
            continue
        if not (prefix / "pyvenv.cfg").is_file():
            continue
        sites = sorted(prefix.glob("lib/python3*/site-packages")) + sorted(prefix.glob("Lib/site-packages"))
        if not sites:
            env.notes.append(f"{_shown(prefix, root)} has no site-packages folder")
            continue
        python = prefix / "bin" / "python"
        if python.is_symlink() and not python.exists():
            env.notes.append(
                f"{_shown(python, root)} is a broken symlink (to {os.readlink(python)}); "
                "its site-packages are read anyway"
            )
        env.prefix = prefix
        env.site_packages = _with_pth_folders(sites, env.notes, root)
        return env
    return env


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _poetry_environments(root: Path) -> list[Path]:
    """Poetry's cached environment for this project: ``<name>-<hash of the project path>-py3.X``."""
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    name = project.get("tool", {}).get("poetry", {}).get("name") or project.get("project", {}).get("name")
    if not isinstance(name, str):
        return []
    sanitized = re.sub(r'[ $`!*@"\\\r\n\t]', "_", name.lower())[:42]
    digest = hashlib.sha256(os.path.normcase(os.path.realpath(root)).encode()).digest()
    stem = f"{sanitized}-{base64.urlsafe_b64encode(digest).decode()[:8]}"
    cache = Path(
        os.environ.get("POETRY_VIRTUALENVS_PATH")
        or Path(platformdirs.user_cache_dir("pypoetry")) / "virtualenvs"
    )
    return sorted(cache.glob(f"{stem}-py*"), reverse=True)


def _with_pth_folders(sites: list[Path], notes: list[str], root: Path) -> list[Path]:
    """The site-packages folders plus the folders their ``.pth`` files add (one path a line; lines
    starting with ``import`` are code and are not run). A folder inside the workspace is the
    workspace itself (an editable install) and is left out; a missing one is noted."""
    found = list(sites)
    for site in sites:
        for pth in sorted(site.glob("*.pth")):
            try:
                lines = pth.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                folder = (site / line).resolve() if not os.path.isabs(line) else Path(line)
                if not folder.is_dir():
                    notes.append(f"{pth.name} points at {line}, which does not exist")
                elif folder.resolve().is_relative_to(root.resolve()):
                    continue
                elif folder not in found:
                    found.append(folder)
    return found


def workspace_imports(texts: list[str]) -> set[str]:
    """Top-level names of the absolute imports in these Python sources."""
    names: set[str] = set()
    for text in texts:
        for m in _IMPORT.finditer(text):
            if m.group(1):
                names.add(m.group(1).split(".")[0])
                continue
            for part in m.group(2).split(","):
                word = part.strip().split(" ")[0].split(".")[0].strip("()\\")
                if word.isidentifier():
                    names.add(word)
    return names - set(sys.stdlib_module_names) - {"__future__"}


def distributions(env: Environment) -> list[Distribution]:
    """Each distribution installed in the environment, once (the first site folder wins)."""
    seen: set[str] = set()
    out: list[Distribution] = []
    for site in env.site_packages:
        for info in sorted(site.glob("*.dist-info")) + sorted(site.glob("*.egg-info")):
            dist = PathDistribution(info)
            name = (dist.metadata["Name"] or "") if dist.metadata else ""
            key = re.sub(r"[-_.]+", "-", name).lower()
            if key and key not in seen:
                seen.add(key)
                out.append(dist)
    return out


def top_level_names(dist: Distribution) -> set[str]:
    """Import names a distribution provides: ``top_level.txt``, else the first part of its RECORD."""
    listed = dist.read_text("top_level.txt")
    if listed:
        return {line.strip().replace("/", ".").split(".")[0] for line in listed.splitlines() if line.strip()}
    names: set[str] = set()
    for file in dist.files or []:
        first = file.parts[0] if file.parts else ""
        if first.endswith((".dist-info", ".egg-info", ".pth", ".data")) or first in ("..", "__pycache__"):
            continue
        stem = first.split(".")[0]
        if stem.isidentifier() and (
            len(file.parts) > 1 or first.endswith(_SOURCE_SUFFIXES + _COMPILED_SUFFIXES)
        ):
            names.add(stem)
    return names


def editable_root(dist: Distribution) -> Path | None:
    """The source folder of an editable install (PEP 660 ``direct_url.json``), else None."""
    try:
        info = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        return None
    if not info.get("dir_info", {}).get("editable"):
        return None
    url = info.get("url", "")
    return Path(url.removeprefix("file://")) if url.startswith("file://") else None


def package_files(dist: Distribution, site: Path, names: set[str]) -> tuple[Path, list[str], int]:
    """(base folder, source files below it, compiled modules) of a distribution's import packages.
    An editable install's files are read from its source tree; a RECORD lists the installed ones."""
    base = site
    source = editable_root(dist)
    files: list[str] = []
    compiled = 0
    if source is not None:
        base = next((d for d in (source / "src", source) if any((d / n).exists() for n in names)), source)
        for name in sorted(names):
            top = base / name
            walked = (
                [p for p in top.rglob("*") if p.is_file()] if top.is_dir() else list(base.glob(f"{name}.*"))
            )
            rels = [path.relative_to(base).as_posix() for path in walked]
            files += [rel for rel in rels if rel.endswith(_SOURCE_SUFFIXES)]
            compiled += sum(rel.endswith(_COMPILED_SUFFIXES) for rel in rels)
        return base, sorted(set(files)), compiled
    for file in dist.files or []:
        rel = file.as_posix()
        top = rel.split("/")[0].split(".")[0].removesuffix("-stubs")  # PEP 561 stubs: ujson-stubs/
        if rel.startswith("..") or top not in names:
            continue
        if rel.endswith(_SOURCE_SUFFIXES):
            files.append(rel)
        elif rel.endswith(_COMPILED_SUFFIXES):
            compiled += 1
    return base, sorted(set(files)), compiled


def site_of(dist: Distribution) -> Path:
    """The folder a distribution's ``.dist-info`` sits in."""
    return Path(str(dist.locate_file(""))).resolve()
