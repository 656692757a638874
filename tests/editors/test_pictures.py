"""The terminal screenshots of the READMEs: what ``capture-pane -e`` gives, as HTML with its colours."""

from __future__ import annotations

from tests.editors.pictures import BACKGROUND, FOREGROUND, ansi_to_html


def test_colours_of_every_form_become_spans_and_a_reset_ends_them() -> None:
    screen = (
        "\x1b[1;34mdef\x1b[0m add"  # bold, basic blue
        "\x1b[38;5;244m ghost\x1b[39m"  # 256-colour grey, then default foreground
        "\x1b[38;2;255;128;0m rgb"  # truecolor
        "\x1b[7m bar\x1b[27m"  # reverse video (still truecolor)
        "\x1b[0m <&>"
    )
    assert ansi_to_html(screen) == (
        '<span style="color:#0000ee;font-weight:bold;">def</span> add'
        '<span style="color:#808080;"> ghost</span>'
        '<span style="color:#ff8000;"> rgb</span>'
        f'<span style="color:{BACKGROUND};background:#ff8000;"> bar</span>'
        " &lt;&amp;&gt;"  # nothing is written between the 27 and the 0; text is escaped
    )


def test_reverse_video_of_default_colours_swaps_them() -> None:
    assert ansi_to_html("\x1b[7mmode line") == (
        f'<span style="color:{BACKGROUND};background:{FOREGROUND};">mode line</span>'
    )
