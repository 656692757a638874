"""``emacs -nw`` with ragls.el set up as a user has it, in a tmux pane (tests/editors/terminal.py).

The set-up is what a normal init file has: font-lock, auto-save and backup files, company-mode
(Debian's ``elpa-company``), the mode line's column number, and for Python buffers either
``ragls-ensure`` (eglot: ragls alone) or ``lsp`` (lsp-mode: pylsp with ragls beside it).
Shared by tests/editors/test_emacs_interactive.py and benchmarks/emacs_ghost_latency.py; ghost text
is told from buffer text by its colour, read once from a probe painted in ``ragls-inline-face``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ragls_testing import missing
from terminal import Terminal

CLIENT = Path(__file__).parents[2] / "editor-clients" / "emacs"
FIXTURE = Path(__file__).parents[1] / "fixtures" / "minirepo"

INIT = """\
;; A user's init file: the usual features on, ragls started for Python buffers.
(setq inhibit-startup-screen t)
(add-to-list 'load-path {client})
(require 'ragls)
(global-font-lock-mode 1)
(setq make-backup-files t auto-save-default t auto-save-timeout 2 auto-save-interval 20)
(require 'company)
(global-company-mode 1)
(column-number-mode 1)
{start}
(setq ragls-server-command {command} ragls-initialization-options '{options})
"""
# How Python buffers get their servers: eglot (ragls alone), or lsp-mode (pylsp, ragls beside it).
START = {
    "eglot": "(add-hook 'python-mode-hook #'ragls-ensure)",
    "lsp-mode": "(require 'lsp-mode)\n"
    "(setq lsp-auto-guess-root t lsp-session-file (locate-user-emacs-file \"lsp-session\"))\n"
    "(add-hook 'python-mode-hook #'lsp)",
}
# What the mode line shows once the servers serve the buffer.
CONNECTED = {"eglot": re.compile(r"\[eglot:"), "lsp-mode": re.compile(r"LSP\[.*(pylsp.*ragls|ragls.*pylsp)")}
# Native compilation of Debian's elpa packages would pop a warnings window and take CPU for minutes.
EARLY_INIT = "(setq native-comp-deferred-compilation nil)\n"

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def find_emacs() -> str:
    """emacs with company on PATH; under CI its absence fails the test, elsewhere it skips it."""
    emacs = shutil.which("emacs")
    probe = emacs and subprocess.run([emacs, "--batch", "--eval", "(require 'company)"], capture_output=True)
    if not probe or probe.returncode != 0:
        why = "emacs with company is missing (make install-test installs emacs-nox, elpa-eglot, elpa-company)"
        missing(why)
    return emacs


def foreground(line: str) -> list[tuple[str, str]]:
    """Each character of a ``capture-pane -e`` line with its foreground colour ("" for default)."""
    cells: list[tuple[str, str]] = []
    fg = ""
    for i, piece in enumerate(_SGR.split(line)):
        if i % 2 == 0:
            cells.extend((char, fg) for char in piece)
            continue
        params = piece.split(";") if piece else ["0"]
        j = 0
        while j < len(params):
            p = params[j]
            if p in ("0", "39"):
                fg = ""
            elif p in ("38", "48"):
                width = 3 if j + 1 < len(params) and params[j + 1] == "5" else 5
                if p == "38":
                    fg = ";".join(params[j : j + width])
                j += width - 1
            elif re.fullmatch(r"3[0-7]|9[0-7]", p):
                fg = p
            j += 1
    return cells


def vendor(folder: Path, count: int) -> None:
    """Write ``count`` small modules of a library unrelated to the fixture's shop: a repository of
    realistic size takes seconds to index, long enough for a user (and a test) to see it indexing."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (folder / f"shade_{n:04d}.py").write_text(
            f'def shade_{n:04d}(rgb: tuple[int, int, int]) -> tuple[int, int, int]:\n'
            f'    """Darken a colour by {n} steps of one percent."""\n'
            f"    return tuple(max(0, channel - channel * {n} // 100) for channel in rgb)\n"
        )


class EmacsSession:
    """One interactive Emacs on a copy of the minirepo fixture, with ragls from this venv."""

    def __init__(
        self, base: Path, *, options: str = "nil", server_log: Path | None = None, client: str = "eglot",
        vendored: int = 0,
    ) -> None:
        self.repo = base / "repo"
        self.header_lines = 1 if client == "lsp-mode" else 0  # lsp-mode's breadcrumb tops each window
        shutil.copytree(FIXTURE, self.repo)
        vendor(self.repo / "vendor" / "colours", vendored)
        subprocess.run(["git", "init", "-q"], cwd=self.repo, check=True)
        home = base / "home"
        (home / ".emacs.d").mkdir(parents=True)
        ragls = str(Path(sys.executable).parent / "ragls")
        # With a log, the server runs verbose and its stderr (its own timings) goes to the file.
        command = (f'(list "sh" "-c" "exec {ragls} serve -v 2>>{server_log}")' if server_log
                   else f'(list "{ragls}" "serve")')  # fmt: skip
        (home / ".emacs.d" / "init.el").write_text(
            INIT.format(client=f'"{CLIENT}"', command=command, options=options, start=START[client])
        )
        (home / ".emacs.d" / "early-init.el").write_text(EARLY_INIT)
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        env = {**os.environ, "HOME": str(home), "PATH": path}
        self.term = Terminal([find_emacs(), "-nw", "shop/calc.py"], env=env, cwd=self.repo,
                             socket=base / "tmux.sock", columns=120, rows=40)  # fmt: skip
        try:
            self.term.wait_for(CONNECTED[client], 90)
            self.ghost_fg = self._probe_ghost_colour()
        except BaseException:
            self.term.close()  # no Emacs (and server) left behind by a failed start
            raise

    def _probe_ghost_colour(self) -> str:
        """The foreground colour ``ragls-inline-face`` paints with in this terminal."""
        # From a timer: M-: shows the form's value in the echo area, over an immediate message.
        self.eval("(run-at-time 0.3 nil #'message (propertize \"ghost-probe\" 'face 'ragls-inline-face))")

        def painted(screen: str) -> bool:  # the message, not the M-: line that typed it
            return any(_SGR.sub("", row).strip() == "ghost-probe" for row in screen.splitlines())

        screen = self.term.wait_for(painted, 10, colours=True)
        line = next(row for row in screen.splitlines() if _SGR.sub("", row).strip() == "ghost-probe")
        cells = foreground(line)
        fg = cells["".join(char for char, _ in cells).index("ghost-probe")][1]
        assert fg, f"ragls-inline-face paints in the default colour: ghost text looks like text\n{screen}"
        return fg

    def command(self, name: str, *answers: str) -> None:
        """``M-x name RET``, then each answer to its prompts, typed and entered."""
        self.term.keys("M-x")
        self.term.type(name, pause=0.02)
        self.term.keys("Enter")
        entered = name
        for answer in answers:
            self._wait_for_prompt(entered)
            self.term.keys("C-a", "C-k")  # drop the prompt's initial input
            self.term.type(answer, pause=0.02)
            self.term.keys("Enter")
            entered = answer

    def _wait_for_prompt(self, entered: str) -> None:
        """Until the minibuffer asks the next question: the cursor on the last row, which no longer
        shows what was just entered (keys typed before that land in the buffer, or are lost)."""

        def asking(screen: str) -> bool:
            rows = screen.splitlines()
            _, y = self.term.cursor()
            return y == len(rows) - 1 and rows[-1].strip() != "" and entered not in rows[-1]

        self.term.wait_for(asking, 10)

    def eval(self, form: str) -> None:
        """``M-: form RET``."""
        self.term.keys("M-:")
        self.term.type(form, pause=0.005)
        self.term.keys("Enter")

    def echo(self) -> str:
        """The echo area (the screen's last line)."""
        return self.term.screen().rstrip("\n").splitlines()[-1]

    def ghost(self) -> str:
        """The ghost text in the cursor's window ("" when none), its rows joined by newlines.

        The whole window is read, not only what follows the cursor: with ghost text of several
        lines, Emacs 28 draws the terminal cursor at its end instead of at point."""
        y = self.term.cursor()[1]
        screen = self.term.screen(colours=True).splitlines()
        modelines = [i for i, row in enumerate(screen) if _SGR.sub("", row).startswith("-UUU")]
        top = max((i + 1 for i in modelines if i < y), default=1)  # row 0 is the menu bar
        top += self.header_lines
        bottom = min((i for i in modelines if i >= y), default=len(screen))
        window = (foreground(row) for row in screen[top:bottom])
        rows = ("".join(char for char, fg in cells if fg == self.ghost_fg) for cells in window)
        return "\n".join(row for row in rows if row).rstrip()

    def cursor_line(self) -> str:
        """The text of the screen row the cursor is on."""
        return self.term.screen().splitlines()[self.term.cursor()[1]]

    def wait_ghost(self, timeout: float, other_than: str | None = None) -> str:
        """Wait for ghost text at the cursor (one that is not ``other_than``); return it."""
        found = ""

        def shown(_screen: str) -> bool:
            nonlocal found
            found = self.ghost()
            return bool(found) and found != other_than

        self.term.wait_for(shown, timeout)
        return found

    def quit(self) -> None:
        """``C-g``, then a pause as a person makes: Emacs drops keys typed right after a quit."""
        self.term.keys("C-g")
        time.sleep(0.5)

    def clean_buffer(self) -> None:
        """Back to calc.py alone, its text erased (each test types its own)."""
        self.quit()  # once: a second C-g while Emacs is busy asks for an emergency escape
        self.term.keys("C-x", "b")
        self.term.type("calc.py", pause=0.02)
        self.term.keys("Enter", "C-x", "1", "C-x", "h", "DC")
        self.term.wait_for(re.compile(r"calc\.py +All \(1,0\)"), 5)  # the mode line: empty, at its start

    def server_pid(self) -> int:
        """The process id of the ``ragls serve`` that Emacs started (a child of Emacs, or below it)."""
        emacs = self.term.pid()
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        for pid, parent in parents.items():
            if parent == emacs or parents.get(parent) == emacs:
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if any(arg.endswith(b"ragls") for arg in argv) and b"serve" in argv:
                    return pid
        raise AssertionError("no `ragls serve` process below Emacs")

    def dump(self, folder: Path) -> None:
        """Write Emacs's *Messages* and calc.py's eglot events buffer into ``folder`` (for a report)."""
        self.quit()
        self.eval(f'(with-current-buffer "*Messages*" (write-region nil nil "{folder / "messages.txt"}"))')
        time.sleep(0.5)
        self.eval('(with-current-buffer (jsonrpc-events-buffer (with-current-buffer "calc.py" '
                  f'(eglot-current-server))) (write-region nil nil "{folder / "events.txt"}"))')  # fmt: skip
        time.sleep(1)

    def close(self) -> None:
        self.term.close()
