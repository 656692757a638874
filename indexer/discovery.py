"""Which files of a workspace get indexed.

The files git would track (``.gitignore`` respected; non-git folders walked with the same
rules), minus ``.raglsignore`` and ``index.exclude`` patterns, minus a built-in deny list of
secret-bearing files that are never indexed or sent anywhere, minus binaries, minified or
generated files and files over the size limit. Every skipped file gets a reason, so the CLI
and the tests can say why a file is missing.

Symlinks are followed only inside the repository (the git top level, else the indexed root): a
link that leaves it, dangles, loops or names a device, FIFO or socket is skipped with its reason.
Each real file is indexed once: under its own path when that path is indexed too (the path git
tracks and the language server resolves an editor's link to), else under the first link path
that reaches it. Folder links are walked like folders, once per real folder.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

# Never indexed, never read into a prompt: they hold credentials far more often than code.
SECRET_PATTERNS = [
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.kdbx",
    ".netrc",
    ".pgpass",
    ".htpasswd",
    ".npmrc",
    ".pypirc",
    "credentials",
    "credentials.*",
    "*credentials*.json",
    "secrets.*",
    "*.secret",
    "*.secrets",
    "service-account*.json",
    ".git-credentials",
    ".aws/credentials",
    ".docker/config.json",
]

# Folders that are never source, even when a repository forgot to ignore them.
ALWAYS_SKIPPED_DIRS = [
    ".git/",
    ".hg/",
    ".svn/",
    ".ragls/",
    "node_modules/",
    "__pycache__/",
    ".venv/",
    ".tox/",
]

# Files whose content is machine-written: lock files and the like drown real code in search.
GENERATED_PATTERNS = [
    "*.min.js",
    "*.min.css",
    "*.map",
    "*.lock",
    "package-lock.json",
    "pnpm-lock.yaml",
    "*_pb2.py",
    "*.pb.go",
    "*.generated.*",
]

# What editors and merge tools write beside the code: a stale copy competes with the real file in
# every retrieval. Unsaved buffers reach the index through the server (didChange), never these.
# They sit in the same gitignore-style list as .raglsignore, before it, so a workspace can take
# one back with a negation there or in index.exclude (``!*.orig``).
SCRATCH_PATTERNS = [
    r"\#*#",  # Emacs autosave (a leading "#" would be a comment)
    ".#*",  # Emacs lock link
    "*~",  # Emacs and Vim backups, Vim undo files (.x.un~)
    ".*.sw[a-p]",  # Vim swap files (.x.swp, .x.swo, ...)
    "4913",  # Vim's probe that a folder is writable
    "*___jb_tmp___",  # JetBrains safe-write
    "*___jb_old___",
    "*.vsctmp",  # VS Code atomic save
    "*.orig",  # merge and patch leftovers
    "*.rej",
    "*.BACKUP.*",
    "*.BASE.*",
    "*.LOCAL.*",
    "*.REMOTE.*",
    "*_BACKUP_[0-9]*",  # git mergetool's names
    "*_BASE_[0-9]*",
    "*_LOCAL_[0-9]*",
    "*_REMOTE_[0-9]*",
]
SCRATCH_REASON = "editor scratch file or merge leftover"

LINK_LEAVES = "symlink leaves the repository (not followed)"
LINK_DANGLING = "dangling symlink"
LINK_LOOP = "symlink loop"
LINK_SPECIAL = "symlink to a device, FIFO or socket"
LINKS_NOT_FOLLOWED = (LINK_LEAVES, LINK_DANGLING, LINK_LOOP, LINK_SPECIAL)
DUPLICATE = "same file as {} (indexed there)"

BINARY_SNIFF_BYTES = 8192
MINIFIED_LINE_CHARS = 1000  # an average line this long means minified or data, not code


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Discovery:
    files: list[str]  # relative, '/'-separated, sorted
    skipped: list[Skipped]


def _spec(patterns: Iterable[str]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def _read_patterns(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def in_git(root: Path) -> bool:
    """Whether git decides what is ignored under root.

    False outside a work tree, and for a folder git ignores as a whole (a vendored tree, a
    benchmark corpus inside another repository): that one is walked as if git were absent.
    """
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"], capture_output=True, timeout=30
        )
        ignored = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "-q", "."], capture_output=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return inside.returncode == 0 and inside.stdout.strip() == b"true" and ignored.returncode != 0


def _git_files(root: Path) -> list[str]:
    """Tracked files plus untracked files git does not ignore."""
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    names = {os.fsdecode(n) for n in out.split(b"\0") if n}
    return sorted(n for n in names if (root / n).is_file() or (root / n).is_symlink())


def _walk_files(root: Path, start: Path | None = None) -> Iterator[str]:
    """Every file below ``start`` (default: root), as paths relative to root, honouring nested
    .gitignore files; symlinks (to folders too) are yielded, not entered: the caller decides."""
    stack: list[tuple[Path, list[tuple[str, pathspec.GitIgnoreSpec]]]] = [(start or root, [])]
    while stack:
        folder, specs = stack.pop()
        ignore_file = folder / ".gitignore"
        if ignore_file.is_file():
            base = folder.relative_to(root).as_posix()
            specs = [*specs, ("" if base == "." else base + "/", _spec(_read_patterns(ignore_file)))]
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            rel = Path(entry.path).relative_to(root).as_posix()
            is_dir = entry.is_dir(follow_symlinks=False)
            probe = rel + "/" if is_dir else rel
            if any(probe.startswith(base) and spec.match_file(probe[len(base) :]) for base, spec in specs):
                continue
            if is_dir:
                stack.append((Path(entry.path), specs))
            elif entry.is_symlink() or entry.is_file(follow_symlinks=False):
                yield rel  # never FIFOs, sockets or devices: reading one could block forever


class Rules:
    """The skip rules of one workspace, built once and applied to many paths."""

    def __init__(self, root: Path, max_file_bytes: int, exclude: Iterable[str] = ()) -> None:
        self.root = root.resolve()
        self.max_file_bytes = max_file_bytes
        self.ignore = _spec(
            [*ALWAYS_SKIPPED_DIRS, *SCRATCH_PATTERNS, *_read_patterns(self.root / ".raglsignore"), *exclude]
        )
        self.scratch = _spec(SCRATCH_PATTERNS)
        self.secret = _spec(SECRET_PATTERNS)
        self.generated = _spec(GENERATED_PATTERNS)
        self.in_git = in_git(self.root)
        self.top = _git_top(self.root) if self.in_git else self.root  # where links may point

    def is_scratch(self, rel: str) -> bool:
        """An editor's scratch file the workspace has not taken back (the watcher drops its events)."""
        return self.scratch.match_file(rel) and self.ignore.match_file(rel)

    def skip_reason(self, rel: str, linked: bool | None = None) -> str | None:
        """Why ``rel`` is not indexed (ignoring .gitignore, which the caller applies), or None.
        ``linked``: whether the path goes through a symlink, when the caller knows (a scan does)."""
        if self.ignore.match_file(rel):
            return SCRATCH_REASON if self.scratch.match_file(rel) else "ignored"
        if self.secret.match_file(rel):
            return "secret-bearing file (never indexed)"
        if self.generated.match_file(rel):
            return "generated"
        path = self.root / rel
        target = path if linked is False else real(path)  # resolved once: the checks ask the target
        if linked is None:
            linked = path.is_symlink() or target != path  # a loop resolves to itself
        if linked:
            problem = self.link_problem(target)
            if problem:
                return problem
            if target.is_dir():
                return "symlink to a folder"
            seen_as = target.relative_to(self.top).as_posix()
            if self.secret.match_file(seen_as):
                return "secret-bearing file (never indexed)"
            if self.generated.match_file(seen_as):
                return "generated"
        return sniff(path, self.max_file_bytes)

    def link_problem(self, target: Path) -> str | None:
        """Why a path that goes through a symlink and resolves to ``target`` (:func:`real`) is not
        followed, or None. A loop or a missing link leaves the resolved path unresolved there, so
        one ``stat`` of it tells them apart."""
        try:
            mode = os.stat(target).st_mode
        except OSError as exc:
            return LINK_LOOP if exc.errno == errno.ELOOP else LINK_DANGLING
        if not target.is_relative_to(self.top):
            return LINK_LEAVES
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return LINK_SPECIAL
        return None

    def duplicate_of(self, rel: str) -> str | None:
        """The path a linked file is indexed under when that is its own path in the root (the
        watcher's rule for one path; ``discover`` applies it to the whole tree)."""
        path = self.root / rel
        target = real(path)
        if target == path or not target.is_relative_to(self.root):
            return None
        own = target.relative_to(self.root).as_posix()
        if self.skip_reason(own) or git_ignored(self, [own]):
            return None
        return own

    def split(self, rels: Iterable[str], linked: set[str] | frozenset[str] = frozenset()) -> Discovery:
        """Indexable and skipped among ``rels``; ``linked`` names those reached through a link."""
        files: list[str] = []
        skipped: list[Skipped] = []
        for rel in rels:
            reason = self.skip_reason(rel, rel in linked)
            if reason:
                skipped.append(Skipped(rel, reason))
            else:
                files.append(rel)
        return Discovery(sorted(files), skipped)


def discover(rules: Rules) -> Discovery:
    """List the indexable files of the workspace and why the others were skipped."""
    candidates = _git_files(rules.root) if rules.in_git else list(_walk_files(rules.root))
    rels, linked, refused = expand_links(rules, candidates)
    found = rules.split(rels, linked)
    files, duplicates = _once_each(rules.root, found.files, linked)
    return Discovery(files, [*refused, *found.skipped, *duplicates])


def expand_links(rules: Rules, rels: Iterable[str]) -> tuple[list[str], set[str], list[Skipped]]:
    """Replace each link to a folder inside the repository by the files below it (walked once per
    real folder; a link into a folder that holds it is a loop); other links pass through.
    Returns the paths, those of them reached through a link, and the folder links refused."""
    out: list[str] = []
    linked: set[str] = set()
    refused: list[Skipped] = []
    walked: dict[Path, str] = {}
    queue = deque((rel, False) for rel in rels)
    while queue:
        rel, below_link = queue.popleft()
        path = rules.root / rel
        is_link = path.is_symlink()
        if is_link or below_link:
            linked.add(rel)
        if not (is_link and path.is_dir()):
            out.append(rel)
            continue
        target = real(path)
        problem = rules.link_problem(target)
        if problem is None and real(path.parent).is_relative_to(target):
            problem = LINK_LOOP
        if problem is None and target in walked:
            problem = f"same folder as {walked[target]} (indexed there)"
        if problem:
            refused.append(Skipped(rel, problem))
            continue
        walked[target] = rel
        queue.extend((below, True) for below in _walk_files(rules.root, path))
    return out, linked, refused


def _once_each(root: Path, rels: list[str], linked: set[str]) -> tuple[list[str], list[Skipped]]:
    """One path per real file: its own path when indexed, else the first link path reaching it."""
    base = str(root)
    by_target: dict[str, list[str]] = {}
    for rel in sorted(rels):
        full = os.path.join(base, rel)
        by_target.setdefault(os.path.realpath(full) if rel in linked else full, []).append(rel)
    files: list[str] = []
    duplicates: list[Skipped] = []
    for names in by_target.values():
        keep = next((n for n in names if n not in linked), names[0])
        files.append(keep)
        duplicates.extend(Skipped(n, DUPLICATE.format(keep)) for n in names if n != keep)
    return sorted(files), duplicates


def real(path: Path) -> Path:
    """Where a path leads, links followed; never raises (a loop resolves to itself, and the link
    checks report it)."""
    return Path(os.path.realpath(path))


def _git_top(root: Path) -> Path:
    try:
        command = ["git", "-C", str(root), "rev-parse", "--show-toplevel"]
        top = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return root
    return Path(top).resolve() if top else root


def git_ignored(rules: Rules, rels: list[str]) -> set[str]:
    """Which of ``rels`` .gitignore rules exclude (for single files the watcher reports)."""
    if not rels:
        return set()
    if not rules.in_git:
        return {r for r in rels if _walk_ignored(rules.root, r)}
    proc = subprocess.run(
        ["git", "-C", str(rules.root), "check-ignore", "-z", "--stdin"],
        input=b"\0".join(os.fsencode(r) for r in rels) + b"\0",
        capture_output=True,
        timeout=60,
    )
    return {os.fsdecode(n) for n in proc.stdout.split(b"\0") if n}


def _walk_ignored(root: Path, rel: str) -> bool:
    """.gitignore rules of every folder from root down to rel, for workspaces outside git."""
    parts = rel.split("/")
    for depth in range(len(parts)):
        ignore_file = root.joinpath(*parts[:depth]) / ".gitignore"
        if ignore_file.is_file() and _spec(_read_patterns(ignore_file)).match_file("/".join(parts[depth:])):
            return True
    return False


def sniff(path: Path, max_file_bytes: int) -> str | None:
    """Why a file's content makes it unfit for the index (size, binary, minified), or None."""
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            return f"larger than index.max_file_bytes ({size} > {max_file_bytes})"
        with path.open("rb") as f:
            head = f.read(BINARY_SNIFF_BYTES)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if b"\0" in head:
        return "binary"
    lines = head.count(b"\n") + 1
    if len(head) >= 2 * MINIFIED_LINE_CHARS and len(head) / lines > MINIFIED_LINE_CHARS:
        return "minified or single-line data"
    return None
