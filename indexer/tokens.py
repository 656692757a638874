"""Identifier-aware tokens, shared by the keyword index and the query side so both agree.

``HTTPServerError.add_route`` yields ``httpservererror http server error add_route add route``:
the whole identifier (for exact symbol hits) and its camelCase / snake_case parts (for
natural-language hits).
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Words that say nothing about code in a query ("how are routes registered").
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "of",
        "on",
        "or",
        "show",
        "the",
        "this",
        "that",
        "to",
        "use",
        "used",
        "uses",
        "using",
        "via",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "work",
        "works",
        "find",
        "code",
        "implementation",
        "implement",
        "implements",
        "handle",
        "handles",
        "handling",
    }
)


def identifier_parts(word: str) -> list[str]:
    """The lower-cased parts of one identifier: ``getHTTPResponse_code`` → get http response code."""
    parts: list[str] = []
    for piece in word.split("_"):
        parts.extend(p.lower() for p in _CAMEL.findall(piece))
    return parts


@lru_cache(maxsize=262_144)
def _expand(word: str) -> tuple[str, ...]:
    """A word and, when it is a compound identifier, its parts (cached: code repeats its names)."""
    parts = identifier_parts(word)
    return (word.lower(), *parts) if len(parts) > 1 else (word.lower(),)


def index_terms(text: str) -> list[str]:
    """Every word of ``text``, lower-cased, followed by its parts when it is a compound."""
    return [term for word in _WORD.findall(text) for term in _expand(word)]


def query_terms(query: str) -> list[str]:
    """Distinct search terms of a query, stopwords dropped (unless nothing else is left)."""
    terms = list(dict.fromkeys(index_terms(query)))
    kept = [t for t in terms if t not in STOPWORDS and len(t) > 1]
    return kept or terms


def looks_like_identifier(word: str) -> bool:
    """camelCase, PascalCase, snake_case or dotted names: a user typing a symbol, not prose."""
    return bool(re.fullmatch(r"[A-Za-z_][\w.]*", word)) and (
        "_" in word or "." in word.strip(".") or any(c.isupper() for c in word[1:]) or word[:1].isupper()
    )
