"""Which dependency versions one workspace sees, kept in its own index's metadata.

The shared store holds every version any workspace indexed; a workspace reads only the versions its
environment has, as recorded by its last dependency build (with what was skipped and why).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

META_KEY = "dependencies"


@dataclass
class Selection:
    environment: str | None = None  # where the packages were found
    packages: dict[str, int] = field(default_factory=dict)  # "name==version" -> id in the shared store
    imports: dict[str, str] = field(default_factory=dict)  # import name -> "name==version"
    bases: dict[str, str] = field(default_factory=dict)  # "name==version" -> the folder its files are in
    skipped: dict[str, str] = field(default_factory=dict)  # package or file -> why it is not indexed
    notes: list[str] = field(default_factory=list)  # what was odd (a broken symlink, a stale lock file)
    bytes: int = 0  # source bytes read for the packages in the store
    chunks: int = 0
    seconds: float = 0.0  # the last build's time

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Selection:
        try:
            data: Any = json.loads(text or "{}")
        except ValueError:
            return cls()
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known}) if isinstance(data, dict) else cls()

    def summary(self) -> dict:
        """For ``ragls status`` and ``ragls/indexStatus``."""
        return {
            "environment": self.environment,
            "packages": len(self.packages),
            "chunks": self.chunks,
            "bytes": self.bytes,
            "skipped": self.skipped,
            "notes": self.notes,
        }
