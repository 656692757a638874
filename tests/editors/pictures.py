"""The READMEs' pictures of the editors, taken by the editor tests from real runs when
``RAGLS_PICTURES=1`` (``make pictures``). VS Code's are screenshots of the workbench; a terminal
editor's is its tmux pane as ``capture-pane -e`` gives it (text with SGR colour codes), written as
HTML and photographed by the same Debian chromium the workbench tests drive, cropped to the rows
that show the point."""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

CLIENTS = Path(__file__).parents[2] / "editor-clients"
_SGR = re.compile(r"\x1b\[([0-9;:]*)m")
# xterm's 16 colours (the palette tmux passes on for 30-37, 90-97 and 256-colour codes 0-15).
_BASIC = [
    "#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
    "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff",
]  # fmt: skip
FOREGROUND, BACKGROUND = "#e5e5e5", "#101010"
_FLAGS = {1: "bold", 22: "bold", 4: "underline", 24: "underline", 7: "reverse", 27: "reverse"}


def wanted() -> bool:
    """Pictures are taken only when asked for (they change the repository's files)."""
    return os.environ.get("RAGLS_PICTURES") == "1"


def picture_path(client: str, name: str) -> Path:
    """Where the README of ``client`` (vscode, neovim, emacs) finds its picture ``name``."""
    folder = CLIENTS / client / "media" / "pictures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"


def _colour(n: int) -> str:
    """xterm's 256-colour palette: 16 basic, a 6x6x6 cube, 24 greys."""
    if n < 16:
        return _BASIC[n]
    if n < 232:
        n -= 16
        levels = [0 if c == 0 else 55 + 40 * c for c in (n // 36, n // 6 % 6, n % 6)]
        return "#" + "".join(f"{c:02x}" for c in levels)
    grey = 8 + 10 * (n - 232)
    return f"#{grey:02x}{grey:02x}{grey:02x}"


def _extended(params: list[str], j: int) -> tuple[str | None, int]:
    """A ``38;5;n`` / ``38;2;r;g;b`` colour starting at ``params[j]`` (the 38 or 48), and how
    many parameters it took."""
    if j + 2 < len(params) and params[j + 1] == "5":
        return _colour(int(params[j + 2] or 0)), 3
    if j + 4 < len(params) and params[j + 1] == "2":
        r, g, b = (int(p or 0) for p in params[j + 2 : j + 5])
        return f"#{r:02x}{g:02x}{b:02x}", 5
    return None, 1


def ansi_to_html(screen: str) -> str:
    """One screen of ``capture-pane -e -p`` as an HTML ``<pre>`` with a span per colour run."""
    fg = bg = None
    flags = dict.fromkeys(_FLAGS.values(), False)  # bold, underline, reverse
    out: list[str] = []
    for i, piece in enumerate(_SGR.split(screen)):
        if i % 2 == 0:
            if piece:
                front, back = (bg or BACKGROUND, fg or FOREGROUND) if flags["reverse"] else (fg, bg)
                style = "".join(
                    [
                        f"color:{front};" if front else "",
                        f"background:{back};" if back else "",
                        "font-weight:bold;" if flags["bold"] else "",
                        "text-decoration:underline;" if flags["underline"] else "",
                    ]
                )
                text = html.escape(piece)
                out.append(f'<span style="{style}">{text}</span>' if style else text)
            continue
        params = piece.replace(":", ";").split(";") if piece else ["0"]
        j = 0
        while j < len(params):
            p = int(params[j] or 0)
            taken = 1
            if p == 0:
                fg = bg = None
                flags = dict.fromkeys(flags, False)
            elif p in _FLAGS:  # 1, 4, 7 set it; 22, 24, 27 clear it
                flags[_FLAGS[p]] = p < 20
            elif 30 <= p <= 37 or 90 <= p <= 97:
                fg = _BASIC[p - 30 if p < 90 else p - 82]
            elif 40 <= p <= 47 or 100 <= p <= 107:
                bg = _BASIC[p - 40 if p < 100 else p - 92]
            elif p == 39:
                fg = None
            elif p == 49:
                bg = None
            elif p in (38, 48):
                colour, taken = _extended(params, j)
                if p == 38:
                    fg = colour
                else:
                    bg = colour
            j += taken
    return "".join(out)


def _cursor(cursor: tuple[int, int] | None, first: int, count: int) -> str:
    """The block cursor over its cell, when it is on one of the rows shown."""
    if cursor is None or not first <= cursor[1] < first + count:
        return ""
    return f'<i style="left:calc(6px + {cursor[0]}ch);top:{6 + 16 * (cursor[1] - first)}px"></i>'


def terminal_picture(
    screen: str,
    path: Path,
    rows: slice = slice(None),
    columns: int = 100,
    cursor: tuple[int, int] | None = None,
) -> None:
    """Render the captured ``screen`` (its ``rows``, ``columns`` cells wide) to the PNG ``path``
    with Debian's chromium (Playwright, no browser download). The terminal's ``cursor`` (column,
    row of the whole screen) is drawn as a block, as the terminal shows it: what follows it on its
    row is ghost text, not the buffer's."""
    from playwright.sync_api import sync_playwright

    lines = screen.split("\n")
    if screen.endswith("\n"):
        lines = lines[:-1]
    first = range(len(lines))[rows][0] if lines[rows] else 0
    lines = lines[rows]
    # Each row is closed with a reset so a colour run never spills into the next one's margin.
    body = "\n".join(ansi_to_html(line + "\x1b[0m") for line in lines)
    page_html = (
        "<!doctype html><meta charset=utf-8><style>"
        f"body{{margin:0;background:{BACKGROUND}}}"
        f"pre{{display:inline-block;margin:0;padding:6px;color:{FOREGROUND};background:{BACKGROUND};"
        f"font:13px/16px 'DejaVu Sans Mono',monospace;width:{columns}ch;white-space:pre;overflow:hidden;"
        "position:relative}"
        f"i{{position:absolute;width:1ch;height:16px;background:{FOREGROUND};mix-blend-mode:difference}}"
        f"</style><pre>{body}{_cursor(cursor, first, len(lines))}</pre>"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            page = browser.new_page(device_scale_factor=1)
            page.set_content(page_html)
            page.locator("pre").screenshot(path=str(path))
        finally:
            browser.close()
