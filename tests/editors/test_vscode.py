"""The VS Code client (editor-clients/vscode): installs from its lockfile, compiles with strict
``tsc``, lints, packages into a ``.vsix`` with ``@vscode/vsce``, and its Node tests drive the real
``ragls serve`` from this venv with the extension's own protocol module. Every step runs without
network when the machine allows it (``unshare -n`` as root), so nothing may download at test time:
``make install-test`` runs ``npm ci`` once, which fills npm's cache for the ``npm ci --offline`` here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from ragls_testing import missing, requantised

CLIENT = Path(__file__).parents[2] / "editor-clients" / "vscode"
# Every Node test must pass (none skipped): a test that silently disappeared would go unnoticed.
EXPECTED = {
    "settings the user set reach the server in its shape; client.* and unset ones stay",
    "the status bar follows $/progress while indexing, then ragls/indexStatus",
    "inline completion for an unsaved file (not on disk); huge files get none",
    "a question streams into the chat, its citations point at real code, follow-ups continue it",
    "Stop cancels the answer being generated",
    "the arena: two models answer blind, the vote reveals their names and is recorded",
    "recipes: listed for the palette, run like a code action, text streams and edits come back",
    "models: the quick pick lists what is on this machine, and a picked model is used for a role",
    "a missing binary is reported with the command",
    "a server crashing at start is explained with the command and what it printed",
    "after the server dies the chat keeps its transcript and continues on the new server",
}


def offline_prefix() -> list[str]:
    """``unshare -n`` (a network namespace with no interfaces up) where we may use it, else nothing."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0 and subprocess.run([unshare, "-n", "true"]).returncode == 0:
        return [unshare, "-n"]
    return []


def test_vscode_extension_builds_packages_and_drives_the_server(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        missing("node or npm is missing (make install-test needs them for the VS Code client)")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),  # a clean HOME for the server's config; npm's cache is kept below
        "NPM_CONFIG_CACHE": os.environ.get("NPM_CONFIG_CACHE", str(Path.home() / ".npm")),
        "TMPDIR": str(tmp_path),
        "RAGLS_ARENA_MODEL": str(requantised(tmp_path)),  # the arena's second model
    }
    prefix = offline_prefix()

    def run(*args: str, timeout: int = 600) -> str:
        done = subprocess.run(
            [*prefix, *args], cwd=CLIENT, env=env, capture_output=True, text=True, timeout=timeout
        )
        log = done.stdout + done.stderr
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{log[-6000:]}"
        return log

    run(npm, "ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error")
    run(npm, "run", "compile")  # tsc, strict
    run(npm, "run", "lint")
    (CLIENT / "ragls.vsix").unlink(missing_ok=True)
    run(npm, "run", "package")
    with zipfile.ZipFile(CLIENT / "ragls.vsix") as vsix:
        names = set(vsix.namelist())
        bundle = vsix.read("extension/dist/extension.js").decode()
    assert {"extension/package.json", "extension/media/chat.js", "extension/readme.md"} <= names, names
    assert not any(name.startswith("extension/node_modules/") for name in names), names
    assert 'require("vscode-languageclient' not in bundle  # bundled: the .vsix needs no node_modules

    log = run("node", "--test", "--test-reporter=spec", "out/test/", timeout=900)
    passed = set(re.findall(r"^\s*✔ (.+?) \(\d", log, re.MULTILINE))
    assert passed >= EXPECTED, f"not passed: {EXPECTED - passed}\n{log[-4000:]}"
    assert re.search(r"ℹ fail 0\b", log) and re.search(r"ℹ skipped 0\b", log), log[-4000:]
