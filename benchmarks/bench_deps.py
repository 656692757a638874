"""Dependency tier benchmark: ``python -m benchmarks.bench_deps``.

1. Signature in context. Projects nobody here wrote, from the registries (fastapi, jinja2 and cattrs
   sdists from PyPI; sentence-transformers, model2vec, httpx and pygls as pip installed them), each
   copied into a workspace whose ``.venv`` is this interpreter's environment (their dependencies
   are installed there). Held-out call sites: lines calling an attribute of an imported
   third-party module (``np.asarray(``, ``torch.cat(``, ``anyio.to_thread.run_sync(``), the cursor
   just after the call's ``(``, the rest of the file as context. Ground truth comes from Python, not
   from ragls: the called object is imported and ``inspect`` names its file and the line of its
   ``def``/``class``; the site counts when the assembled completion context holds a snippet of that
   installed file covering that line. Objects without Python source (C functions) are counted
   apart. With and without the tier (the workspace's dependency selection removed), same budget.
2. Exact match with the bundled model (``--model N``, N sites): the cursor after ``alias.``, one
   line completed; the called name (the first identifier) and the whole rest of the line.
3. Cost: context assembly time at the sites with and without the tier (p50, p95), and the time
   and size of building the tier for this repository (its environment holds 100+ packages), cold
   and again from the shared store.

Writes ``benchmarks/results/deps.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpora import Package, fetch, stride_sample
from benchmarks.metrics import percentile
from benchmarks.report import Table
from benchmarks.run import RESULTS, begin, finish

REPO = Path(__file__).resolve().parents[1]
BUDGET = 1024  # the completion default
TARGET = 0.8
PROJECTS: list[tuple[str, Package | str]] = [
    ("fastapi", Package("pypi", "fastapi", "0.135.3")),
    ("jinja2", Package("pypi", "jinja2", "3.1.6")),
    ("cattrs", Package("pypi", "cattrs", "26.1.0")),
    ("sentence-transformers", "sentence_transformers"),
    ("model2vec", "model2vec"),
    ("httpx", "httpx"),
    ("pygls", "pygls"),
]
_IMPORT_MODULE = re.compile(r"^import[ \t]+([\w.]+)(?:[ \t]+as[ \t]+(\w+))?[ \t]*$", re.M)


@dataclass(frozen=True)
class Site:
    project: str
    path: str
    line: int  # 1-based
    dot: int  # 0-based column of the '.' before the called name
    paren: int  # 0-based column just after '('
    module: str  # the imported module, e.g. "numpy"
    attr: str  # the called attribute path below it, e.g. "linalg.norm"
    file: str | None  # the installed file defining it, per inspect (None: no Python source)
    def_line: int


def workspace_for(label: str, source: Package | str, base: Path) -> Path:
    """A copy of the project's sources whose ``.venv`` is this interpreter's environment."""
    ws = base / label
    if isinstance(source, Package):
        shutil.copytree(fetch(source), ws, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
    else:
        installed = Path(importlib.import_module(source).__file__).parent  # type: ignore[arg-type]
        shutil.copytree(installed, ws / source, ignore=shutil.ignore_patterns("__pycache__"))
    os.symlink(sys.prefix, ws / ".venv")
    return ws


def _defined_at(module: str, attr: str) -> tuple[str | None, int] | None:
    """(file, line of its def/class) of ``module.attr`` as Python sees it; (None, 0) when it has
    no Python source; None when it cannot be imported or found."""
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    obj = inspect.unwrap(obj) if callable(obj) else obj
    try:
        file = inspect.getsourcefile(obj)
        lines, start = inspect.getsourcelines(obj)
    except (TypeError, OSError):
        return (None, 0)
    if not file:
        return (None, 0)
    offset = next(
        (i for i, row in enumerate(lines) if row.lstrip().startswith(("def ", "async def ", "class "))), 0
    )
    return (str(Path(file).resolve()), start + offset)


def call_sites(project: str, ws: Path, third_party: set[str], log) -> list[Site]:
    """Every ``alias.attr(`` call of an imported third-party module in the project's Python files."""
    sites: list[Site] = []
    for path in sorted(ws.rglob("*.py")):
        if ".venv" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        aliases = {}
        for m in _IMPORT_MODULE.finditer(text):
            module, alias = m.group(1), m.group(2)
            if module.split(".")[0] in third_party:
                aliases[alias or module] = module
        if not aliases:
            continue
        names = "|".join(sorted(map(re.escape, aliases), key=len, reverse=True))
        call = re.compile(rf"(?<![\w.])({names})\.([A-Za-z_][\w.]*)\(")
        for row, line in enumerate(text.split("\n"), 1):
            if line.lstrip().startswith(("#", "import ", "from ")):
                continue
            for m in call.finditer(line):
                module = aliases[m.group(1)]
                found = _defined_at(module, m.group(2))
                if found is None:
                    continue
                rel = path.relative_to(ws).as_posix()
                sites.append(
                    Site(project, rel, row, m.end(1), m.end(), module, m.group(2), found[0], found[1])
                )
    log(f"{project}: {len(sites)} call sites into {sorted(third_party)[:8]}...")
    return sites


def signature_in_context(context, site: Site, files: dict[str, Path]) -> bool:
    """A snippet of the installed file that defines the called object, covering its def line."""
    for snippet in context:
        package, _, rel = snippet.path.partition(":")
        base = files.get(package)
        if base is None or not rel:
            continue
        if (
            str((base / rel).resolve()) == site.file
            and snippet.start_line <= site.def_line <= snippet.end_line
        ):
            return True
    return False


def run(per_project: int, model_sites: int, log) -> list[Table]:
    from ragls import config
    from ragls.indexer.deps.build import build, deps_store
    from ragls.indexer.deps.selection import META_KEY
    from ragls.indexer.engine import Index
    from ragls.recipes.completion import clear_sticky_context, complete

    base = Path(tempfile.mkdtemp(prefix="ragls-bench-deps-"))
    os.environ["RAGLS_CACHE_DIR"] = str(base / "cache")
    hits = Table(
        "Called symbol's signature in the completion context (cursor after the call's '(')",
        ["project", "sites", "with source", "with tier", "without tier", "no source: stub found"],
    )
    speed = Table("Context assembly at the sites (ms)", ["config", "n", "p50", "p95"])
    times: dict[str, list[float]] = {"with tier": [], "without tier": []}
    totals = {"with tier": [0, 0], "without tier": [0, 0]}
    model_rows: list[tuple] = []
    provider = None
    if model_sites:
        from ragls.llm import factory

        provider = factory.create("completion", config.load(REPO))
    try:
        for label, source in PROJECTS:
            ws = workspace_for(label, source, base / "ws")
            with Index.open(ws, keyword_only(ws)) as index, deps_store() as store:
                index.update()
                sel = build(index, store)
                files = {key: Path(folder) for key, folder in sel.bases.items()}
                sites = stride_sample(call_sites(label, ws, set(sel.imports), log), per_project)
                raw = index.store.meta(META_KEY) or ""
                found = {"with tier": 0, "without tier": 0}
                stubs = 0
                sourced = [s for s in sites if s.file]
                for config_name in ("with tier", "without tier"):
                    with index.store.transaction() as db:
                        index.store.set_meta(db, META_KEY, raw if config_name == "with tier" else "")
                    for site in sites:
                        text = (ws / site.path).read_text(encoding="utf-8", errors="replace")
                        clear_sticky_context()
                        result = complete(
                            index, None, site.path, site.line, site.paren + 1, text=text, context_only=True,
                            budget_tokens=BUDGET,
                        )  # fmt: skip
                        times[config_name].append(result.timings_ms["context_ms"])
                        if site.file and signature_in_context(result.context, site, files):
                            found[config_name] += 1
                        elif not site.file and config_name == "with tier":
                            name = site.attr.rsplit(".", 1)[-1]
                            stubs += any(
                                s.source == "dependency" and re.search(rf"\b(def|class) {name}\b", s.text)
                                for s in result.context
                            )
                    if provider is not None:
                        model_rows += _exact(index, provider, sites[:model_sites], ws, config_name)
                for name in found:
                    totals[name][0] += found[name]
                    totals[name][1] += len(sourced)
                no_source = len(sites) - len(sourced)
                hits.add(
                    label, len(sites), len(sourced), _share(found["with tier"], len(sourced)),
                    _share(found["without tier"], len(sourced)), f"{stubs} of {no_source}",
                )  # fmt: skip
        hits.add(
            "all",
            "",
            totals["with tier"][1],
            _share(*totals["with tier"]),
            _share(*totals["without tier"]),
            "",
        )
        hits.notes.append(
            f"Target: at least {TARGET} with the tier. Ground truth from inspect (the file and def line of "
            "the imported object), counted over sites whose object has Python source; 'no source' sites (C "
            "functions) count a dependency snippet defining the name (a stub). Budget "
            f"{BUDGET} tokens, no recent files, sticky context cleared per site."
        )
        for name, values in times.items():
            speed.add(
                name, len(values), f"{statistics.median(values):.2f}", f"{percentile(values, 0.95):.2f}"
            )
    finally:
        if provider is not None:
            provider.close()
    tables = [hits, speed, build_cost(base, log)]
    if model_rows:
        tables.insert(1, _exact_table(model_rows))
    shutil.rmtree(base, ignore_errors=True)
    return tables


def keyword_only(root: Path):
    """The default configuration without dense embeddings (completion context does not read them)."""
    from ragls import config

    cfg = config.load(root)
    return dataclasses.replace(cfg, index=dataclasses.replace(cfg.index, embeddings=False))


def _share(got: int, n: int) -> str:
    return f"{got / n:.3f} ({got}/{n})" if n else "—"


def _exact(index, provider, sites: list[Site], ws: Path, config_name: str) -> list[tuple]:
    """(config, name exact, line exact) per site: one line completed after ``alias.``."""
    from ragls.recipes.completion import clear_sticky_context, complete

    rows = []
    for site in sites:
        lines = (ws / site.path).read_text(encoding="utf-8", errors="replace").split("\n")
        line = lines[site.line - 1]
        lines[site.line - 1] = line[: site.dot + 1]  # the rest of the line is what the user has yet to type
        text = "\n".join(lines)
        clear_sticky_context()
        result = complete(
            index, provider, site.path, site.line, site.dot + 2, text=text, mode="single", invoked=True
        )
        got = result.completion.split("\n")[0]
        name = re.match(r"[\w.]*", got).group(0)  # type: ignore[union-attr]
        rows.append((config_name, name == site.attr, got.rstrip() == line[site.dot + 1 :].rstrip()))
    return rows


def _exact_table(rows: list[tuple]) -> Table:
    table = Table(
        "Exact match, bundled SmolLM2-135M, cursor after 'alias.'",
        ["config", "n", "called name", "full line"],
    )
    for config_name in ("with tier", "without tier"):
        mine = [r for r in rows if r[0] == config_name]
        table.add(
            config_name,
            len(mine),
            _share(sum(r[1] for r in mine), len(mine)),
            _share(sum(r[2] for r in mine), len(mine)),
        )
    return table


def build_cost(base: Path, log) -> Table:
    """Building the tier for this repository (its own .venv), cold and from the shared store."""
    from ragls.indexer.deps.build import build, deps_store
    from ragls.indexer.deps.python_env import distributions, find_environment
    from ragls.indexer.engine import Index

    table = Table(
        f"Building the tier for this repository ({REPO.name})",
        ["run", "installed", "packages", "chunks", "source read", "store", "seconds"],
    )
    os.environ["RAGLS_CACHE_DIR"] = str(base / "build-cache")
    installed = len(distributions(find_environment(REPO)))
    with Index.open(REPO, keyword_only(REPO)) as index:
        index.update()
        for run_name in ("cold", "again (shared store)"):
            with deps_store() as store:
                started = time.perf_counter()
                sel = build(index, store)
                seconds = time.perf_counter() - started
                size = sum(p.stat().st_size for p in store.path.parent.iterdir())
            table.add(
                run_name, installed, len(sel.packages), sel.chunks, f"{sel.bytes / 1e6:.1f} MB",
                f"{size / 1e6:.1f} MB", f"{seconds:.1f}",
            )  # fmt: skip
            log(f"{run_name}: {seconds:.1f} s")
    table.notes.append(
        "'installed': distributions in the environment; 'packages': those the workspace imports."
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_deps", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--per-project", type=int, default=40, help="call sites sampled per project")
    parser.add_argument(
        "--model", type=int, default=0, help="sites per project completed with the bundled model"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "deps.md")
    args = parser.parse_args(argv)
    session = begin()
    tables = run(args.per_project, args.model, session.console.log)
    finish(session, tables, args.out, "ragls dependency tier benchmark", "`python -m benchmarks.bench_deps`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
