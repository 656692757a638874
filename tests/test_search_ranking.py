"""Ranking rules on small real repositories written to a temporary folder, each asserting the
order the rule implies (indexed and searched by the real engine, static dense tier included)."""

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from ragls_testing import open_index, write_tree

from ragls.indexer.engine import Index
from ragls.indexer.search import (
    QUERY_WEIGHTS,
    QUESTION,
    _by_file,
    companions,
    file_keyword_ranking,
    query_type,
)

# A C library whose public header documents each function in words that match a question, while
# the source file holds the bodies (and says less about them).
C_LIBRARY = {
    "include/squash/encode.h": """\
#ifndef SQUASH_ENCODE_H
#define SQUASH_ENCODE_H
#include <stddef.h>

/**
 * Streaming compression: consume input bytes and produce compressed output bytes.
 * Call repeatedly until the input is consumed; flush the output at the end.
 */
int squash_compress_stream(const unsigned char *input, size_t input_size,
                           unsigned char *output, size_t *output_size);

/** Worst-case size of the compressed output for a given input size. */
size_t squash_max_compressed_size(size_t input_size);

#endif
""",
    "src/encode.c": """\
#include "squash/encode.h"
#include "bits.h"

size_t squash_max_compressed_size(size_t n) {
    return n + (n >> 3) + 16;
}

int squash_compress_stream(const unsigned char *in, size_t n, unsigned char *out, size_t *out_n) {
    size_t pos = 0;
    struct bit_writer w;
    bit_writer_init(&w, out, *out_n);
    while (pos < n) {
        size_t run = match_length(in, pos, n);
        if (run > 2) {
            write_bits(&w, 1, 1);
            write_bits(&w, run, 8);
            pos += run;
        } else {
            write_bits(&w, 0, 1);
            write_bits(&w, in[pos], 8);
            pos += 1;
        }
    }
    *out_n = bit_writer_finish(&w);
    return 0;
}
""",
    "src/bits.h": """\
#ifndef SQUASH_BITS_H
#define SQUASH_BITS_H
#include <stddef.h>
struct bit_writer { unsigned char *out; size_t cap; size_t used; unsigned acc; int nacc; };
void bit_writer_init(struct bit_writer *w, unsigned char *out, size_t cap);
void write_bits(struct bit_writer *w, unsigned value, int count);
size_t bit_writer_finish(struct bit_writer *w);
size_t match_length(const unsigned char *in, size_t pos, size_t n);
#endif
""",
    "src/bits.c": """\
#include "bits.h"
void bit_writer_init(struct bit_writer *w, unsigned char *out, size_t cap) {
    w->out = out; w->cap = cap; w->used = 0; w->acc = 0; w->nacc = 0;
}
void write_bits(struct bit_writer *w, unsigned value, int count) {
    w->acc |= value << w->nacc; w->nacc += count;
    while (w->nacc >= 8 && w->used < w->cap) {
        w->out[w->used++] = w->acc & 0xff; w->acc >>= 8; w->nacc -= 8;
    }
}
size_t bit_writer_finish(struct bit_writer *w) {
    if (w->nacc > 0 && w->used < w->cap) w->out[w->used++] = w->acc & 0xff;
    return w->used;
}
size_t match_length(const unsigned char *in, size_t pos, size_t n) {
    size_t k = 0;
    while (pos + k + 1 < n && in[pos + k + 1] == in[pos] && k < 255) k++;
    return k;
}
""",
}


@pytest.fixture
def c_library(tmp_path: Path) -> Iterator[Index]:
    index = open_index(write_tree(tmp_path / "repo", C_LIBRARY))
    index.update()
    index.embed_pending()
    yield index
    index.close()


@pytest.mark.parametrize(
    "query",
    [
        "how does streaming compression consume input and produce output",
        "worst-case size of the compressed output for a given input size",
    ],
)
def test_a_question_gets_the_body_before_its_declaration(c_library: Index, query: str) -> None:
    paths = [r.path for r in c_library.search(query, top_k=5)]
    assert "src/encode.c" in paths and "include/squash/encode.h" in paths, paths
    assert paths.index("src/encode.c") < paths.index("include/squash/encode.h"), paths


def test_a_name_is_answered_where_the_symbol_table_found_it(c_library: Index) -> None:
    # a name lookup is not a question: the struct lives in the header and is found there first
    assert c_library.search("bit_writer", top_k=3)[0].path == "src/bits.h"


def test_companions_pair_each_declaration_file_with_the_nearest_body_of_its_name() -> None:
    paths = [
        "include/squash/encode.h",
        "src/encode.c",
        "src/bits.h",
        "src/bits.c",
        "tools/bits.c",
        "core/pool.hpp",
        "core/pool-inl.h",
        "core/orphan.h",
        "core/README.md",
        "types/hooks.d.ts",
        "lib/hooks.js",
        "test/hooks.test.js",
        "pkg/client.pyi",
        "pkg/client.py",
    ]
    assert sorted(companions(paths)) == [
        ("core/pool.hpp", "core/pool-inl.h"),
        ("include/squash/encode.h", "src/encode.c"),
        ("pkg/client.pyi", "pkg/client.py"),
        ("src/bits.h", "src/bits.c"),
        ("types/hooks.d.ts", "lib/hooks.js"),
    ]


@pytest.mark.parametrize(
    ("third", "others"),
    [
        (0.1, 0.2),  # other files barely match: before FURTHER_OWN, 1 then one chunk of every other file
        (0.6, 0.5),  # they match well, but a.py's second chunk as well as they do and its best far better
    ],
)
def test_a_files_second_chunk_outranks_weaker_files_but_not_stronger_ones(
    third: float, others: float
) -> None:
    """One definition among many in a long file: a second chunk that matches at least as well as
    other files' best chunks comes before them, however much better its file's best chunk matched;
    a weaker one (the third) comes after them."""
    chunks = {1: ("a.py", 1.0), 2: ("a.py", 0.9), 3: ("a.py", third)}
    chunks |= {10 + n: (f"{name}.py", others) for n, name in enumerate("bcdef")}
    rows = {
        cid: SimpleNamespace(path=path, language="python", start_line=cid, end_line=cid, symbol="")
        for cid, (path, _) in chunks.items()
    }
    scores = {cid: score for cid, (_, score) in chunks.items()}
    ranked = [r.chunk_id for r in _by_file(rows, scores, {}, 8, 1.0, bodies_lead=False)]
    assert ranked[:2] == [1, 2], ranked
    assert set(ranked[2:7]) == {10, 11, 12, 13, 14} and ranked[7] == 3, ranked


def test_a_how_question_also_ranks_files_by_all_their_keyword_matches() -> None:
    """The file that matches in many chunks implements the concept a "how"/"where" question asks
    about, even when another file holds the single best-matching chunk."""
    rows = {
        cid: SimpleNamespace(path=path)
        for cid, path in {1: "a.py", 2: "b.py", 3: "b.py", 4: "b.py", 5: "c.py"}.items()
    }
    assert file_keyword_ranking([1, 2, 3, 4, 5, 99], rows) == ["b.py", "a.py", "c.py"]  # 99: no row
    assert QUESTION.match("How does a request travel through the middleware?")
    assert QUESTION.match("where is the retry policy configured")
    assert not QUESTION.match("however the request is sent") and not QUESTION.match("parse_args")


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("Thor::Options#parse", "name"),
        ("parse_args FlagSet.Parse", "name"),
        ("How does a request travel through the middleware?", "question"),
        ("where is the retry policy configured", "question"),
        ("retry a failed request with exponential backoff", "prose"),
        ("Return an iterator adaptor that merges two sorted iterators", "prose"),
        ("however the request is sent, parse_args runs first", "prose"),
    ],
)
def test_each_query_is_fused_with_the_weights_of_its_type(query: str, kind: str) -> None:
    """A name is answered by the symbol table; in a question or a description a name it mentions
    weighs less than the words around it, and only a question ranks files by keyword coherence."""
    assert query_type(query) == kind
    weights = QUERY_WEIGHTS[kind]
    assert weights["symbol"] > weights["bm25"] if kind == "name" else weights["symbol"] < weights["bm25"]
    assert (weights["file keyword"] > 0) == (kind == "question")
