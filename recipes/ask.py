"""Repository Q&A: a search when the user typed a search, a cited answer when they asked.

A query that looks like a search (a symbol, a path, a few keywords, no question form) returns
ranked results at once; no model is involved. A question is answered from retrieved code with
citations ``path:start-end`` that are verified against the index before anyone sees them as
sources (see :mod:`ragls.recipes.citations`). When the answer cites nothing verifiable, the top
retrieved snippets are returned as *retrieved* sources — what the answer was grounded in, not
what it claimed. A :class:`Conversation` keeps earlier turns, so a follow-up ("and where is it
tested?") is retrieved and answered with the previous question in view.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ragls.config import RecipesConfig, Verbosity
from ragls.llm.base import Message, Provider
from ragls.recipes import context, registry
from ragls.recipes.answer import VERBOSITY, OnDelta, answer_budget, copies_in, generate
from ragls.recipes.citations import Citation, Verifier, parse
from ragls.recipes.dependencies import library_snippets
from ragls.recipes.gather import Gatherer

if TYPE_CHECKING:
    from ragls.indexer.engine import Index
    from ragls.indexer.search import SearchResult

Route = Literal["answer", "search"]

QUESTION_WORDS = frozenset((
    "what", "how", "why", "where", "when", "which", "who", "whom", "whose", "does", "do", "did", "is",
    "are", "was", "were", "can", "could", "should", "would", "will", "explain", "describe", "tell",
    "summarize", "summarise", "compare", "walk", "give", "list",
))
MAX_SEARCH_WORDS = 6  # more words than this read as a sentence, not as keywords
GENERAL = re.compile(
    r"\b(this|the|your)\s+(project|repo|repository|codebase|code\s*base|library|package|app|application|"
    r"tool|program|software|module)\b|\b(overview|architecture|purpose)\b|^what\s+is\s+(this|it)\b",
    re.IGNORECASE,
)
SOURCES_WHEN_UNCITED = 3
HISTORY_SHARE = 4  # earlier turns may take up to 1/HISTORY_SHARE of the context budget


def route(query: str) -> Route:
    """``search`` for symbols, paths and a few keywords; ``answer`` for questions."""
    words = query.strip().split()
    if not words:
        return "search"
    if query.rstrip().endswith("?") or words[0].lower().strip(",:") in QUESTION_WORDS:
        return "answer"
    return "answer" if len(words) > MAX_SEARCH_WORDS else "search"


def is_general(question: str) -> bool:
    """Questions about the project as a whole, answered from its README and top-level docs."""
    return GENERAL.search(question) is not None


@dataclass
class Turn:
    question: str
    answer: str
    citations: list[Citation]


@dataclass
class Prompt:
    """A question's messages, laid out for a model's window, and what went into them."""

    messages: list[Message]
    snippets: list[context.Snippet]  # the retrieved context that fit
    answer_tokens: int  # the answer's cap (answers.verbosity)
    retrieve_ms: float
    assemble_ms: float


@dataclass
class AskResult:
    route: Route
    answer: str = ""
    citations: list[Citation] = field(default_factory=list)
    dropped: list[tuple[Citation, str]] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)  # search hits, or the snippets the answer used
    hits: list[SearchResult] = field(default_factory=list)  # the search route's results as objects
    sources: list[context.Snippet] = field(default_factory=list)  # retrieved, shown when nothing cited
    copies: list = field(default_factory=list)  # indexed code the answer reproduces verbatim
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict:
        """The documented ``ragls ask --json`` shape, exactly."""
        return {
            "answer": self.answer,
            "citations": [c.as_json() for c in self.citations],
            "dropped_citations": len(self.dropped),
            "route": self.route,
            "results": self.results,
        }


def snippet_json(s: context.Snippet) -> dict:
    shown = {"path": s.path, "start_line": s.start_line, "end_line": s.end_line, "source": s.source,
             "score": round(s.score, 6)}
    return shown | {"repository": s.repository} if s.repository else shown


class Conversation:
    """One user's Q&A session over an index: keeps the turns so follow-ups keep their context."""

    def __init__(
        self,
        index: Index,
        provider: Provider | None,
        settings: RecipesConfig,
        recipe: registry.Recipe | None = None,
    ) -> None:
        self.index = index
        self.provider = provider
        self.settings = settings
        self.recipe = recipe or registry.load(index.root).get("ask")
        self.turns: list[Turn] = []

    def ask(
        self,
        query: str,
        *,
        top_k: int = 10,
        on_delta: OnDelta | None = None,
        cancel: threading.Event | None = None,
        force: Route | None = None,
        first: list[context.Snippet] | None = None,
        verbosity: Verbosity = "normal",
    ) -> AskResult:
        """Search or answer ``query``; ``first`` snippets (e.g. the user's selection) lead the context;
        ``verbosity`` (answers.verbosity, or the question's own) sets the answer's length."""
        query = query.strip()
        chosen = force or route(query)
        if chosen == "search" or not query:
            started = time.perf_counter()
            hits = self.index.search(query, top_k) if query else []
            elapsed = (time.perf_counter() - started) * 1000
            return AskResult("search", results=[h.as_json() for h in hits], hits=hits,
                             timings_ms={"search_ms": elapsed})
        if self.provider is None:
            raise ValueError("answering a question needs a chat model")
        return self._answer(query, top_k, on_delta, cancel, first or [], verbosity)

    def prompt(self, question: str, top_k: int, first: list[context.Snippet], verbosity: Verbosity,
               window: int, count: Callable[[str], int]) -> Prompt:
        """Retrieve for ``question`` and lay out the messages for a model with a ``window``-token
        context whose tokenizer is ``count`` (the arena lays out one prompt for two models)."""
        started = time.perf_counter()
        gather = Gatherer(self.index)
        previous = self.turns[-1] if self.turns else None
        query = f"{previous.question} {question}" if previous else question
        retrieved = gather.retrieved(query, top_k) + library_snippets(self.index, query)
        earlier = [gather.span(c.path, c.start_line, c.end_line, "cited before", 0.0)
                   for c in (previous.citations if previous else [])]
        earlier = [s for s in earlier if s is not None]
        if is_general(question):
            snippets = first + gather.readme(docs=True) + retrieved + earlier
        else:
            readme = gather.readme()[:1] if "readme" in self.recipe.context else []
            snippets = first + retrieved + earlier + readme
        gathered = time.perf_counter()

        system = "\n".join(p for p in (self.recipe.system, VERBOSITY[verbosity]) if p)
        answer_tokens = answer_budget(self.recipe.max_tokens, self.settings, verbosity)
        bare = self.recipe.render(question=question, context="")
        fixed = count(system + bare)
        room = context.budget(window, fixed, answer_tokens, self.settings.context_tokens)
        history = self._history(room // HISTORY_SHARE, count)
        room -= sum(count(m.content) for m in history)
        best = context.fit(snippets, room, count)
        prompt = self.recipe.render(question=question, context=context.render(context.edges_first(best)))
        messages = [Message("system", system), *history, Message("user", prompt)]
        return Prompt(messages, best, answer_tokens, (gathered - started) * 1000,
                      (time.perf_counter() - gathered) * 1000)

    def _answer(self, question: str, top_k: int, on_delta: OnDelta | None, cancel,
                first: list[context.Snippet], verbosity: Verbosity) -> AskResult:
        provider = self.provider
        assert provider is not None
        laid = self.prompt(question, top_k, first, verbosity, provider.metadata().context_length,
                           provider.count_tokens)
        messages, best, answer_tokens = laid.messages, laid.snippets, laid.answer_tokens
        generated = generate(provider, messages, max_tokens=answer_tokens,
                             temperature=self.settings.temperature, on_delta=on_delta, cancel=cancel)
        checked = Verifier(self.index, [s for s in best if s.repository]).check(parse(generated.text))
        grounded = [s for s in best if s.source in ("retrieved", "readme", "dependency")]
        result = AskResult(
            "answer",
            answer=generated.text,
            citations=checked.valid,
            dropped=checked.dropped,
            results=[snippet_json(s) for s in best],
            sources=[] if checked.valid else grounded[:SOURCES_WHEN_UNCITED],
            copies=copies_in(self.index, generated.text),
            notes=generated.notes,
            timings_ms={
                "retrieve_ms": laid.retrieve_ms,
                "assemble_ms": laid.assemble_ms,
                # from the request's start, as the user waits for it
                "first_token_ms": laid.retrieve_ms + laid.assemble_ms + (generated.first_token_ms or 0.0),
                "generate_ms": generated.total_ms,
            },
        )
        if generated.text:
            self.turns.append(Turn(question, generated.text, checked.valid))
        return result

    def _history(self, budget_tokens: int, count: Callable[[str], int]) -> list[Message]:
        """The latest earlier turns (question and answer) that fit the budget, oldest first."""
        kept: list[Message] = []
        used = 0
        for turn in reversed(self.turns):
            pair = [Message("user", turn.question), Message("assistant", turn.answer)]
            cost = sum(count(m.content) for m in pair)
            if used + cost > budget_tokens:
                break
            kept[:0] = pair
            used += cost
        return kept
