"""Repository Q&A with the bundled model: citation validity and ``ask`` time to first token.

Questions are semble's architecture and semantic queries on the benchmark repositories (their
annotated relevant files are the ground truth). A query written as keywords ("request validation
and error handling") is asked as a question ("How does this code handle request validation and
error handling?"), since ``ask`` would route keywords to search. Every question goes through the
same :class:`~ragls.recipes.ask.Conversation` the CLI and the server use, one model kept loaded.

Reported per repository:
- citations emitted by the model, and the share that point to existing spans *before*
  verification (the model's own accuracy) and *after* (what users see: 100% by construction,
  since unverifiable citations are dropped — it is re-checked here, not assumed);
- the share of answers whose verified citations include an annotated relevant file, and whose
  shown sources do (verified citations, or else the top retrieved snippets marked as such);
- time to first token (request to first streamed token: retrieval, assembly and prompt reading),
  and the retrieval and assembly times separately.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import ours
from benchmarks.corpora import QUALITY_CORPORA, QualityCorpus, fetch, stride_sample
from benchmarks.metrics import mean, path_matches, percentile
from benchmarks.report import Table, seconds
from benchmarks.run import RESULTS, begin, finish
from benchmarks.semble_quality import Query, load_queries

CATEGORIES = ("architecture", "semantic")


def as_question(text: str) -> str:
    from ragls.recipes.ask import route

    return text if route(text) == "answer" else f"How does this code handle {text}?"


@dataclass
class Asked:
    query: Query
    emitted: int  # citations the model wrote
    valid_before: int  # of those, pointing to existing spans
    valid_after: int  # verified citations kept, re-checked
    kept: int
    cites_relevant: bool
    shown_relevant: bool  # the sources shown (verified citations, else the top retrieved) hold one
    first_token_ms: float
    retrieve_ms: float
    assemble_ms: float
    answered: bool


@dataclass
class RepoRun:
    corpus: QualityCorpus
    asked: list[Asked] = field(default_factory=list)


def relevant_paths(query: Query) -> list[str]:
    return [t.path for t in query.targets]


def ask_all(corpus: QualityCorpus, per_repo: int, provider, log) -> RepoRun:
    from ragls.recipes.ask import Conversation
    from ragls.recipes.citations import Verifier, parse

    project = fetch(corpus.package, log)
    root = project / corpus.benchmark_root
    prefix = corpus.benchmark_root.rstrip("/") + "/"
    queries = [q for q in load_queries(corpus.name) if q.category in CATEGORIES]
    index = ours.open_index(root, "quality")
    run = RepoRun(corpus)
    try:
        index.update()
        index.embed_pending()
        verifier = Verifier(index)
        for q in stride_sample(queries, per_repo):
            relevant = relevant_paths(q)
            conversation = Conversation(index, provider, index.cfg.recipes)  # one question per session
            result = conversation.ask(as_question(q.text), force="answer")
            emitted = parse(result.answer)
            before = sum(verifier.check_one(c)[0] is not None for c in emitted)
            after = sum(verifier.check_one(c) == (c, "") for c in result.citations)

            def matches(paths: list[str], relevant: list[str] = relevant) -> bool:
                return any(path_matches(prefix + p, r) for p in paths for r in relevant)

            run.asked.append(
                Asked(
                    q,
                    len(emitted),
                    before,
                    after,
                    len(result.citations),
                    matches([c.path for c in result.citations]),
                    matches([c.path for c in result.citations] or [s.path for s in result.sources]),
                    result.timings_ms["first_token_ms"],
                    result.timings_ms["retrieve_ms"],
                    result.timings_ms["assemble_ms"],
                    bool(result.answer),
                )
            )
            log(
                f"{corpus.name}: {q.text!r}: {len(emitted)} cited, {before} valid, "
                f"first token {result.timings_ms['first_token_ms']:.0f} ms"
            )
    finally:
        index.close()
    return run


def share(numerator: int, denominator: int) -> str:
    return f"{100 * numerator / denominator:.0f}% ({numerator}/{denominator})" if denominator else "—"


def tables(runs: list[RepoRun], model: str) -> list[Table]:
    validity = Table(
        "Repository Q&A: citation validity (bundled model)",
        [
            "repo",
            "questions",
            "answered",
            "citations emitted",
            "valid before verification",
            "valid after verification",
            "answers citing a relevant file",
            "sources shown include a relevant file",
        ],
    )
    latency = Table(
        "Repository Q&A: time to first token (bundled model)",
        [
            "repo",
            "questions",
            "first token p50",
            "first token p95",
            "retrieval p50",
            "assembly p50",
            "assembly p95",
        ],
    )
    groups = [(r.corpus.name, r.asked) for r in runs] + [("all", [a for r in runs for a in r.asked])]
    for name, a in groups:
        emitted = sum(x.emitted for x in a)
        kept = sum(x.kept for x in a)
        validity.add(
            name,
            len(a),
            share(sum(x.answered for x in a), len(a)),
            emitted,
            share(sum(x.valid_before for x in a), emitted),
            share(sum(x.valid_after for x in a), kept),
            share(sum(x.cites_relevant for x in a), len(a)),
            share(sum(x.shown_relevant for x in a), len(a)),
        )
        ttft = [x.first_token_ms / 1000 for x in a]
        latency.add(
            name,
            len(a),
            seconds(percentile(ttft, 0.5)),
            seconds(percentile(ttft, 0.95)),
            seconds(percentile([x.retrieve_ms / 1000 for x in a], 0.5)),
            seconds(percentile([x.assemble_ms / 1000 for x in a], 0.5)),
            seconds(percentile([x.assemble_ms / 1000 for x in a], 0.95)),
        )
    validity.notes.append(
        f"Model: {model}, default settings (recipes.temperature, answer_tokens, context_tokens). "
        "'valid before' = the model's own citations that name an indexed file and a span inside it "
        "overlapping indexed code; 'after' = the citations ragls keeps (re-verified; dropped ones are "
        "counted, never shown). A relevant file = semble's relevant or secondary targets (suffix match)."
    )
    validity.notes.append(
        "When an answer cites nothing verifiable, ragls shows its top 3 retrieved snippets as "
        "'retrieved sources' (marked as not cited); the last column counts the sources a user is "
        "shown, verified citations or else those."
    )
    latency.notes.append(
        "First token counts from the request's start: retrieval (hybrid search, query embedding), "
        f"context assembly, then the model reading the prompt. Mean assembly: "
        f"{mean([x.assemble_ms for r in runs for x in r.asked]):.1f} ms."
    )
    return [validity, latency]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_recipes", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--per-repo", type=int, default=8, help="questions asked per repository")
    parser.add_argument("--out", type=Path, default=RESULTS / "recipes.md")
    args = parser.parse_args(argv)
    session = begin()
    ours.isolate("quality")

    from ragls import config
    from ragls.llm import factory

    provider = factory.create("chat", config.load(None))
    try:
        model = f"{provider.metadata().model} ({provider.metadata().context_length}-token window)"
        runs = [ask_all(c, args.per_repo, provider, session.console.log) for c in QUALITY_CORPORA]
    finally:
        provider.close()
    command = "`python -m benchmarks.bench_recipes`"
    finish(session, tables(runs, model), args.out, "ragls recipes benchmark", command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
