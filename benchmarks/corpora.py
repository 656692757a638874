"""Benchmark corpora, fetched from the package registries into a cache and never committed.

The machine reaches only PyPI, Debian and npm, so every corpus is a registry artifact pinned to
an exact version: the quality corpora are the releases nearest semble's pinned commits (and the
dev set's packages, listed in ``benchmarks/devset/repos.json``), and the speed corpora are
deterministic stride samples over several big real packages. Everything is
cached under ``benchmarks/.cache/`` (or ``$RAGLS_BENCH_CACHE``) so a second run is offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

Log = Callable[[str], None]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip", ".deb")


def cache_dir() -> Path:
    """Root of everything the benchmark downloads or builds (gitignored by default)."""
    override = os.environ.get("RAGLS_BENCH_CACHE")
    base = Path(override).expanduser() if override else Path(__file__).resolve().parent / ".cache"
    base.mkdir(parents=True, exist_ok=True)
    return base.resolve()


@dataclass(frozen=True)
class Package:
    """One pinned registry artifact: ``registry`` is ``"pypi"`` (an sdist), ``"npm"`` (a tarball)
    or ``"debian"`` (a binary package, unpacked without installing: Debian's ``golang-*-dev``,
    ``librust-*-dev``, ``ruby-*``, ``php-*``, ``lua-*`` and header-only ``*-dev`` packages carry
    their sources)."""

    registry: str
    name: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.name.replace('/', '-').lstrip('@')}-{self.version}"


def _run(cmd: list[str], cwd: Path) -> None:
    if shutil.which(cmd[0]) is None:
        raise RuntimeError(f"'{cmd[0]}' is not installed; the benchmark needs it to fetch its corpora")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


@contextmanager
def _atomic_dir(final: Path) -> Iterator[Path]:
    """A scratch folder renamed to ``final`` only on success, so an interrupted run never leaves
    a half-written corpus that a later run would trust."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield tmp
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(pkg: Package, dest: Path) -> None:
    """Fetch the archive with the registry's ordinary client (pip / npm / apt-get), into ``dest``."""
    if pkg.registry == "pypi":
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--quiet",
                f"{pkg.name}=={pkg.version}",
                "-d",
                str(dest),
            ],
            cwd=dest,
        )
    elif pkg.registry == "npm":
        spec = f"{pkg.name}@{pkg.version}"
        _run(["npm", "pack", "--silent", spec, "--pack-destination", str(dest)], cwd=dest)
    elif pkg.registry == "debian":
        try:
            _run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=dest)
        except RuntimeError as exc:
            hint = "apt-get needs its package lists: run 'apt-get update' once"
            raise RuntimeError(f"{exc}\n({hint})") from exc
    else:
        raise ValueError(f"unknown registry {pkg.registry!r}")


def fetch(pkg: Package, log: Log = print) -> Path:
    """Download (once) and unpack (once) ``pkg``; return the unpacked project directory."""
    base = cache_dir()
    unpacked = base / "src" / pkg.registry / pkg.label
    if unpacked.is_dir():
        return _project_dir(unpacked, pkg.registry)
    archives = base / "downloads" / pkg.registry / pkg.label
    if not archives.is_dir():
        log(f"downloading {pkg.registry} {pkg.name} {pkg.version} ...")
        with _atomic_dir(archives) as tmp:
            _download(pkg, tmp)
    found = [p for p in archives.iterdir() if p.name.endswith(ARCHIVE_SUFFIXES)]
    if len(found) != 1:
        raise RuntimeError(f"expected one archive in {archives}, found {[p.name for p in found]}")
    with _atomic_dir(unpacked) as tmp:
        _unpack(found[0], tmp)
    return _project_dir(unpacked, pkg.registry)


def _unpack(archive: Path, dest: Path) -> None:
    if archive.name.endswith(".deb"):
        _run(["dpkg-deb", "--extract", str(archive), str(dest)], cwd=dest)
        return
    if archive.name.endswith(".zip"):
        shutil.unpack_archive(archive, dest)
        return
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")


def _project_dir(unpacked: Path, registry: str) -> Path:
    """sdists and npm tarballs wrap the project in one top folder (``name-ver/``, ``package/``);
    a Debian package unpacks to the file system tree it would install (``usr/...``)."""
    if registry == "debian":
        return unpacked
    entries = [p for p in unpacked.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else unpacked


# --- quality corpora: semble's annotated repositories that the registries carry ---------------


@dataclass(frozen=True)
class QualityCorpus:
    """An annotated repository; ``benchmark_root`` is the folder of the unpacked artifact indexed.

    semble indexes only ``<checkout>/<benchmark_root>`` and matches annotation paths (relative to
    the repository root) by suffix against the indexed files' full paths, so result paths are
    prefixed with ``prefix`` (by default ``benchmark_root``, as in semble's repositories) before
    matching. A dev-set corpus whose package lays files out unlike the upstream repository (a
    Debian package) names the upstream path of its root as ``prefix`` instead. ``annotations``
    are the corpus's annotation files, whose queries are scored together (empty: semble's file,
    found by name).
    """

    name: str
    package: Package
    benchmark_root: str
    prefix: str | None = None
    annotations: tuple[Path, ...] = ()
    language: str = ""
    split: str = "semble"

    @property
    def path_prefix(self) -> str:
        """What goes before an indexed file's root-relative path to form an annotation path."""
        prefix = self.benchmark_root if self.prefix is None else self.prefix
        return prefix.strip("/") + "/" if prefix.strip("/") else ""

    def annotation_path(self, rel: str, whole_project: bool) -> str:
        """The annotation path of an indexed file: ``rel`` is relative to the benchmark root, or
        with ``whole_project`` to the unpacked artifact (a file below the root is re-rooted at
        ``prefix``, as it would be in the upstream repository; any other keeps its own path)."""
        if not whole_project:
            return self.path_prefix + rel
        root = self.benchmark_root.strip("/") + "/"
        return self.path_prefix + rel[len(root) :] if rel.startswith(root) else rel


QUALITY_CORPORA = (
    QualityCorpus("fastapi", Package("pypi", "fastapi", "0.135.3"), "fastapi", language="python"),
    QualityCorpus("aiohttp", Package("pypi", "aiohttp", "3.13.5"), "aiohttp", language="python"),
    QualityCorpus("express", Package("npm", "express", "5.2.1"), "lib", language="javascript"),
)


# --- speed corpora: ~500 and ~10,000 real source files ----------------------------------------

SPEED_PACKAGES = (
    Package("pypi", "django", "5.2.19"),
    Package("pypi", "sympy", "1.14.0"),
    Package("pypi", "ansible-core", "2.19.14"),
    Package("pypi", "twisted", "26.10.0"),
    Package("pypi", "sqlalchemy", "2.1.9"),
    Package("pypi", "aiohttp", "3.13.5"),
    Package("pypi", "fastapi", "0.135.3"),
    Package("npm", "lodash", "4.18.1"),
    Package("npm", "rxjs", "7.8.2"),
    Package("npm", "express", "5.2.1"),
)

# What a code repository is made of: sources in several languages plus their docs. Data files
# (json, po, csv) are left out so the two engines index the same, search-worthy files.
SPEED_EXTENSIONS = (
    ".py",
    ".pyi",
    ".pyx",
    ".js",
    ".mjs",
    ".cjs",
    ".ts",
    ".tsx",
    ".c",
    ".h",
    ".html",
    ".css",
    ".md",
    ".rst",
    ".txt",
    ".toml",
    ".cfg",
    ".yml",
    ".yaml",
    ".sh",
)
MAX_SPEED_FILE_BYTES = 256 * 1024  # well under the engine's limit, so it skips none for size


def _candidates(project: Path, extensions: tuple[str, ...] = SPEED_EXTENSIONS) -> list[Path]:
    out = []
    for path in project.rglob("*"):
        rel = path.relative_to(project).as_posix()
        if (
            path.is_file()
            and not path.is_symlink()
            and path.name.endswith(extensions)
            and not path.name.endswith((".min.js", ".min.css"))
            and ".egg-info/" not in rel
            and path.stat().st_size <= MAX_SPEED_FILE_BYTES
        ):
            out.append(path)
    return sorted(out, key=lambda p: p.relative_to(project).as_posix())


def stride_sample(items: list, n: int) -> list:
    """``n`` items spread evenly over ``items`` (all of them if there are fewer), order kept.

    A stride sample keeps the language and package mix of the whole pool, so the 500-file and
    the 10,000-file repositories differ in size, not in kind.
    """
    if n >= len(items):
        return list(items)
    return [items[(i * len(items)) // n] for i in range(n)]


def speed_repo(n_files: int, log: Log = print) -> Path:
    """A repository of ``n_files`` real source files combined from ``SPEED_PACKAGES`` (cached)."""
    base = cache_dir() / "speed"
    repo = base / f"repo-{n_files}"
    manifest = base / f"repo-{n_files}.json"
    spec = [p.label for p in SPEED_PACKAGES]
    if repo.is_dir() and manifest.is_file() and json.loads(manifest.read_text())["packages"] == spec:
        return repo
    pool: list[tuple[Path, Path, str]] = []
    for pkg in SPEED_PACKAGES:
        project = fetch(pkg, log)
        pool.extend((project, p, pkg.label) for p in _candidates(project))
    chosen = stride_sample(pool, n_files)
    log(f"building {repo.name}: {len(chosen)} of {len(pool)} candidate files")
    if repo.exists():
        shutil.rmtree(repo)
    with _atomic_dir(repo) as tmp:
        for project, path, label in chosen:
            target = tmp / label / path.relative_to(project)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    manifest.write_text(json.dumps({"packages": spec, "files": len(chosen), "pool": len(pool)}, indent=1))
    return repo


# --- the scale corpus: ~31,500 files of 50 repositories in 14 programming languages -----------

# Big packages that make up the bulk (Go's standard library alone is ~10,000 files), beside
# semble's three repositories (indexed whole at their benchmark roots, as bench_store does, so
# their NDCG compares) and the dev set's packages. SQLAlchemy is left out: pip downloads its sdist
# only after building Cython from source for its metadata (minutes of CPU).
SCALE_PACKAGES = (
    *(p for p in SPEED_PACKAGES if p.name not in {"aiohttp", "fastapi", "express", "sqlalchemy"}),
    Package("debian", "golang-1.19-src", "1.19.8-2"),
    Package("debian", "ruby-activesupport", "2:6.1.7.10+dfsg-1~deb12u4"),
    Package("debian", "ruby-activerecord", "2:6.1.7.10+dfsg-1~deb12u4"),
    Package("debian", "libeigen3-dev", "3.4.0-4"),
    Package("npm", "three", "0.187.0"),
)
SCALE_EXTENSIONS = (
    *SPEED_EXTENSIONS, ".go", ".rs", ".rb", ".php", ".lua", ".java", ".cs", ".cc", ".cpp", ".hpp", ".kt",
    ".swift", ".jsx", ".mts", ".cts",
)


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # the cache's own files: no copy needed on one file system
    except OSError:
        shutil.copyfile(source, target)


def scale_corpus(extra: list[Package], log: Log = print) -> dict[str, Path]:
    """The scale corpus (cached): one folder per repository under one root, by repository name.
    ``extra`` are more packages taken whole (the dev set's, passed in by the benchmark)."""
    root = cache_dir() / "scale" / "corpus"
    manifest = root.parent / "corpus.json"
    quality = {c.name: c for c in QUALITY_CORPORA}
    bulk = {p.label: p for p in (*extra, *SCALE_PACKAGES)}
    spec = sorted([*quality, *bulk])
    if root.is_dir() and manifest.is_file() and json.loads(manifest.read_text())["repositories"] == spec:
        return {name: root / name for name in spec}
    if root.exists():
        shutil.rmtree(root)
    with _atomic_dir(root) as tmp:
        for name, corpus in quality.items():
            top = fetch(corpus.package, log) / corpus.benchmark_root
            for path in sorted(p for p in top.rglob("*") if p.is_file() and not p.is_symlink()):
                _link(path, tmp / name / path.relative_to(top))
        for name, pkg in bulk.items():
            project = fetch(pkg, log)
            for path in _candidates(project, SCALE_EXTENSIONS):
                _link(path, tmp / name / path.relative_to(project))
    files = sum(1 for p in root.rglob("*") if p.is_file())
    log(f"built the scale corpus: {len(spec)} repositories, {files} files")
    manifest.write_text(json.dumps({"repositories": spec, "files": files}, indent=1))
    return {name: root / name for name in spec}
