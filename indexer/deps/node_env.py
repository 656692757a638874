"""A JavaScript/TypeScript workspace's dependencies: the packages its ``package.json`` names, as
installed in its ``node_modules``, read from their type declarations (``.d.ts`` first: they are the
public surface, already without bodies).

Only the workspace's direct dependencies are read, each from its own folder: nested
``node_modules`` are never entered and symlinked folders never followed, so cycles (pnpm's links)
and trees of thousands of packages cost nothing.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ragls.indexer.deps.surface import SurfaceChunk
from ragls.indexer.parsing import parse

DECLARATIONS = (".d.ts", ".d.mts", ".d.cts")
DEF_LINES = 40  # of one declaration (an interface or a namespace can run long)
_SKIPPED_FOLDERS = frozenset({"node_modules", "test", "tests", "__tests__", "docs", "example", "examples"})
_IMPORT = re.compile(r"""(?:from|require\(|import\()\s*['"]([^'"./][^'"]*)['"]""")


@dataclass(frozen=True)
class NodePackage:
    name: str
    version: str
    base: Path  # the package's folder
    files: tuple[str, ...]  # its declaration files, relative to ``base``


def wanted(root: Path) -> dict[str, str]:
    """Package name -> the range ``package.json`` asks for (dependencies, dev and peer)."""
    try:
        manifest = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, str] = {}
    for key in ("peerDependencies", "devDependencies", "dependencies"):
        section = manifest.get(key) if isinstance(manifest, dict) else None
        if isinstance(section, dict):
            out |= {str(k): str(v) for k, v in section.items()}
    return out


def locked_versions(root: Path) -> dict[str, str]:
    """Versions ``package-lock.json`` pins for the top-level packages."""
    try:
        lock = json.loads((root / "package-lock.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    packages = lock.get("packages", {}) if isinstance(lock, dict) else {}
    return {
        key.removeprefix("node_modules/"): str(entry.get("version"))
        for key, entry in packages.items()
        if key.startswith("node_modules/") and "/node_modules/" not in key and isinstance(entry, dict)
    }


def imported(texts: list[str]) -> set[str]:
    """Package names the sources import (``express``, ``@scope/name`` from ``@scope/name/sub``)."""
    names = set()
    for text in texts:
        for spec in _IMPORT.findall(text):
            parts = spec.split("/")
            names.add("/".join(parts[:2]) if spec.startswith("@") else parts[0])
    return names


def installed(root: Path, name: str) -> tuple[NodePackage | None, str | None]:
    """The installed package (its declaration files), or why it cannot be read."""
    folder = root / "node_modules" / name
    try:
        base = folder.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # missing, a dangling link, a link loop
        return None, "not installed in node_modules" if not folder.is_symlink() else f"unreadable link: {exc}"
    try:
        manifest = json.loads((base / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "no readable package.json"
    version = str(manifest.get("version", "0"))
    files = []
    for top, dirs, names in os.walk(base):  # never follows a symlinked folder
        dirs[:] = [d for d in dirs if d not in _SKIPPED_FOLDERS]
        for file in names:
            if file.endswith(DECLARATIONS):
                files.append((Path(top) / file).relative_to(base).as_posix())
    if not files:
        hint = f"@types/{name.lstrip('@').replace('/', '__')}"
        return None, f"no type declarations (.d.ts); add {hint} to index its API"
    return NodePackage(name, version, base, tuple(sorted(files))), None


def declaration_surface(package: str, rel: str, text: str) -> list[SurfaceChunk]:
    """One chunk per declared name (with the JSDoc above it), from the workspace's own parser."""
    parsed = parse(rel, text, language="typescript")
    rows = text.split("\n")
    module = ".".join([package, *Path(rel.split(".d.")[0]).parts])
    chunks = []
    for symbol in parsed.symbols:
        if symbol.role != "definition" or symbol.name.startswith("_") or symbol.name == "constructor":
            continue
        if re.match(r"\s*(private|#)", rows[symbol.line - 1]):
            continue
        first = symbol.line - 1
        while first > 0 and rows[first - 1].strip().startswith(("*", "/**", "*/")):
            first -= 1  # the JSDoc block above it
        last = min(symbol.end_line, symbol.line + DEF_LINES - 1)
        qualified = symbol.qualified.split(".", 1)[-1]  # the parser names the file's stem first
        chunks.append(
            SurfaceChunk(
                rel,
                first + 1,
                last,
                f"{module}.{qualified}",
                symbol.name,
                symbol.kind,
                "\n".join(rows[first:last]),
            )
        )
    return chunks
