"""Build one workspace's dependency tier: find what it imports, index each installed version not
yet in the shared store, and record the workspace's selection (and what was skipped, and why).

It runs after the workspace's own index (``ragls deps``, which ``ragls index`` and the server start
once the workspace is indexed), so it never delays it.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from ragls.indexer.deps import node_env, python_env
from ragls.indexer.deps.selection import META_KEY, Selection
from ragls.indexer.deps.store import DepsStore
from ragls.indexer.deps.surface import SurfaceChunk, is_surface_file, python_surface
from ragls.indexer.engine import Index, cache_root, decode_source

Progress = Callable[[int, int, str], None]
LOCK_FILES = ("uv.lock", "poetry.lock", "pdm.lock")


def deps_store() -> DepsStore:
    """The store every workspace of this user shares."""
    return DepsStore(cache_root() / "deps" / "deps.sqlite")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build(index: Index, store: DepsStore, progress: Progress | None = None) -> Selection:
    """Index the workspace's Python and npm dependencies and save its selection; returns it."""
    started = time.perf_counter()
    env = python_env.find_environment(index.root, index.cfg.deps.python)
    sel = Selection(environment=str(env.prefix) if env.prefix else None, notes=list(env.notes))
    sources = _sources(index)
    if sources.get("python"):
        if env.prefix is None:
            sel.notes.append("no Python environment found (.venv, venv, env, poetry's; or set deps.python)")
        _python(index, store, sel, env, sources["python"], progress)
    if (index.root / "package.json").is_file():
        _node(
            index,
            store,
            sel,
            sources.get("typescript", []) + sources.get("javascript", []) + sources.get("tsx", []),
        )
    sel.seconds = round(time.perf_counter() - started, 3)
    with index.store.transaction() as db:
        index.store.set_meta(db, META_KEY, sel.to_json())
    return sel


def _sources(index: Index) -> dict[str, list[str]]:
    """The workspace's indexed files' texts, by language."""
    texts: dict[str, list[str]] = {}
    for rel, record in index.store.files().items():
        if record.language in ("python", "typescript", "javascript", "tsx"):
            try:
                texts.setdefault(record.language, []).append(
                    decode_source((index.root / rel).read_bytes())[0]
                )
            except OSError:
                continue
    return texts


def _python(
    index: Index, store: DepsStore, sel: Selection, env, texts: list[str], progress: Progress | None
) -> None:
    # a name the workspace defines itself is its own code (installed or not), not a dependency
    imported = {n for n in python_env.workspace_imports(texts) if not _own_module(index.root, n)}
    providers: dict[str, list] = {}
    for dist in python_env.distributions(env):
        for name in python_env.top_level_names(dist):
            providers.setdefault(name, []).append(dist)
    wanted: dict[str, tuple[object, set[str]]] = {}  # distribution name -> (dist, import names used)
    for name in sorted(imported):
        for dist in providers.get(name, [])[:1]:
            key = _normal(dist.metadata["Name"])
            wanted.setdefault(key, (dist, set()))[1].add(name)
    locked = _locked_versions(index.root)
    for done, (key, (dist, names)) in enumerate(sorted(wanted.items()), 1):
        _add_python(index, store, sel, dist, names, locked.get(key))
        if progress:
            progress(done, len(wanted), "dependencies")


def _add_python(
    index: Index, store: DepsStore, sel: Selection, dist, names: set[str], locked: str | None
) -> None:
    """One distribution: reuse its version from the store, or read and index it, or say why not."""
    cfg = index.cfg.deps
    name, version = dist.metadata["Name"], dist.version
    key = f"{name}=={version}"
    _check_lock(sel, name, version, locked)
    source = python_env.editable_root(dist)
    if source is not None and source.resolve() == index.root.resolve():
        sel.skipped[key] = "the workspace itself (editable install): indexed as the workspace"
        return
    if len(sel.packages) >= cfg.max_packages:
        sel.skipped[key] = f"over deps.max_packages ({cfg.max_packages})"
        return
    # every import package of the distribution: pytest's API lives in _pytest
    provided = python_env.top_level_names(dist) | names
    base, files, compiled = python_env.package_files(dist, python_env.site_of(dist), provided)
    package_id = store.package_id("python", name, version)
    if package_id is None:
        files = [f for f in files if is_surface_file(f)]
        if not files:
            sel.skipped[key] = (
                f"compiled only: {compiled} extension modules and no Python source or stubs installed"
                if compiled
                else "no Python files found for its import names"
            )
            return
        chunks, size = _read(base, files, cfg.max_file_bytes, sel, key, python_surface)
        if sel.bytes + size > cfg.max_bytes:
            sel.skipped[key] = f"over deps.max_bytes ({cfg.max_bytes} bytes of source per workspace)"
            return
        note = (
            f"{compiled} extension modules without source (stubs indexed where installed)"
            if compiled
            else None
        )
        package_id = store.add_package("python", name, version, chunks, len(files), size, note)
    _select(store, sel, key, package_id, base, names)


def _node(index: Index, store: DepsStore, sel: Selection, texts: list[str]) -> None:
    """The packages ``package.json`` names and the sources import, from their ``.d.ts`` files
    (``@types/x`` stands for ``x``)."""
    cfg = index.cfg.deps
    used = node_env.imported(texts)
    asked = node_env.wanted(index.root)
    locked = node_env.locked_versions(index.root)
    for name in sorted(n for n in asked if n in used or n.removeprefix("@types/").replace("__", "/") in used):
        if len(sel.packages) >= cfg.max_packages:
            sel.skipped[name] = f"over deps.max_packages ({cfg.max_packages})"
            continue
        package, why = node_env.installed(index.root, name)
        if package is None:
            sel.skipped[name] = why or "unreadable"
            continue
        key = f"{name}=={package.version}"
        _check_lock(sel, name, package.version, locked.get(name))
        package_id = store.package_id("npm", name, package.version)
        if package_id is None:

            def surface(rel: str, text: str, name: str = name) -> list[SurfaceChunk]:
                return node_env.declaration_surface(name, rel, text)

            chunks, size = _read(package.base, list(package.files), cfg.max_file_bytes, sel, key, surface)
            if sel.bytes + size > cfg.max_bytes:
                sel.skipped[key] = f"over deps.max_bytes ({cfg.max_bytes} bytes of source per workspace)"
                continue
            package_id = store.add_package(
                "npm", name, package.version, chunks, len(package.files), size, None
            )
        typed = name.removeprefix("@types/").replace("__", "/")
        _select(
            store,
            sel,
            key,
            package_id,
            package.base,
            {name} | ({typed} if typed not in sel.imports else set()),
        )


def _check_lock(sel: Selection, name: str, version: str, locked: str | None) -> None:
    if locked and locked != version:
        sel.notes.append(
            f"the lock file says {name}=={locked}, but {version} is installed: indexed {version}"
        )


def _select(store: DepsStore, sel: Selection, key: str, package_id: int, base: Path, names: set[str]) -> None:
    """Record a stored package version as one the workspace sees, under the names it imports."""
    row = store.packages([package_id])[0]
    sel.packages[key] = package_id
    sel.bases[key] = str(base)
    sel.bytes += row.bytes
    sel.chunks += row.chunks
    for import_name in names:
        sel.imports[import_name] = key


def _own_module(root: Path, name: str) -> bool:
    return any(
        (folder / name).is_dir() or (folder / f"{name}.py").is_file() for folder in (root, root / "src")
    )


def _read(
    base: Path, files: list[str], max_bytes: int, sel: Selection, key: str,
    surface: Callable[[str, str], list[SurfaceChunk]],
) -> tuple[list[SurfaceChunk], int]:  # fmt: skip
    """The surface chunks of a package's files, and the bytes read; huge files are skipped, and said."""
    chunks: list[SurfaceChunk] = []
    size = 0
    for rel in files:
        path = base / rel
        try:
            length = path.stat().st_size
            if length > max_bytes:
                sel.skipped[f"{key}:{rel}"] = f"{length} bytes, over deps.max_file_bytes (generated?)"
                continue
            data = path.read_bytes()
        except OSError as exc:
            sel.skipped[f"{key}:{rel}"] = f"unreadable: {exc.strerror or exc}"
            continue
        size += len(data)
        chunks += surface(rel, decode_source(data)[0])
    return chunks, size


def _locked_versions(root: Path) -> dict[str, str]:
    """Versions a lock file pins (uv, poetry, pdm: ``[[package]]`` with name and version)."""
    for name in LOCK_FILES:
        try:
            data = tomllib.loads((root / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return {
            _normal(p["name"]): str(p["version"])
            for p in data.get("package", [])
            if isinstance(p, dict) and "name" in p and "version" in p
        }
    return {}
