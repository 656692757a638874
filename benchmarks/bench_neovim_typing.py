"""Keystroke to ghost text in a real Neovim: ``python -m benchmarks.bench_neovim_typing``.

Neovim 0.12 runs in tmux with the set-up of tests/editors/nvim_init.lua (treesitter, pylsp beside
ragls, swap/backup/undo files, auto-save) and the bundled model with default settings. Each sample
opens a new line, types ``return a +`` after a new ``def`` key by key (0.1 s apart) and times the
last keystroke (tmux send-keys returned) to the first screen that shows the ghost text (the
screen polled every ~10 ms). The server's own figure for the same requests comes from its log
(``ragls serve --verbose``: "completion at calc.py:L:C: answered (..., N ms)", from the request's
arrival to the answer), so the difference is what the editor adds: its debounce (the built-in
engine waits 200 ms, the extmark engine 150 ms), the round trips and the redraw. The model is
loaded (one warm-up line) before the samples.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from benchmarks.metrics import percentile
from benchmarks.report import Table, seconds
from benchmarks.run import RESULTS, begin, finish
from tests.editors.neovim_terminal import Neovim

TYPED = "return a +"


def server_time(log: Path, start: int, key: str) -> float | None:
    """The server's own time (s) of the last completion answered at ``key`` (``line:col``, 1-based)
    in what the log gained after byte ``start``; the lines repeat from sample to sample."""
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    found = re.findall(rf"completion at calc\.py:{key}: answered \(.*?([\d.]+) ms\)", text)
    return float(found[-1]) / 1000 if found else None


def sample(nvim: Neovim, n: int, timeout: float) -> tuple[float | None, str]:
    """One keystroke-to-ghost time (None if no ghost text came) and the server log key of its request."""
    nvim.term.keys("o")
    nvim.term.type(f"def f{n}(a, b):")
    nvim.term.keys("Enter")
    nvim.term.type(TYPED[:-1])
    time.sleep(0.1)
    nvim.term.type(TYPED[-1], pause=0)
    sent = time.perf_counter()
    row = nvim.term.cursor()[1]
    try:
        before, _ = nvim.ghost(row, TYPED, timeout)
        took: float | None = time.perf_counter() - sent
        # Accepted, as a user would: lines left unfinished would teach the model to stop there.
        nvim.term.keys("Tab")
        nvim.term.wait_for(lambda _: nvim.term.cursor()[0] > len(before), 10)
    except AssertionError:
        before, took = "", None
    nvim.normal()
    # The file is the screen: one window, no wrapping, from its first line.
    return took, f"{row + 1}:{len(before) + 1}"


def run(engine: str, keystrokes: int, log: Console) -> list[object]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        nvim = Neovim(base, engine=engine, verbose=True)
        try:
            nvim.wait_ready()
            nvim.term.keys("i")
            nvim.term.type("def add(a, b):")
            nvim.term.keys("Enter")
            nvim.type_line(1, TYPED)  # loads the model
            nvim.normal()
            log_file = nvim.state / "nvim" / "lsp.log"
            painted, own = [], []
            for n in range(keystrokes):
                if n % 8 == 0:  # each sample adds 2 lines: start again at the top before they scroll
                    nvim.command("%delete")
                    nvim.term.wait_for(lambda s: s.startswith("\n") and nvim.term.cursor() == (0, 0), 10)
                start = log_file.stat().st_size
                took, key = sample(nvim, n, 30)
                time.sleep(0.2)  # Neovim writes the server's stderr to its log as it comes
                server = server_time(log_file, start, key) if took is not None else None
                painted.append(took)
                own.append(server)
                log.print(f"{engine} {n + 1}/{keystrokes}: {seconds(took)} (server {seconds(server)})")
        finally:
            nvim.close()
    shown = [t for t in painted if t is not None]
    answered = [t for t in own if t is not None]
    return [
        f"Neovim 0.12, engine {engine!r}",
        f"{len(shown)}/{keystrokes}",
        seconds(percentile(shown, 0.5)),
        seconds(percentile(shown, 0.95)),
        seconds(percentile(answered, 0.5)),
        seconds(percentile(answered, 0.95)),
        len(answered),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_neovim_typing", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--keystrokes", type=int, default=30, help="samples per engine")
    parser.add_argument("--engines", default="auto,extmark", help="inline.engine values, comma-separated")
    parser.add_argument("--out", type=Path, default=RESULTS / "neovim_typing.md")
    args = parser.parse_args(argv)
    session = begin()
    log = session.console
    with tempfile.TemporaryDirectory() as cache:
        # The index goes to a scratch cache and no user config is read; the derived embedding
        # models stay where make install prepared them.
        os.environ["RAGLS_CACHE_DIR"] = cache
        os.environ["RAGLS_CONFIG"] = str(Path(cache) / "no-user-config.toml")
        table = Table(
            "Last keystroke to ghost text painted (Neovim in tmux)",
            ["editor", "ghost text shown", "painted p50", "painted p95", "server p50", "server p95",
             "server samples"],
        )
        for engine in args.engines.split(","):
            table.add(*run(engine, args.keystrokes, log))
    table.notes.append(
        "painted: tmux send-keys of the last character to the first screen showing the ghost text; "
        "server: the same requests' time inside ragls serve (its log). 'auto' is Neovim's own "
        "vim.lsp.inline_completion (200 ms debounce); 'extmark' is the plugin's engine for 0.10/0.11."
    )
    finish(session, [table], args.out, "Neovim typing", "`python -m benchmarks.bench_neovim_typing`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
