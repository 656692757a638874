"""Citations: parsed from model text in the shapes models write, verified against a real index."""

from __future__ import annotations

from ragls.indexer.engine import Index
from ragls.recipes.citations import Citation, Verifier, parse, verify


def labels(citations: list[Citation]) -> list[str]:
    return [c.label for c in citations]


def test_the_shapes_models_write_are_parsed() -> None:
    text = (
        "Routes are added in shop/web/router.py:25-27 and matched by `shop/web/router.py` lines 36-42. "
        "The pool (shop/storage/pool.py:8) and shop/cart.py#L12-L14, see also (shop/cart.py, lines 16 to 17) "
        "and `shop/auth/tokens.py:5–9`."
    )
    assert labels(parse(text)) == [
        "shop/web/router.py:25-27",
        "shop/web/router.py:36-42",
        "shop/storage/pool.py:8-8",
        "shop/cart.py:12-14",
        "shop/cart.py:16-17",
        "shop/auth/tokens.py:5-9",
    ]


def test_things_that_are_not_citations_are_ignored() -> None:
    text = "At 10:30 we shipped v1.2:3 to https://example.com:8080/x; see Makefile:3 and 3.14:5."
    assert parse(text) == []


def test_repeats_are_parsed_once_and_a_sentence_full_stop_is_not_part_of_the_path() -> None:
    assert labels(parse("See shop/cart.py:3-10. Again: shop/cart.py:3-10.")) == ["shop/cart.py:3-10"]


def test_valid_citations_are_kept_with_the_index_path(index: Index) -> None:
    absolute = index.root / "shop" / "cart.py"
    checked = verify(
        index,
        f"Totals live in ./shop/cart.py:25-26; dispatch is in router.py:36-42; also {absolute}:12-14.",
    )
    assert labels(checked.valid) == ["shop/cart.py:25-26", "shop/web/router.py:36-42", "shop/cart.py:12-14"]
    assert checked.dropped == []


def test_unverifiable_citations_are_dropped_and_counted_with_a_reason(index: Index) -> None:
    (index.root / "shop" / "auth" / "__init__.py").write_text('"""Sessions."""\n')  # a second __init__.py
    index.update()
    text = (
        "See shop/cart.py:12-14 (real), shop/payments.py:1-5 (invented file), shop/cart.py:20-90 (past the "
        "end), shop/cart.py:9-3 (backwards), shop/web/router.py:17-18 (blank lines between definitions), "
        "__init__.py:1 (ambiguous: which package?) and shop/cart.py:99999999999999999999."
    )
    checked = verify(index, text)
    assert labels(checked.valid) == ["shop/cart.py:12-14"]
    reasons = {c.label: why for c, why in checked.dropped}
    assert reasons == {
        "shop/payments.py:1-5": "not an indexed file",
        "shop/cart.py:20-90": "past the end of the file (26 lines)",
        "shop/cart.py:9-3": "not a line range",
        "shop/web/router.py:17-18": "no indexed code in that span",
        "__init__.py:1-1": "not an indexed file",
        "shop/cart.py:99999999999999999999-99999999999999999999": "past the end of the file (26 lines)",
    }
    assert checked.dropped_count == 6


def test_a_citation_with_line_zero_is_dropped(index: Index) -> None:
    good, why = Verifier(index).check_one(Citation("shop/cart.py", 0, 3))
    assert good is None and why == "not a line range"


def test_garbage_model_output_verifies_to_nothing_without_errors(index: Index) -> None:
    garbage = "\ufffd\x00:::--:12-\n`` lines ``` :-5 /:/: \u2028 ....py:1 a/:3 " * 50
    checked = verify(index, garbage)
    assert checked.valid == []
    assert verify(index, "").valid == [] and verify(index, "").dropped == []


def test_citations_of_a_file_deleted_since_indexing_are_checked_against_the_index(index: Index) -> None:
    verifier = Verifier(index)
    path = index.root / "shop" / "mailer.py"
    saved = path.read_bytes()
    path.unlink()
    try:
        good, _ = verifier.check_one(Citation("shop/mailer.py", 1, 5))
        bad, why = verifier.check_one(Citation("shop/mailer.py", 1, 500))
    finally:
        path.write_bytes(saved)
    assert good == Citation("shop/mailer.py", 1, 5)
    assert bad is None and why.startswith("past the end")
