"""Completion post-processing on real tree-sitter grammars."""

from __future__ import annotations

from ragls.recipes.postprocess import block_end, clean


def multi(completion: str, prefix: str, suffix: str = "\n", language: str | None = "python") -> str:
    return clean(completion, prefix, suffix, language, multiline=True)


def test_stops_at_the_end_of_the_function_body() -> None:
    prefix = "def area(r):\n    "
    assert multi("return 3.14 * r * r\n\ndef other():\n    pass\n", prefix) == "return 3.14 * r * r"


def test_stops_at_the_end_of_a_method_and_keeps_its_statements() -> None:
    prefix = "class Shape:\n    def area(self):\n        "
    raw = "w = self.w\n        return w * w\n\n    def other(self):\n        pass"
    assert multi(raw, prefix) == "w = self.w\n        return w * w"


def test_brace_language_block_and_suffix_duplicate() -> None:
    prefix = "function area(r) {\n  "
    # The model closes the block itself; the suffix already holds that brace.
    raw = "return Math.PI * r * r;\n}\n\nfunction other() {}\n"
    assert multi(raw, prefix, "\n}\n", "javascript") == "return Math.PI * r * r;"


def test_top_level_completion_ends_with_its_first_statement() -> None:
    assert multi("total = add(1, 2)\nprint(total)\n", "import os\n", "\nx = 1\n") == "total = add(1, 2)"


def test_mid_line_multiline_ends_with_the_statement() -> None:
    prefix = "def f():\n    items = [\n        "
    raw = "1,\n        2,\n    ]\n    return items\n"
    assert multi(raw, prefix, "") == "1,\n        2,\n    ]"


def test_block_end_offset() -> None:
    prefix = "def f():\n    "
    completion = "return 1\ndef g(): pass\n"
    assert block_end(prefix, completion, "", "python") == len("return 1")
    assert block_end(prefix, "return 1", "", "python") is None  # still inside: nothing to cut
    assert block_end(prefix, completion, "", None) is None  # no grammar, no structural cut


def test_single_line_stops_at_newline_and_drops_closing_chars_the_suffix_has() -> None:
    assert clean("a, b)\nprint(x)", "x = foo(", ")\n", "python", multiline=False) == "a, b"
    assert clean('"GET", "/items")', "router.add(", ")", "python", multiline=False) == '"GET", "/items"'


def test_leading_newline_in_single_line_mode_is_nothing() -> None:
    assert clean("\n    return 1", "x = 1", "\n", "python", multiline=False) == ""


def test_whitespace_only_and_stop_tokens() -> None:
    assert multi("   \n\t\n  ", "def f():\n    ") == ""
    stops = ("<|endoftext|>", "<file_sep>")
    raw = "return 1<file_sep>junk.py\n"
    cleaned = clean(raw, "def f():\n    ", "\n", "python", multiline=True, stops=stops)
    assert cleaned == "return 1"


def test_repeated_lines_are_garbage() -> None:
    assert multi("x += 1\n    x += 1\n    x += 1\n    x += 1\n", "def f(x):\n    ") == ""


def test_a_repeating_block_of_lines_is_garbage_but_recurring_lines_are_not() -> None:
    loop = "a = f(a)\n    b = g(b)\n" * 3
    assert multi(loop, "def f(a, b):\n    ") == ""
    prefix = "def check(a, b, c):\n    "
    ladder = "if a:\n        return None\n    if b:\n        return None\n    if c:\n        return None"
    assert multi(ladder, prefix) == ladder  # `return` lines recur, but not as a loop


def test_an_immediately_repeated_line_is_cut() -> None:
    raw = "log('start')\n    log('start')\n"
    assert multi(raw, "def f():\n    ", "\n", "python") == "log('start')"


def test_trailing_whitespace_is_stripped() -> None:
    assert multi("return 1   \n\n\n", "def f():\n    ") == "return 1"


def test_completion_that_breaks_a_parseable_file_is_shortened_or_dropped() -> None:
    prefix = "def f(a, b):\n    "
    assert multi("return a +* b ]]\n", prefix, "\n\nprint(f(1, 2))\n") == ""
    # Good first line, broken second line: keep the good part.
    assert multi("c = a + b\n    return c +* ]]\n", prefix, "\n\nprint(f(1, 2))\n") == "c = a + b"


def test_completion_that_repairs_an_unfinished_file_is_kept() -> None:
    # The user is mid-call: the file does not parse without the completion.
    assert clean("1, 2)", "x = max(", "\n", "python", multiline=False) == "1, 2)"


def test_language_without_grammar_gets_text_rules_only() -> None:
    assert multi("more prose here  \nand a line\n", "Some notes: ", "", None) == "more prose here\nand a line"
