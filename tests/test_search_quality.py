"""Search quality on a small real-looking repository: symbol, natural-language and mixed queries."""

import shutil
from pathlib import Path

import pytest

from ragls import config
from ragls.indexer.engine import Index
from ragls.indexer.search import SECONDARY_PATH

FIXTURE = Path(__file__).parent / "fixtures" / "minirepo"

QUERIES = [
    # (query, the file that must come first)
    ("Router", "shop/web/router.py"),
    ("ConnectionPool", "shop/storage/pool.py"),
    ("verify_token", "shop/auth/tokens.py"),
    ("retryWithBackoff", "web/retry.js"),
    ("Slugify", "web/slug.go"),
    ("how are routes registered", "shop/web/router.py"),
    ("reuse database connections", "shop/storage/pool.py"),
    ("check the signature of a session token", "shop/auth/tokens.py"),
    ("percentage coupon discount", "shop/cart.py"),
    ("exponential backoff with jitter", "web/retry.js"),
    ("send an email when an order is confirmed", "shop/mailer.py"),
    ("turn a title into a url safe identifier", "web/slug.go"),
    ("rate limiting requests per second", "web/retry.js"),
    ("Router dispatch path parameters", "shop/web/router.py"),
    # a question about tests lifts the test folders' demotion
    ("tests of dispatching path parameters", "tests/test_router.py"),
    ("where is TokenError raised", "shop/auth/tokens.py"),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    root = tmp_path_factory.mktemp("repo") / "minirepo"
    shutil.copytree(FIXTURE, root)
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("RAGLS_CACHE_DIR", str(cache))
    mp.setenv("RAGLS_CONFIG", str(cache / "none.toml"))
    idx = Index.open(root, config.load(root))
    idx.update()
    idx.embed_pending()
    yield idx
    idx.close()
    mp.undo()


@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_expected_file_ranks_first(index: Index, query: str, expected: str) -> None:
    results = index.search(query, top_k=5)
    assert results, query
    assert results[0].path == expected, [r.path for r in results]


def test_symbol_query_points_at_the_definition(index: Index) -> None:
    top = index.search("ConnectionPool", top_k=3)[0]
    text = (index.root / top.path).read_text().splitlines()
    assert any("class ConnectionPool" in line for line in text[top.start_line - 1 : top.end_line])


def test_results_are_spread_over_files(index: Index) -> None:
    results = index.search("connection", top_k=5)
    paths = [r.path for r in results]
    distinct = len(set(paths))
    assert distinct >= 2
    assert len(set(paths[:distinct])) == distinct  # every file once before any file twice


@pytest.mark.parametrize("mode", ["bm25", "dense"])
def test_single_signal_modes_answer(index: Index, mode: str) -> None:
    results = index.search("database connection pool", top_k=3, mode=mode)
    assert results[0].path == "shop/storage/pool.py"


def test_empty_and_punctuation_queries(index: Index) -> None:
    assert index.search("", top_k=5) == []
    assert index.search("   ", top_k=5) == []
    # FTS syntax characters are data, not operators
    assert index.search('"ConnectionPool" AND ( NEAR*', top_k=5)[0].path == "shop/storage/pool.py"


@pytest.mark.parametrize(
    ("path", "secondary"),
    [
        ("tests/test_router.py", True),
        ("logrus/entry_test.go", True),
        ("spec/thor/options_spec.rb", True),
        ("src/core/immer.test.ts", True),
        ("src/__tests__/patch.js", True),
        ("src/test/java/org/jpype/ProxyTest.java", True),
        ("Tests/ApplicationTest.php", True),
        ("docs/deploy.md", True),
        ("docs_src/websockets/tutorial001.py", True),
        ("src/MessagePack.Tests/FormatterTest.cs", True),
        ("Tests/AlamofireTests/SessionTests.swift", True),
        ("vendor/llhttp/src/native/api.c", True),
        ("third_party/zlib/inflate.c", True),
        ("absl/strings/str_cat_benchmark.cc", True),
        ("benches/tuple_combinations.rs", True),
        ("samples/Server/Program.cs", True),
        ("src/core/immer.ts", False),
        ("lib/thor/parser/options.rb", False),
        ("src/main/java/org/jpype/manager/TypeManager.java", False),
        ("lib/contest.js", False),
        ("src/MessagePack/Formatters/DateTimeFormatter.cs", False),
        ("Sources/Alamofire/Core/Session.swift", False),
        ("lib/vendoring.rb", False),
    ],
)
def test_test_files_are_told_by_each_ecosystems_convention(path: str, secondary: bool) -> None:
    assert (SECONDARY_PATH.search(path) is not None) is secondary
