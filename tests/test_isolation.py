"""The suite never sees or changes the user's own ragls state (tests/conftest.py isolates it).

A child pytest runs a probe test with HOME pointing at a poisoned ragls set-up: a user config
that changes a default, an outside ``RAGLS_CONFIG``, an audit log with entries, an index cache.
With the suite's conftest the probe passes and the poisoned home is byte-for-byte unchanged;
without it (``--noconftest``) the same probe fails, so the probe can tell.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "tests" / "fixtures" / "isolation_probe" / "test_probe.py"


def poisoned_home(home: Path) -> Path:
    for config in (home / ".config" / "ragls" / "config.toml", home / "outside.toml"):
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text("[search]\ntop_k = 1\n")
    audit = home / ".local" / "state" / "ragls" / "audit.jsonl"
    audit.parent.mkdir(parents=True)
    entry = {
        "time": "t",
        "provider": "openai",
        "model": "m",
        "endpoint": "e",
        "bytes": 1,
        "sha256": "0",
        "redactions": 0,
    }
    audit.write_text(json.dumps(entry) + "\n" + json.dumps(entry) + "\n")
    (home / ".cache" / "ragls" / "ws-0000").mkdir(parents=True)
    return home


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_probe(home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "RAGLS_"))}
    env.update(HOME=str(home), RAGLS_CONFIG=str(home / "outside.toml"), PROBE_REAL_HOME=str(home))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rootdir={REPO}",
            *extra,
            str(PROBE),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_poisoned_user_home_is_neither_read_nor_written(tmp_path: Path) -> None:
    home = poisoned_home(tmp_path / "real-home")
    before = snapshot(home)
    proc = run_probe(home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert snapshot(home) == before


def test_the_probe_fails_without_the_isolation(tmp_path: Path) -> None:
    home = poisoned_home(tmp_path / "real-home")
    proc = run_probe(home, "--noconftest")
    assert proc.returncode == 1 and "3 failed" in proc.stdout, proc.stdout + proc.stderr
