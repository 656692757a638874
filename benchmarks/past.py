"""An earlier commit's code, importable as ``ragls`` by a child process, so one benchmark run can
compare "ragls before this change" with the working tree side by side on the same machine load.

The commit is read from this repository's own history (``git archive``), laid out as the installed
package is (``indexer/`` as ``ragls/indexer`` and so on, as ``pyproject.toml``'s ``package-dir``
maps it) under the bench cache, and put first on ``PYTHONPATH`` of the child. The child keeps
every third-party package of the current environment; only ragls' own code is the old one.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from benchmarks.corpora import cache_dir

REPO = Path(__file__).resolve().parents[1]
# top-level source folder -> where the installed package has it (pyproject.toml's package-dir)
LAYOUT = {"ragls": "ragls", "indexer": "ragls/indexer", "recipes": "ragls/recipes", "server": "ragls/server"}


def resolve(commit: str) -> str:
    """The full hash of ``commit`` (a clear error when this checkout's history lacks it)."""
    cmd = ["git", "-C", str(REPO), "rev-parse", "--verify", f"{commit}^{{commit}}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"commit {commit} is not in this checkout's history: {proc.stderr}")
    return proc.stdout.strip()


def stage(commit: str) -> Path:
    """A folder holding ``commit``'s ragls package; built once per commit under the bench cache."""
    sha = resolve(commit)
    folder = cache_dir() / "past" / sha
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", sha, *LAYOUT], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            top, _, rest = member.name.partition("/")
            if not rest or not member.isfile():
                continue
            target = folder / LAYOUT[top] / rest
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            target.write_bytes(source.read())
    (folder / ".complete").touch()
    return folder


def environment(commit: str) -> dict[str, str]:
    """``os.environ`` for a child that imports ``commit``'s ragls instead of the working tree's."""
    env = dict(os.environ)
    # the staged package first, then this checkout for ``benchmarks``; PYTHONSAFEPATH keeps the
    # child's working directory (often this checkout, with today's ``ragls/``) off the path
    paths = (str(stage(commit)), str(REPO), env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONSAFEPATH"] = "1"
    return env
