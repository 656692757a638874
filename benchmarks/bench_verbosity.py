"""Answer length per verbosity level (issue 15): the same repository questions asked ``terse``,
``normal`` and ``detailed`` through the :class:`~ragls.recipes.ask.Conversation` the CLI and the
server use, one chat model kept loaded (the bundled one, or ``--model PATH`` for a GGUF file
``ragls models scan`` found).

Questions are bench_recipes' (semble's architecture and semantic queries on the benchmark
repositories, asked as questions). Reported per level: answer length in tokens (the model's own
tokenizer) and words, median and 90th percentile; how many answers reached the token cap; and how
many end with a finished sentence or line (an answer stopped by the cap must, by construction:
this re-checks it). Target: the terse median at most a third of the detailed median.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks import ours
from benchmarks.bench_recipes import as_question
from benchmarks.corpora import QUALITY_CORPORA, fetch, stride_sample
from benchmarks.metrics import percentile
from benchmarks.report import Table
from benchmarks.run import RESULTS, begin, finish
from benchmarks.semble_quality import load_queries

LEVELS = ("terse", "normal", "detailed")
CATEGORIES = ("architecture", "semantic")


@dataclass
class Answer:
    level: str
    tokens: int
    words: int
    capped: bool
    whole: bool  # ends with a finished sentence or line


def ask_all(per_repo: int, provider, log, corpora: list[str] | None = None) -> list[Answer]:
    from ragls.recipes.answer import whole_sentences
    from ragls.recipes.ask import Conversation

    answers: list[Answer] = []
    for corpus in QUALITY_CORPORA:
        if corpora and corpus.name not in corpora:
            continue
        root = fetch(corpus.package, log) / corpus.benchmark_root
        queries = [q for q in load_queries(corpus.name) if q.category in CATEGORIES]
        index = ours.open_index(root, "quality")
        try:
            index.update()
            index.embed_pending()
            for q in stride_sample(queries, per_repo):
                for level in LEVELS:
                    result = Conversation(index, provider, index.cfg.recipes).ask(
                        as_question(q.text), force="answer", verbosity=level
                    )
                    text = result.answer
                    answers.append(Answer(
                        level,
                        provider.count_tokens(text) if text else 0,
                        len(text.split()),
                        any("reached the cap" in n for n in result.notes),
                        not text or whole_sentences(text, final=True) == len(text),
                    ))
                    log(f"{corpus.name}: {q.text!r} {level}: {answers[-1].tokens} tokens")
        finally:
            index.close()
    return answers


def table(answers: list[Answer], model: str, settings) -> Table:
    from ragls.recipes.answer import answer_budget

    out = Table(
        "Answer length per verbosity level",
        ["level", "answers", "token cap", "tokens p50", "tokens p90", "words p50", "reached the cap",
         "end with a finished sentence"],
    )
    medians = {}
    for level in LEVELS:
        mine = [a for a in answers if a.level == level]
        tokens = [float(a.tokens) for a in mine]
        medians[level] = percentile(tokens, 0.5)
        out.add(
            level, len(mine), answer_budget(0, settings, level),
            round(medians[level]), round(percentile(tokens, 0.9)),
            round(percentile([float(a.words) for a in mine], 0.5)),
            f"{sum(a.capped for a in mine)}/{len(mine)}", f"{sum(a.whole for a in mine)}/{len(mine)}",
        )
    ratio = medians["terse"] / medians["detailed"] if medians["detailed"] else float("nan")
    met = "met" if ratio <= 1 / 3 else "NOT met"
    out.notes.append(f"Model: {model}; recipes.answer_tokens = {settings.answer_tokens}, "
                     f"recipes.temperature = {settings.temperature}. Each question is asked at every "
                     "level, in a fresh conversation.")
    out.notes.append(f"terse median / detailed median = {ratio:.2f} (target <= 0.33: {met}).")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_verbosity", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--per-repo", type=int, default=3, help="questions asked per repository")
    parser.add_argument("--model", type=Path, help="a GGUF file to answer with (default: the bundled model)")
    parser.add_argument("--corpora", nargs="+", choices=[c.name for c in QUALITY_CORPORA],
                        help="only these repositories (default: all; each is embedded once, then cached)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one answer may take (models.chat.timeout; a busy machine is slow)")
    parser.add_argument("--out", type=Path, default=RESULTS / "verbosity.md")
    args = parser.parse_args(argv)
    session = begin()
    ours.isolate("quality")

    from ragls import config
    from ragls.llm import factory

    chat: dict = {"timeout": args.timeout, **({"path": str(args.model)} if args.model else {})}
    cfg = config.load(None, overrides=[("the command line", {"models": {"chat": chat}})])
    provider = factory.create("chat", cfg)
    try:
        model = f"{provider.metadata().model} ({provider.metadata().context_length}-token window)"
        answers = ask_all(args.per_repo, provider, session.console.log, args.corpora)
    finally:
        provider.close()
    finish(session, [table(answers, model, cfg.recipes)], args.out, "ragls verbosity benchmark",
           "`python -m benchmarks.bench_verbosity`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
