"""``python -m benchmarks.bench_server``: the language server as an editor sees it, over stdio.

1. Keystroke to inline completion: a line typed one character at a time (``didChange`` then an
   automatic ``textDocument/inlineCompletion``, each waiting for its answer), bundled model, in a
   500-file project whose keyword index is complete, first with nothing else to do (idle), then
   while a second workspace folder of 10,000 files is indexed from scratch (busy). The project's
   index, and so every prompt, is the same both times; the ratio busy/idle is what background
   indexing costs the user; target < 1.5. The first keystroke of a session reads the whole prompt
   (cold) and is reported on its own; the debounce is set to 0 so only the server's time counts.
2. Memory: the daemon's resident set idle and while indexing, and the indexer child's.
3. Sync under load: 1,000 ``didChange`` per second for 10 s (single-character inserts and deletes at
   random places, astral characters and a form feed included), then the server's copy of the
   buffer (``ragls/documentState``) is compared with the client's. The same edit stream applied
   in-process to ragls' document and to pygls' own ``TextDocument`` is the baseline.
4. Keystroke to ghost text in the VS Code workbench next to the raw client's figure for the same
   keys (benchmarks/bench_workbench_typing.py; ``--no-workbench`` leaves it out).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console

from benchmarks.corpora import speed_repo
from benchmarks.lsp_client import RawServer
from benchmarks.report import Table, ratio
from benchmarks.run import RESULTS, begin, finish

PREFIX = (
    "from collections import defaultdict\n\n\n"
    "def summarize_orders(orders, currency):\n"
    '    """Totals per customer, in the given currency."""\n'
    "    totals = defaultdict(float)\n"
    "    for order in orders:\n"
)
TYPED = "        totals[order.customer] += order.amount"
SETTINGS = {
    "models": {"completion": {"temperature": 0.0}},
    "server": {"debounce_ms": 0},
}


def _rss_mib(pid: int, field: str = "VmRSS") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _status(srv: RawServer, root: Path) -> dict:
    workspaces = srv.request("ragls/indexStatus", {}, timeout=120)["result"]["workspaces"]
    return next((w for w in workspaces if w["root"] == str(root.resolve())), {"state": "missing", "files": 0})


def _wait(srv: RawServer, root: Path, done, timeout: float) -> float:
    started = time.monotonic()
    while not done(_status(srv, root)):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{root}: the index did not get there in {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def type_line(srv: RawServer, path: Path, log: Console) -> tuple[float, list[float]]:
    """Open ``path`` holding PREFIX, type TYPED; (cold first latency, warm latencies) in ms."""
    uri = path.as_uri()
    srv.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": PREFIX}},
    )
    line = PREFIX.count("\n")
    latencies = []
    for n, char in enumerate(TYPED, 1):
        started = time.perf_counter()
        srv.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": n + 1},
                "contentChanges": [
                    {
                        "range": {
                            "start": {"line": line, "character": n - 1},
                            "end": {"line": line, "character": n - 1},
                        },
                        "text": char,
                    }
                ],
            },
        )
        answer = srv.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": n},
                "context": {"triggerKind": 2},
            },
            timeout=600,
        )
        assert "result" in answer, answer
        latencies.append((time.perf_counter() - started) * 1000)
    warm = statistics.median(latencies[1:])
    log.print(f"  typed {len(TYPED)} keys: cold {latencies[0]:.0f} ms, warm p50 {warm:.0f} ms")
    return latencies[0], latencies[1:]


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def _folder(source: Path, dest: Path, embeddings: bool) -> Path:
    shutil.copytree(source, dest)
    (dest / ".ragls").mkdir(exist_ok=True)
    (dest / ".ragls" / "config.toml").write_text(
        f"[index]\nembeddings = {'true' if embeddings else 'false'}\n"
    )
    return dest


def keystrokes(scratch: Path, big: int, log: Console) -> tuple[Table, Table]:
    """Typing in a 500-file project whose keyword index is complete, with nothing else to do
    (idle), then with a second folder of ``big`` files being indexed from scratch, keyword then
    dense layer (busy). The typed project's index, and so every prompt, is the same both times."""
    log.print("copying the corpora")
    project = _folder(speed_repo(500, log.print), scratch / "project", embeddings=False)
    other = _folder(speed_repo(big, log.print), scratch / "other", embeddings=True)
    typed = project / "ragls_bench_typing.py"
    typed.write_text(PREFIX)
    env = {**os.environ, "RAGLS_CACHE_DIR": str(scratch / "indexes")}

    log.print("idle: the project alone, its keyword index complete")
    srv = RawServer(env=env)
    srv.initialize(None, SETTINGS, folders=[project])
    _wait(srv, project, lambda w: w["state"] == "ready", 3600)
    idle_cold, idle = type_line(srv, typed, log)
    idle_rss = _rss_mib(srv.proc.pid)
    srv.close()

    log.print(f"busy: the same, while a {big:,}-file folder is indexed from scratch")
    srv = RawServer(env=env)
    srv.initialize(None, SETTINGS, folders=[project, other])
    _wait(srv, project, lambda w: w["state"] == "ready", 3600)
    _wait(srv, other, lambda w: w["state"] == "indexing" and w["files"] > 0, 3600)
    samples: list[tuple[float | None, float | None]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            kids = _children(srv.proc.pid)
            samples.append((_rss_mib(srv.proc.pid), max((_rss_mib(k) or 0 for k in kids), default=None)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    busy_cold, busy = type_line(srv, typed, log)
    stop.set()
    sampler.join()
    still = _status(srv, other)
    srv.close()

    table = Table(
        "Keystroke to inline completion over stdio (bundled SmolLM2-135M)",
        ["measure", "idle", f"while {big:,} files are indexed", "busy / idle", "target"],
    )
    for label, a, b, target in (
        ("p50, warm (prefix cached)", statistics.median(idle), statistics.median(busy), "< ×1.5"),
        ("p95, warm", _p95(idle), _p95(busy), "< ×1.5"),
        ("first keystroke (cold prompt)", idle_cold, busy_cold, ""),
    ):
        table.add(label, f"{a:.0f} ms", f"{b:.0f} ms", ratio(b, a), target)
    table.notes += [
        f"{len(TYPED) - 1} warm keystrokes a session, each waiting for its answer; server.debounce_ms = 0 "
        "(an editor adds its debounce on top).",
        "Typed in the 500-file speed corpus, its keyword index complete both times (the same prompts); "
        f"busy = a second workspace folder of the {big:,}-file corpus indexed from scratch with embeddings "
        f"meanwhile (when typing ended: {still['files']} files indexed, state '{still['state']}').",
    ]
    daemon_busy = [d for d, _ in samples if d is not None]
    child = [c for _, c in samples if c is not None]
    memory = Table("Language server memory (resident set)", ["process", "idle", "while indexing"])
    memory.add(
        "ragls serve (the daemon)",
        f"{idle_rss:.0f} MiB" if idle_rss else None,
        f"{max(daemon_busy):.0f} MiB" if daemon_busy else None,
    )
    memory.add("ragls index child (parsing, embedding)", "—", f"{max(child):.0f} MiB" if child else None)
    memory.notes.append("Sampled every 0.5 s while typing; the child exists only while indexing runs.")
    return table, memory


# -- sync under load ---------------------------------------------------------------------------


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def edit_stream(text: str, count: int, seed: int = 7) -> tuple[list[tuple[int, int, int, int, str]], str]:
    """``count`` random one-character inserts and deletes as (line, UTF-16 column, end line, end
    column, new text), and the text once they are all applied."""
    rng = random.Random(seed)
    alphabet = "abcxyz_ (){}:é😀\t"
    lines = text.split("\n")
    edits = []
    for _ in range(count):
        row = rng.randrange(len(lines))
        line = lines[row]
        col = rng.randrange(len(line) + 1)
        if rng.random() < 0.7 or col == len(line):
            new, end = rng.choice(alphabet), col
        else:
            new, end = "", col + 1
        edits.append((row, _utf16(line[:col]), row, _utf16(line[:end]), new))
        lines[row] = line[:col] + new + line[end:]
    return edits, "\n".join(lines)


def sync_flood(log: Console, rate: int = 1000, seconds: int = 10) -> Table:
    from lsprotocol import types
    from pygls.workspace import TextDocument

    from ragls.server.documents import Document

    original = "".join(f"def f{n}(x):\n    return x + {n}  # \f é 😀\n" for n in range(1000))
    edits, expected = edit_stream(original, rate * seconds)
    changes = [
        types.TextDocumentContentChangePartial(
            range=types.Range(
                start=types.Position(line=a, character=b), end=types.Position(line=c, character=d)
            ),
            text=new,
        )
        for a, b, c, d, new in edits
    ]

    def apply_all(apply) -> float:
        started = time.perf_counter()
        for change in changes:
            apply(change)
        return time.perf_counter() - started

    ours = Document("file:///x.py", original)
    ours_s = apply_all(ours.apply)
    theirs = TextDocument("file:///x.py", original)
    theirs_s = apply_all(theirs.apply_change)
    ours_text, theirs_text = ours.text, theirs.source

    with tempfile.TemporaryDirectory() as tmp:
        srv = RawServer()
        srv.initialize(Path(tmp), {"index": {"embeddings": False}})
        uri = (Path(tmp) / "flood.py").as_uri()
        srv.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": original}},
        )
        started = time.perf_counter()
        for n, (a, b, c, d, new) in enumerate(edits, 2):
            srv.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": n},
                    "contentChanges": [
                        {
                            "range": {
                                "start": {"line": a, "character": b},
                                "end": {"line": c, "character": d},
                            },
                            "text": new,
                        }
                    ],
                },
            )
            ahead = started + (n - 1) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        sent = time.perf_counter() - started
        state = srv.request("ragls/documentState", {"uri": uri}, timeout=300)["result"]
        caught_up = time.perf_counter() - started - sent
        srv.close()
    same = (
        state["sha256"] == hashlib.sha256(expected.encode()).hexdigest()
        and state["version"] == len(edits) + 1
    )
    log.print(f"  sent {len(edits)} edits in {sent:.1f} s; server copy equal: {same}")

    table = Table(
        "Buffer sync under load: 1,000 didChange per second for 10 s",
        ["measure", "ragls serve", "baseline", "ratio"],
    )
    table.add("edits sent / rate achieved", f"{len(edits)} / {len(edits) / sent:.0f} per s", "", "")
    table.add("server's copy equals the client's at the end", "yes" if same else "NO", "", "")
    table.add("answer to ragls/documentState after the last edit", f"{caught_up * 1000:.0f} ms", "", "")
    table.add(
        "apply the 10,000 edits in-process (ragls Document vs pygls TextDocument)",
        f"{ours_s * 1000:.0f} ms",
        f"{theirs_s * 1000:.0f} ms",
        ratio(ours_s, theirs_s),
    )
    table.add(
        "in-process result equals the client's",
        "yes" if ours_text == expected else "NO",
        "yes" if theirs_text == expected else "NO",
        "",
    )
    table.notes.append(
        "A 2,000-line document with form feeds, é and 😀; inserts and deletes at random places, "
        "UTF-16 columns. pygls' TextDocument splits lines with str.splitlines, which also breaks at "
        "form feeds, unlike LSP (ragls keeps its own document for that reason)."
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--files", type=int, default=10_000, help="size of the speed corpus for the keystroke test"
    )
    parser.add_argument(
        "--workbench",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also keystroke to ghost text in the VS Code workbench (benchmarks.bench_workbench_typing)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "server.md")
    args = parser.parse_args(argv)
    session = begin()
    log = session.console
    with tempfile.TemporaryDirectory() as tmp:
        typing, memory = keystrokes(Path(tmp), args.files, log)
    flood = sync_flood(log)
    tables = [typing, memory, flood]
    if args.workbench:
        from benchmarks import bench_workbench_typing  # it reads this module's PREFIX
        from tests.editors.workbench import missing_prerequisites

        missing = missing_prerequisites()
        if missing:
            log.print("no VS Code workbench table: it needs " + "; ".join(missing))
        else:
            tables += bench_workbench_typing.run(30, 0.25, log)
    command = "`python -m benchmarks.bench_server`"
    finish(session, tables, args.out, "Language server", command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
