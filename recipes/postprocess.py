"""Completion post-processing: keep what the user would accept, return "" for anything else.

Small local models ramble: they finish the block and carry on with the next function, repeat a
line forever, or retype the code after the cursor. The cuts here use tree-sitter on
prefix + completion + suffix, so they follow the language's real block structure, and a
completion that makes a parseable file unparseable is shortened line by line until it does not,
or dropped.
"""

from __future__ import annotations

from tree_sitter import Node, Tree

from ragls.indexer.parsing import _parser

# Node types that hold a sequence of statements or members (beyond the *_block / *_body names).
_BLOCK_TYPES = frozenset({
    "block", "compound_statement", "declaration_list", "field_declaration_list", "statement_list",
    "suite", "do_group", "class_declaration_body",
})  # fmt: skip
# A completion may not be longer than this (characters) before it is checked at all.
MAX_PARSE_CHARS = 400_000


def parse_tree(language: str | None, text: str) -> Tree | None:
    """A tree-sitter tree of ``text``, or None when the language has no grammar (never raises)."""
    if not language or len(text) > MAX_PARSE_CHARS:
        return None
    try:
        return _parser(language).parse(text.encode("utf-8", "surrogatepass"))
    except Exception:  # unknown or broken grammar: post-processing falls back to text rules
        return None


def error_count(tree: Tree) -> int:
    """ERROR and MISSING nodes, visiting only subtrees that contain some."""
    count = 0
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        stack.extend(child for child in node.children if child.has_error or child.is_missing)
    return count


def _is_block(node: Node) -> bool:
    return node.type in _BLOCK_TYPES or node.type.endswith(("_block", "_body"))


def _bytes_to_chars(text: str, n_bytes: int) -> int:
    return len(text.encode("utf-8", "surrogatepass")[:n_bytes].decode("utf-8", "ignore"))


def block_end(prefix: str, completion: str, suffix: str, language: str | None) -> int | None:
    """Where in ``completion`` the code being written ends (a character offset), or None when it
    does not end inside the completion or there is no grammar.

    Writing new statements inside a block, the code ends with the innermost block enclosing the
    cursor (at top level: with the first complete top-level node); inside a statement that began
    before the cursor (a call or a list spanning lines), it ends with that statement.
    """
    tree = parse_tree(language, prefix + completion + suffix)
    if tree is None:
        return None
    cursor = len(prefix.encode("utf-8", "surrogatepass"))
    end = cursor + len(completion.encode("utf-8", "surrogatepass"))
    node: Node | None = tree.root_node.descendant_for_byte_range(cursor, cursor)
    while node is not None and node.parent is not None:
        if _is_block(node) and node.start_byte <= cursor:
            break
        node = node.parent
    block = node or tree.root_node
    statement = next((c for c in block.named_children if c.end_byte > cursor), None)
    if statement is None:
        return None
    new_statements = statement.start_byte >= len(prefix.rstrip().encode("utf-8", "surrogatepass"))
    stop = block.end_byte if new_statements and block.parent is not None else statement.end_byte
    if cursor < stop < end:
        return _bytes_to_chars(completion, stop - cursor)
    return None


def _cut_at_stops(text: str, stops: tuple[str, ...]) -> str:
    cuts = [i for s in stops if s and (i := text.find(s)) >= 0]
    return text[: min(cuts)] if cuts else text


def _drop_suffix_overlap(text: str, suffix: str) -> str:
    """Remove the completion's tail that the suffix already holds: whole lines at the end that
    repeat the suffix's first lines, then closing characters that repeat the rest of the line."""
    lines = text.split("\n")
    ahead = [line.strip() for line in suffix.split("\n") if line.strip()][:8]
    for start in range(1, len(lines)):
        tail = [line.strip() for line in lines[start:] if line.strip()]
        if tail and tail == ahead[: len(tail)]:
            text = "\n".join(lines[:start])
            break
    rest = suffix.split("\n", 1)[0].strip()
    if not rest or rest[0].isalnum() or rest[0] == "_":
        return text  # only closing characters are dropped: a word may just be typed twice
    for k in range(min(len(rest), len(text)), 0, -1):
        if text.endswith(rest[:k]):
            return text[:-k]
    return text


def _strip_noise(text: str) -> str:
    """Trailing whitespace of each line and trailing blank lines (keeps a leading newline)."""
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")


def _drop_repeats(text: str) -> str:
    """A block of one to three lines repeated three times in a row is a generation loop: garbage.
    A line repeating the line right above it is where a loop starts: cut there."""
    lines = [line.strip() for line in text.split("\n")]
    for period in (1, 2, 3):
        for i in range(len(lines) - 3 * period + 1):
            block = lines[i : i + period]
            if any(block) and all(lines[i + k * period : i + (k + 1) * period] == block for k in (1, 2)):
                return ""
    for i in range(1, len(lines)):
        if len(lines[i]) > 1 and lines[i] == lines[i - 1]:
            return "\n".join(text.split("\n")[:i])
    return text


def _keep_parseable(text: str, prefix: str, suffix: str, language: str | None) -> str:
    """The longest line-prefix of ``text`` that adds no syntax errors to the file."""
    before = parse_tree(language, prefix + suffix)
    if before is None:
        return text
    allowed = error_count(before)
    lines = text.split("\n")
    for n in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:n])
        tree = parse_tree(language, prefix + candidate + suffix)
        if tree is not None and error_count(tree) <= allowed:
            return candidate
    return ""


def clean(
    completion: str,
    prefix: str,
    suffix: str,
    language: str | None,
    *,
    multiline: bool,
    stops: tuple[str, ...] = (),
) -> str:
    """What to show the user for a raw model completion at the cursor between prefix and suffix."""
    text = _drop_repeats(_cut_at_stops(completion.replace("\r\n", "\n"), stops))
    if not multiline:
        text = text.split("\n", 1)[0]
    else:
        cut = block_end(prefix, text, suffix, language)
        text = text if cut is None else text[:cut]
    text = _strip_noise(_drop_suffix_overlap(text, suffix))
    if not text.strip():
        return ""
    text = _strip_noise(_keep_parseable(text, prefix, suffix, language))
    return text if text.strip() else ""
