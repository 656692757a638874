"""Hybrid search: keyword (BM25 over identifier-split text), dense, symbol names and paths,
fused by reciprocal rank and aggregated by file.

Most of the quality comes from ranking, not from any one signal: a symbol query
(``APIRouter``) is answered by the symbol table, a question ("how are routes registered") by
BM25 and the embeddings together, and every answer is spread across files, because the first
chunk of a second relevant file is worth more to the reader than the fifth chunk of the first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from os.path import commonprefix
from typing import TYPE_CHECKING, Literal, TypeVar

from ragls.indexer.languages import CONFIG_LANGUAGES
from ragls.indexer.tokens import identifier_parts, looks_like_identifier, query_terms

if TYPE_CHECKING:
    from ragls.indexer.engine import Index

Mode = Literal["hybrid", "bm25", "dense"]

CANDIDATES = 200  # per signal, before fusion
RRF_K = 10  # small: the top of each ranking should dominate (k=60 flattened it too much)
# Fusion weights by query type (:func:`query_type`). Chunk signals: bm25, symbol, and one per dense
# tier (each tier's ranking is its own signal: two models' scores are never compared). File
# signals: path, and the file-level ones below ("file static", "file keyword").
# - The static tier at full weight pulled hybrid NDCG@10 on semble's repos down (0.883 at 1.0,
#   0.902 at 0.3, mean over repos): its ranking is noisier than BM25's, so it only nudges.
# - A query that is nothing but names (``Thor::Group``, ``parse_args``) is answered by the symbol
#   table (3); in a question or a description, a name it mentions is a hint (0.5), not the
#   answer: a definition's documentation names its neighbours, a commit message the helpers it
#   touched. Symbol 1.0 -> 0.5, tune half: architecture 0.917 -> 0.925 (semble's three 0.914 ->
#   0.919, questions only), docstring 0.426 -> 0.443, history 0.689 -> 0.694, semantic 0.882 and
#   semble's semantic 0.842 unchanged (0.25 and 0 scored the same within 0.002; 0.75 half as much).
PROSE_WEIGHTS = {
    "bm25": 1.0, "symbol": 0.5, "static": 0.3, "contextual": 1.0, "path": 0.6, "file static": 0.3,
    "file keyword": 0.0,
}  # fmt: skip
# Other weights tried per type on the tune half, none better on both tuning sets: for questions
# static 0.15/0.5, file static 0/0.6, file keyword 0.6, path 0.3/0.9, bm25 0.7; for descriptions
# static 0.15/0.5, file static 0.15/0.5, file keyword 0.15, path 0.3/0.9.
QUERY_WEIGHTS = {
    "name": PROSE_WEIGHTS | {"symbol": 3.0, "file static": 0.0},
    "question": PROSE_WEIGHTS | {"file keyword": 0.3},
    "prose": PROSE_WEIGHTS,
}
EVIDENCE = 0.25  # share of a file's next three chunk scores added to its best one
# "file static", for every query but names: candidate files ranked by the cosine of the query with
# the mean of all their chunks' static vectors (the file as a whole, as an architecture or semantic
# question means it), fused by rank like the path signal. Tune half, with FURTHER_OWN below:
# semantic 0.866 -> 0.882, history 0.688 -> 0.690, docstring 0.424 -> 0.427; semble's three
# 0.918 -> 0.923 (0.2: semble's three 0.919; 0.4 and 0.8 lost docstring queries).
FILE_TIERS = ("static",)
# It ranks the files of the best chunks only, as it reads every vector of every file it ranks.
FILE_POOL = 40
# "file keyword": a question that asks how something works or where it lives ("how does a request
# travel through the middleware", "where is the retry policy configured") wants the file that
# implements the concept, which tends to match it in many chunks, not one: for such a question the
# candidate files also rank by the sum of their chunks' reciprocal BM25 ranks (semble's file
# coherence, as one more signal rather than the file score). Tune half, architecture 0.904 ->
# 0.917, no other category moved; for every query (not only these questions) semantic fell 0.882
# -> 0.859 and docstring 0.427 -> 0.406; at 0.6, semble's three fell 0.923 -> 0.919.
QUESTION = re.compile(r"(?i)\s*(how|where|what|which|why|when)\b")
# A file's second and later chunks rank at this share of their file's score (times how close each
# comes to the file's best chunk), among the other files' best chunks: a question whose answer is
# one definition of a long file wants that definition even when another chunk of the file matched
# better. Tune half, docstring queries 0.388 -> 0.424 at 0.3 (0.467 at 0.5, but history queries
# and semble's three fell with it); at 0 every file had one chunk before any had a second.
FURTHER_CHUNK = 0.3
# ... unless the chunk's own score, at this share, is higher: a definition that matched as well as
# other files' best chunks is not held back by its file's own best chunk (tune half, docstring
# queries whose target's file was listed with another chunk: 96 of the 104 at 0). Alone, 0.5-1.0
# traded docstring queries (+0.003 to +0.056) for history queries (-0.002 to -0.016).
FURTHER_OWN = 0.6
# Prose and config files answer a code search less often than code does; they still rank when
# they match much better than any code.
NON_CODE_PENALTY = 0.5
NON_CODE_LANGUAGES = CONFIG_LANGUAGES | {"markdown", "text"}
# Files below test/docs/example folders, and test files by each ecosystem's naming convention
# (test_x.py, x_test.go, x_spec.rb, x.test.ts, XTest.java), answer "where is X implemented" less
# often than the code itself.
SECONDARY_PENALTY = 0.3
SECONDARY_PATH = re.compile(
    r"(?i:(^|/)(tests?|testing|testdata|__tests__|specs?|e2e|docs?|docs_src|documentation|examples?|samples?"
    r"|demos?|benchmarks?|bench(es)?|fixtures?|vendor|vendored|third_party|thirdparty|3rdparty)(/|$))"
    r"|[.](Tests?|UnitTests|Specs|Benchmarks?)(/|$)|(^|/)test_|_test\.|_bench(mark)?\."
    r"|_spec\.|\.(test|spec)\.[cm]?[jt]sx?$|(Tests?|Spec)\.(java|kt|cs|swift|scala|php)$"
)
# Declarations and bodies that live apart: a C/C++ header and the source file that implements it
# (``encode.h`` and ``encode.c``, ``pool.hpp`` and ``pool-inl.h`` or ``pool.cc``), a TypeScript
# declaration file and its JavaScript (``types/hooks.d.ts``, ``lib/hooks.js``), a Python stub and
# its module. A question about what the code does is answered by the body; the declaration names
# it better (it is short and documented) and so tends to outrank it. The body inherits its
# declaration's rank, and the declaration follows it. (declaration, body) patterns per family:
DECLARATION_FAMILIES = (
    (
        re.compile(r"(?<![-_]inl)\.(h|hh|hpp|hxx|h\+\+)$"),
        re.compile(r"(\.(c|cc|cpp|cxx|c\+\+|m|mm|tcc|ipp)|[-_]inl\.(h|hh|hpp))$"),
    ),
    (re.compile(r"\.d\.[cm]?ts$"), re.compile(r"(?<!\.d)\.[cm]?[jt]sx?$")),
    (re.compile(r"\.pyi$"), re.compile(r"\.py$")),
)
DECLARATION_SHARE = 0.9  # of the pair's score, left to the declaration


@dataclass(frozen=True)
class SearchResult:
    path: str
    start_line: int
    end_line: int
    score: float
    symbol: str
    chunk_id: int  # in the store it came from
    repository: str = ""  # a shared index's repository; "" = the workspace's own index
    text: str = ""  # a shared result's chunk text, read with it (no local copy to read it from)

    def as_json(self) -> dict:
        shown = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "score": round(self.score, 6),
            "symbol": self.symbol,
        }
        return shown | {"repository": self.repository} if self.repository else shown


Ranked = TypeVar("Ranked")  # a dataclass with a ``score``: a SearchResult, a context snippet


def fuse(rankings: list[list[Ranked]], top_k: int) -> list[Ranked]:
    """Result lists of separate indexes (the workspace's, each shared repository's) as one, by
    reciprocal rank as the signals within an index are fused: their scores are not comparable."""
    scored = [
        (1.0 / (RRF_K + rank + 1), n, result)
        for n, ranking in enumerate(rankings)
        for rank, result in enumerate(ranking)
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))  # at equal rank, the earlier list first
    return [replace(result, score=score) for score, _, result in scored[:top_k]]  # type: ignore[type-var]


def fts_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression that ORs quoted terms (so user text can never be FTS syntax)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def bm25_ranking(index: Index, query: str) -> list[int]:
    terms = query_terms(query)
    if not terms:
        return []
    return [cid for cid, _ in index.store.keyword_search(fts_query(terms), CANDIDATES)]


def dense_rankings(index: Index, query: str, tiers: Iterable[str] | None) -> dict[str, list[int]]:
    """One ranking per dense tier, each from its own faiss index."""
    wanted = [t for t in index.enabled_tiers() if tiers is None or t.name in tiers]
    return {t.name: index.dense_ranking(t, query, CANDIDATES) for t in wanted}


# A name as a language writes it qualified: a.b.C, Mod::Class#method, Ns\Class::method, obj->f,
# pl.List:m; Ruby's predicate and bang methods end in ? or !.
_QUALIFIED_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:(?:::|\.|#|\\|->|:)[A-Za-z_$][\w$]*)*[?!]?")
_NAME_SEPARATOR = re.compile(r"::|\.|#|\\|->|:")
# Go's receiver notation, (*Type).Method or (Type).Method, read as Type.Method.
_GO_RECEIVER = re.compile(r"\(\*?([A-Za-z_]\w*)\)\.")
# Elixir and Erlang name a function with its arity: Phoenix.Router.scope/4.
_ARITY = re.compile(r"(?<=\w)/\d+\b")
_PATH_WORD = re.compile(r"[^/.\-]+")


def _as_names(query: str) -> str:
    """The query with receiver and arity notations read as plain qualified names."""
    return _ARITY.sub("", _GO_RECEIVER.sub(r"\1.", query))


def named_symbols(query: str) -> dict[str, tuple[str, list[str]]]:
    """The definitions a query names: {lower-cased name: (name as typed, its qualifiers lower-cased)}.

    Identifier-looking words count (``Thor::Options#parse`` names ``parse`` qualified by thor and
    options); a one-word query may name a symbol even in lower case ("response").
    """
    words = _QUALIFIED_NAME.findall(_as_names(query))
    named: dict[str, tuple[str, list[str]]] = {}
    for word in words:
        if not (_is_name(word) or len(words) == 1):
            continue
        *qualifiers, name = _NAME_SEPARATOR.split(word)
        found = (name, [q.lower() for q in qualifiers])
        named.setdefault(name.lower(), found)
        # "empty?" may be a Ruby predicate or a question mark: the bare name is looked up too
        named.setdefault(name.rstrip("?!").lower(), found)
    return named


def is_name_query(query: str) -> bool:
    """Whether every word of the query is an identifier or a qualified name: a lookup, not a question."""
    words = _as_names(query).split()
    return bool(words) and all(_QUALIFIED_NAME.fullmatch(w) and _is_name(w) for w in words)


def _is_name(word: str) -> bool:
    """camelCase, snake_case, Capitalized or qualified: written as code, not as prose."""
    return looks_like_identifier(word) or _NAME_SEPARATOR.search(word) is not None


def _qualifier_match(qualifiers: list[str], path: str, qualified: str) -> tuple[int, bool]:
    """How many of a query's qualifiers the definition's file path and symbol path hold, and
    whether its enclosing definition is the one named last (``Options`` in ``Options#parse``)."""
    if not qualifiers:
        return 0, False
    symbol_path = [part.lower() for part in qualified.split(".")]
    context = set(symbol_path) | {w.lower() for w in _PATH_WORD.findall(path)}
    parent = symbol_path[-2] if len(symbol_path) > 1 else ""
    return sum(q in context for q in qualifiers), parent == qualifiers[-1]


def symbol_ranking(index: Index, query: str) -> list[int]:
    """Chunks holding a definition the query names, the best qualified match first.

    A qualified name is looked up by its last part and matched by suffix against the symbol path
    (module, classes, receiver type) and the file path, so ``Faraday::Connection#run_request``
    finds the method inside ``class Connection`` of ``module Faraday``, not every ``Faraday``.
    """
    named = named_symbols(query)
    hits = index.store.symbol_definitions(list(named))

    def rank(hit: tuple[str, str, str, int, int]) -> tuple:
        path, name, qualified, line, end = hit
        typed, qualifiers = named[name.lower()]
        matched, parent = _qualifier_match(qualifiers, path, qualified)
        return (
            -matched,
            not parent,
            SECONDARY_PATH.search(path) is not None,
            name != typed,  # the case the user typed
            qualified.count("."),  # a class named exactly is more central than a member of that name
            line >= end,  # a one-line declaration (a prototype) after a definition with a body
            path,
        )

    # A definition that matches fewer qualifiers than another of its name is not the one named
    # (``Thor::Options#parse`` is not ``Thor::Arguments#parse``); keyword search may still find it.
    keyed = sorted((rank(hit), hit) for hit in hits)
    best: dict[str, int] = {}
    for key, hit in keyed:
        best.setdefault(hit[1].lower(), key[0])
    ranked = []
    for key, (path, name, _qualified, line, _end) in keyed:
        if key[0] > best[name.lower()]:
            continue
        chunk_id = index.store.chunk_at(path, line)
        if chunk_id is not None and chunk_id not in ranked:
            ranked.append(chunk_id)
    return ranked


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def path_ranking(index: Index, query: str, files: list[str]) -> list[str]:
    """Files whose name or folder shares words with the query, best overlap first."""
    terms = {_stem(t) for t in query_terms(query)}
    if not terms:
        return []
    scored = []
    for path in files:
        parts = path.rsplit(".", 1)[0].split("/")
        name_words = {_stem(w) for w in identifier_parts(parts[-1])}
        dir_words = {_stem(w) for p in parts[:-1] for w in identifier_parts(p)}
        score = 2 * len(terms & name_words) + len(terms & dir_words)
        if score:
            scored.append((-score, len(parts), path))
    scored.sort()
    return [path for _, _, path in scored[:CANDIDATES]]


def file_dense_rankings(
    index: Index, query: str, paths: Iterable[str], ranked: dict[str, list[int]]
) -> dict[str, list[str]]:
    """Per dense tier of :data:`FILE_TIERS` that ranked chunks (it has vectors of its model),
    ``paths`` by how well each whole file matches."""
    wanted = [t for t in index.enabled_tiers() if t.name in FILE_TIERS and ranked.get(t.name)]
    if not wanted:
        return {}
    files: dict[str, list[int]] = defaultdict(list)
    for row in index.store.chunks_of_files(sorted(paths)):
        files[row.path].append(row.id)
    return {t.name: t.file_ranking(query, index.store, files) for t in wanted}


def _best_files(rows: dict, chunk_scores: dict[int, float], count: int) -> list[str]:
    """The first ``count`` files met going down the fused chunk ranking."""
    files: dict[str, None] = {}
    for chunk_id in sorted(rows, key=lambda c: -chunk_scores[c]):
        files.setdefault(rows[chunk_id].path)
        if len(files) == count:
            break
    return list(files)


def file_keyword_ranking(ranked: list[int], rows: dict) -> list[str]:
    """The files of BM25's ranked chunks by the sum of those chunks' reciprocal ranks."""
    total: dict[str, float] = defaultdict(float)
    for rank, chunk_id in enumerate(ranked):
        if chunk_id in rows:
            total[rows[chunk_id].path] += 1.0 / (RRF_K + rank + 1)
    return sorted(total, key=lambda path: -total[path])


def query_type(query: str) -> str:
    """'name' (nothing but identifiers), 'question' (how/where/what/which/why/when ...) or 'prose'."""
    if is_name_query(query):
        return "name"
    return "question" if QUESTION.match(query) else "prose"


def search(
    index: Index, query: str, top_k: int, mode: Mode = "hybrid", tiers: Iterable[str] | None = None
) -> list[SearchResult]:
    query = query.strip()
    if not query or top_k <= 0:
        return []
    if mode == "bm25":
        rankings = {"bm25": bm25_ranking(index, query)}
    elif mode == "dense":
        rankings = dense_rankings(index, query, tiers)
    else:
        rankings = {
            "bm25": bm25_ranking(index, query),
            **dense_rankings(index, query, tiers),
            "symbol": symbol_ranking(index, query),
        }
    kind = query_type(query)
    weights = QUERY_WEIGHTS[kind]
    chunk_scores: dict[int, float] = defaultdict(float)
    for signal, ranked in rankings.items():
        for rank, chunk_id in enumerate(ranked):
            chunk_scores[chunk_id] += weights[signal] / (RRF_K + rank + 1)
    rows = index.store.chunk_rows(chunk_scores)
    path_bonus: dict[str, float] = defaultdict(float)

    def fuse(signal: str, ranked_files: list[str]) -> None:
        for rank, path in enumerate(ranked_files):
            path_bonus[path] += weights[signal] / (RRF_K + rank + 1)

    if mode == "hybrid":
        fuse("path", path_ranking(index, query, sorted({row.path for row in rows.values()})))
        if weights["file static"]:
            pool = _best_files(rows, chunk_scores, FILE_POOL)
            for tier, ranked_files in file_dense_rankings(index, query, pool, rankings).items():
                fuse(f"file {tier}", ranked_files)
        if weights["file keyword"]:
            fuse("file keyword", file_keyword_ranking(rankings["bm25"], rows))
    # A question about tests or docs wants those folders as much as the code.
    secondary = 1.0 if SECONDARY_PATH.search("/".join(query_terms(query)) + "/") else SECONDARY_PENALTY
    # A name is answered by the definition the symbol table found, wherever it lives.
    return _by_file(rows, chunk_scores, path_bonus, top_k, secondary, bodies_lead=kind != "name")


def _companion_key(path: str) -> str:
    """A file's name without its extensions or an ``-inl``/``_impl`` marker, lower-cased."""
    name = path.rsplit("/", 1)[-1].lower()
    stem = name.split(".", 1)[0]
    return re.sub(r"[-_](inl|impl)$", "", stem)


def companions(paths: list[str]) -> list[tuple[str, str]]:
    """(declaration, its body) pairs among ``paths``: same name, same family, the body nearest
    the declaration in the tree; test and docs files are nobody's body."""
    pairs = []
    for declaration, body in DECLARATION_FAMILIES:
        bodies: dict[str, list[str]] = defaultdict(list)
        for path in paths:
            if body.search(path) and not SECONDARY_PATH.search(path):
                bodies[_companion_key(path)].append(path)
        for path in paths:
            if declaration.search(path) and bodies.get(_companion_key(path)):
                nearest = max(bodies[_companion_key(path)], key=lambda b: (_shared_folders(path, b), b))
                pairs.append((path, nearest))
    return pairs


def _shared_folders(a: str, b: str) -> int:
    return len(commonprefix([a.split("/")[:-1], b.split("/")[:-1]]))


def _by_file(
    rows: dict,
    chunk_scores: dict[int, float],
    path_bonus: dict[str, float],
    top_k: int,
    secondary: float,
    *,
    bodies_lead: bool,
) -> list[SearchResult]:
    """Rank files by their best chunk plus a little for further evidence (times ``secondary``
    below test and docs folders; ``bodies_lead``: a source file ahead of its header); each file's
    best chunk carries its file's score, its further chunks a share of it (``FURTHER_CHUNK``) or
    of their own score (``FURTHER_OWN``), whichever is higher."""
    per_file: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for chunk_id, row in rows.items():
        per_file[row.path].append((chunk_scores[chunk_id], chunk_id))
    file_scores = {}
    penalties = {}
    for path, scored in per_file.items():
        scored.sort(reverse=True)
        evidence = sum(s for s, _ in scored[1:4]) * EVIDENCE
        penalty = secondary if SECONDARY_PATH.search(path) else 1.0
        if rows[scored[0][1]].language in NON_CODE_LANGUAGES:
            penalty *= NON_CODE_PENALTY
        penalties[path] = penalty
        file_scores[path] = (scored[0][0] + evidence + path_bonus.get(path, 0.0)) * penalty
    for declaration, body in companions(list(file_scores)) if bodies_lead else []:
        lead = max(file_scores[declaration], file_scores[body])
        file_scores[body] = lead
        file_scores[declaration] = min(file_scores[declaration], lead * DECLARATION_SHARE)
    picked: list[tuple[float, int]] = []
    for path, scored in per_file.items():
        best = scored[0][0] or 1.0
        picked.append((file_scores[path], scored[0][1]))
        share, own = file_scores[path] * FURTHER_CHUNK / best, penalties[path] * FURTHER_OWN
        picked += [(score * max(share, own), cid) for score, cid in scored[1:]]
    picked.sort(key=lambda pair: -pair[0])
    results = []
    for score, chunk_id in picked[:top_k]:
        row = rows[chunk_id]
        results.append(SearchResult(row.path, row.start_line, row.end_line, score, row.symbol, chunk_id))
    return results
