"""Repository Q&A on a real index with the bundled model: routing, grounded answers with
verified citations, README for general questions, follow-ups, budgets, cancellation."""

from __future__ import annotations

import threading
import time

import pytest

from ragls.config import RecipesConfig
from ragls.indexer.engine import Index
from ragls.llm.base import Message, Provider
from ragls.recipes.answer import (
    TERSE_TOKENS,
    answer_budget,
    code_block,
    copies_in,
    finish_allowance,
    generate,
    repeating,
    whole_sentences,
    without_repeats,
)
from ragls.recipes.ask import Conversation, is_general, route
from ragls.recipes.citations import Verifier

GREEDY = RecipesConfig(temperature=0.0, answer_tokens=96)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Router.dispatch", "search"),
        ("shop/storage/pool.py", "search"),
        ("connection pool", "search"),
        ("retry backoff rate limit", "search"),
        ("how are routes registered?", "answer"),
        ("where is the session token verified", "answer"),
        ("Explain the cart discount logic", "answer"),
        ("the function that computes taxes for the cart total with discounts", "answer"),
        ("ConnectionPool?", "answer"),
        ("   ", "search"),
    ],
)
def test_routing_by_intent(query: str, expected: str) -> None:
    assert route(query) == expected


def test_general_questions_are_recognised() -> None:
    assert is_general("What does this project do?")
    assert is_general("give me an overview of the architecture")
    assert not is_general("how does the cart apply a discount?")


def test_a_search_returns_ranked_results_without_a_model(index: Index) -> None:
    result = Conversation(index, None, GREEDY).ask("Router.dispatch", top_k=5)
    assert result.route == "search" and result.answer == ""
    assert result.results[0]["path"] == "shop/web/router.py"
    assert 1 <= len(result.results) <= 5
    scores = [r["score"] for r in result.results]
    assert scores == sorted(scores, reverse=True)
    assert set(result.as_json()) == {"answer", "citations", "dropped_citations", "route", "results"}


def test_a_question_without_a_model_is_refused_clearly(index: Index) -> None:
    with pytest.raises(ValueError, match="needs a chat model"):
        Conversation(index, None, GREEDY).ask("how are routes registered?")


def test_a_question_is_answered_from_retrieved_code_with_only_verified_citations(
    index: Index, chat: Provider
) -> None:
    streamed: list[str] = []
    result = Conversation(index, chat, GREEDY).ask("how does the router dispatch a request?",
                                                   on_delta=streamed.append)
    assert result.route == "answer"
    assert result.answer.strip() and "".join(streamed).startswith(result.answer.strip()[:20])
    assert result.results[0]["path"] == "shop/web/router.py"
    assert all(r["source"] in ("retrieved", "readme") for r in result.results)
    verifier = Verifier(index)
    for c in result.citations:  # whatever the model cited, only what exists survives
        assert verifier.check_one(c) == (c, "")
    if not result.citations:
        assert result.sources and result.sources[0].path == "shop/web/router.py"
    as_json = result.as_json()
    assert set(as_json) == {"answer", "citations", "dropped_citations", "route", "results"}
    assert as_json["dropped_citations"] == len(result.dropped)
    assert all(set(c) == {"path", "start_line", "end_line"} for c in as_json["citations"])
    assert result.timings_ms["first_token_ms"] > 0


def test_general_questions_pull_in_the_readme_and_top_level_docs(index: Index, chat: Provider) -> None:
    result = Conversation(index, chat, GREEDY).ask("What does this project do?")
    paths = [(r["path"], r["source"]) for r in result.results]
    assert paths[0] == ("README.md", "readme")
    assert ("docs/deploy.md", "readme") in paths


def test_a_follow_up_keeps_the_conversation_context(index: Index, chat: Provider) -> None:
    conversation = Conversation(index, chat, GREEDY)
    first = conversation.ask("how does the router dispatch a request?")
    assert first.answer and len(conversation.turns) == 1
    alone = Conversation(index, chat, GREEDY).ask("and where is that tested?", force="search")
    follow = conversation.ask("and where is that tested?")
    assert len(conversation.turns) == 2 and conversation.turns[0].question.startswith("how does the router")
    paths = [r["path"] for r in follow.results]
    assert "shop/web/router.py" in paths and "tests/test_router.py" in paths
    assert "shop/web/router.py" not in [r["path"] for r in alone.results[:2]]  # only the history found it


def test_the_context_budget_is_respected(index: Index, chat: Provider) -> None:
    tight = RecipesConfig(temperature=0.0, answer_tokens=16, context_tokens=120)
    result = Conversation(index, chat, tight).ask("how are database connections pooled?")
    assert result.results, "something fits in 120 tokens"
    assert len(result.results) < len(Conversation(index, chat, GREEDY).ask(
        "how are database connections pooled?").results)
    assert any("cut at 16 tokens" in n for n in result.notes) or len(result.answer.split()) < 30


def test_a_cancelled_question_returns_promptly_and_empty(index: Index, chat: Provider) -> None:
    cancel = threading.Event()
    cancel.set()
    started = time.perf_counter()
    result = Conversation(index, chat, GREEDY).ask("how does the cart compute tax?", cancel=cancel)
    assert result.answer == "" and time.perf_counter() - started < 30
    assert not any("empty answer" in n for n in result.notes)  # the user stopped it: no complaint


def test_the_answer_generator_notes_a_cut_answer(chat: Provider) -> None:
    shown: list[str] = []
    generated = generate(chat, [Message("user", "Count from one to fifty in words.")], max_tokens=3,
                         temperature=0.0, on_delta=shown.append)
    assert generated.finish_reason == "length"
    assert any("reached the cap of 3 tokens" in n for n in generated.notes)
    assert "".join(shown) == generated.text  # the stream is the answer, the ending included
    assert generated.text.endswith(" …") or whole_sentences(generated.text, final=True) == len(
        generated.text.rstrip(" "))


def test_an_answer_that_reaches_the_cap_ends_with_the_sentence_it_was_writing(chat: Provider) -> None:
    """The real bundled model: past the cap the answer runs to the end of its sentence, no further."""
    shown: list[str] = []
    question = [Message("user", "Describe the sea in five long sentences.")]
    generated = generate(chat, question, max_tokens=40, temperature=0.0, on_delta=shown.append)
    assert generated.finish_reason == "length" and "".join(shown) == generated.text
    assert any("it ends with the sentence it was writing" in n for n in generated.notes)
    text = generated.text.rstrip(" ")
    assert whole_sentences(text, final=True) == len(text)  # ends at a sentence (or line) end
    assert chat.count_tokens(generated.text) <= 40 + finish_allowance(40) + 1
    whole = generate(chat, question, max_tokens=400, temperature=0.0)
    assert whole.text.startswith(generated.text)  # the same answer, ended where its sentence ended
    # Past the cap, only the sentence being written was finished: no sentence ends before the last.
    at_cap = len("".join(shown[:40]))
    assert at_cap < len(generated.text) and whole_sentences(generated.text[at_cap:-1]) == 0


def test_sentence_ends_are_told_from_full_stops_inside_names_and_numbers() -> None:
    assert whole_sentences("Done. Almost") == len("Done.")
    assert whole_sentences("Version 3.5 is out") == 0  # no sentence has ended yet
    assert whole_sentences("1. open the file") == 0  # a list marker is no sentence end
    assert whole_sentences("It is done.") == 0  # "done.py" may follow
    assert whole_sentences("It is done.", final=True) == len("It is done.")
    assert whole_sentences("It reads config.py first.\nThen") == len("It reads config.py first.\n")
    assert (finish_allowance(40), finish_allowance(128), finish_allowance(768)) == (48, 64, 64)


def test_loops_are_detected_and_cut_where_they_began_but_code_may_repeat() -> None:
    sentence = "It uses a token based payment system to make transactions."
    loop = "It is a shop. " + f"{sentence} " * 3 + "It"
    assert repeating(loop)
    assert without_repeats(loop) == f"It is a shop. {sentence}\n"
    line = "assert total(cart) == Decimal('10.00'), 'wrong total for the cart'\n"
    code = "```python\n" + line * 4 + "```\n"
    assert not repeating(code)
    assert not repeating("A short answer. A short answer. A short answer.")  # fewer words than a loop needs


def test_code_blocks_are_extracted_even_when_unclosed() -> None:
    assert code_block("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1"
    assert code_block("```\nx = 1\n") == "x = 1"
    assert code_block("no code here") is None


def test_copied_code_in_an_answer_is_flagged_with_its_source(index: Index) -> None:
    source = (index.root / "shop" / "storage" / "pool.py").read_text()
    answer = "Here is how it works:\n```python\n" + source + "\n```\nThat is all.\n"
    copies = copies_in(index, answer)
    assert copies and copies[0].path == "shop/storage/pool.py"
    assert copies_in(index, source)[0].path == "shop/storage/pool.py"  # bare code, no fences
    assert copies_in(index, "No code at all in this answer.") == []


def test_terse_answers_end_with_their_first_sentence_and_detailed_ones_get_twice_the_cap() -> None:
    assert answer_budget(0, RecipesConfig(answer_tokens=300)) == 300
    assert answer_budget(0, RecipesConfig(answer_tokens=300), "terse") == TERSE_TOKENS
    assert answer_budget(0, RecipesConfig(answer_tokens=12), "terse") == 4  # a third, when that is less
    assert answer_budget(0, RecipesConfig(answer_tokens=300), "detailed") == 600
    assert answer_budget(50, RecipesConfig(), "detailed") == 100  # the recipe's own cap, doubled


def test_the_verbosity_reaches_the_prompt_and_the_cap(index: Index, chat: Provider) -> None:
    sent: list[tuple[str, int]] = []
    real_chat = chat.chat

    def recording(messages, **kwargs):  # the real model answers; the request is looked at on the way
        sent.append((messages[0].content, kwargs["max_tokens"]))
        return real_chat(messages, **kwargs)

    chat.chat = recording  # type: ignore[method-assign]
    try:
        for level in ("terse", "detailed"):
            result = Conversation(index, chat, GREEDY).ask("how are database connections pooled?",
                                                           verbosity=level)
            assert result.answer.strip()
    finally:
        del chat.chat
    (terse_system, terse_cap), (detailed_system, detailed_cap) = sent
    assert "one or two sentences" in terse_system and "step by step" in detailed_system
    # The caps (TERSE_TOKENS, twice the answer_tokens), each with its allowance to finish a sentence.
    assert (terse_cap, detailed_cap) == (TERSE_TOKENS + finish_allowance(TERSE_TOKENS),
                                         192 + finish_allowance(192))
