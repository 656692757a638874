"""Completion benchmark: ``python -m benchmarks.bench_completion``.

1. Context hit rate, RepoBench-R style, on real package sources (fastapi and aiohttp, the
   quality corpora): at call sites of functions defined in another file, the cursor is put right
   after the call's name and "(", and we check whether the assembled completion context contains
   the callee's definition (a snippet of the defining file covering the line of its name).
   Ground truth needs an unambiguous callee, so only names defined exactly once in the package
   are sampled (deterministic stride sample). Baselines, same token budget: "open file only" (no
   cross-file context: 0 by construction) and "BM25 on the prefix only" (top chunks for the last
   15 lines before the cursor). No recently edited files are passed (a benchmark has no history).
2. Latency with the bundled model (SmolLM2-135M, plain prefix completion): request to first
   token, cold (llama.cpp's KV cache reset) and warm (same file, cursor moved 3 typed characters
   forward, as when the user keeps typing); and context assembly time over every sampled site.

Indexes live under the bench cache (``benchmarks.ours.isolate``), keyword and symbol layers only
(completion does not read embeddings). Writes ``benchmarks/results/completion.md``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks import ours
from benchmarks.corpora import QUALITY_CORPORA, fetch, stride_sample
from benchmarks.report import Table
from benchmarks.run import RESULTS, begin, finish

BUDGET = 1024  # context tokens, the default cap
TARGET = 0.80
CONTEXT_P95_TARGET_MS = 50.0
TYPED = 3


@dataclass(frozen=True)
class Site:
    corpus: str
    kind: str  # "unique name" or "ambiguous name" (resolved through the file's imports)
    path: str  # workspace-relative file holding the call
    line: int  # 1-based
    col: int  # 1-based, just after "name("
    callee: str
    def_path: str
    def_line: int


KINDS = ("unique name", "ambiguous name")
_FROM_IMPORT = re.compile(r"^\s*from\s+(\.*)([\w.]*)\s+import\s+(?:\(([^)]*)\)|([^#\n]*))", re.MULTILINE)


def imported_from(path: str, text: str, package: str) -> dict[str, set[str]]:
    """Names imported by ``from X import a, b`` -> the workspace files X can be."""
    out: dict[str, set[str]] = {}
    here = path.split("/")[:-1]
    for dots, module, grouped, plain in _FROM_IMPORT.findall(text):
        parts = module.split(".") if module else []
        if dots:
            base = here[: len(here) - (len(dots) - 1)] if len(dots) > 1 else here
        elif parts and parts[0] == package:
            base, parts = [], parts[1:]
        else:
            continue  # another distribution's module
        stem = "/".join(base + parts)
        files = {f"{stem}.py", f"{stem}/__init__.py".lstrip("/")}
        for item in (grouped or plain).split(","):
            name = item.split("#")[0].split(" as ")[0].strip()
            if name:
                out.setdefault(name.lower(), set()).update(files)
    return out


def call_sites(index, corpus: str, package: str) -> list[Site]:
    """Plain-name calls of functions defined in another file: names defined exactly once in the
    package, and names defined several times whose definition the calling file's
    ``from ... import`` pins down."""
    from ragls.indexer.engine import read_source
    from ragls.indexer.parsing import parse

    rows = index.store.db.execute(
        "SELECT s.lname, f.path, s.line, s.kind FROM symbols s JOIN files f ON f.id = s.file_id"
        " WHERE s.role = 'definition'"
    ).fetchall()
    defs: dict[str, list[tuple[str, int, str]]] = {}
    for lname, path, line, kind in rows:
        defs.setdefault(lname, []).append((path, line, kind))
    sites = []
    for path in sorted(p for p in index.store.files() if p.endswith(".py")):
        text = read_source(index.root / path)[0]
        lines = text.split("\n")
        imports = imported_from(path, text, package)
        for ref in parse(path, text).symbols:
            found = defs.get(ref.name.lower(), [])
            if ref.role != "reference" or ref.kind != "call" or ref.qualified != ref.name or not found:
                continue  # attribute calls (x.append) cannot be resolved without types
            kind = KINDS[0] if len(found) == 1 else KINDS[1]
            if kind == KINDS[1]:
                found = [d for d in found if d[0] in imports.get(ref.name.lower(), ())]
                if len(found) != 1:
                    continue
            def_path, def_line, def_kind = found[0]
            if def_path == path or def_kind not in ("function", "method"):
                continue
            m = re.search(rf"\b{re.escape(ref.name)}\s*\(", lines[ref.line - 1])
            if m:
                sites.append(Site(corpus, kind, path, ref.line, m.end() + 1, ref.name, def_path, def_line))
    return sites


def hit(snippets, site: Site) -> bool:
    return any(s.path == site.def_path and s.start_line <= site.def_line <= s.end_line for s in snippets)


def bm25_prefix(index, site: Site, text: str, offset: int):
    """The baseline: BM25 over the prefix's last lines only, fitted to the same budget."""
    from ragls.llm.base import approx_tokens
    from ragls.recipes.completion import cursor_at, retrieved
    from ragls.recipes.context import fit

    cursor = cursor_at(site.path, "python", text[:offset], text[offset:], site.line)
    return fit(retrieved(index, cursor, top_k=20), BUDGET, approx_tokens)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def run(samples: int, latency_samples: int, log) -> list[Table]:
    from ragls.indexer.engine import read_source
    from ragls.recipes.completion import clear_sticky_context, complete, cursor_offset

    hits = Table(
        f"Completion context hit rate (callee definition in context; budget {BUDGET} tokens)",
        [
            "corpus",
            "callee",
            "call sites",
            "ragls",
            "ragls, callee ranked first",
            "BM25 on prefix",
            "open file only",
            "ragls, line not typed yet",
        ],  # fmt: skip
    )
    assembly: list[float] = []
    per_group: dict[tuple[str, str], list[tuple[bool, ...]]] = {}
    indexes = {}
    all_sites: list[Site] = []
    groups: list[list[Site]] = []
    for corpus in QUALITY_CORPORA[:2]:
        root = fetch(corpus.package, log) / corpus.benchmark_root
        index = ours.open_index(root, "completion", embeddings=False)
        stats = index.update()
        log(f"{corpus.name}: {stats.files} files indexed ({stats.seconds:.1f} s)")
        indexes[corpus.name] = index
        found = call_sites(index, corpus.name, corpus.benchmark_root)
        groups += [g for kind in KINDS if (g := [s for s in found if s.kind == kind])]
    for group in groups:
        all_sites += stride_sample(group, samples // len(groups))
    texts: dict[tuple[str, str], str] = {}
    for site in all_sites:
        index = indexes[site.corpus]
        text = texts.setdefault((site.corpus, site.path), read_source(index.root / site.path)[0])
        clear_sticky_context()  # rank each site on its own (an editor session would carry context over)
        result = complete(index, None, site.path, site.line, site.col, text=text, context_only=True,
                          budget_tokens=BUDGET)  # fmt: skip
        assembly.append(result.timings_ms["context_ms"])
        baseline = bm25_prefix(index, site, text, cursor_offset(text, site.line, site.col))
        row = text.split("\n")[site.line - 1]
        indent = len(row) - len(row.lstrip()) + 1
        untyped = complete(index, None, site.path, site.line, indent, text=text, context_only=True,
                           budget_tokens=BUDGET)  # fmt: skip
        best = result.context[-1:]  # the prompt puts the best snippet last
        outcome = tuple(hit(found, site) for found in (result.context, best, baseline, untyped.context))
        per_group.setdefault((site.corpus, site.kind), []).append(outcome)
    pooled = [outcome for outcomes in per_group.values() for outcome in outcomes]
    for (name, kind), outcomes in [*sorted(per_group.items()), (("all", "all"), pooled)]:
        ours_rate, first_rate, base_rate, untyped_rate = (
            f"{sum(o[i] for o in outcomes) / len(outcomes):.1%}" for i in range(4)
        )
        hits.add(name, kind, len(outcomes), ours_rate, first_rate, base_rate, "0.0%", untyped_rate)
    hits.notes.append(
        f"target ≥ {TARGET:.0%}. Call sites: calls of a function/method defined in another file of the "
        "package; 'unique name': the name is defined once in the package; 'ambiguous name': defined "
        "several times, the calling file's `from ... import` picks one. Deterministic stride sample, "
        "equal shares per (corpus, kind) group that has sites. Cursor right after `name(`; no recent files. "
        "'callee ranked first': its definition is the context's best snippet (last, next to the code). "
        "'line not typed yet': cursor at the start of the call's line (harder: the name is not there)."
    )
    latency = measure_latency(indexes, all_sites, texts, latency_samples, log)
    latency.add(
        "context assembly (all sites)", len(assembly), f"{statistics.median(assembly):.1f}",
        f"{percentile(assembly, 0.95):.1f}",
    )  # fmt: skip
    latency.notes.append(f"context assembly target: p95 < {CONTEXT_P95_TARGET_MS:.0f} ms")
    for index in indexes.values():
        index.close()
    return [hits, latency]


def measure_latency(indexes, sites: list[Site], texts, n: int, log) -> Table:
    """Request -> first token with the bundled model, cold and after typing TYPED characters."""
    from ragls import config
    from ragls.llm import factory
    from ragls.recipes.completion import complete

    table = Table("Inline completion latency, bundled SmolLM2-135M (ms)", ["request", "n", "p50", "p95"])
    some = next(iter(indexes.values()))
    provider = factory.create("completion", config.load(some.root))
    cold: list[float] = []
    warm: list[float] = []
    prompt_tokens: list[int] = []
    try:
        usable = [s for s in sites if len(texts[(s.corpus, s.path)].split("\n")[s.line - 1]) >= s.col + TYPED]
        for site in stride_sample(usable, n):
            index, text = indexes[site.corpus], texts[(site.corpus, site.path)]
            provider.llama.reset()  # a cold prompt: nothing of it in the KV cache
            first = complete(index, provider, site.path, site.line, site.col, text=text)
            typed = complete(index, provider, site.path, site.line, site.col + TYPED, text=text)
            prompt_tokens.append(first.prompt_tokens)
            cold.append(first.timings_ms["first_token_ms"])
            warm.append(typed.timings_ms["first_token_ms"])
            log(f"{site.path}:{site.line}: cold {cold[-1]:.0f} ms, warm {warm[-1]:.0f} ms")
    finally:
        provider.close()
    for name, values in (("first token, cold", cold), ("first token, warm (typed on)", warm)):
        table.add(name, len(values), f"{statistics.median(values):.0f}", f"{percentile(values, 0.95):.0f}")
    table.notes.append(
        f"cold: llama.cpp KV cache reset before the request; warm: the same file with the cursor "
        f"{TYPED} typed characters further (the context is sticky, so the prompt only grew). "
        "First token counts from the request's start (context assembly included). "
        f"Median prompt: {statistics.median(prompt_tokens):.0f} tokens."
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_completion", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--samples", type=int, default=200, help="call sites for the hit rate (all groups)")
    parser.add_argument("--latency-samples", type=int, default=12, help="completions timed with the model")
    parser.add_argument("--out", type=Path, default=RESULTS / "completion.md")
    args = parser.parse_args(argv)
    session = begin()
    tables = run(args.samples, args.latency_samples, session.console.log)
    finish(session, tables, args.out, "ragls completion benchmark", "`python -m benchmarks.bench_completion`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
