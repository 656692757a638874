"""The append-only audit log of outbound requests: JSON lines of metadata, never content.

Each line records when a request left, for which provider, model and endpoint, how many bytes,
the SHA-256 of exactly the bytes sent (so a user holding a copy of a payload can prove it was or
was not sent), how many secrets were redacted from it, and whether the endpoint was on this
machine (a loopback or unix-socket model server: local traffic, listed all the same). Queries to a
shared index (``[[index.shared]]``, provider ``postgresql``) are listed the same way, with the
repositories searched in place of the model and how many results came back.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class AuditEntry:
    time: str
    provider: str
    model: str
    endpoint: str
    bytes: int
    sha256: str
    redactions: int
    local: bool = False  # lines written before loopback counted as local lack it: they were remote
    rows: int | None = None  # results a shared index returned (None: a model request)


def default_path() -> Path:
    return Path(platformdirs.user_state_dir("ragls")) / "audit.jsonl"


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def record(
        self, *, provider: str, model: str, endpoint: str, payload: bytes, redactions: int,
        local: bool = False, rows: int | None = None,
    ) -> AuditEntry:
        entry = AuditEntry(
            time=datetime.now(UTC).isoformat(timespec="milliseconds"),
            provider=provider,
            model=model,
            endpoint=endpoint,
            bytes=len(payload),
            sha256=hashlib.sha256(payload).hexdigest(),
            redactions=redactions,
            local=local,
            rows=rows,
        )
        shown = {k: v for k, v in asdict(entry).items() if v is not None}  # a model request has no rows
        line = (json.dumps(shown, separators=(",", ":")) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # O_APPEND: each line lands whole at the end, even with several ragls processes.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return entry

    def entries(self) -> list[AuditEntry]:
        """All entries, oldest first. A damaged line is an error naming the file and line."""
        if not self.path.is_file():
            return []
        out = []
        with self.path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(AuditEntry(**json.loads(line)))
                except (json.JSONDecodeError, TypeError) as exc:
                    raise ValueError(f"{self.path}:{number}: not an audit entry ({exc})") from exc
        return out
