"""Build the dev set's ``history`` queries from the upstream git history (issue 19, item 1).

A commit message nobody here wrote is a query; the non-test source files the commit changed are
its relevant targets. The repository is still indexed as its pinned registry artifact
(``repos.json``); the upstream history (a bare git directory, e.g. from the search tool's
``fetch``) is read only here, at build time, to make labels, and only the labels are committed.

    python -m benchmarks.devset.build_history --mirrors /work/.mirror [--repos logrus,thor]

For each entry with a ``tag`` (the upstream tag or commit matching the artifact's version), the
builder walks the non-merge commits reachable from the tag, newest first, keeps the commits that
change 1 to 5 non-test source files which all exist in the artifact below ``root``, skips trivial
ones (releases, version or dependency bumps, typo/format/lint-only, reverts, merges), cleans the
message (trailers, URLs, issue refs, conventional prefixes, paths and identifiers quoted from the
changed files), and writes the newest ``SAMPLE`` usable ones to ``annotations/history/<name>.json``.
A repository whose history cannot be read, or whose tag is missing, is skipped with one line.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from benchmarks import devset
from benchmarks.corpora import Package, fetch
from benchmarks.metrics import path_matches

SAMPLE = 20  # newest eligible commits per repository
MAX_FILES = 5
MAX_QUERY_CHARS = 300
MIN_WORDS = 5


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


SOURCE_SUFFIXES = _words(
    ".py .pyi .pyx .js .mjs .cjs .jsx .ts .mts .cts .tsx .go .rs .rb .c .h .cc .cpp .cxx .c++ .hpp "
    ".hh .hxx .h++ .ipp .inl .tcc .java .kt .kts .scala .cs .php .lua .swift .ex .exs .hs .zig "
    ".dart .sh .bash .m .mm .pl .pm .ml .mli .fs .clj .erl .hrl .jl .vue .svelte"
)
# Folders whose files are not what a commit is about: tests, docs, examples, CI, vendored code.
SKIP_DIRS = _words(
    "test tests testing testdata test_data spec specs __tests__ __mocks__ fixtures fixture t doc "
    "docs documentation example examples sample samples benchmark benchmarks bench .github "
    ".circleci .gitlab ci vendor vendored third_party thirdparty third-party node_modules external "
    "deps"
)
TEST_NAME = re.compile(
    r"(^test_.*\.py$|_tests?\.(py|go|rb|rs|c|cc|cpp|exs?)$|_spec\.rb$|[._-](test|spec)\.[cm]?[jt]sx?$"
    r"|(Tests?|Spec|IT)\.(java|kt|scala|cs|swift|php)$|_unittest\.(cc|cpp)$|^conftest\.py$)"
)
GENERATED_NAME = re.compile(r"(\.min\.|_pb2\.py$|\.pb\.(go|cc|h)$|\.generated\.|^zz_generated|_generated\.)")

TRAILER = re.compile(
    r"^\s*(signed-off-by|co-authored-by|co-developed-by|reviewed-by|reviewed-on|acked-by|tested-by|"
    r"reported-by|suggested-by|helped-by|requested-by|cc|change-id|fixes|fix|closes|close|resolves|"
    r"resolve|refs?|see|see also|pr-url|pr|backport-of|cherry-picked-from|git-svn-id|bug|issue|"
    r"related|depends-on|original-commit|[a-z]+(-[a-z]+)+)\s*:.*$",
    re.IGNORECASE | re.MULTILINE,
)
CHERRY_PICK = re.compile(r"^\s*\(cherry picked from commit [0-9a-f]+\)\s*$", re.IGNORECASE | re.MULTILINE)
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
CHECKLIST = re.compile(r"^\s*(#+\s*checklist.*|[-*]\s*\[[ xX]\].*)$", re.IGNORECASE | re.MULTILINE)
CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
BACKTICKS = re.compile(r"`[^`\n]*`|`[^`'\n]*'|`")  # also `quoted' (old GNU style)
URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
ISSUE_REF = re.compile(
    r"(\b(fix(es|ed)?|close[sd]?|resolve[sd]?|see|refs?|for|in|via|from|issue|pr|pull request)\s+)?"
    r"(([\w.-]+/[\w.-]+)?#\d+\b|\b(gh|GH|issue|pr|PR)-\d+\b|\(\s*#?\d+\s*\))",
    re.IGNORECASE,
)
MARKDOWN_LINK = re.compile(r"^\s*\[[^\]]+\]:.*$|\[([^\]]*)\]\[[^\]]*\]|\[([^\]]*)\]\([^)]*\)", re.MULTILINE)
# "Update changelog", and the default message of an edit on the forge's web page ("Update x.js").
CHORE_LINE = re.compile(
    r"^\s*[-*]?\s*((update|add|fix|updated|added)\s+(the\s+)?(changelog|changes|tests?|docs?|authors|news)\.?"
    r"|(update|create|delete|rename)\s+[\w./-]+\.\w+)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
HEADING = re.compile(r"^\s*#{1,6}\s.*$", re.MULTILINE)  # a pull-request template's "## Description"
MENTION = re.compile(r"(?<![\w.])@[A-Za-z0-9][\w-]*")  # @someone (and @Annotations: code)
REF_URL = re.compile(
    r"\b(fix(es|ed)?|close[sd]?|resolve[sd]?|see|refs?)\s*:?\s+(https?://\S+)", re.IGNORECASE
)
GENERIC_ARGS = re.compile(r"<\s*[\w, ]{0,30}\s*>")  # <T>, <K, V>, and the <> an identifier left
REPEAT = re.compile(r"\b(\w.{14,}?)\s+\1(?!\w)")  # a squashed pull request's title, said twice
# ``fix(x):``, ``feat:``, ``fix(x)`` and leading tags (``[Console]``); a bare ``Word:`` only if short.
CONVENTIONAL = re.compile(r"^\s*(\[[^\]]{1,30}\]\s*)*([A-Za-z]+(\([^)]{0,40}\)!?:?|!?:)\s+)?")
COMMIT_HASH = re.compile(r"\b[0-9a-f]{7,40}\b")
BRACKET_TAG = re.compile(r"\[(skip ci|ci skip|no ci|wip|skip-ci)\]", re.IGNORECASE)
# A path: has a slash between word characters, or ends in a file suffix (``lib/x.js``, ``logger.h``).
PATH_TOKEN = re.compile(r"(?<![\w/])\.{0,2}/?[\w.-]+(/[\w.-]+)+/?|\b[\w-]+\.(?:[a-z]{1,4}\+{0,2})\b")
CODE_TOKEN = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|->|#)[A-Za-z_$][\w$]*)*(?:\(\))?")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
STOPWORDS = _words(
    "a an the to of in on for and or but is are was were be been it its this that with as by at "
    "from into when if not no so do does did we i you they he she them our your"
)
TRIVIAL = re.compile(
    r"^(revert|merge|release|prepare|bump|version|v?\d+(\.\d+)+)\b"
    r"|\b(typos?|spelling|misspell\w*|gofmt|rustfmt|clang-format|prettier|eslint|rubocop|php-cs-fixer|"
    r"black|isort|flake8|pylint|lint(ing|er)?|whitespace|reformat\w*|formatting|code style|dependabot|"
    r"renovate|deps|dependenc(y|ies)|changelog|copyright|license header|pre-commit)\b"
    r"|\b(bump|update|upgrade)\b.{0,40}\b(version|to v?\d+(\.\d+)+)",
    re.IGNORECASE,
)
MERGED_PR = re.compile(r"\bthis pr was merged into\b", re.IGNORECASE)  # symfony's linear merges
TRIVIAL_TYPES = frozenset(
    {"chore", "style", "release", "build", "ci", "docs", "doc", "test", "tests", "revert"}
)


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str
    files: tuple[str, ...]  # every path the commit touched (no rename detection)


def is_source(path: str) -> bool:
    """A non-test, non-doc, non-vendored, non-generated source file, by path alone."""
    pure = PurePosixPath(path)
    if pure.suffix.lower() not in SOURCE_SUFFIXES and pure.suffix not in SOURCE_SUFFIXES:
        return False
    if any(part.lower() in SKIP_DIRS for part in pure.parts[:-1]):
        return False
    return not TEST_NAME.search(pure.name) and not GENERATED_NAME.search(pure.name)


def is_trivial(message: str) -> bool:
    """Release, bump, typo/format/lint-only, revert, merge and dependency commits, by their subject."""
    subject = message.strip().splitlines()[0] if message.strip() else ""
    kind = re.match(r"^\s*([A-Za-z]+)(\([^)]*\)!?:?|!?:)", subject)
    if kind and kind.group(1).lower() in TRIVIAL_TYPES:
        return True
    return bool(
        TRIVIAL.search(CONVENTIONAL.sub("", subject)) or TRIVIAL.search(subject) or MERGED_PR.search(message)
    )


def _is_identifier(token: str) -> bool:
    """camelCase, PascalCase with an inner capital, snake_case, or qualified (``a.b``, ``A::b``)."""
    name = token.removesuffix("()")
    return (
        "_" in name.strip("_")
        or bool(re.search(r"[a-z0-9][A-Z]", name))
        or any(sep in name for sep in (".", "::", "->", "#"))
    )


def clean_message(message: str, code: str = "") -> str:
    """The commit message as a query: no trailers, URLs, refs, prefixes, paths, quoted code.

    ``code`` is the text of the changed files (and the diff); camelCase/snake_case/qualified
    tokens that occur in it are quoted identifiers and are dropped, as are backticked spans and
    tokens written as calls (``f()``); with no ``code`` every such token is. Whitespace collapses;
    the result is cut at a word boundary.
    """
    text = HTML_COMMENT.sub(" ", message)
    text = CHERRY_PICK.sub("", TRAILER.sub("", text))
    text = CHECKLIST.sub("", text)
    text = CODE_BLOCK.sub(" ", text)
    text = BACKTICKS.sub(" ", text)
    text = MARKDOWN_LINK.sub(lambda m: m.group(1) or m.group(2) or "", text)
    text = URL.sub(" ", REF_URL.sub(" ", text))
    text = MENTION.sub(" ", HEADING.sub("", text))
    text = CHORE_LINE.sub("", BRACKET_TAG.sub(" ", text))
    # Squashed pull requests repeat the subject as a bullet of the body: keep each line once.
    lines: list[str] = []
    for line in text.strip().splitlines():
        line = CONVENTIONAL.sub("", re.sub(r"^\s*[-*]\s+", "", line))
        if not line.strip() or line.strip().lower() not in {seen.strip().lower() for seen in lines}:
            lines.append(line)
    text = "\n".join(lines)
    text = COMMIT_HASH.sub(" ", ISSUE_REF.sub(" ", text))
    text = re.sub(r"(?<=\w)#(?!\w)", "", text)  # "PR#" whose number went with the reference
    text = PATH_TOKEN.sub(lambda m: " " if _looks_like_path(m.group(0)) else m.group(0), text)

    def drop_code(m: re.Match[str]) -> str:
        token = m.group(0)
        if token.endswith("()"):
            return " "
        core = token.rstrip(".")
        if _is_identifier(core) and (not code or _occurs(core, code)):
            return " "
        return token

    text = GENERIC_ARGS.sub(" ", CODE_TOKEN.sub(drop_code, text))
    text = re.sub(r"^\s*[-*>]+\s*", "", text, flags=re.MULTILINE)  # list bullets, quotes
    text = re.sub(r"[ \t]*\n[ \t]*", " ", text)
    text = re.sub(r"\(\s*\)|\[\s*\]|\s+([,.;:!?])", lambda m: m.group(1) or "", text)
    text = re.sub(r"\s{2,}", " ", text).strip(" -:;,")
    while REPEAT.search(text):
        text = REPEAT.sub(r"\1", text)
    if len(text) > MAX_QUERY_CHARS:
        text = text[:MAX_QUERY_CHARS].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return text


def _looks_like_path(token: str) -> bool:
    """``a/b``, ``./x``, ``file.ext``; not a version (``1.2.3``), not ``e.g``/``i.e``, not ``and/or``."""
    stripped = token.strip("./")
    if not stripped or re.fullmatch(r"[\d.]+", stripped) or stripped.lower() in {"e.g", "i.e", "etc"}:
        return False
    if "/" in stripped:
        parts = [p for p in stripped.split("/") if p]
        return not all(p.isalpha() and p.islower() and len(p) <= 4 for p in parts)  # "and/or", "r/w"
    suffix = "." + stripped.rsplit(".", 1)[-1]
    return suffix.lower() in SOURCE_SUFFIXES or suffix in {".json", ".md", ".yml", ".yaml", ".toml", ".txt"}


def _occurs(token: str, code: str) -> bool:
    """Whether ``token`` (or, for a qualified name, any of its parts) is written in ``code``."""
    parts = re.split(r"\.|::|->|#", token)
    return any(p and re.search(rf"(?<![\w$]){re.escape(p)}(?![\w$])", code) for p in [token, *parts])


def meaningful_words(query: str) -> int:
    """Distinct words of two or more letters that are not stopwords ("Add Add Add" is one)."""
    return len({w.lower() for w in WORD.findall(query) if len(w) > 1 and w.lower() not in STOPWORDS})


# --- git ----------------------------------------------------------------------------------------


class HistoryError(RuntimeError):
    """The upstream history cannot be read (missing directory, tag or object)."""


def _git(git_dir: Path, *args: str) -> str:
    proc = subprocess.run(["git", "--git-dir", str(git_dir), *args], capture_output=True)
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise HistoryError(lines[-1] if lines else f"git {args[0]} failed")
    return proc.stdout.decode("utf-8", "replace")


def commits(git_dir: Path, tag: str) -> list[Commit]:
    """Non-merge commits reachable from ``tag``, newest first, with the paths each touched."""
    if not git_dir.is_dir():
        raise HistoryError(f"no git directory at {git_dir}")
    try:
        _git(git_dir, "rev-parse", "--verify", "--quiet", f"{tag}^{{commit}}")
    except HistoryError:
        raise HistoryError(f"tag or commit {tag!r} is not in the history") from None
    raw = _git(git_dir, "log", "--no-merges", "--no-renames", "--format=%x1e%H%x1f%B%x1f", "--name-only", tag)
    out = []
    for record in raw.split("\x1e")[1:]:
        sha, message, names = record.split("\x1f")
        out.append(Commit(sha, message.strip(), tuple(n for n in names.splitlines() if n.strip())))
    return out


def changed_code(git_dir: Path, commit: Commit, paths: list[str]) -> str:
    """The changed files as the commit left them, plus its diff (for identifiers it removed)."""
    texts = [_git(git_dir, "show", "--format=", commit.sha, "--", *paths)]
    for path in paths:
        try:
            texts.append(_git(git_dir, "show", f"{commit.sha}:{path}"))
        except HistoryError:
            continue  # deleted by the commit; its old text is in the diff
    return "\n".join(texts)


# --- one repository -----------------------------------------------------------------------------


def artifact_files(entry: dict) -> list[str]:
    """The annotation paths (``prefix`` + path below ``root``) of every file in the artifact."""
    root = fetch(Package(entry["registry"], entry["package"], entry["version"]), log=_log) / entry["root"]
    if not root.is_dir():
        raise HistoryError(f"artifact has no folder {entry['root']!r}")
    prefix = entry["prefix"].strip("/")
    return sorted(
        f"{prefix}/{p.relative_to(root).as_posix()}" if prefix else p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file()
    )


def target_path(entry: dict, upstream_path: str) -> str | None:
    """The annotation path of an upstream file, or None if it lies outside the indexed folder."""
    upstream_root = entry.get("upstream_root", entry["prefix"]).strip("/")
    if upstream_root and not upstream_path.startswith(upstream_root + "/"):
        return None
    below = upstream_path[len(upstream_root) + 1 :] if upstream_root else upstream_path
    prefix = entry["prefix"].strip("/")
    return f"{prefix}/{below}" if prefix else below


def unique_match(target: str, files: list[str]) -> bool:
    """semble's suffix match finds exactly one file of the artifact for ``target``."""
    return sum(1 for f in files if path_matches(f, target)) == 1


@dataclass
class Built:
    items: list[dict]
    eligible: int  # commits that passed the file filters
    dropped_targets: int  # kept commits dropped because a target did not match exactly one file


def build(entry: dict, git_dir: Path, sample: int = SAMPLE) -> Built:
    """The newest ``sample`` history queries of one repository."""
    history = commits(git_dir, entry["tag"])  # first: an unreadable history fetches no artifact
    files = artifact_files(entry)
    present = set(files)
    items: list[dict] = []
    seen: set[str] = set()
    eligible = dropped = 0
    for commit in history:
        if len(items) >= sample:
            break
        sources = sorted({f for f in commit.files if is_source(f)})
        if not 1 <= len(sources) <= MAX_FILES or is_trivial(commit.message):
            continue
        targets = [target_path(entry, f) for f in sources]
        if any(t is None or t not in present for t in targets):
            continue
        eligible += 1
        if not all(unique_match(t, files) for t in targets):  # type: ignore[arg-type]
            dropped += 1
            continue
        query = clean_message(commit.message, changed_code(git_dir, commit, sources))
        if meaningful_words(query) < MIN_WORDS or query.lower() in seen:
            continue
        seen.add(query.lower())
        items.append({"query": query, "relevant": targets, "secondary": [], "category": "history"})
    return Built(items, eligible, dropped)


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def write(name: str, items: list[dict]) -> Path:
    """One query a line, as the hand-written annotation files are laid out."""
    devset.HISTORY.mkdir(parents=True, exist_ok=True)
    path = devset.HISTORY / f"{name}.json"
    lines = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in items)
    path.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.devset.build_history", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--mirrors",
        type=Path,
        required=True,
        help="folder of bare upstream repositories, "
        "one per entry at <owner>+<name>/repo (the layout the search tool's fetch makes)",
    )
    parser.add_argument(
        "--repos", metavar="NAMES", help="comma-separated entries (default: every entry with a tag)"
    )
    parser.add_argument("--sample", type=int, default=SAMPLE)
    args = parser.parse_args(argv)
    wanted = {n.strip() for n in args.repos.split(",")} if args.repos else None
    for entry in devset.manifest():
        if wanted is not None and entry["name"] not in wanted:
            continue
        name = entry["name"]
        if not entry.get("tag"):
            print(f"{name}: skipped, no upstream tag in repos.json")
            continue
        git_dir = args.mirrors / entry["upstream"].replace("/", "+") / "repo"
        try:
            built = build(entry, git_dir, args.sample)
        except (HistoryError, RuntimeError, OSError) as exc:
            reason = str(exc).strip().splitlines()
            print(f"{name}: skipped, {reason[0] if reason else type(exc).__name__}")
            continue
        if not built.items:
            print(
                f"{name}: skipped, no usable commit at {entry['upstream']}@{entry['tag']} "
                f"({built.eligible} eligible commits seen)"
            )
            continue
        path = write(name, built.items)
        print(
            f"{name}: {len(built.items)} queries from {entry['upstream']}@{entry['tag']} "
            f"({built.eligible} eligible commits seen, {built.dropped_targets} dropped for an ambiguous "
            f"target) -> {path.relative_to(devset.DEVSET_DIR)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
