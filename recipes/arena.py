"""An arena on your own code: two models answer the same question from the same retrieved context,
shown as A and B in random order with their names hidden until the user votes (A, B, tie, both
bad). Each vote, with the question, both answers and both names, is one line of a JSON-lines file
(``arena.votes_file``, by default ``arena/votes.jsonl`` in the user data dir) that
:mod:`ragls.recipes.leaderboard` ranks. The CLI and the server both run a match here and record
its vote here.

The models are ``arena.models``: a configured role ("chat", "completion"), a name ``ragls models
scan`` lists, or a GGUF file's path. Two entries that are the same model (one file under two
names or with other settings, one server's model twice) are refused: a vote between them would
rank nothing but sampling noise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import platformdirs

from ragls.config import Config, ModelConfig, Verbosity
from ragls.llm.base import Provider
from ragls.recipes import context
from ragls.recipes.answer import generate
from ragls.recipes.ask import Conversation
from ragls.recipes.completion import complete, relative_path

if TYPE_CHECKING:
    from ragls.indexer.engine import Index

Vote = Literal["a", "b", "tie", "both_bad"]
VOTES: tuple[Vote, ...] = ("a", "b", "tie", "both_bad")
ROLES = ("chat", "completion")
IDENTITY_BYTES = 1 << 20  # a file's identity: its size and a hash of its first and last MiB


class ArenaError(ValueError):
    """The arena cannot run as configured (fewer than two models, the same model twice, a vote
    that is not one of VOTES); the message says what to change."""


def votes_path(config: Config) -> Path:
    """The votes file: ``arena.votes_file``, else ``arena/votes.jsonl`` in the user data dir."""
    if config.arena.votes_file:
        return Path(config.arena.votes_file).expanduser()
    return Path(platformdirs.user_data_dir("ragls")) / "arena" / "votes.jsonl"


def model_config(config: Config, name: str) -> ModelConfig:
    """The model settings an ``arena.models`` entry names: a role's own, or those ``ragls models
    use`` would write for a scanned name or a GGUF path (the chat role's other settings kept)."""
    if name in ROLES:
        return getattr(config.models, name)
    from ragls.llm.scan import choose, role_settings, scan

    found = scan(config, servers=not name.lower().endswith(".gguf"))
    settings = role_settings(choose(found, name, "chat"), "chat")
    return dataclasses.replace(ModelConfig(), **settings)


def identity(model: ModelConfig) -> str:
    """What makes two model settings the same model: the file (by its size and content at both
    ends, so a copy or a link is the same file) or the served model (provider, endpoint, name).
    Sampling, context and thread settings do not make another model."""
    if model.provider in ("llama_cpp", "ctransformers"):
        from ragls.llm.llama_cpp import resolve_path

        path = resolve_path(model)
        size = path.stat().st_size
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            digest.update(handle.read(IDENTITY_BYTES))
            handle.seek(max(0, size - IDENTITY_BYTES))
            digest.update(handle.read(IDENTITY_BYTES))
        return f"file:{size}:{digest.hexdigest()}"
    return f"{model.provider}:{model.base_url.rstrip('/').lower()}:{model.model}"


@dataclass(frozen=True)
class Contender:
    name: str  # what the votes file and the leaderboard call it
    model: ModelConfig


def shown_name(name: str, model: ModelConfig) -> str:
    """A model's name in the votes: a role by the model it has now (a vote is about a model, and
    the role may name another one tomorrow), a GGUF path by its file name, a scanned name as is."""
    if model.provider in ("llama_cpp", "ctransformers") and (name in ROLES or name.lower().endswith(".gguf")):
        from ragls.llm.llama_cpp import resolve_path

        return resolve_path(model).stem
    return model.model if name in ROLES and model.model else name


def contenders(config: Config, names: Iterable[str] | None = None) -> list[Contender]:
    """The arena's models (``names``, else ``arena.models``), resolved and checked: at least two,
    no model twice."""
    chosen = list(names if names is not None else config.arena.models)
    if len(chosen) < 2:
        raise ArenaError(
            "the arena needs two models or more: set arena.models (e.g. [\"chat\", \"qwen2.5-coder:1.5b\"]) "
            "or pass --models A,B; ragls models scan lists the models on this machine"
        )
    found = [Contender(shown_name(name, model), model)
             for name, model in ((name, model_config(config, name)) for name in chosen)]
    seen: dict[str, str] = {}
    for contender in found:
        key = identity(contender.model)
        if key in seen:
            raise ArenaError(
                f"{seen[key]!r} and {contender.name!r} are the same model (the same file or the same "
                "served model; other settings do not make another model): choose two different models"
            )
        seen[key] = contender.name
    return found


def next_pair(names: list[str], votes: list[dict], rng: random.Random) -> tuple[str, str]:
    """The pair compared least so far (ties broken at random), so every pair gets votes."""
    counts = {frozenset(p): 0 for p in itertools.combinations(names, 2)}
    for vote in votes:
        key = frozenset((vote["a"]["model"], vote["b"]["model"]))
        if key in counts:
            counts[key] += 1
    fewest = min(counts.values())
    pair = rng.choice(sorted(tuple(sorted(p)) for p, n in counts.items() if n == fewest))
    return pair[0], pair[1]


@dataclass
class Side:
    model: str
    answer: str
    notes: list[str] = field(default_factory=list)
    generate_ms: float = 0.0


@dataclass
class Match:
    """Two answers to one question, A and B in random order; names stay here until the vote."""

    question: str
    a: Side
    b: Side
    kind: Literal["answer", "completion"] = "answer"
    context: list[context.Snippet] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def shown(self) -> dict:
        """The match as the user sees it before voting: no model names."""
        return {
            "id": self.id,
            "kind": self.kind,
            "question": self.question,
            "a": self.a.answer,
            "b": self.b.answer,
            "context": [{"path": s.path, "start_line": s.start_line, "end_line": s.end_line}
                        for s in self.context],
        }

    def record(self, vote: Vote) -> dict:
        """The line the votes file gets."""
        if vote not in VOTES:
            raise ArenaError(f"vote {vote!r}: choose one of {', '.join(VOTES)}")
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "id": self.id,
            "kind": self.kind,
            "question": self.question,
            "a": {"model": self.a.model, "answer": self.a.answer},
            "b": {"model": self.b.model, "answer": self.b.answer},
            "vote": vote,
        }


def ordered(first: Side, second: Side, rng: random.Random) -> tuple[Side, Side]:
    """A and B in random order, so a position never tells which model answered."""
    return (first, second) if rng.random() < 0.5 else (second, first)


def answer_match(
    conversation: Conversation,
    question: str,
    providers: dict[str, Provider],
    *,
    verbosity: Verbosity = "normal",
    first: list[context.Snippet] | None = None,
    top_k: int = 10,
    rng: random.Random | None = None,
) -> Match:
    """Both ``providers`` (name -> provider, two of them) answer ``question`` from one prompt: the
    context is retrieved once and fitted to the smaller window, counted by the larger tokenizer."""
    if len(providers) != 2:
        raise ArenaError("a match is between two models")
    models = list(providers.values())
    window = min(p.metadata().context_length for p in models)

    def count(text: str) -> int:
        return max(p.count_tokens(text) for p in models)

    laid = conversation.prompt(question, top_k, first or [], verbosity, window, count)
    sides = []
    for name, provider in providers.items():
        made = generate(provider, laid.messages, max_tokens=laid.answer_tokens,
                        temperature=conversation.settings.temperature)
        sides.append(Side(name, made.text, made.notes, made.total_ms))
    a, b = ordered(sides[0], sides[1], rng or random.Random())
    return Match(question, a, b, context=laid.snippets)


def completion_match(
    index: Index,
    providers: dict[str, Provider],
    path: Path,
    line: int,
    col: int,
    *,
    text: str | None = None,
    recent: Iterable[str] = (),
    rng: random.Random | None = None,
) -> Match:
    """Both ``providers`` complete at LINE:COL (1-based) of ``path`` from the same context (the
    cursor's definitions, recent edits and retrieved code), as an invoked trigger with no budget:
    the user compares what each model writes, not what each fits in a deadline."""
    if len(providers) != 2:
        raise ArenaError("a match is between two models")
    sides = []
    for name, provider in providers.items():
        made = complete(index, provider, path, line, col, text=text, recent=recent, invoked=True)
        sides.append(Side(name, made.completion, [made.error] if made.error else [],
                          made.timings_ms.get("generate_ms", 0.0)))
    a, b = ordered(sides[0], sides[1], rng or random.Random())
    where = f"{relative_path(index, path)}:{line}:{col}"
    return Match(where, a, b, kind="completion")


def append_vote(path: Path, record: dict) -> None:
    """One line appended (a crash mid-write can cost at most that line, which reading skips)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_votes(path: Path) -> tuple[list[dict], int]:
    """The votes recorded, and how many lines were broken (not JSON, or not a vote) and skipped."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return [], 0
    votes: list[dict] = []
    broken = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            broken += 1
            continue
        if _is_vote(record):
            votes.append(record)
        else:
            broken += 1
    return votes, broken


def _is_vote(record: object) -> bool:
    if not isinstance(record, dict) or record.get("vote") not in VOTES:
        return False
    sides = (record.get("a"), record.get("b"))
    models = [side.get("model") if isinstance(side, dict) else None for side in sides]
    return all(isinstance(m, str) for m in models) and models[0] != models[1]


def as_chat(config: Config, contender: Contender) -> Config:
    """The settings with ``contender`` as the chat model: its provider is built (and judged by the
    privacy policy) as the chat model's would be."""
    return dataclasses.replace(config, models=dataclasses.replace(config.models, chat=contender.model))


def next_match(config: Config, names: list[str] | None = None, rng: random.Random | None = None,
               ) -> list[Contender]:
    """The two models the next question goes to: all of ``names`` (else ``arena.models``) are
    checked, then the pair with the fewest votes in the votes file is chosen."""
    chosen = contenders(config, names)
    if len(chosen) == 2:
        return chosen
    votes, _ = read_votes(votes_path(config))
    pair = next_pair([c.name for c in chosen], votes, rng or random.Random())
    return [c for c in chosen if c.name in pair]


def parse_vote(vote: str) -> Vote:
    """A vote as typed (a, b, tie, both-bad, or their first letters) as one of VOTES."""
    spelled = {"a": "a", "b": "b", "t": "tie", "tie": "tie", "n": "both_bad", "both-bad": "both_bad",
               "both_bad": "both_bad", "bad": "both_bad"}
    found = spelled.get(vote.strip().lower())
    if found is None:
        raise ArenaError(f"vote {vote.strip()!r}: choose a, b, tie or both-bad")
    return found  # type: ignore[return-value]

