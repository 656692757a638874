"""An editor user typing sessions into ``ragls serve``, over stdio, as VS Code drives it.

Per keystroke: ``didChange`` (the key inserted at the cursor) then an automatic
``textDocument/inlineCompletion``; a request still unanswered when the next key is pressed is
cancelled (``$/cancelRequest``) and its answer, if one still comes, is never shown. Keys follow
each other at 80-120 ms (seeded per session, so every configuration types with the same rhythm).
The typist pauses on the suggestion (waits for its answer) at the first key of a session (up to
30 s, so the first keystroke in a file is measured in full), after every Enter and after the last
key (up to 2 s, then types on: the moments a user reads what is offered, as long as one would).
"""

from __future__ import annotations

import queue
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.lsp_client import RawServer
from benchmarks.replay.sessions import Edit, Session, keystrokes

KEY_MS = (80, 120)
PAUSE_TIMEOUT = 2.0  # seconds the typist waits for the suggestion at a line start before typing on
FIRST_KEY_TIMEOUT = 30.0  # ... and at the first key of a session (measured in full)
READY_TIMEOUT = 900.0
AUTOMATIC = 2  # InlineCompletionTriggerKind.Automatic
CAPABILITIES = {
    "textDocument": {"inlineCompletion": {}, "synchronization": {"didSave": True}},
    "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}},
}
WARMUP = "ragls-replay-warmup.txt"  # an unsaved buffer that loads the model before the first session


@dataclass
class Key:
    text: str
    pause: bool  # the typist waited for this key's answer
    # "item", "empty", "superseded" (no answer before the next key), "timeout" (none within a pause), "error"
    status: str
    latency_ms: float | None = None  # keystroke (its didChange) to answer
    item: str = ""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class Typist:
    """One ``ragls serve`` on one workspace (a copy of the artifact's root), many sessions."""

    def __init__(self, workspace: Path, env: dict[str, str], settings: dict, log: Path | None = None) -> None:
        self.root = workspace
        self.log = log  # the server's log messages are appended here, per session
        self.srv = RawServer(cwd=workspace, env=env)
        self._next = 0
        self.srv.initialize(workspace, settings=settings, capabilities=CAPABILITIES)
        self.wait_ready(settle=0)
        self._warm_up()

    def close(self) -> None:
        self.srv.close()

    def _id(self) -> str:
        self._next += 1
        return f"r{self._next}"

    def _status(self) -> dict:
        answer = self.srv.request("ragls/indexStatus", {}, timeout=120)
        workspaces = answer["result"]["workspaces"]
        return next((w for w in workspaces if w["root"] == str(self.root.resolve())), {"state": "missing"})

    def wait_ready(self, settle: float = 0.3) -> None:
        """Until the workspace is indexed and embedded (``settle``: time for a notified change to
        reach the index writer first)."""
        time.sleep(settle)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            status = self._status()
            if status["state"] == "error":
                raise RuntimeError(f"{self.root}: indexing failed: {status.get('error')}")
            if status["state"] == "ready" and not status.get("pending_embeddings"):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.root}: not indexed within {READY_TIMEOUT:.0f} s ({status['state']})"
                )
            time.sleep(0.2)

    def _warm_up(self) -> None:
        """Load the model on a scratch buffer (an editor session has it loaded by the time the user
        opens the file they edit); the sessions' own prompts stay cold."""
        uri = (self.root / WARMUP).as_uri()
        doc = {"uri": uri, "languageId": "plaintext", "version": 1, "text": "hello\n"}
        self.srv.notify("textDocument/didOpen", {"textDocument": doc})
        self.srv.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": 1, "character": 0},
                "context": {"triggerKind": 1},
            },
            timeout=300,
        )
        self.srv.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    def changed_on_disk(self, paths: list[Path]) -> None:
        """What the editor's file watcher reports after the files were rewritten."""
        changes = [{"uri": p.as_uri(), "type": 2} for p in paths]
        self.srv.notify("workspace/didChangeWatchedFiles", {"changes": changes})
        self.wait_ready()

    def type_session(self, session: Session, path: Path, edit: Edit, language: str) -> list[Key]:
        """Open ``path`` holding ``edit.before``, type ``edit.typed`` at ``edit.offset``, close it."""
        uri = path.as_uri()
        doc = {"uri": uri, "languageId": language, "version": 1, "text": edit.before}
        self.srv.notify("textDocument/didOpen", {"textDocument": doc})
        head = edit.before[: edit.offset]
        line, char = head.count("\n"), utf16_len(head.rsplit("\n", 1)[-1])
        rng = random.Random(session.label)
        keys = keystrokes(edit.typed)
        out: list[Key] = []
        sent: dict[str, tuple[int, float]] = {}  # request id -> (key index, sent at)
        pending: str | None = None
        next_at = time.perf_counter()
        for i, text in enumerate(keys):
            self._collect(next_at, sent, out, pending)
            if pending is not None and out[sent[pending][0]].status == "pending":
                self.srv.notify("$/cancelRequest", {"id": pending})
                out[sent[pending][0]].status = "superseded"
            here = {"line": line, "character": char}
            change = {"range": {"start": here, "end": here}, "text": text}
            started = time.perf_counter()
            self.srv.notify(
                "textDocument/didChange",
                {"textDocument": {"uri": uri, "version": i + 2}, "contentChanges": [change]},
            )
            if "\n" in text:
                line, char = line + text.count("\n"), utf16_len(text.rsplit("\n", 1)[-1])
            else:
                char += utf16_len(text)
            pending = self._id()
            params = {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": char},
                "context": {"triggerKind": AUTOMATIC},
            }
            request = {"jsonrpc": "2.0", "id": pending, "method": "textDocument/inlineCompletion"}
            self.srv.send({**request, "params": params})
            sent[pending] = (i, started)
            pause = i == 0 or text.startswith("\n") or i == len(keys) - 1
            out.append(Key(text, pause, "pending"))
            next_at = started + rng.uniform(*KEY_MS) / 1000
            if pause:
                wait = FIRST_KEY_TIMEOUT if i == 0 else PAUSE_TIMEOUT
                answered = self._collect(time.perf_counter() + wait, sent, out, pending, until_answered=True)
                if out[i].status == "pending":
                    out[i].status = "timeout"
                    self.srv.notify("$/cancelRequest", {"id": pending})
                next_at = max(next_at, answered)
        self.srv.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        self._collect(time.perf_counter() + 0.05, sent, out, None)
        self._save_log(session.label)
        return out

    def _save_log(self, label: str) -> None:
        """Append the server's log messages since the last call (each request's prompt tokens
        read, its time, why it answered nothing) under ``label``."""
        notes, self.srv.notifications[:] = list(self.srv.notifications), []
        if self.log is None:
            return
        lines = [n["params"]["message"] + "\n" for n in notes if n.get("method") == "window/logMessage"]
        with self.log.open("a", encoding="utf-8") as f:
            f.writelines([f"== {label}\n", *lines])

    def _collect(
        self, until: float, sent: dict, out: list[Key], pending: str | None, until_answered: bool = False
    ) -> float:
        """Take answers as they arrive until ``until`` (or until ``pending`` is answered); the time
        of the last one taken."""
        last = time.perf_counter()
        while True:
            if until_answered and pending is not None and out[sent[pending][0]].status != "pending":
                return last
            left = until - time.perf_counter()
            if left <= 0:
                return last
            try:
                message = self.srv.messages.get(timeout=left)
            except queue.Empty:
                return time.perf_counter()
            last = time.perf_counter()
            if message.get("id") not in sent:
                continue
            index, started = sent[message["id"]]
            key = out[index]
            if key.status != "pending":
                continue  # the answer to a superseded request: the editor drops it
            key.latency_ms = (last - started) * 1000
            if "error" in message:
                key.status = "error"
                continue
            result = message.get("result") or {}
            items = result.get("items", []) if isinstance(result, dict) else result
            text = items[0].get("insertText", "") if items else ""
            key.item = text if isinstance(text, str) else text.get("value", "")
            key.status = "item" if key.item else "empty"


def prepare_workspace(source: Path, target: Path) -> Path:
    """A fresh copy of the artifact's root for one server."""
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, symlinks=True)
    return target
