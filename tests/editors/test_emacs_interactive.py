"""ragls.el in an interactive ``emacs -nw`` (Debian's Emacs 28, eglot 1.9) in a tmux pane, set up
as a user has it (font-lock, auto-save, backups, company-mode): keys are typed one at a time with
pauses and every check reads the screen. These catch what the batch ERT suite (test_emacs.py)
cannot: redisplay, fontification, timers and other packages between keystrokes.

The eglot tests share one Emacs and run in file order (the first one sees the index being
built). eglot drives one server per buffer, so the second language server on the same buffer
(pylsp) is tested with lsp-mode, where ragls is an add-on server, in an Emacs of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from emacs_terminal import EmacsSession
from ragls_testing import missing

# Short answers, greedy completions (the bundled model then completes `return a +` with ` b`):
# the plumbing is under test, not the model.
OPTIONS = "(:recipes (:answer_tokens 64) :models (:completion (:temperature 0)))"
MODEL_LOAD = 180  # seconds: the first completion loads the bundled model on a busy 2-core machine


@pytest.fixture(scope="module")
def emacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmacsSession]:
    base = tmp_path_factory.mktemp("emacs-tty")
    # 2,000 vendored files: indexing lasts long enough for the first test to see it under way.
    session = EmacsSession(base, options=OPTIONS, server_log=base / "server.log", vendored=2000)
    try:
        yield session
    finally:
        session.dump(base)
        session.close()
        # What Emacs and the server did, for a failed test's report (pytest shows it then).
        for name in ("messages.txt", "events.txt", "server.log"):
            if (base / name).exists():
                print(f"--- {name} ---\n" + (base / name).read_text(errors="replace")[-5000:])


def type_line(emacs: EmacsSession, text: str) -> None:
    """Type ``text`` as a person does: a key at a time, 0.12 s apart."""
    emacs.term.type(text, pause=0.12)


def wait_ready(emacs: EmacsSession) -> str:
    """Ask ``ragls-status`` until it says the index is ready; the screen then."""
    deadline = time.monotonic() + 180
    while ": ready," not in (screen := emacs.term.screen()):
        assert time.monotonic() < deadline, screen
        emacs.command("ragls-status")
        time.sleep(1)
    return screen


def test_status_shows_indexing_then_ready(emacs: EmacsSession) -> None:
    emacs.command("ragls-status")
    first = emacs.term.wait_for(re.compile(r"ragls \S+repo: \w+"), 30)
    assert ": indexing," in first, first
    assert re.search(r": ready, [1-9]\d* files, [1-9]\d* chunks", wait_ready(emacs))
    emacs.term.picture("emacs", "status", slice(-2, None))  # the mode line and the echo area


def test_ghost_text_appears_by_itself_and_tab_accepts_it(emacs: EmacsSession) -> None:
    emacs.clean_buffer()
    type_line(emacs, "def add(a, b):")
    emacs.command("ragls-inline-complete")  # on demand, it waits for the model to load
    emacs.wait_ghost(MODEL_LOAD)
    emacs.quit()
    emacs.term.keys("C-e", "Enter")
    type_line(emacs, "return a +")
    typed = emacs.cursor_line().rstrip()
    assert typed.endswith("return a +")
    ghost = emacs.wait_ghost(30)  # by itself: nothing asked for it
    emacs.term.picture("emacs", "ghost-text", slice(0, 6))
    shown = emacs.cursor_line().rstrip()
    assert shown == typed + ghost.split("\n")[0]  # drawn right after what was typed
    before = emacs.term.cursor()
    emacs.term.keys("Tab")
    emacs.term.wait_for(lambda _: emacs.term.cursor() != before, 5)
    assert emacs.ghost() == ""
    screen = emacs.term.screen()
    assert shown in screen.splitlines()[before[1]]  # the same text, now in the buffer
    assert "**" in next(row for row in screen.splitlines() if "calc.py" in row and "(Python" in row)


def test_c_g_dismisses_ghost_text(emacs: EmacsSession) -> None:
    emacs.clean_buffer()
    type_line(emacs, "def add(a, b):")
    emacs.term.keys("Enter")
    type_line(emacs, "return a +")
    typed = emacs.cursor_line().rstrip()
    emacs.wait_ghost(30)
    emacs.quit()
    emacs.term.wait_for(lambda _: emacs.ghost() == "", 5)
    assert emacs.cursor_line().rstrip() == typed
    time.sleep(2)  # and it does not come back by itself
    assert emacs.ghost() == ""


def test_a_newer_keystroke_replaces_ghost_text(emacs: EmacsSession) -> None:
    emacs.clean_buffer()
    type_line(emacs, "def add(a, b):")
    emacs.term.keys("Enter")
    type_line(emacs, "return a")
    old = emacs.wait_ghost(30)
    # The user types the suggestion's first character: that ghost goes, the rest comes back.
    emacs.term.type(old[0], pause=0)
    emacs.term.wait_for(lambda _: emacs.ghost() != old, 2)
    new = emacs.wait_ghost(30)
    assert new == old[1:]
    first_line = new.split("\n")[0]
    assert emacs.cursor_line().rstrip() == f"    return a{old[0]}{first_line}"


def test_the_setup_writes_auto_save_files(emacs: EmacsSession) -> None:
    # The set-up under test is a normal one: Emacs wrote its autosave beside the file.
    assert (emacs.repo / "shop" / "#calc.py#").exists()


def test_chat_streams_and_a_citation_opens_its_lines(emacs: EmacsSession) -> None:
    emacs.clean_buffer()
    question = "Q: How does the cart apply a discount coupon?"
    emacs.command("ragls-ask", question.removeprefix("Q: "))
    emacs.term.wait_for(question, 10)
    seen: list[str] = []
    final = re.compile(r"^(Citations|Sources \(nothing was cited\)):", re.MULTILINE)
    deadline = time.monotonic() + 240
    while not final.search(screen := emacs.term.screen()):
        assert time.monotonic() < deadline, screen
        answer = screen.split(question, 1)[1].split("-UUU", 1)[0].strip()
        if answer.strip("…") and (not seen or seen[-1] != answer):
            seen.append(answer)
        time.sleep(0.1)
    assert len(seen) >= 2, seen  # the answer grew on screen in pieces before it ended
    emacs.term.picture("emacs", "chat")
    emacs.term.keys("C-x", "o", "M->", "BTab")  # into the chat window, onto the last citation
    time.sleep(0.3)
    link = re.search(r"(\S+):(\d+)-(\d+)", emacs.cursor_line())
    assert link, emacs.term.screen()
    path, start = link[1], int(link[2])
    emacs.term.keys("Enter")
    emacs.term.wait_for(lambda s: re.search(rf"{re.escape(Path(path).name)}.*\({start},", s) is not None, 10)
    cited = (emacs.repo / path).read_text().splitlines()[start - 1]
    assert emacs.cursor_line().rstrip() == cited.rstrip()[:120]


def test_search_fills_xref(emacs: EmacsSession) -> None:
    emacs.clean_buffer()
    emacs.command("ragls-search", "SmtpMailer")
    screen = emacs.term.wait_for("*xref*", 30)
    assert re.search(r"^shop/mailer\.py$", screen, re.MULTILINE), screen
    assert re.search(r"lines \d+-\d+", screen)


def test_a_recipe_edits_the_buffer(emacs: EmacsSession) -> None:
    emacs.clean_buffer()
    type_line(emacs, "def add(a, b):")
    emacs.term.keys("Enter")
    type_line(emacs, "return a + b   ")  # trailing blanks: the recipe's code has none
    emacs.quit()
    emacs.term.keys("C-x", "C-s", "M-<")  # saved, then at `def add`
    emacs.term.wait_for(lambda s: re.search(r"-UUU:---.*calc\.py", s) is not None, 10)
    emacs.command("ragls-recipe", "docstring")
    emacs.term.wait_for("Server wants to edit", 240)  # eglot asks first (its default)
    emacs.term.keys("y")
    emacs.term.wait_for("Edit successful", 30)
    emacs.term.wait_for(lambda s: re.search(r"-UUU:\*\*-.*calc\.py", s) is not None, 10)
    emacs.term.keys("C-x", "o", "M->")  # the chat window, at its end
    emacs.term.wait_for("(applied to the buffer)", 10)


def test_a_killed_server_comes_back(emacs: EmacsSession) -> None:
    old = emacs.server_pid()
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        try:
            new = emacs.server_pid()
            if new != old:
                break
        except AssertionError:
            pass
        assert time.monotonic() < deadline, emacs.term.screen()
        time.sleep(0.5)
    # eglot connects the new server synchronously (up to eglot-sync-connect seconds): wait for it
    # before pressing C-g, which would abort the connection.
    wait_ready(emacs)
    emacs.clean_buffer()
    type_line(emacs, "return a +")
    emacs.command("ragls-inline-complete")
    emacs.wait_ghost(MODEL_LOAD)


# lsp-mode runs several servers on one buffer: pylsp (Debian's python3-pylsp) with ragls beside it.


@pytest.fixture(scope="module")
def emacs_lsp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmacsSession]:
    if shutil.which("pylsp") is None:
        missing("pylsp is missing (make install-test installs python3-pylsp)")
    base = tmp_path_factory.mktemp("emacs-tty-lsp")
    session = EmacsSession(base, options=OPTIONS, server_log=base / "server.log", client="lsp-mode")
    try:
        yield session
    finally:
        session.close()
        print((base / "server.log").read_text(errors="replace")[-5000:])


def test_lsp_mode_runs_ragls_beside_pylsp_with_ghost_text(emacs_lsp: EmacsSession) -> None:
    emacs = emacs_lsp
    emacs.term.wait_for(re.compile(r"LSP\[pylsp:\d+\]\[ragls:\d+"), 60)  # both serve calc.py, started
    wait_ready(emacs)
    emacs.clean_buffer()
    type_line(emacs, "def add(a, b):")
    emacs.command("ragls-inline-complete")  # loads the model
    emacs.wait_ghost(MODEL_LOAD)
    emacs.quit()
    emacs.term.keys("C-e", "Enter")
    type_line(emacs, "return a +")
    typed = emacs.cursor_line().rstrip()
    ghost = emacs.wait_ghost(30)  # by itself
    assert emacs.cursor_line().rstrip() == typed + ghost.split("\n")[0]
    before = emacs.term.cursor()
    emacs.term.keys("Tab")
    emacs.term.wait_for(lambda _: emacs.term.cursor() != before, 5)
    assert emacs.ghost() == ""
    # pylsp still completes in the same buffer: company lists its keyword
    emacs.term.keys("Enter")
    type_line(emacs, "ret")
    emacs.term.wait_for("return (Keyword)", 30)
