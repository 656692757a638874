"""The development set: annotated repositories that are not semble's, split into tune and report.

``repos.json`` pins each repository to a registry artifact (package, version, registry), names
the folder of the unpacked artifact that is indexed (``root``) and the upstream path that
annotation paths start with (``prefix``); ``annotations/<name>.json`` holds its hand-written
queries and ``annotations/history/<name>.json`` the queries made from its commit history
(``build_history.py``), both in semble's format; a repository may have either or both.
Ranking is tuned on the ``tune`` half and reported on the ``report`` half, so the report half
measures how ranking generalizes. ``README.md`` says how the set was made.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.corpora import Package, QualityCorpus

DEVSET_DIR = Path(__file__).resolve().parent
MANIFEST = DEVSET_DIR / "repos.json"
ANNOTATIONS = DEVSET_DIR / "annotations"
HISTORY = ANNOTATIONS / "history"
SPLITS = ("report", "tune")


def manifest() -> list[dict]:
    """The entries of ``repos.json``, in file order."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def annotation_files(name: str) -> tuple[Path, ...]:
    """The annotation files of one repository that exist: hand-written, then history."""
    return tuple(p for p in (ANNOTATIONS / f"{name}.json", HISTORY / f"{name}.json") if p.is_file())


def corpora(split: str | None = None) -> list[QualityCorpus]:
    """The dev-set repositories (of one split, or all) as corpora the quality benchmark runs."""
    return [
        QualityCorpus(
            entry["name"],
            Package(entry["registry"], entry["package"], entry["version"]),
            entry["root"],
            prefix=entry["prefix"],
            annotations=annotation_files(entry["name"]),
            language=entry["language"],
            split=entry["split"],
        )
        for entry in manifest()
        if split is None or entry["split"] == split
    ]
