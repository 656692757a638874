"""Keystroke to ghost text in VS Code: ``python -m benchmarks.bench_workbench_typing`` (also run
by ``python -m benchmarks.bench_server``).

The extension runs in the VS Code workbench of the tests (tests/editors/workbench.py: code-server
1.139 driven through Debian's chromium, the bundled model, greedy completions). A file of the
minirepo holding bench_server's PREFIX is opened, the model is loaded by one explicit request
(Alt+\\) at its end, and 30 keys of a line are typed one at a time; each is timed from the key
sent to the browser to the first frame that shows the typed text with ghost text after it
(polled in the page at every animation frame, up to 10 s; a key with none is counted). Before the
workbench, the raw client (benchmarks/lsp_client.py) sends the same keys to a ``ragls serve`` of
its own on an identical copy of the workspace: ``didChange`` then an automatic
``inlineCompletion``, waiting for each answer. Same file, same keys, same settings, so the
difference is what VS Code adds (its own debounce, the extension host, the round trips, the paint).
Every completion request the server saw is read from its log (``window/logMessage``: answered,
typed through, or nothing and why), the workbench's from the extension's output channel. A second
pass types the same keys in VS Code at a steady pace (``--pace``, 0.25 s), not waiting for ghost
text: how many keys get theirs before the next key, and what the server did with the others.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

from benchmarks.bench_server import PREFIX
from benchmarks.lsp_client import RawServer
from benchmarks.metrics import percentile
from benchmarks.report import Table, seconds
from benchmarks.run import RESULTS, begin, finish
from tests.editors.workbench import CONFIG, FIXTURE, missing_prerequisites, open_workbench

FILE = "shop/typing_bench.py"
INDENT = "        "
LINE = "totals[order.customer] += order.amount * rate"
WAIT_S = 10
# VS Code would close brackets by itself, which the raw client does not: the keys must be the same.
SETTINGS = {"editor.autoClosingBrackets": "never", "editor.autoClosingQuotes": "never"}
LOGGED = re.compile(r"completion at typing_bench\.py:(\d+):(\d+): (answered|typed through|nothing: [^(]*)")

# The typed line and its ghost text, from the page at every frame: the editor's text without the
# ghost text's own spans must end with what was typed, and some ghost text must be painted.
PAINTED = """([typed]) => {
  const editor = document.querySelector('.monaco-editor.focused');
  if (!editor) return false;
  const ghostSelector = '.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text';
  const painted = [...editor.querySelectorAll(ghostSelector)].map((e) => e.textContent).join('');
  const ghost = painted.replace(/\u00a0/g, ' ');
  if (!ghost.trim()) return false;
  for (const line of editor.querySelectorAll('.view-line')) {
    let text = '';
    const walk = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) {
      if (!walk.currentNode.parentElement.closest(ghostSelector)) text += walk.currentNode.textContent;
    }
    if (text.replace(/\\u00a0/g, ' ').trimEnd() === typed.trimEnd()) return ghost;
  }
  return false;
}"""


def workspace(base: Path) -> Path:
    """The minirepo with the workbench's config and the file typed into (PREFIX, then the indent)."""
    repo = base / "repo"
    shutil.copytree(FIXTURE, repo)
    (repo / ".ragls").mkdir(exist_ok=True)
    (repo / ".ragls" / "config.toml").write_text(CONFIG)
    (repo / FILE).write_text(PREFIX + INDENT)
    return repo


def outcomes(messages: list[str], line: int) -> dict[int, list[str]]:
    """What the server logged for each completion request on ``line`` (1-based), by the number
    of keys typed when it was asked (0: the explicit request before the first key)."""
    found: dict[int, list[str]] = {}
    for message in messages:
        for match in LOGGED.finditer(message):
            if int(match[1]) == line:
                found.setdefault(int(match[2]) - 1 - len(INDENT), []).append(match[3].strip())
    return found


def status(srv: RawServer) -> list[dict]:
    return srv.request("ragls/indexStatus", {}, timeout=120)["result"]["workspaces"]


def raw_client(base: Path, keys: int, log: Console) -> tuple[list[float], list[bool], dict[int, list[str]]]:
    """The same keys through the raw client: each key's ms from didChange to the answer, whether the
    answer held a suggestion, and the server's log by key."""
    repo = workspace(base)
    srv = RawServer(cwd=repo)
    try:
        srv.initialize(repo, {})
        deadline = time.monotonic() + 600
        while not any(w["state"] == "ready" for w in status(srv)):
            assert time.monotonic() < deadline, "the raw client's index was not ready in 600 s"
            time.sleep(0.5)
        uri = (repo / FILE).as_uri()
        text = PREFIX + INDENT
        srv.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                             "text": text}})  # fmt: skip
        line = PREFIX.count("\n")
        position = {"line": line, "character": len(INDENT)}
        # Invoked (triggerKind 1), as Alt+\ in the workbench: it waits for the model to load.
        srv.request("textDocument/inlineCompletion",
                    {"textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 1}},
                    timeout=600)  # fmt: skip
        latencies, shown = [], []
        for n, char in enumerate(LINE[:keys], 1):
            at = len(INDENT) + n - 1
            started = time.perf_counter()
            srv.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": n + 1},
                "contentChanges": [{"range": {"start": {"line": line, "character": at},
                                              "end": {"line": line, "character": at}}, "text": char}],
            })  # fmt: skip
            answer = srv.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": uri}, "position": {"line": line, "character": at + 1},
                "context": {"triggerKind": 2},
            }, timeout=600)  # fmt: skip
            latencies.append((time.perf_counter() - started) * 1000)
            items = answer.get("result") or {}
            items = items.get("items", []) if isinstance(items, dict) else items
            shown.append(any(item.get("insertText") for item in items))
            log.print(f"raw client key {n}/{keys}: {latencies[-1]:.0f} ms, suggestion: {shown[-1]}")
        logged = [m for m in srv.notifications if m.get("method") == "window/logMessage"]
        messages = [m["params"]["message"] for m in logged]
    finally:
        srv.close()
    return latencies, shown, outcomes(messages, line + 1)


def type_keys(page, keys: int, pace: float | None, log: Console) -> tuple[list[float | None], list[str]]:
    """Type the keys of LINE in the open editor: each key's ms to ghost text painted (None: none) and
    the ghost text then. ``pace`` None: wait for each key's ghost text (up to WAIT_S), then a
    person's pause (0.15 s); a number: a key every ``pace`` seconds whatever shows, as a typist does
    (a key's ghost text must come before the next key)."""
    latencies: list[float | None] = []
    ghosts: list[str] = []
    for n, char in enumerate(LINE[:keys], 1):
        started = time.perf_counter()
        page.keyboard.type(char)
        wait = WAIT_S if pace is None else max(0.001, pace - (time.perf_counter() - started))
        try:
            typed = INDENT + LINE[:n]
            ghost = page.wait_for_function(PAINTED, arg=[typed], polling="raf", timeout=wait * 1000)
            latencies.append((time.perf_counter() - started) * 1000)
            ghosts.append(ghost.json_value())
        except Exception as exc:  # playwright's TimeoutError: no ghost text for this key
            if "Timeout" not in type(exc).__name__:
                raise
            latencies.append(None)
            ghosts.append("")
        took = latencies[-1]
        log.print(f"workbench (pace {pace}) key {n}/{keys}: {seconds(took and took / 1000)}, {ghosts[-1]!r}")
        rest = 0.15 if pace is None else pace - (time.perf_counter() - started)
        time.sleep(max(0.0, rest))
    return latencies, ghosts


Pass = tuple[list[float | None], list[str], dict[int, list[str]]]


def workbench(base: Path, keys: int, pace: float, log: Console) -> list[Pass]:
    """The same keys typed in VS Code, waiting for each ghost text, then again (the file reverted)
    at a steady ``pace``: per pass, each key's ms to ghost text painted, the ghost texts, and the
    server's log by key (from the extension's output channel)."""
    base.mkdir()
    passes = []
    line = PREFIX.count("\n") + 1
    with open_workbench(base, extra_settings=SETTINGS) as bench:
        page = bench.page
        (bench.repo / FILE).write_text(PREFIX + INDENT)
        bench.open_file(FILE)
        bench.status_item().locator(".codicon-check").wait_for(timeout=600_000)
        for speed in (None, pace):
            page.keyboard.press("Control+End")
            page.keyboard.press("Alt+Backslash")  # loads the model (an invoked request waits for it)
            bench.ghost().first.wait_for(timeout=600_000)
            page.keyboard.press("Escape")
            bench.ghost().first.wait_for(state="detached")
            logs = list(bench.user_dir.glob("logs/**/*ragls*.log"))
            before = {p: p.stat().st_size for p in logs}
            latencies, ghosts = type_keys(page, keys, speed, log)
            time.sleep(2)  # the output channel reaches its file
            messages = []
            for p in bench.user_dir.glob("logs/**/*ragls*.log"):
                with p.open("rb") as f:
                    f.seek(before.get(p, 0))
                    messages.append(f.read().decode(errors="replace"))
            passes.append((latencies, ghosts, outcomes(messages, line)))
            page.keyboard.press("Escape")
            bench.palette("File: Revert File")
            page.locator(".tabs-container .tab.active.dirty").wait_for(state="detached")
    return passes


def why_none(painted: list[float | None], by_key: dict[int, list[str]]) -> Counter:
    """For each key that showed no ghost text, what the server logged for it (its last request)."""
    reasons: Counter = Counter()
    for n, took in enumerate(painted, 1):
        if took is None:
            reasons[(by_key.get(n) or ["no log line: superseded in the debounce, or never sent"])[-1]] += 1
    return reasons


def tally(by_key: dict[int, list[str]], keys: int) -> str:
    """How many requests of the typed keys ended each way (answered, typed through, nothing: why)."""
    counts = Counter(outcome for key in range(1, keys + 1) for outcome in by_key.get(key, []))
    return ", ".join(f"{outcome} {count}" for outcome, count in counts.most_common()) or "none"


def _ms(values: list[float], q: float) -> str:
    return seconds(percentile(values, q) / 1000) if values else "—"


def run(keys: int, pace: float, log: Console) -> list[Table]:
    """Both measurements, and VS Code typed at a steady pace. The user's config and indexes stay
    out of both servers (their environment says where); the derived embedding models are shared."""
    from ragls.indexer.model_cache import models_dir

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="ragls-workbench-bench-") as tmp:
        base = Path(tmp)
        os.environ.update(RAGLS_CACHE_DIR=str(base / "cache"), RAGLS_CONFIG=str(base / "no-config.toml"),
                          RAGLS_MODELS_DIR=str(models_dir()))  # fmt: skip
        try:
            log.print("raw client: the same file and keys over stdio")
            raw, raw_shown, raw_log = raw_client(base / "raw", keys, log)
            log.print("VS Code workbench")
            (painted, ghosts, vscode_log), paced = workbench(base / "workbench", keys, pace, log)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    table = Table(
        f"Keystroke to ghost text in VS Code 1.139 (code-server, chromium) vs the raw client, {keys} keys",
        ["keys", "n", "VS Code: ghost text shown", "VS Code p50", "VS Code p95", "raw client p50",
         "raw client p95"],
    )  # fmt: skip
    kinds = [(raw_log.get(n) or ["no request"])[-1].split(":")[0] for n in range(1, keys + 1)]
    groups = [("all", list(range(keys)))] + [
        (f"keys {kind}", [i for i, k in enumerate(kinds) if k == kind])
        for kind in sorted(set(kinds))
    ]
    for name, members in groups:
        shown = [painted[i] for i in members if painted[i] is not None]
        answers = [raw[i] for i in members]
        table.add(name, len(members), f"{len(shown)}/{len(members)}", _ms(shown, 0.5), _ms(shown, 0.95),
                  _ms(answers, 0.5), _ms(answers, 0.95))  # fmt: skip
    carried = sum(
        1 for n in range(1, keys) if painted[n] is not None and ghosts[n - 1][1:] == ghosts[n] and ghosts[n]
    )
    none = why_none(painted, vscode_log)
    table.notes += [
        f"Typed after `{INDENT}` in {FILE} (bench_server's prefix), the next key 0.15 s after each "
        f"ghost text (or after {WAIT_S} s without); the model loaded first by one explicit request at "
        "the same place in both. Greedy completions (temperature 0): both ask the same model the "
        f"same questions. The raw client got a suggestion for {sum(raw_shown)} of {keys} keys.",
        "VS Code: from the key sent to the browser to the first frame showing the typed text with "
        "ghost text after it (it includes VS Code's own wait before asking, the extension host, the "
        "round trips and the paint). Raw client: didChange sent to the answer read (the server's "
        "75 ms debounce included). Rows 2 on: the keys by what the server did with the raw client's "
        "request for them (the model answered, or the rest of the last suggestion was typed through).",
        f"VS Code showed no ghost text for {keys - len([t for t in painted if t is not None])} keys"
        + (": " + ", ".join(f"{k} ({v})" for k, v in none.items()) if none else "")
        + f". {carried} keys kept the previous ghost text shortened (the key typed was its first "
        "character: VS Code shows that at once).",
        f"Server log, every request of the {keys} keys: VS Code {tally(vscode_log, keys)}; "
        f"raw client {tally(raw_log, keys)}.",
    ]
    paced_times, _, paced_log = paced
    in_time = [t for t in paced_times if t is not None]
    steady = Table(
        f"VS Code typed at a steady pace: a key every {pace:g} s, {keys} keys, not waiting for ghost text",
        ["measured", "value"],
    )
    steady.add("keys whose ghost text was painted before the next key", f"{len(in_time)}/{keys}")
    steady.add("their key to ghost text, p50 / p95", f"{_ms(in_time, 0.5)} / {_ms(in_time, 0.95)}")
    for reason, count in why_none(paced_times, paced_log).most_common():
        steady.add(f"no ghost text before the next key; the server's last word on it: {reason}", count)
    steady.notes.append(
        f"Server log, every request of the {keys} keys: {tally(paced_log, keys)}. A request superseded "
        "while it waits out the server's debounce ends without a log line."
    )
    return [table, steady]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_workbench_typing", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--keys", type=int, default=30, help=f"keystrokes measured (at most {len(LINE)})")
    parser.add_argument("--pace", type=float, default=0.25, help="seconds between keys in the steady pass")
    parser.add_argument("--out", type=Path, default=RESULTS / "workbench_typing.md")
    args = parser.parse_args(argv)
    if not 1 <= args.keys <= len(LINE):
        parser.error(f"--keys must be between 1 and {len(LINE)}")
    missing = missing_prerequisites()
    if missing:
        parser.error("the VS Code workbench needs: " + "; ".join(missing))
    session = begin()
    tables = run(args.keys, args.pace, session.console)
    finish(session, tables, args.out, "VS Code typing", "`python -m benchmarks.bench_workbench_typing`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
