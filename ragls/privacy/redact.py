"""Secret redaction for outbound payloads, and restoration in the streamed answer.

Detection is detect-secrets' plugins (provider token formats, keyword assignments, quoted
high-entropy strings) run on strings in memory, with its false-positive heuristics, plus what it
misses: whole PEM private-key blocks (it flags only the BEGIN line), passwords inside connection
strings, ``.env``-style ``NAME=value`` secrets, unquoted high-entropy tokens, and the user's own
patterns (``privacy.redact_patterns``).

Each distinct secret becomes a numbered placeholder, the same one wherever it appears. When the
model echoes a placeholder, :class:`Restorer` puts the secret back in the local answer, holding
back any stream tail that could be the start of a split placeholder.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Generator, Iterator, Sequence
from typing import TypeVar

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters import heuristic
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

PLACEHOLDER = "[[REDACTED_SECRET_{}]]"
_PLACEHOLDER_RE = re.compile(r"\[\[REDACTED_SECRET_(\d+)\]\]")
_PLACEHOLDER_HEAD = "[[REDACTED_SECRET_"
# Shorter matches are mostly false positives, and replacing them everywhere would garble code.
MIN_SECRET_LEN = 6
# Not secrets: public IPs are ordinary data in code.
_SKIPPED_PLUGINS = {"IPPublicDetector"}

_PATTERNS = [
    # A whole PEM private key, or its start up to the end of the text when the END line is cut off.
    re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY[A-Z ]*-----"
               r"[\s\S]*?(?:-----END[A-Z ]*PRIVATE KEY[A-Z ]*-----|\Z)"),
    # scheme://user:PASSWORD@host
    re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]*:(?P<v>[^\s@'\"/]+)@"),
    # .env / shell style: SOME_PASSWORD=value, export API_TOKEN="value"
    re.compile(
        r"(?m)^\s*(?:export\s+)?[A-Z0-9_]*(?:PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|"
        r"CREDENTIALS?|AUTH)[A-Z0-9_]*\s*=\s*['\"]?(?P<v>[^\s'\"#]+)"
    ),
    # Provider tokens detect-secrets misses or reports only in part.
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}|glpat-[A-Za-z0-9_\-]{20,})"),
    re.compile(r"\b(?:sk-ant-[A-Za-z0-9_\-]{20,}|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35})"),
]
# Unquoted token-like runs, judged by entropy below.
_TOKEN_RE = re.compile(r"[A-Za-z0-9+/_\-]{24,}={0,2}")
_ENTROPY = Base64HighEntropyString()
R = TypeVar("R")


class Redactor:
    """Finds secrets in text. Stateless apart from its compiled detectors; safe to share."""

    def __init__(self, extra_patterns: Sequence[str] = ()):
        plugins = get_mapping_from_secret_type_to_class().values()
        self._plugins = [cls() for cls in plugins if cls.__name__ not in _SKIPPED_PLUGINS]
        self._patterns = list(_PATTERNS)
        for pattern in extra_patterns:
            try:
                self._patterns.append(re.compile(pattern))
            except re.error as exc:
                raise ValueError(f"privacy.redact_patterns: {pattern!r} is not a regex ({exc})") from exc
        # detect-secrets plugins keep per-call state in a few places; one caller at a time.
        self._lock = threading.Lock()

    def find(self, text: str) -> set[str]:
        """The distinct secret values in ``text``."""
        found: set[str] = set()
        for pattern in self._patterns:
            for m in pattern.finditer(text):
                found.add(m.group("v") if "v" in pattern.groupindex else m.group(0))
        with self._lock:
            for line in text.splitlines():
                if line.strip():
                    found.update(self._scan_line(line))
        found.update(t for t in _TOKEN_RE.findall(text) if _looks_random(t))
        return {s for s in found if len(s) >= MIN_SECRET_LEN and not _PLACEHOLDER_RE.fullmatch(s)}

    def _scan_line(self, line: str) -> Iterator[str]:
        if heuristic.is_indirect_reference(line):
            return
        for plugin in self._plugins:
            for potential in plugin.analyze_line(filename="payload", line=line):
                secret = potential.secret_value
                if secret and not _is_false_positive(secret, line, plugin):
                    yield secret

    def session(self) -> Redaction:
        return Redaction(self)


def _is_false_positive(secret: str, line: str, plugin: object) -> bool:
    return (
        heuristic.is_sequential_string(secret)
        or heuristic.is_potential_uuid(secret)
        or heuristic.is_likely_id_string(secret, line, plugin)  # type: ignore[arg-type]
        or heuristic.is_templated_secret(secret)
        or heuristic.is_prefixed_with_dollar_sign(secret)
        or heuristic.is_not_alphanumeric_string(secret)
    )


def _looks_random(token: str) -> bool:
    """Entropy check for unquoted tokens: mixed letters and digits, little structure."""
    has = (any(c.isdigit() for c in token), any(c.islower() for c in token), any(c.isupper() for c in token))
    if re.fullmatch(r"[0-9a-f]{32,}", token):
        return _ENTROPY.calculate_shannon_entropy(token) > 3.0
    return all(has) and token.count("_") < 3 and _ENTROPY.calculate_shannon_entropy(token) > 4.0


class Redaction:
    """One request's redaction: a secret gets the same placeholder in every string of the request.
    Without a redactor (a model served on this machine) text passes through unchanged."""

    def __init__(self, redactor: Redactor | None):
        self._redactor = redactor
        self._placeholders: dict[str, str] = {}
        self.count = 0  # secret occurrences replaced

    def redact(self, text: str) -> str:
        if self._redactor is None:
            return text
        secrets = self._redactor.find(text) | {s for s in self._placeholders if s in text}
        if not secrets:
            return text
        for secret in sorted(secrets, key=text.find):  # numbered in reading order
            self._placeholders.setdefault(secret, PLACEHOLDER.format(len(self._placeholders) + 1))
        # Longest first, so a PEM block wins over its own BEGIN line.
        alternation = re.compile("|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True)))

        def swap(m: re.Match[str]) -> str:
            self.count += 1
            return self._placeholders[m.group(0)]

        return alternation.sub(swap, text)

    def restorer(self) -> Restorer:
        return Restorer({p: s for s, p in self._placeholders.items()})


class Restorer:
    """Puts secrets back into streamed text, even when a placeholder is split across deltas."""

    def __init__(self, secrets: dict[str, str]):
        self._secrets = secrets
        self._pending = ""

    def feed(self, delta: str) -> str:
        text = self._pending + delta
        keep = _partial_placeholder_start(text) if self._secrets else len(text)
        self._pending = text[keep:]
        return self._restore(text[:keep])

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return self._restore(text)

    def restore_stream(self, deltas: Generator[str, None, R]) -> Generator[str, None, R]:
        """Relay ``deltas`` with secrets restored; returns what ``deltas`` returns."""
        while True:
            try:
                out = self.feed(next(deltas))
            except StopIteration as end:
                tail = self.flush()
                if tail:
                    yield tail
                return end.value
            if out:
                yield out

    def _restore(self, text: str) -> str:
        return _PLACEHOLDER_RE.sub(lambda m: self._secrets.get(m.group(0), m.group(0)), text)


def _partial_placeholder_start(text: str) -> int:
    """Index from which ``text`` might still grow into a placeholder (``len(text)`` if nowhere)."""
    window = len(_PLACEHOLDER_HEAD) + 12
    for i in range(max(0, len(text) - window), len(text)):
        if text[i] == "[" and _could_become_placeholder(text[i:]):
            return i
    return len(text)


def _could_become_placeholder(tail: str) -> bool:
    if len(tail) <= len(_PLACEHOLDER_HEAD):
        return _PLACEHOLDER_HEAD.startswith(tail)
    return re.fullmatch(re.escape(_PLACEHOLDER_HEAD) + r"\d+\]?", tail) is not None
