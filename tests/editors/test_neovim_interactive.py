"""Neovim as people use it: the ragls plugin in a real terminal (tmux), with the set-up of
nvim_init.lua (syntax and treesitter highlighting, swap/backup/undo files, auto-save, pylsp on the
same buffer), typed into key by key and read off the screen. test_neovim.py checks the plugin's
logic headless; these catch what only a live editor shows. The tests share one session, in order."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.editors.neovim_terminal import Neovim

DEF = "def add(a, b):"
RETURN = "return a +"


@pytest.fixture(scope="module")
def nvim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neovim]:
    session = Neovim(tmp_path_factory.mktemp("nvim"))
    try:
        session.statuses = session.wait_ready()
        yield session
    finally:
        session.close()


def test_the_status_shows_indexing_then_ready(nvim: Neovim) -> None:
    # The status line showed the server's progress (vim.lsp.status()) while the index built ...
    assert any(re.search(r"\d+%: ragls: indexing repo", line) for line in nvim.statuses), nvim.statuses
    # ... and then ready.
    nvim.command("RaglsStatus")
    nvim.term.wait_for(re.compile(r"ragls \S+repo: ready, 11 files, \d+ chunks"), 30)
    nvim.term.picture("neovim", "status", slice(-2, None))  # the status line and the message


def test_treesitter_highlights_and_pylsp_shares_the_buffer(nvim: Neovim) -> None:
    nvim.command("lua print(vim.treesitter.highlighter.active[vim.api.nvim_get_current_buf()] ~= nil,"
                 " table.concat(vim.tbl_map(function(c) return c.name end,"
                 " vim.lsp.get_clients({ bufnr = 0 })), ','))")
    nvim.term.wait_for(re.compile(r"^true (pylsp,ragls|ragls,pylsp)\s*$", re.MULTILINE), 30)


def test_server_messages_wait_until_typing_stops(nvim: Neovim) -> None:
    # The first keystrokes of the session make the server load its model and say so (an LSP
    # window/showMessage). Shown in insert mode, beside '-- INSERT --', it would open the hit-enter
    # prompt, which takes the next keystrokes: the plugin holds it until insert mode ends.
    nvim.term.keys("i")
    nvim.term.type(DEF)
    end = time.monotonic() + 3
    while time.monotonic() < end:
        screen = nvim.term.screen()
        assert "Press ENTER" not in screen, screen
        time.sleep(0.05)
    nvim.term.type("  # typed on")
    nvim.term.wait_for(lambda _: nvim.row(0) == DEF + "  # typed on", 10)
    nvim.term.keys(*["BSpace"] * len("  # typed on"))
    nvim.term.wait_for(lambda _: nvim.row(0) == DEF, 10)
    nvim.normal()
    nvim.term.wait_for("LSP[ragls] ragls: loading the completion model", 10)


def test_ghost_text_appears_by_itself_and_tab_accepts_it(nvim: Neovim) -> None:
    nvim.term.keys("o")
    before, ghost = nvim.type_line(1, RETURN)
    nvim.term.picture("neovim", "ghost-text", slice(0, 4))
    assert (nvim.row(0), before) == (DEF, "    " + RETURN)  # Python's indent plugin indented it
    nvim.term.keys("Tab")
    # Accepted: the cursor moves past the text, which is now in the buffer and stays after Escape.
    nvim.term.wait_for(lambda _: nvim.term.cursor() == (len(before + ghost), 1), 10)
    nvim.normal()
    assert nvim.row(1) == before + ghost


def test_escape_dismisses_the_ghost_text(nvim: Neovim) -> None:
    nvim.term.keys("o")
    before, _ = nvim.type_line(2, "x = a *")
    nvim.normal()
    nvim.term.wait_for(lambda _: nvim.row(2) == before, 10)
    time.sleep(1)  # and it does not come back
    assert nvim.row(2) == before


def test_a_newer_keystroke_replaces_the_ghost_text(nvim: Neovim) -> None:
    nvim.term.keys("o")
    nvim.term.type("def sub(a, b):")
    nvim.term.keys("Enter")
    typed = "return a -"
    before, old = nvim.type_line(4, typed)
    assert old[1:].strip(), old  # " b", for the bundled model: something is left to show
    # The user types on what the ghost text suggests: its first character.
    nvim.term.type(old[0])
    # The keystroke lands, and the old ghost text is not left where it was (it would now show
    # after the typed character, whole) ...
    landed = nvim.term.wait_for(lambda _: nvim.term.cursor() == (len(before) + 1, 4), 10)
    assert not landed.split("\n")[4].startswith(before + old[0] + old), landed
    # ... a new one comes for the new text, by itself.
    _, new = nvim.ghost(4, typed + old[0], 60)
    assert new != old
    nvim.normal()


def test_chat_streams_and_a_citation_opens_its_lines(nvim: Neovim) -> None:
    nvim.command("RaglsAsk How does the cart apply a discount coupon?")
    # The answer grows on screen while the model writes it; the links come last.
    frames = []
    done = re.compile(r"^(Citations|Sources \(nothing was cited\)):$", re.MULTILINE)
    deadline = time.monotonic() + 300
    while not done.search(screen := nvim.term.screen()):
        assert time.monotonic() < deadline, screen
        answer = screen.split("Q: How does the cart apply a discount coupon?", 1)[-1]
        if answer.strip() and (not frames or frames[-1] != answer):
            frames.append(answer)
        time.sleep(0.05)
    assert len(frames) >= 3, f"the answer did not stream: {frames}"
    nvim.term.picture("neovim", "chat")
    # <CR> on a link opens the file at its first line in the other window.
    link = re.search(r"^  (\S+):(\d+)-\d+", screen, re.MULTILINE)
    assert link, screen
    nvim.term.type(f"/^  {re.escape(link[1])}:", pause=0.01)
    nvim.term.keys("Enter")
    nvim.term.keys("Enter")
    path, first = link[1], int(link[2])
    nvim.term.wait_for(re.compile(rf"^(\S*/)?{re.escape(path)} .* {first},1\s*$", re.MULTILINE), 30)
    nvim.command("only")
    nvim.command("buffer shop/calc.py")


def test_search_fills_the_quickfix_list(nvim: Neovim) -> None:
    nvim.command("RaglsSearch discount coupon")
    screen = nvim.term.wait_for("[Quickfix List] ragls search: discount coupon", 60)
    assert re.search(r"^shop/cart\.py\|\d+-\d+\| ", screen, re.MULTILINE), screen
    nvim.command("cclose")


def test_a_recipe_edits_the_buffer(nvim: Neovim) -> None:
    # Saved by the auto-save on leaving insert mode: no [+] in the status line yet.
    nvim.term.wait_for(re.compile(r"^shop/calc\.py +\d", re.MULTILINE), 10)
    nvim.term.keys("g", "g")
    nvim.term.type("gra")  # Neovim's default key for code actions: a menu of both servers' actions
    menu = nvim.term.wait_for(re.compile(r"^(\d+): .*[Dd]ocstring", re.MULTILINE), 60)
    number = re.search(r"^(\d+): .*[Dd]ocstring", menu, re.MULTILINE)[1]
    nvim.term.type(number)
    nvim.term.keys("Enter")
    screen = nvim.term.wait_for(re.compile(r"\(applied to the buffer\)|\(not applied"), 300)
    assert "(applied to the buffer)" in screen, screen
    # The edit reached the buffer (the bundled model is too small to be trusted to write the
    # docstring itself, so its lines may read the same: the buffer's modified flag shows it).
    assert re.search(r"^shop/calc\.py \[\+\]", screen, re.MULTILINE), screen
    nvim.command("only")


def test_a_killed_server_comes_back(nvim: Neovim) -> None:
    [server] = nvim.servers()
    os.kill(server, signal.SIGKILL)
    # Neovim's own two-line "Client ragls quit ..." opens the hit-enter prompt: the user presses Enter.
    nvim.term.wait_for("Press ENTER", 30)
    nvim.term.keys("Enter")
    nvim.term.wait_for(lambda _: len(nvim.servers()) == 1 and nvim.servers() != [server], 60)
    nvim.command("messages")
    nvim.term.wait_for("ragls: `ragls serve` exited (signal 9); restarting it", 10)
    nvim.term.keys("Enter")
    nvim.term.keys("G", "o")
    nvim.type_line(nvim.term.cursor()[1], RETURN)
    nvim.normal()


def test_the_extmark_engine_keeps_its_ghost_text_through_the_auto_save(tmp_path: Path) -> None:
    """The engine of Neovim 0.10 and 0.11 (forced here). The auto-save writes the buffer when typing
    pauses ('updatetime', 300 ms); a write moves b:changedtick and so fires TextChangedI without
    any change to the text. Ghost text already on show must stay, not vanish and come back."""
    session = Neovim(tmp_path, engine="extmark")
    try:
        session.wait_ready()
        session.term.keys("i")
        session.term.type(DEF)
        session.term.keys("Enter")
        before, ghost = session.type_line(1, RETURN)
        assert ghost[1:].strip(), ghost  # " b": something is left after its first character
        # Typing on what it suggests: the server answers at once (no model call), before the save.
        session.term.type(ghost[0])
        _, rest = session.ghost(1, RETURN + ghost[0], 30)
        shown = before + ghost[0] + rest
        end = time.monotonic() + 2
        while time.monotonic() < end:
            assert session.row(1) == shown, session.term.screen()
        session.term.keys("Tab")
        session.term.wait_for(lambda _: session.term.cursor() == (len(shown), 1), 10)
        session.normal()
        assert session.row(1) == shown
    finally:
        session.close()
