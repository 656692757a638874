"""An editor in a real terminal: a tmux pane typed into key by key and read off the screen.

Batch and headless runs skip what an interactive editor does between keystrokes (redisplay,
fontification, timers, other packages' hooks); these helpers drive the editor the way a user does,
on a tmux server of its own (its own socket), so a developer's tmux sessions are never touched.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ragls_testing import missing

from tests.editors import pictures


def find_tmux() -> str:
    """tmux on PATH; under CI its absence fails the test, elsewhere it skips it."""
    tmux = shutil.which("tmux")
    if tmux is None:
        missing("tmux is missing (make install-test installs it with apt)")
    return tmux


class Terminal:
    """One program running in a tmux pane of ``columns`` x ``rows`` cells."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        socket: Path,
        columns: int = 100,
        rows: int = 30,
    ) -> None:
        self.tmux = find_tmux()
        self.socket = socket
        self.columns = columns
        # The first command starts the tmux server, which passes its environment to the pane.
        subprocess.run(
            [self.tmux, "-S", str(socket), "-f", "/dev/null", "new-session", "-d",
             "-s", "editor", "-x", str(columns), "-y", str(rows), "--", *argv],
            env={**env, "TERM": "xterm-256color"},
            cwd=cwd,
            check=True,
        )
        # Keep the pane after the program exits, so a crash leaves its last screen to read.
        self._tmux("set-option", "-t", "editor", "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        run = subprocess.run([self.tmux, "-S", str(self.socket), *args],
                             capture_output=True, text=True, check=True)
        return run.stdout

    def keys(self, *names: str) -> None:
        """Send tmux key names (``Enter``, ``Escape``, ``Tab``, ``C-g``, ``M-x``) as keystrokes."""
        self._tmux("send-keys", "-t", "editor", *names)

    def type(self, text: str, pause: float = 0.1) -> None:
        """Type ``text`` one character at a time, ``pause`` seconds apart, as a person types."""
        for char in text:
            self._tmux("send-keys", "-t", "editor", "-l", char)
            time.sleep(pause)

    def screen(self, colours: bool = False) -> str:
        """What the pane shows now; with ``colours`` the SGR escape sequences are kept."""
        return self._tmux("capture-pane", "-p", "-t", "editor", *(["-e"] if colours else []))

    def picture(self, client: str, name: str, rows: slice = slice(None)) -> None:
        """With RAGLS_PICTURES=1, keep the screen's ``rows`` as the picture ``name`` in the README
        of ``client`` (tests/editors/pictures.py)."""
        if pictures.wanted():
            path = pictures.picture_path(client, name)
            pictures.terminal_picture(self.screen(colours=True), path, rows, self.columns, self.cursor())

    def cursor(self) -> tuple[int, int]:
        """The cursor's (column, row), both from 0."""
        x, y = self._tmux("display-message", "-p", "-t", "editor", "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def wait_for(
        self,
        expected: str | re.Pattern[str] | Callable[[str], bool],
        timeout: float,
        colours: bool = False,
    ) -> str:
        """Poll the screen until it shows ``expected`` (a substring, a pattern or a predicate)."""
        if isinstance(expected, str):
            found: Callable[[str], bool] = lambda text: expected in text  # noqa: E731
        elif isinstance(expected, re.Pattern):
            found = lambda text: expected.search(text) is not None  # noqa: E731
        else:
            found = expected
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen(colours)
            if found(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"not on screen after {timeout} s: {expected!r}\n--- screen ---\n{text}")
            time.sleep(0.05)

    def pid(self) -> int:
        """The process id of the program in the pane (to find the processes it started)."""
        return int(self._tmux("display-message", "-p", "-t", "editor", "#{pane_pid}"))

    def close(self) -> None:
        """Stop the tmux server and with it the program (SIGHUP), if still running."""
        subprocess.run([self.tmux, "-S", str(self.socket), "kill-server"], capture_output=True)
