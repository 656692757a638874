"""``python -m benchmarks.replay``: inline completion measured by replaying real edits.

Each session (``sessions.json``, made by ``python -m benchmarks.replay.build`` from upstream
history) is a block of lines an upstream commit added to a file of a dev-set repository. The
workspace is a copy of the pinned registry artifact's root with that file in its "before" state
(the block cut out); ``ragls serve`` is started on it like an editor starts it (initialize, wait
until indexed), the file is opened and the block is typed back key by key
(:mod:`benchmarks.replay.typist`). One server per repository serves all of its sessions, the
edited file being restored (and the change reported as an editor's file watcher does) between
them. Three configurations run side by side, repository by repository so that machine load hits
them alike: (a) the working tree with a file-only prompt (``server.completion_context = "file"``,
what llm-ls sends), (b) today's main (an earlier commit staged by :mod:`benchmarks.past`), (c)
the working tree. Defaults otherwise (debounce on), bundled model. Prints the tables and writes
them to ``benchmarks/results/replay.md``, every key of every session to ``replay.keys.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from benchmarks import devset, past
from benchmarks.corpora import Package, cache_dir, fetch, stride_sample
from benchmarks.metrics import percentile
from benchmarks.replay import score
from benchmarks.replay.sessions import Edit, Session, block_sha1, edit_for, load
from benchmarks.replay.typist import FIRST_KEY_TIMEOUT, KEY_MS, PAUSE_TIMEOUT, Key, Typist, prepare_workspace
from benchmarks.report import Table, print_tables
from benchmarks.run import RESULTS, begin, finish

MAIN = "c4de513"  # "today's main" when issue 18 was filed


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    commit: str | None  # None: the working tree
    settings: dict


CONFIGS = {
    "a": Config("a", "file only", None, {"server": {"completion_context": "file"}}),
    "b": Config("b", f"main {MAIN}", MAIN, {}),
    "c": Config("c", "working tree", None, {}),
}


@dataclass
class Replayed:
    session: Session
    config: str
    keys: list[Key]
    seconds: float


def select(sessions: list[Session], n: int | None, languages: list[str] | None) -> list[Session]:
    """``n`` sessions spread evenly over the languages (a stride sample within each), grouped by
    repository."""
    if languages:
        unknown = sorted(set(languages) - {s.language for s in sessions})
        if unknown:
            raise SystemExit(f"no sessions in {unknown}; there are: {sorted({s.language for s in sessions})}")
        sessions = [s for s in sessions if s.language in languages]
    if n is not None:
        by_language: dict[str, list[Session]] = defaultdict(list)
        for s in sessions:
            by_language[s.language].append(s)
        names = sorted(by_language)
        chosen = []
        for i, name in enumerate(names):
            share = n // len(names) + (i < n % len(names))
            chosen += stride_sample(by_language[name], share)
        sessions = chosen
    order = {entry["name"]: i for i, entry in enumerate(devset.manifest())}
    return sorted(sessions, key=lambda s: (order[s.repo], s.path, s.start))


def environment(config: Config) -> dict[str, str]:
    """The server's environment: isolated indexes and derived models under the bench cache, the
    user's config file masked, and for an earlier commit its staged ragls first on the path."""
    env = past.environment(config.commit) if config.commit else dict(os.environ)
    env["RAGLS_CACHE_DIR"] = str(cache_dir() / "indexes" / f"replay-{config.key}")
    env["RAGLS_CONFIG"] = str(cache_dir() / "no-user-config.toml")
    env["RAGLS_MODELS_DIR"] = str(cache_dir() / "models")
    return env


def replay_repo(
    name: str, language: str, root: Path, sessions: list[Session], configs: list[Config], log,
    server_log: Path | None = None,
) -> list[Replayed]:
    """Every session of one repository (the artifact's ``root``), under each configuration in turn."""
    edits: dict[Session, Edit] = {}
    for s in sessions:
        lines = (root / s.path).read_text(encoding="utf-8").split("\n")
        if block_sha1(lines[s.start - 1 : s.end]) != s.sha1:
            raise SystemExit(f"{s.label}: the artifact's lines differ from the ones the session was built on")
        edits[s] = edit_for("\n".join(lines), s.start, s.end)
    out = []
    for config in configs:
        work = prepare_workspace(root, cache_dir() / "replay" / config.key / name)
        shutil.rmtree(environment(config)["RAGLS_CACHE_DIR"], ignore_errors=True)
        first = sessions[0]
        (work / first.path).write_text(edits[first].before, encoding="utf-8")
        started = time.perf_counter()
        if server_log is not None:
            with server_log.open("a", encoding="utf-8") as f:
                f.write(f"==== {name} ({config.label})\n")
        typist = Typist(work, environment(config), config.settings, server_log)
        log(f"{name} ({config.label}): server ready in {time.perf_counter() - started:.1f} s")
        try:
            previous: Session | None = None
            for s in sessions:
                if previous is not None:
                    (work / previous.path).write_text((root / previous.path).read_text(encoding="utf-8"))
                    (work / s.path).write_text(edits[s].before, encoding="utf-8")
                    typist.changed_on_disk(list(dict.fromkeys([work / previous.path, work / s.path])))
                began = time.perf_counter()
                keys = typist.type_session(s, work / s.path, edits[s], language)
                out.append(Replayed(s, config.key, keys, time.perf_counter() - began))
                items = [k.latency_ms for k in keys[1:] if k.status == "item"]
                median = f"{statistics.median(items):.0f} ms" if items else "-"
                first = f"{keys[0].latency_ms:.0f} ms" if keys[0].latency_ms is not None else "-"
                log(f"  {s.label} ({config.key}): {len(keys)} keys, {len(items)} items (p50 {median}), "
                    f"first key {keys[0].status} {first}")  # fmt: skip
                previous = s
        finally:
            typist.close()
    return out


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f">{FIRST_KEY_TIMEOUT * 1000:,.0f}" if math.isinf(value) else f"{value:,.0f}"


def tables(results: list[Replayed], configs: list[Config]) -> list[Table]:
    latency = Table(
        "Replay: keystroke to suggestion (ms), automatic trigger, debounce on",
        ["language", "config", "sessions", "keys", "items", "empty", "superseded", "timed out",
         "item p50", "p95", "max", "first key p50", "max"],
    )  # fmt: skip
    quality = Table(
        "Replay: what the suggestions were worth",
        ["language", "config", "sessions", "line starts", "exact line", "edit similarity", "keys acceptable"],
    )
    groups: dict[tuple[str, str], list[Replayed]] = defaultdict(list)
    for r in results:
        groups[(r.session.language, r.config)].append(r)
        groups[("all", r.config)].append(r)
    languages = sorted({lang for lang, _ in groups if lang != "all"}) + ["all"]
    for language in languages:
        for config in configs:
            runs = groups.get((language, config.key))
            if not runs:
                continue
            keys = [k for r in runs for k in r.keys[1:]]  # the first key of a file is reported on its own
            # a first key with no answer within its wait counts as slower than any that had one
            firsts = [math.inf if r.keys[0].latency_ms is None else r.keys[0].latency_ms for r in runs]
            items = [k.latency_ms for k in keys if k.status == "item"]
            statuses = ("item", "empty", "superseded", "timeout")
            count = {status: sum(k.status == status for k in keys) for status in statuses}
            latency.add(
                language, config.label, len(runs), len(keys),
                count["item"], count["empty"], count["superseded"], count["timeout"],
                _ms(percentile(items, 0.5)), _ms(percentile(items, 0.95)), _ms(max(items, default=None)),
                _ms(percentile(firsts, 0.5)), _ms(max(firsts, default=None)),
            )  # fmt: skip
            starts = [ls for r in runs for ls in score.line_starts(r.keys)]
            saved = sum(score.accepted_keys(r.keys) for r in runs)
            total = sum(len(r.keys) for r in runs)
            quality.add(
                language, config.label, len(runs), len(starts),
                f"{sum(ls.exact for ls in starts) / len(starts):.1%}" if starts else "—",
                f"{statistics.mean(ls.similarity for ls in starts):.3f}" if starts else "—",
                f"{saved / total:.1%}" if total else "—",
            )  # fmt: skip
    latency.notes += [
        f"Keys typed at {KEY_MS[0]}-{KEY_MS[1]} ms (seeded per session, the same for every config); each key "
        "sends didChange and an automatic inlineCompletion, and cancels the previous request if it is still "
        "unanswered ('superseded': no answer before the next key). The typist waits for the answer "
        f"after every Enter and after the last key, up to {PAUSE_TIMEOUT:.0f} s ('timed out': none by then; "
        f"it types on), and at the first key of a session up to {FIRST_KEY_TIMEOUT:.0f} s. Latency: from "
        "the key's didChange to an answer with an item, over every key but a session's first; "
        "'first key': the first key typed in a freshly opened file (model already loaded, prompt cold), "
        f"item or not; '>{FIRST_KEY_TIMEOUT * 1000:,.0f}': no answer within the wait.",
        "Configs: 'file only' = the working tree with server.completion_context = \"file\" (prefix and "
        "suffix of the file, no retrieval: what llm-ls sends); 'main' = the commit named, staged by "
        "benchmarks/past.py; 'working tree' = this checkout. Defaults otherwise, bundled SmolLM2-135M.",
    ]
    quality.notes += [
        "Line starts: after each Enter whose line the author then typed non-blank; 'exact line': the first "
        "line of the suggestion on screen equals the author's line (trailing blanks aside); 'edit "
        "similarity': 1 - Levenshtein / longer length, nothing shown = 0. 'keys acceptable': keystrokes "
        "the user could have replaced by accepting a suggestion that was exactly what came next (Tab = "
        "one key), over all keys. A suggestion stays on screen while the user types what it shows.",
    ]
    return [latency, quality]


def dump_keys(results: list[Replayed], path: Path) -> None:
    """Every key of every replayed session, for ``--rescore`` and for diffing two runs."""
    rows = [{"session": asdict(r.session), "config": r.config, "seconds": round(r.seconds, 2),
             "keys": [asdict(k) for k in r.keys]} for r in results]  # fmt: skip
    path.write_text(json.dumps(rows), encoding="utf-8")


def load_keys(path: Path) -> list[Replayed]:
    """The sessions of an earlier run, from its ``replay.keys.json``."""
    return [
        Replayed(Session(**row["session"]), row["config"], [Key(**k) for k in row["keys"]], row["seconds"])
        for row in json.loads(path.read_text(encoding="utf-8"))
    ]


def paired(results: list[Replayed]) -> list[Replayed]:
    """The replayed sessions that every config in ``results`` finished (runs cut short at
    different points compare on the same sessions)."""
    configs = {r.config for r in results}
    done: dict[Session, set[str]] = defaultdict(set)
    for r in results:
        done[r.session].add(r.config)
    return [r for r in results if done[r.session] == configs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, help="replay this many sessions, spread over the languages "
                        "(default: all of sessions.json)")  # fmt: skip
    parser.add_argument("--languages", help="comma-separated languages (python, go, ...)")
    parser.add_argument(
        "--configs", default="a,b,c", help="comma-separated: a (file only), b (main), c (working tree)"
    )
    parser.add_argument("--main", default=MAIN, help="the commit config b runs (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "replay.md")
    parser.add_argument(
        "--server-log", type=Path, metavar="FILE", help="append every server's log messages to FILE "
        "(per request: prompt tokens read, time, why an answer was empty)"
    )
    parser.add_argument(
        "--rescore", type=Path, nargs="+", metavar="KEYS", help="print the tables of earlier runs' "
        "replay.keys.json (several: runs of different configs at the same time, each cut short; only "
        "the sessions every config finished are scored)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
    if not wanted or set(wanted) - set(CONFIGS):
        raise SystemExit(f"--configs takes a comma-separated subset of {', '.join(CONFIGS)}")
    configs = [CONFIGS[c] for c in wanted]
    if args.main != MAIN:
        configs = [Config("b", f"main {args.main}", args.main, {}) if c.key == "b" else c for c in configs]
    if args.rescore:
        results = paired([r for keys in args.rescore for r in load_keys(keys)])
        print_tables(tables(results, configs), Console(width=200))
        return 0
    languages = [name.strip() for name in args.languages.split(",")] if args.languages else None
    sessions = select(load(), args.sessions, languages)
    session = begin()
    console = session.console
    console.log(f"{len(sessions)} sessions x {len(configs)} configs")
    results: list[Replayed] = []
    keys_file = args.out.with_suffix(".keys.json")
    for repo in devset.manifest():
        mine = [s for s in sessions if s.repo == repo["name"]]
        if mine:
            package = Package(repo["registry"], repo["package"], repo["version"])
            root = fetch(package, console.log) / repo["root"]
            results += replay_repo(
                repo["name"], repo["language"], root, mine, configs, console.log, args.server_log
            )
            dump_keys(results, keys_file)  # after each repository: a run cut short can be --rescore'd
    command = "`" + " ".join(["python -m benchmarks.replay", *(sys.argv[1:] if argv is None else argv)]) + "`"
    finish(session, tables(results, configs), args.out, "ragls inline completion: replayed edits", command)
    console.print(f"every key in {keys_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
