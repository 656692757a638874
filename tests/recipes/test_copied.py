"""Copied-code detection against a real index."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ragls import config
from ragls.indexer.engine import Index
from ragls.recipes.copied import WINDOW, K, find_copies, fingerprints, tokenize

MINIREPO = Path(__file__).parents[1] / "fixtures" / "minirepo"

VENDORED = '''"""Vendored helper."""


def levenshtein_distance(source_text, target_text):
    previous_row = list(range(len(target_text) + 1))
    for i, source_char in enumerate(source_text, 1):
        current_row = [i]
        for j, target_char in enumerate(target_text, 1):
            insert_cost = current_row[j - 1] + 1
            delete_cost = previous_row[j] + 1
            replace_cost = previous_row[j - 1] + (source_char != target_char)
            current_row.append(min(insert_cost, delete_cost, replace_cost))
        previous_row = current_row
    return previous_row[-1]
'''


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(MINIREPO, root, dirs_exist_ok=True)
    (root / "shop" / "vendor").mkdir()
    (root / "shop" / "vendor" / "textdist.py").write_text(VENDORED)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAGLS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("RAGLS_CONFIG", str(root / "no-config.toml"))
        cfg = config.load(root)
        idx = Index.open(root, cfg)
        idx.update()
        yield idx
        idx.close()


def test_verbatim_function_is_reported_with_its_source_lines(index: Index) -> None:
    body = VENDORED.split("\n\n\n", 1)[1]
    copies = find_copies(index, "# generated\n" + body)
    assert copies, "a 100-token verbatim copy must be found"
    top = copies[0]
    assert (top.path, top.start_line, top.end_line) == ("shop/vendor/textdist.py", 4, 14)
    assert top.tokens >= 100
    assert (top.generated_start_line, top.generated_end_line) == (2, 12)


def test_reformatted_copy_with_other_literals_is_still_a_copy(index: Index) -> None:
    body = VENDORED.split("\n\n\n", 1)[1]
    reformatted = body.replace("    ", "  ").replace(" + 1", "+7")
    reformatted = reformatted.replace("(source_text, 1)", "( source_text,1 )")
    copies = find_copies(index, reformatted)
    assert copies and copies[0].path == "shop/vendor/textdist.py"


def test_short_overlaps_and_unrelated_code_are_not_copies(index: Index) -> None:
    assert find_copies(index, "previous_row = list(range(len(target_text) + 1))\n") == []
    unrelated = "\n".join(
        f"def handler_{i}(request):\n    return render(request, 'page{i}.html')" for i in range(8)
    )
    assert find_copies(index, unrelated) == []
    assert find_copies(index, "") == []


def test_min_tokens_threshold(index: Index) -> None:
    lines = VENDORED.split("\n")[3:8]  # def line plus four lines: ~50 tokens
    text = "\n".join(lines)
    assert find_copies(index, text, min_tokens=30)
    assert find_copies(index, text, min_tokens=len(tokenize(text)) + 1) == []


def test_winnowing_guarantee() -> None:
    """Any shared run of WINDOW + K - 1 tokens shares at least one fingerprint."""
    shared = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    a = tokenize("x1 y1 z1 " + shared + " q1 r1")
    b = tokenize("m2 n2 " + shared + " s2 t2 u2")
    assert len(tokenize(shared)) >= WINDOW + K - 1
    assert set(fingerprints(a)) & set(fingerprints(b))
