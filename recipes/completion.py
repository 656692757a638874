"""Inline completion: the code around the cursor, cross-file context, a FIM prompt, a cleaned
completion.

Context is what a programmer would glance at: the definitions of what is being called near the
cursor (looked up in the symbol table, files this one imports first), similar code in recently
edited files, and keyword-retrieved chunks for the code just above the cursor. It is small (a
quarter of the model's context, at most 1,024 tokens, less for a model that reads slowly) because
every prompt token costs time on a local model, and it is *sticky*: while the cursor stays in
one top-level definition the previous context and the start of the file's window are reused
verbatim, so the prompt only grows at its end and llama.cpp's prefix cache stays valid (see
``fim``); names typed meanwhile bring their definitions in when the cursor enters the next one.

Positions: LINE and COL are 1-based; COL counts characters (code points) of the line, and
``len(line) + 1`` is the end of the line. A position outside the document raises
``PositionError`` (a clear message for the CLI and the server) rather than completing somewhere
the user did not ask for.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ragls.indexer.engine import read_source
from ragls.indexer.parsing import language_for, parse
from ragls.indexer.search import fts_query, fuse
from ragls.indexer.tokens import query_terms
from ragls.llm.base import LLMError, Provider, approx_tokens
from ragls.recipes import fim, postprocess
from ragls.recipes.context import Snippet, fit, shared_snippet
from ragls.recipes.copied import Copy, find_copies
from ragls.recipes.dependencies import dependency_snippets, with_dependencies

if TYPE_CHECKING:
    from ragls.indexer.engine import Index
    from ragls.indexer.shared import SharedResults

Mode = Literal["auto", "single", "multi"]

BUDGET_CAP = 1024  # context tokens, at most
PREFIX_CHARS = 3000  # ~800 tokens of the file before the cursor
SUFFIX_CHARS = 800  # ~200 tokens after it (re-read on every keystroke by PSM-only families)
STRETCH = 1.5  # a window grows to this multiple of its size as the user types before its start moves
PREFIX_STEP = 16  # the full window starts on a multiple of this many lines (stable while typing);
# a shorter window on a multiple of proportionally fewer (rounding up by 16 lines would leave a
# 10-line window nothing but the cursor's line)
NEAR_LINES = 30  # lines above the cursor whose references count
DEF_LINES = 30  # lines of a definition shown (signature, docstring, start of the body)
PER_NAME = 2  # definitions per referenced name (same-named symbols in several files)
MAX_NAMES = 10
MAX_RECENT_FILES = 8
# ms a completion's context waits for the shared indexes (their keyword search: tens of ms on a
# nearby server); later answers are left out of this prompt, the source is not held to it
SHARED_WAIT_MS = 100
MAX_TOKENS = {"single": 48, "multi": 128}
# The latency budget: generated tokens whose time is set aside before prompt tokens are allowed
# (a typical single line; a short block), the prompt tokens a request may always read (what a
# keystroke adds, even when generation alone overruns the budget), the fewest prompt tokens worth a
# file-only prompt when an invoked trigger's full one is over budget (the user asked: an answer a
# little late beats none), and the seconds of reading a cold full prompt
# may cost at the speed measured at load (so a CPU gets a short prompt, a GPU the full one).
RESERVED_TOKENS = {"single": 8, "multi": 24}
ALWAYS_READ = 16
MIN_SHORT_PROMPT = 48
WARM_SECONDS = 6.0
FIRST_KEY_MS = 1000  # a file's first automatic request: nothing is cached, and the user just began
MIN_SCALE = 0.125  # the shortest prompt: an eighth of the full one (~220 tokens)
FULL_PROMPT_TOKENS = BUDGET_CAP + PREFIX_CHARS // 4
_IDENT = re.compile(r"[^\W\d]\w*")
_WORD_AT_END = re.compile(r"\w+$")
_NOT_A_START = re.compile(r"[\s})\]@#/*;'\"-]|end\b|$")
_BLOCK_OPENER = re.compile(r"(:|\{|\(|\[|=>|\bthen|\bdo)\s*$")
_IMPORT = re.compile(
    r"\s*(?:from\s+([.\w]+)\s+import|import\s+([.\w]+)|.*?\bfrom\s+['\"]([^'\"]+)['\"]"
    r"|.*?\brequire\(\s*['\"]([^'\"]+)['\"]|use\s+([\w:]+))"
)


_SCRIPT_SUFFIX = re.compile(r"\.(?:[cm]?js|jsx|tsx?)$")


class PositionError(ValueError):
    """LINE:COL lies outside the document."""


@dataclass
class CompletionResult:
    completion: str
    context: list[Snippet]  # in prompt order (best last, nearest the cursor)
    timings_ms: dict[str, float]
    copied: list[Copy] = field(default_factory=list)
    mode: str = "single"  # the mode used once "auto" was resolved
    template: str = "plain"  # the FIM family, or "plain" prefix completion
    error: str | None = None  # why the completion is empty when the model failed
    prompt_tokens: int = 0  # what a cold request has to read (0 when the model was not called)
    read_tokens: int = 0  # prompt tokens that were not cached (what the request had to read)
    over_budget: str | None = None  # why the full prompt was not used (its reading would overrun)
    warm_prompt: str = ""  # the full prompt: read ahead, the next keystroke reads only what it adds
    raw: str = ""  # what the model wrote, before post-processing

    def empty_reason(self) -> str | None:
        """Why there is nothing to show (None when there is)."""
        if self.completion:
            return None
        if self.error:
            return self.error
        if self.over_budget and not self.raw:
            return self.over_budget
        return "filtered: " + repr(self.raw[:60]) if self.raw.strip() else "the model wrote nothing"


def cursor_offset(text: str, line: int, col: int) -> int:
    """Character offset of 1-based LINE:COL; raises PositionError outside the document."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise PositionError(f"line {line} is outside the document (it has {len(lines)} lines)")
    length = len(lines[line - 1].rstrip("\r"))
    if not 1 <= col <= length + 1:
        raise PositionError(f"column {col} is outside line {line} (columns 1-{length + 1})")
    return sum(len(row) + 1 for row in lines[: line - 1]) + col - 1


def resolve_mode(mode: Mode, prefix: str, suffix: str) -> Literal["single", "multi"]:
    """Auto: several lines on an empty line or after a block opener with nothing after the
    cursor on its line; otherwise finish the current line."""
    if mode != "auto":
        return mode
    before = prefix.rsplit("\n", 1)[-1]
    after = suffix.split("\n", 1)[0]
    if after.strip():
        return "single"
    return "multi" if not before.strip() or _BLOCK_OPENER.search(before) else "single"


def relative_path(index: Index, path: str | Path) -> str:
    """Workspace-relative path of ``path`` (a relative ``path`` is taken as workspace-relative)."""
    full = Path(path)
    full = (full if full.is_absolute() else index.root / full).resolve()
    try:
        return full.relative_to(index.root).as_posix()
    except ValueError:
        return full.as_posix()


# -- the prompt window -------------------------------------------------------------------------


def _prefix_window(prefix: str, chars: int = PREFIX_CHARS, start: int | None = None) -> tuple[str, int]:
    """The end of the prefix to show, and its first line (0-based). ``start``, the first line the
    previous request showed, is kept while the window from it holds at most STRETCH x ``chars``:
    typing then only appends to the prompt. Otherwise the start is chosen afresh, on a multiple of
    PREFIX_STEP lines (fewer for a shorter window)."""
    lines = prefix.split("\n")
    if start is not None and start < len(lines):
        window = "\n".join(lines[start:])
        if len(window) <= chars * STRETCH:
            return window, start
    total, start = 0, len(lines)
    while start > 0 and total + len(lines[start - 1]) + 1 <= chars:
        start -= 1
        total += len(lines[start]) + 1
    if start > 0:
        step = max(2, PREFIX_STEP * chars // PREFIX_CHARS)
        start = min(len(lines) - 1, -(-start // step) * step)
    window = "\n".join(lines[start:])
    return window[-chars:], start


def definition_start(prefix: str) -> int:
    """The 0-based line of the top-level statement the cursor is in (the prefix's last line): the
    nearest line at or above it that starts with code in column 0 (not a closing bracket, a
    comment, a decorator or ``end``). The prompt's context is kept while this stays the same."""
    lines = prefix.split("\n")
    return next((i for i in range(len(lines) - 1, -1, -1) if not _NOT_A_START.match(lines[i])), 0)


def _suffix_window(suffix: str) -> str:
    if len(suffix) <= SUFFIX_CHARS:
        return suffix
    cut = suffix.rfind("\n", 0, SUFFIX_CHARS)
    return suffix[: cut if cut > 0 else SUFFIX_CHARS]


# -- context -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a completion is requested and the part of the file its prompt shows."""

    rel: str
    language: str | None
    prefix: str
    suffix: str
    first_line: int  # 1-based lines of the file shown in the prompt
    last_line: int

    def visible(self, path: str, start: int, end: int) -> bool:
        return path == self.rel and start <= self.last_line and end >= self.first_line


def cursor_at(
    rel: str, language: str | None, prefix: str, suffix: str, line: int,
    prefix_chars: int = PREFIX_CHARS, start: int | None = None,
) -> Cursor:  # fmt: skip
    """The cursor between ``prefix`` and ``suffix`` (on 1-based ``line``) with its prompt windows
    (``start``: the 0-based first line the previous window showed, kept if it still fits)."""
    shown_prefix, first = _prefix_window(prefix, prefix_chars, start)
    shown_suffix = _suffix_window(suffix)
    return Cursor(rel, language, shown_prefix, shown_suffix, first + 1, line + shown_suffix.count("\n"))


def referenced_names(req: Cursor) -> list[str]:
    """Names used near the cursor, nearest first: identifiers on the cursor's line (the call
    being typed may not parse yet), then calls and types referenced in the lines above. The word
    the cursor is in is not one yet: each of its keystrokes would name another definition, change
    the context and with it the prompt's cached head."""
    lines = req.prefix.split("\n")
    current = _IDENT.findall(_WORD_AT_END.sub("", lines[-1]))[::-1]
    window = "\n".join(lines[-NEAR_LINES - 1 : -1])
    parsed = parse(req.rel, window, language=req.language) if window.strip() else None
    refs = sorted(
        (s for s in (parsed.symbols if parsed else []) if s.role == "reference"), key=lambda s: -s.line
    )
    return list(dict.fromkeys([*current, *(s.name for s in refs)]))[:MAX_NAMES]


def imported_modules(text: str) -> list[str]:
    """Path fragments of the modules a file imports (``from .a.b import c`` -> ``a/b``)."""
    found = []
    rows = (row for row in text.split("\n") if "import" in row or "require" in row or "use " in row)
    for m in filter(None, map(_IMPORT.match, rows)):
        name = next((g for g in m.groups() if g), "")
        fragment = name if "/" in name else name.replace("::", "/").replace(".", "/")
        fragment = _SCRIPT_SUFFIX.sub("", fragment).strip("./")
        if fragment:
            found.append(fragment)
    return found


def _same_module(stem: str, fragment: str) -> bool:
    """Whether an import names this file; either side may carry more leading folders (the
    workspace may be the package itself: ``fastapi/routing`` imports ``routing.py``)."""
    short, long = sorted((stem, fragment), key=len)
    return long == short or long.endswith("/" + short)


def definitions(index: Index, req: Cursor, full_text: str) -> list[Snippet]:
    names = referenced_names(req)
    if not names:
        return []
    imports = imported_modules(full_text)
    here = req.rel.rsplit("/", 1)[0] if "/" in req.rel else ""
    rank = {name.lower(): i for i, name in enumerate(names)}

    def preference(hit: tuple[str, str, str, int, int]) -> tuple:
        path = hit[0]
        stem = path.rsplit(".", 1)[0].removesuffix("/__init__")
        imported = any(_same_module(stem, f) for f in imports)
        same_dir = (path.rsplit("/", 1)[0] if "/" in path else "") == here
        return (rank[hit[1].lower()], not imported, not same_dir, path.count("/"), path, hit[3])

    out: list[Snippet] = []
    taken: dict[str, int] = {}
    hits = sorted(index.store.symbol_definitions(names), key=preference)
    for path, name, _qualified, line, end_line in hits:
        key = name.lower()
        if taken.get(key, 0) >= PER_NAME or req.visible(path, line, end_line):
            continue
        snippet = _definition_snippet(index, path, line, end_line, rank[key])
        if snippet is not None:
            out.append(snippet)
            taken[key] = taken.get(key, 0) + 1
    return out


def _definition_snippet(index: Index, path: str, line: int, end_line: int, rank: int) -> Snippet | None:
    """Up to DEF_LINES lines of the definition from its name's line, read from its chunk (the
    index's copy, so no file is opened)."""
    chunk_id = index.store.chunk_at(path, line)
    if chunk_id is None:
        return None
    row = index.store.chunk_rows([chunk_id])[chunk_id]
    rows = (index.store.chunk_text(chunk_id) or "").split("\n")
    first = max(row.start_line, line)
    last = min(row.end_line, end_line, line + DEF_LINES - 1)
    text = "\n".join(rows[first - row.start_line : last - row.start_line + 1])
    return Snippet(path, first, last, text, "definition", score=-rank)


def _identifiers(text: str) -> set[str]:
    return {w for w in _IDENT.findall(text) if len(w) > 2}


def recent_snippets(index: Index, req: Cursor, recent: Iterable[str]) -> list[Snippet]:
    """Chunks of recently edited files most similar (identifier Jaccard) to the lines above the
    cursor: the code the user is working on elsewhere."""
    paths = [p for p in dict.fromkeys(relative_path(index, p) for p in recent) if p != req.rel]
    tail = _identifiers("\n".join(req.prefix.split("\n")[-NEAR_LINES:]))
    if not paths or not tail:
        return []
    scored = []
    for row in index.store.chunks_of_files(paths[:MAX_RECENT_FILES]):
        text = index.store.chunk_text(row.id) or ""
        words = _identifiers(text)
        score = len(tail & words) / len(tail | words) if words else 0.0
        if score >= 0.08:
            scored.append(Snippet(row.path, row.start_line, row.end_line, text, "recent", score))
    return sorted(scored, key=lambda s: -s.score)[:2]


def retrieval_terms(req: Cursor, lines: int = 15) -> list[str]:
    """The identifiers and words of the last ``lines`` lines of the prefix (at most 40)."""
    return query_terms("\n".join(req.prefix.split("\n")[-lines:]))[-40:]


def shared_retrieval(index: Index, req: Cursor, top_k: int = 3) -> SharedResults | None:
    """Start the shared indexes' keyword search for the cursor's terms, to run while the rest of
    the context is gathered; :func:`retrieved` collects it (within ``SHARED_WAIT_MS``)."""
    terms = retrieval_terms(req)
    if not terms or not index.shared:
        return None
    return index.shared.start(" ".join(terms), top_k, "bm25", SHARED_WAIT_MS)


def retrieved(
    index: Index, req: Cursor, top_k: int = 3, shared: SharedResults | None = None
) -> list[Snippet]:
    """BM25 over the last lines of the prefix (chunks already in the prompt skipped), fused with
    what the ``shared`` search (:func:`shared_retrieval`) found in time."""
    terms = retrieval_terms(req)
    if not terms:
        return []
    hits = index.store.keyword_search(fts_query(terms), top_k + 8)
    rows = index.store.chunk_rows(cid for cid, _ in hits)
    out = []
    for chunk_id, score in hits:
        row = rows.get(chunk_id)
        if row is None or req.visible(row.path, row.start_line, row.end_line):
            continue
        text = index.store.chunk_text(chunk_id) or ""
        out.append(Snippet(row.path, row.start_line, row.end_line, text, "retrieved", score))
        if len(out) == top_k:
            break
    others = [[shared_snippet(r, "retrieved") for r in found] for found in shared()] if shared else []
    return fuse([out, *others], top_k) if any(others) else out


@dataclass(frozen=True)
class _Sticky:
    """What a document's last prompt showed: kept so the next one starts with the same bytes."""

    definition: int  # the line ``definition_start`` gave
    first_line: int  # 0-based first line of the prefix window
    context: list[Snippet]


# Per document: its last prompt's head, so typing keeps it byte-identical and llama.cpp's cache valid.
_sticky: OrderedDict[tuple, _Sticky] = OrderedDict()
_sticky_lock = threading.Lock()
_STICKY_DOCS = 64


def _previous(key: tuple) -> _Sticky | None:
    with _sticky_lock:
        return _sticky.get(key)


def _remember(key: tuple, sticky: _Sticky) -> None:
    with _sticky_lock:
        _sticky[key] = sticky
        _sticky.move_to_end(key)
        while len(_sticky) > _STICKY_DOCS:
            _sticky.popitem(last=False)


def _in_previous_order(old: list[Snippet], fresh: list[Snippet]) -> list[Snippet]:
    """The fresh snippets, those already in the previous context first and in their previous
    order, new ones after them (nearest the cursor): the prompt is re-read from the first change."""
    fresh_by_label = {s.label: s for s in fresh}
    old_labels = {s.label for s in old}
    kept = [fresh_by_label[s.label] for s in old if s.label in fresh_by_label]
    return kept + [s for s in fresh if s.label not in old_labels]


def forget_document(index: Index, path: str | Path) -> None:
    """The editor closed the document: its prompt head goes, so the first request after it is
    opened again is a first one (by then the model's cache holds other prompts)."""
    root, rel = str(index.root), relative_path(index, path)
    with _sticky_lock:
        for key in [k for k in _sticky if k[0] == root and k[1] == rel]:
            del _sticky[key]


def clear_sticky_context() -> None:
    """Forget every document's last context (a workspace switch; benchmarks measuring ranking)."""
    with _sticky_lock:
        _sticky.clear()


def gather_context(
    index: Index, req: Cursor, full_text: str, recent: Iterable[str], budget: int, count_tokens
) -> list[Snippet]:
    """Definitions, then recent-file code, then retrieved chunks, fitted best-first to the
    budget and laid out best last (nearest the cursor, where a completion model looks)."""
    shared = shared_retrieval(index, req)
    candidates = [
        *definitions(index, req, full_text),
        *recent_snippets(index, req, recent),
        *retrieved(index, req, shared=shared),
    ]
    return fit(candidates, budget, count_tokens)[::-1]


# -- the request -------------------------------------------------------------------------------


def complete(
    index: Index,
    provider: Provider | None,
    path: str | Path,
    line: int,
    col: int,
    *,
    text: str | None = None,
    context_only: bool = False,
    mode: Mode = "auto",
    recent: Iterable[str] = (),
    cancel: threading.Event | None = None,
    budget_tokens: int | None = None,
    budget_ms: float = 0,
    arrived: float | None = None,
    invoked: bool = False,
) -> CompletionResult:
    """Complete at LINE:COL (1-based) of ``path``; ``text`` is the editor's unsaved buffer.

    ``provider`` may be None with ``context_only`` (no model is loaded or called). A model that
    fails, times out, is cancelled or answers garbage gives an empty completion, never an error.
    ``budget_ms`` (0: none) is the latency budget counted from ``arrived`` (a ``perf_counter``
    time; default now): it caps the prompt tokens the model may read for this request, from its
    measured speed. Over it, an invoked trigger gets a file-only prompt that fits (``over_budget``
    says why) and an automatic one reads its prompt anyway, stopped by ``cancel`` with its work
    kept (``warm_prompt`` is what to read ahead after the answer), but for a file's first one,
    which answers within FIRST_KEY_MS from the lines that fit (its whole prompt is read ahead).
    ``invoked``: the user asked, so any text the model writes is shown, even a next line.
    """
    started = time.perf_counter()
    arrived = started if arrived is None else arrived
    timings: dict[str, float] = {}
    rel = relative_path(index, path)
    if text is None:
        text = read_source(index.root / rel)[0]
    # Lone surrogates (undecodable bytes smuggled through) would make tokenizers raise; one
    # character each becomes "?", so columns keep their meaning.
    text = text.encode("utf-8", "replace").decode("utf-8")
    offset = cursor_offset(text, line, col)
    prefix, suffix = text[:offset], text[offset:]
    resolved = resolve_mode(mode, prefix, suffix)
    language = language_for(rel, text)
    meta = provider.metadata() if provider is not None else None
    # A server that infills itself (Ollama, llama.cpp's /infill) gets the text before the cursor
    # as a plain prompt and the suffix apart; it applies the model's own FIM template.
    infill = meta.infill if meta is not None else None
    family = fim.family_for(meta) if meta is not None and infill is None else None
    count = provider.count_tokens if provider is not None else approx_tokens
    scale = _prompt_scale(provider)
    if budget_tokens is None:
        budget_tokens = int(min(BUDGET_CAP, (meta.context_length if meta else 4096) // 4) * scale)
    recent = tuple(recent)
    # The prompt's head (context, then the file's window) stays byte-identical while the cursor
    # stays in one top-level definition, so a keystroke reads only what it adds; the context is
    # gathered again when the cursor enters another one, the window moves when it outgrows itself.
    key = (str(index.root), rel, recent, budget_tokens)
    previous, definition = _previous(key), definition_start(prefix)
    start = previous.first_line if previous is not None else None
    req = cursor_at(rel, language, prefix, suffix, line, int(PREFIX_CHARS * scale), start)
    cold = previous is None and provider is not None and budget_ms > 0 and not invoked
    if previous is not None and previous.definition == definition:
        context = previous.context
    elif cold:  # a file's first keystroke reads a file-only prompt; context comes with the next definition
        context = []
    else:  # a budget of 0 is a file-only prompt: no repository lookups at all
        fresh = gather_context(index, req, text, recent, budget_tokens, count) if budget_tokens > 0 else []
        context = _in_previous_order(previous.context if previous else [], fresh)
    if budget_tokens > 0 and not cold:  # the call being typed: its signature at the installed version
        found = dependency_snippets(index, req.prefix, text)
        context = with_dependencies(context, found, budget_tokens, count)
    _remember(key, _Sticky(definition, req.first_line - 1, context))
    timings["context_ms"] = _ms(started)
    template = family.name if family else f"server {infill}" if infill else "plain"
    result = CompletionResult("", context, timings, mode=resolved, template=template)
    if context_only or provider is None:
        timings["total_ms"] = _ms(started)
        return result

    parts = fim.PromptParts(rel, language, req.prefix, req.suffix, context, repo=index.root.name)
    prompt = fim.render(family, parts)
    result.warm_prompt = prompt
    result.prompt_tokens = provider.count_tokens(prompt)
    result.read_tokens = result.prompt_tokens - provider.cached_tokens(prompt)
    # An automatic trigger over budget reads its whole prompt all the same: the next keystroke
    # cancels it between two chunks and what it read stays cached, so typing only moves the cache
    # forward and a pause gets its answer (an editor asks once per change, never again at a pause).
    # A file's first one is the exception: its prompt is all cold, so it answers from the lines
    # that fit FIRST_KEY_MS and the whole prompt is read ahead after it (``warm_prompt``).
    budget = budget_ms if invoked else FIRST_KEY_MS if cold else 0
    allowed = _readable_tokens(provider, budget, arrived, resolved)
    if allowed is not None and result.read_tokens > allowed:
        result.over_budget = (
            f"over budget: {result.read_tokens} prompt tokens to read, {allowed} fit in {budget:g} ms"
        )
        prompt = _short_prompt(provider, family, parts, max(allowed, MIN_SHORT_PROMPT))
        if not prompt:
            timings["total_ms"] = _ms(started)
            return result
        result.context = []
        result.read_tokens = provider.count_tokens(prompt)
    stops = fim.stops(family)

    def block_done(so_far: str) -> bool:
        """The block being written ended and the model already wrote a line past it."""
        cut = postprocess.block_end(prefix, so_far, suffix, language)
        return cut is not None and "\n" in so_far[cut:].lstrip("\n").rstrip(" \t")

    deadline = arrived + FIRST_KEY_MS / 1000 if cold else None
    after = (_first_line(parts.suffix) if result.over_budget else parts.suffix) if infill else None
    raw, result.error = _generate(
        provider, prompt, after, stops, resolved, block_done, cancel, timings, started,
        next_line=invoked, deadline=deadline,
    )
    if cancel is not None and cancel.is_set():
        result.error = "cancelled"
        raw = ""
    result.raw = raw
    mark = time.perf_counter()
    result.completion = postprocess.clean(
        raw, prefix, suffix, language, multiline=resolved == "multi", stops=stops
    )
    if invoked and not result.completion and raw.strip():
        # Asked for, so shown: the cursor ends a line and the model went on with the next one.
        shown = postprocess.clean(raw, prefix, suffix, language, multiline=True, stops=stops)
        result.completion = shown if resolved == "multi" else _through_first_line(shown)
    timings["postprocess_ms"] = _ms(mark)
    if result.completion:
        mark = time.perf_counter()
        result.copied = find_copies(index, result.completion)
        timings["copied_ms"] = _ms(mark)
    timings["total_ms"] = _ms(started)
    return result


def _prompt_scale(provider: Provider | None) -> float:
    """The share of the full prompt (context and file window) a model gets: what it reads cold in
    WARM_SECONDS at the speed measured at load, at most all of it (a fixed figure, so the prompt
    head, and with it the model's cache, does not change while the average speed wavers)."""
    tps = provider.speed.first_prompt_tps if provider is not None else None
    if not tps:
        return 1.0
    return max(MIN_SCALE, min(1.0, tps * WARM_SECONDS / FULL_PROMPT_TOKENS))


def _readable_tokens(provider: Provider, budget_ms: float, arrived: float, mode: str) -> int | None:
    """Prompt tokens this request may read: the budget left after the time already spent and the
    expected generation, at the measured prompt speed; None when there is no limit."""
    if not budget_ms:
        return None
    left = budget_ms - _ms(arrived) - provider.speed.generation_ms(RESERVED_TOKENS[mode])
    readable = provider.speed.prompt_tokens_within(left)
    return None if readable is None else max(ALWAYS_READ, readable)


def _short_prompt(
    provider: Provider, family: fim.FimFamily | None, parts: fim.PromptParts, tokens: int
) -> str:
    """A prompt of at most ``tokens`` tokens: no context, the file's last lines before the cursor
    (and as much of what follows it as the format needs). Empty when nothing fits."""
    def size(prefix: str) -> int:
        return provider.count_tokens(fim.render(family, dataclasses.replace(parts, prefix=prefix)))

    parts = dataclasses.replace(parts, suffix=_first_line(parts.suffix), context=())
    lines = parts.prefix.split("\n")
    low, high = 0, len(lines)  # the last `low` lines fit; more than `high` do not
    while low < high:
        middle = (low + high + 1) // 2
        if size("\n".join(lines[-middle:])) <= tokens:
            low = middle
        else:
            high = middle - 1
    if low == 0:
        return ""
    return fim.render(family, dataclasses.replace(parts, prefix="\n".join(lines[-low:])))


def _first_line(text: str) -> str:
    """The text through its first line break (what a short prompt keeps of the suffix)."""
    return text[: text.find("\n") + 1] if "\n" in text else text


def _through_first_line(text: str) -> str:
    """Leading line breaks and the first line with something on it."""
    body = text.lstrip("\n")
    return text[: len(text) - len(body)] + body.split("\n", 1)[0]


def _generate(
    provider: Provider,
    prompt: str,
    suffix: str | None,
    stops: tuple[str, ...],
    mode: str,
    block_done: Callable[[str], bool],
    cancel: threading.Event | None,
    timings: dict[str, float],
    request_started: float,
    next_line: bool = False,
    deadline: float | None = None,
) -> tuple[str, str | None]:
    """Stream the completion; stop at the first newline in single-line mode (checked here, not
    as a stop string, so the first token is timed even when it is the newline) and as soon as the
    block is complete in multi-line mode. ``first_token_ms`` counts from the request's start (what
    the user waits); an empty answer's first token time is its end. ``next_line``: in single-line
    mode, line breaks before any text do not stop it (the line after the cursor's is wanted).
    ``suffix``: the text after the cursor, sent apart to a server that infills itself.
    ``deadline`` (a ``perf_counter`` time): past it a block ends with the first line it finishes
    (a file's first keystroke shows the lines written by then rather than wait for the block)."""
    started = time.perf_counter()
    pieces: list[str] = []
    try:
        with provider.complete(
            prompt, max_tokens=MAX_TOKENS[mode], stop=stops, cancel=cancel, suffix=suffix
        ) as stream:
            for delta in stream:
                if not pieces:
                    timings["first_token_ms"] = _ms(request_started)
                pieces.append(delta)
                if "\n" not in delta:
                    continue
                so_far = "".join(pieces)
                if mode == "multi" and block_done(so_far):
                    break
                line_done = bool(so_far[: so_far.rfind("\n")].strip())
                if mode == "single" and (not next_line or line_done):
                    break
                if deadline is not None and line_done and time.perf_counter() > deadline:
                    break
    except (LLMError, ValueError, RuntimeError) as exc:  # llama.cpp raises ValueError on overlong prompts
        return "", f"{type(exc).__name__}: {exc}" if not isinstance(exc, LLMError) else str(exc)
    finally:
        timings["generate_ms"] = _ms(started)
        timings.setdefault("first_token_ms", _ms(request_started))
    return "".join(pieces), None


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
