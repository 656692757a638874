"""``python -m benchmarks.replay.build``: derive typing sessions from upstream history.

For each dev-set repository (``benchmarks/devset/repos.json``) the upstream git history (a bare
clone, e.g. the search tool's ``fetch github:owner/name`` under ``/work/.mirror/``) is walked up to
the commit the registry artifact was released from (its version's tag; the newest commit when no
tag matches). Every hunk of a non-merge commit that only *adds* 1-15 lines to an existing source
file is a candidate; it is kept when those lines occur exactly once, verbatim and consecutive, in
the artifact's copy of the file. At most ``--per-repo`` candidates per repository are kept (a
stride sample over path and line order, so every part of a repository is represented), and the
descriptors are written to ``benchmarks/replay/sessions.json``. The history is read only here,
at build time; the replay needs the registry artifacts alone. Deterministic: the same mirrors and
artifacts give the same file.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import devset
from benchmarks.corpora import Package, fetch, stride_sample
from benchmarks.replay.sessions import SESSIONS_FILE, Session, block_sha1, dump, edit_for, find_block

MIRRORS = Path("/work/.mirror")
MAX_LINES = 15
MIN_CHARS = 8  # non-blank characters in a block: fewer is a brace or a blank line, not typing
MAX_FILE_BYTES = 200_000
PER_REPO = 36
# Source files of each dev-set language (a header of a C++ library is C++).
EXTENSIONS = {
    "python": (".py",),
    "javascript": (".js", ".mjs", ".cjs"),
    "typescript": (".ts", ".tsx"),
    "go": (".go",),
    "rust": (".rs",),
    "ruby": (".rb",),
    "c": (".c", ".h"),
    "cpp": (".h", ".hpp", ".cc", ".cpp"),
    "lua": (".lua",),
    "java": (".java",),
    "php": (".php",),
}
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Addition:
    commit: str
    path: str  # upstream path
    lines: list[str]


def git(git_dir: Path, *args: str) -> str:
    proc = subprocess.run(["git", "--git-dir", str(git_dir), *args], capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode("utf-8", errors="replace")


def release_commit(git_dir: Path, version: str) -> str:
    """The commit the artifact was made from: ``v1.9.0``/``1.9.0`` for Debian's ``1.9.0-1``, the
    hash in a Debian snapshot version (``1.0.6~git20210604-d5e0c0615ace-1``), else HEAD."""
    snapshot = re.search(r"~git\d+[.-]([0-9a-f]{7,40})", version)
    core = re.match(r"(?:\d+:)?(\d+(?:\.\d+)*)", version)
    candidates = [snapshot.group(1)] if snapshot else []
    if core:
        candidates += [f"v{core.group(1)}", core.group(1)]
    for rev in candidates:
        proc = subprocess.run(
            ["git", "--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            return proc.stdout.strip()
    return git(git_dir, "rev-parse", "HEAD").strip()


def additions(git_dir: Path, rev: str, folder: str) -> Iterator[Addition]:
    """Pure insertions (no line removed in the hunk) into files that existed before the commit,
    newest commit first."""
    out = git(
        git_dir, "log", "--no-merges", "--diff-filter=M", "--no-renames", "-p", "-U0", "--no-color",
        "--format=@@@commit %H", rev, "--", folder or ".",
    )  # fmt: skip
    commit = path = ""
    block: list[str] | None = None
    expected = 0
    for line in out.split("\n"):
        if block is not None:
            if line.startswith("+") and len(block) < expected:
                block.append(line[1:])
                if len(block) == expected:
                    yield Addition(commit, path, block)
                    block = None
                continue
            block = None
        if line.startswith("@@@commit "):
            commit = line.split()[1]
        elif line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else ""
        elif line.startswith("@@ ") and path:
            m = _HUNK.match(line)
            if m and m.group(1) == "0":
                expected = int(m.group(3) or 1)
                block = [] if 1 <= expected <= MAX_LINES else None


def upstream_folder(entry: dict) -> str:
    """The upstream path of the artifact's root: ``prefix``, except where the root is the whole
    repository (``prefix`` is then the repository's name, as the dev set's README says)."""
    prefix = entry["prefix"].strip("/")
    return "" if prefix == entry["upstream"].split("/")[1].lower() else prefix


def meaningful(block: list[str]) -> bool:
    return sum(len(line.strip()) for line in block) >= MIN_CHARS and any(c.isalnum() for c in "".join(block))


def candidates(entry: dict, root: Path, git_dir: Path) -> tuple[str, list[Session]]:
    rev = release_commit(git_dir, entry["version"])
    folder = upstream_folder(entry)
    suffixes = EXTENSIONS[entry["language"]]
    texts: dict[str, list[str] | None] = {}
    found: dict[tuple[str, int, int], Session] = {}
    for add in additions(git_dir, rev, folder):
        rel = add.path[len(folder) + 1 :] if folder else add.path
        if (folder and not add.path.startswith(folder + "/")) or not rel.endswith(suffixes):
            continue
        if rel not in texts:
            texts[rel] = _lines(root / rel)
        lines = texts[rel]
        if lines is None or not meaningful(add.lines):
            continue
        where = find_block(lines, add.lines)
        if len(where) != 1:
            continue
        start, end = where[0] + 1, where[0] + len(add.lines)
        try:
            before = edit_for("\n".join(lines), start, end).before
        except ValueError:
            continue
        if not before.strip():
            continue
        session = Session(
            entry["name"], entry["language"], rel, start, end, add.commit, block_sha1(add.lines)
        )
        found.setdefault((rel, start, end), session)  # the newest commit that added these lines
    return rev, sorted(found.values(), key=lambda s: (s.path, s.start, s.end))


def _lines(path: Path) -> list[str] | None:
    """The file's lines, or None when it cannot be a session's file (missing, big, not UTF-8, CRLF)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES or b"\r" in data:
        return None
    try:
        return data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return None


def mirror(entry: dict, mirrors: Path) -> Path:
    return mirrors / entry["upstream"].replace("/", "+") / "repo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replay.build", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--mirrors", type=Path, default=MIRRORS, help="folder of owner+name/repo bare clones")
    parser.add_argument("--per-repo", type=int, default=PER_REPO, help="sessions kept per repository at most")
    parser.add_argument("--out", type=Path, default=SESSIONS_FILE)
    args = parser.parse_args(argv)
    sessions: list[Session] = []
    for entry in devset.manifest():
        git_dir = mirror(entry, args.mirrors)
        if not git_dir.is_dir():
            print(f"{entry['name']}: skipped, no history at {git_dir}", file=sys.stderr)
            continue
        package = Package(entry["registry"], entry["package"], entry["version"])
        root = fetch(package, lambda m: print(m, file=sys.stderr)) / entry["root"]
        try:
            rev, found = candidates(entry, root, git_dir)
        except RuntimeError as exc:
            print(f"{entry['name']}: skipped, {exc}", file=sys.stderr)
            continue
        kept = stride_sample(found, args.per_repo)
        sessions += kept
        print(f"{entry['name']} ({entry['language']}) at {rev[:12]}: {len(found)} blocks, kept {len(kept)}",
              file=sys.stderr)  # fmt: skip
    dump(sessions, args.out)
    languages = len({s.language for s in sessions})
    print(f"{len(sessions)} sessions in {languages} languages written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
