"""Inline completion through a model server vs in process: ``python -m benchmarks.bench_served_completion``.

One GGUF (the bundled SmolLM2-135M, or ``--model PATH``), loaded in process (llama_cpp provider)
and served by llama-cpp-python's server on loopback (openai provider: the route a scanned server
gets; this server has no ``/infill``, so it is ``/v1/completions`` with the prompt ragls renders).
Both get the same thread count, context window and greedy sampling, and complete the same
sites through the completion recipe the editor uses (``recipes.completion.complete``): at each
site a request where a statement's expression starts, then one after typing 3 more characters
(the sticky context keeps the prompt's head, so the prefix cache serves it). The two paths
alternate site by site, in the same run. Reported: request -> completion and request -> first
token, p50 and p95 per path and request kind, and the server/in-process ratio of the medians.
Sites: lines of httpx's sources (a dependency, real code) that start ``return `` or ``name =``,
a deterministic stride sample; the workspace is a copy of the package, keyword and symbol layers.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks import ours
from benchmarks.bench_llm import _free_port, start_server
from benchmarks.corpora import stride_sample
from benchmarks.metrics import percentile
from benchmarks.report import Table
from benchmarks.run import RESULTS, begin, finish

TYPED = 3
CONTEXT = 2048
_STATEMENT = re.compile(r"^\s+(return |[A-Za-z_][\w.]* = )(?=\S{3})")


@dataclass(frozen=True)
class Site:
    path: str
    line: int  # 1-based
    col: int  # 1-based, just after "return " or "name = "


def sites(root: Path) -> list[Site]:
    """Every place in the workspace where a statement's expression starts."""
    found = []
    for file in sorted(root.rglob("*.py")):
        for number, row in enumerate(file.read_text(encoding="utf-8").split("\n"), 1):
            m = _STATEMENT.match(row)
            if m:
                found.append(Site(file.relative_to(root).as_posix(), number, m.end() + 1))
    return found


def run(model: Path, samples: int, log) -> Table:
    from ragls.config import ModelConfig, PrivacyConfig
    from ragls.indexer.engine import read_source
    from ragls.llm.llama_cpp import LlamaCppProvider
    from ragls.llm.openai import OpenAIProvider
    from ragls.privacy import Privacy
    from ragls.recipes.completion import clear_sticky_context, complete

    threads = max(1, (os.cpu_count() or 2) // 2)  # what start_server gives the server
    work = Path(tempfile.mkdtemp(prefix="ragls-served-"))
    root = work / "httpx"
    shutil.copytree(Path(httpx.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    index = ours.open_index(root, "served-completion", fresh=True, embeddings=False)
    index.update()
    chosen = stride_sample(sites(root), samples)
    log(f"{len(chosen)} sites in {root}")
    settings = {"context_length": CONTEXT, "temperature": 0.0}
    local = LlamaCppProvider(ModelConfig(path=str(model), threads=threads, **settings))
    port = _free_port()
    server = start_server(model, port)
    privacy = Privacy(PrivacyConfig(audit_log=str(work / "audit.jsonl")))
    remote = OpenAIProvider(
        ModelConfig(provider="openai", base_url=f"http://127.0.0.1:{port}/v1", model="smollm2", **settings),
        privacy, "completion",
    )
    paths = {"in process": local, "llama.cpp server, loopback": remote}
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    same_prompt = 0
    try:
        for i, site in enumerate(chosen):
            text = read_source(index.root / site.path)[0]
            order = list(paths.items()) if i % 2 == 0 else list(paths.items())[::-1]
            prompts = {}
            for name, provider in order:
                clear_sticky_context()  # each path starts the site afresh, with the same context
                for kind, col in (("new site", site.col), (f"typed {TYPED} more", site.col + TYPED)):
                    result = complete(index, provider, site.path, site.line, col, text=text, mode="single")
                    t = result.timings_ms
                    times.setdefault((name, kind), []).append((t["total_ms"], t["first_token_ms"]))
                    prompts.setdefault(name, result.warm_prompt)
            same_prompt += len(set(prompts.values())) == 1
            log(f"{site.path}:{site.line}: " + ", ".join(
                f"{name} {times[(name, 'new site')][-1][0]:.0f} ms" for name in paths))
    finally:
        remote.close()
        server.terminate()
        server.wait(10)
        local.close()
        index.close()
        shutil.rmtree(work, ignore_errors=True)
    table = Table(
        f"Inline completion, {model.name}: through a loopback llama.cpp server vs in process (ms)",
        ["path", "request", "n", "p50 total", "p95 total", "p50 first token", "p95 first token",
         "server / in process (p50 total)"],
    )  # fmt: skip
    for kind in ("new site", f"typed {TYPED} more"):
        base = statistics.median(x[0] for x in times[("in process", kind)])
        for name in paths:
            total = [x[0] for x in times[(name, kind)]]
            first = [x[1] for x in times[(name, kind)]]
            ratio = f"{statistics.median(total) / base:.2f}" if name != "in process" else ""
            cells = [f"{statistics.median(total):.0f}", f"{percentile(total, 0.95):.0f}",
                     f"{statistics.median(first):.0f}", f"{percentile(first, 0.95):.0f}"]
            table.add(name, kind, len(total), *cells, ratio)
    table.notes.append(
        f"{threads} threads each, {CONTEXT}-token window, greedy, single-line mode, no latency budget. "
        f"The same prompt at {same_prompt} of {len(chosen)} sites (the server's path counts tokens by "
        "estimate, which can size the context differently). total: request to cleaned completion "
        "(context assembly included); first token: request to the first streamed token."
    )
    return table


def main(argv: list[str] | None = None) -> int:
    from ragls.llm.gguf import bundled_model_path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_served_completion",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: the bundled model)")
    parser.add_argument("--samples", type=int, default=30, help="completion sites")
    parser.add_argument("--out", type=Path, default=RESULTS / "served_completion.md")
    args = parser.parse_args(argv)
    session = begin()
    started = time.perf_counter()
    table = run(args.model or bundled_model_path(), args.samples, session.console.log)
    finish(session, [table], args.out, "ragls inline completion through a model server",
           "`python -m benchmarks.bench_served_completion`")
    session.console.print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
