"""The VS Code extension in the VS Code workbench, driven as a user drives it: code-server (VS Code
1.139 for the browser, installed by ``make install-test`` under ``.cache/vscode-workbench``) runs the
freshly packaged ``.vsix`` against the real ``ragls serve`` from this venv and the bundled model,
and Playwright types and clicks in Debian's chromium. Everything stays on 127.0.0.1: the browser
resolves no other host, the extension gallery points at a closed port, code-server has no auth
and no telemetry or update checks. A failing step leaves a screenshot in ``build/test-artifacts/``.

The tests run in file order on one workbench (one window, one server), as one user session:
ready, ghost text, explicit trigger, recipes, chat, restart, then a broken server path."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CLIENT = ROOT / "editor-clients" / "vscode"
FIXTURE = ROOT / "tests" / "fixtures" / "minirepo"
WORKBENCH = ROOT / ".cache" / "vscode-workbench"
CODE_SERVER = WORKBENCH / "code-server" / "bin" / "code-server"
ARTIFACTS = ROOT / "build" / "test-artifacts" / "vscode-workbench"
# RAGLS_PICTURES=1 also saves the README's pictures of a passing run (editor-clients/vscode/README.md).
PICTURES = CLIENT / "media" / "pictures"
# The bundled model answering with few tokens: enough to see text stream and edits arrive.
CONFIG = """\
[index]
embeddings = false
[models.chat]
temperature = 0
context_length = 2048
[models.completion]
temperature = 0
context_length = 2048
[recipes]
answer_tokens = 48
context_tokens = 512
"""
RECONNECTION_GRACE_S = 5
MODEL_WAIT_MS = 120_000  # a step waiting for the model (2 shared cores, other work running)


def prerequisites() -> tuple[str, Path]:
    """Chromium and the node 24 that code-server runs on; fail under CI, else skip, when missing."""
    node_bins = sorted(WORKBENCH.glob("node/node_modules/node/node_modules/node-linux-*/bin"))
    chromium = shutil.which("chromium")
    missing = [
        what
        for what, ok in [
            ("code-server and node 24 (make install-test)", CODE_SERVER.exists() and node_bins),
            ("chromium (apt-get install chromium)", chromium),
            ("npm (apt-get install npm)", shutil.which("npm")),
            ("the client npm packages (make install-test)", (CLIENT / "node_modules/.bin/vsce").exists()),
            ("playwright (pip install -e '.[test]')", _has_playwright()),
        ]
        if not ok
    ]
    if missing:
        message = "the VS Code workbench tests need: " + "; ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert chromium is not None
    return chromium, node_bins[-1]


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we read it
        me = int(stat.parent.name)
        children.setdefault(ppid, []).append(me)
        commands[me] = cmdline
    found, todo = [], list(children.get(pid, []))
    while todo:
        me = todo.pop()
        found.append((me, commands[me]))
        todo.extend(children.get(me, []))
    return found


def ragls_servers(pid: int) -> list[int]:
    return [p for p, cmd in descendants(pid) if re.search(r"ragls\S* serve\b", cmd)]


@dataclass
class Workbench:
    """A code-server with the extension installed, a chromium page on it, and the workspace."""

    server: subprocess.Popen
    url: str
    repo: Path
    user_dir: Path
    page: object  # playwright.sync_api.Page
    browser: object

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A user-visible step: on failure its screenshot, the extension's output channel (the
        server's log) and code-server's log are kept as test artifacts."""
        try:
            yield
        except BaseException:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for log in [*self.user_dir.glob("logs/**/*ragls*.log"), self.user_dir.parent / "code-server.log"]:
                shutil.copy(log, ARTIFACTS / f"{name}-{log.name}")
            try:
                self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            except Exception as exc:  # the browser itself may be what failed
                print(f"no screenshot for {name}: {exc}", file=sys.stderr)
            raise

    def picture(self, name: str, clip: object | None = None) -> None:
        """With RAGLS_PICTURES=1, keep what the user sees now as the README's picture ``name``."""
        if os.environ.get("RAGLS_PICTURES") == "1":
            PICTURES.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(PICTURES / f"{name}.png"), clip=clip)

    # -- what a user does -------------------------------------------------------------------

    def palette(self, title: str) -> None:
        """Run a command by its title from the command palette (F1)."""
        page = self.page
        page.keyboard.press("F1")
        box = page.locator(".quick-input-widget input")
        box.wait_for()
        box.fill(f">{title}")
        page.locator(".quick-input-list .monaco-list-row", has_text=title).first.wait_for()
        page.keyboard.press("Enter")

    def open_file(self, relative: str) -> None:
        """Quick Open (Ctrl+P) the file and wait for its editor."""
        page = self.page
        page.keyboard.press("Control+P")
        box = page.locator(".quick-input-widget input")
        box.wait_for()
        box.fill(relative)
        page.locator(".quick-input-list .monaco-list-row", has_text=Path(relative).name).first.wait_for()
        page.keyboard.press("Enter")
        self.tab(Path(relative).name).wait_for()
        page.locator(".monaco-editor.focused").wait_for()

    def tab(self, name: str):
        return self.page.locator(".tabs-container .tab.active", has_text=name)

    def go_to_line(self, line: int) -> None:
        self.page.keyboard.press("Control+G")
        self.page.locator(".quick-input-widget input").fill(f":{line}")
        self.page.keyboard.press("Enter")

    def ghost(self):
        """The inline suggestion painted in the active editor."""
        return self.page.locator(".monaco-editor.focused").locator(
            ".ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text"
        )

    def cursor(self) -> tuple[int, int]:
        """(line, column) from the status bar's 'Ln 3, Col 5'."""
        text = self.page.locator("[id='status.editor.selection']").inner_text()
        found = re.search(r"Ln (\d+), Col (\d+)", text)
        assert found, text
        return int(found[1]), int(found[2])

    def select_lines(self, first: int, last: int) -> None:
        """Select whole lines with the keyboard, as a user does."""
        self.go_to_line(first)
        self.page.keyboard.press("Home")
        for _ in range(last - first + 1):
            self.page.keyboard.press("Shift+ArrowDown")

    def context_menu(self, word: str, item: str) -> None:
        """Right-click ``word`` (inside the selection) in the editor and pick ``item``."""
        shown = self.page.locator(".monaco-editor.focused .view-line span span", has_text=word)
        box = shown.first.bounding_box()
        assert box, f"{word} is not shown"
        self.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, button="right")
        # The menu ignores a click that comes too soon after it opened: point at the item, then Enter.
        self.page.locator(".monaco-menu .action-item", has_text=item).first.hover()
        self.page.locator(".monaco-menu .action-item.focused", has_text=item).wait_for()
        self.page.keyboard.press("Enter")

    def pick(self, label: str) -> None:
        """Choose ``label`` in the open quick pick."""
        self.page.locator(".quick-input-list .monaco-list-row", has_text=label).first.click()

    def saved_setting(self, key: str) -> object:
        """``key`` in the user settings file (None while the editor rewrites it)."""
        try:
            return json.loads((self.user_dir / "User" / "settings.json").read_text()).get(key)
        except ValueError:
            return None

    def set_setting(self, key: str, value: str) -> None:
        """Type ``value`` into the setting ``key`` in the Settings editor."""
        page = self.page
        self.palette("Preferences: Open User Settings")
        page.locator(".settings-editor").wait_for()
        page.keyboard.press("Control+A")
        page.keyboard.type(key)
        field = page.locator(".settings-editor .setting-item-contents", has_text=key.rsplit(".", 1)[-1][:6])
        box = field.locator("input").first
        box.fill(value)
        box.press("Tab")
        wait_for(lambda: self.saved_setting(key) == value, 10, f"{key} was not saved")
        page.locator(".settings-editor").press("Escape")  # the Settings editor opens as a modal
        page.locator(".settings-editor").wait_for(state="hidden")

    def save(self) -> None:
        self.page.keyboard.press("Control+S")
        self.page.locator(".tabs-container .tab.active.dirty").wait_for(state="detached")

    def status_item(self):
        return self.page.locator(".statusbar-item", has_text=re.compile(r"^\s*ragls"))

    def chat(self):
        """The chat view's document (a webview: an iframe inside an iframe)."""
        return self.page.frame_locator("iframe.webview.ready").frame_locator("#active-frame")

    def notification(self, text: str):
        return self.page.locator(".notification-toast", has_text=text)


def build_vsix(tmp: Path) -> Path:
    """``npm run package`` (the Makefile's and the client test's path), copied out of the tree."""
    done = subprocess.run(["npm", "run", "package"], cwd=CLIENT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"npm run package failed:\n{(done.stdout + done.stderr)[-4000:]}"
    vsix = tmp / "ragls.vsix"
    shutil.copy(CLIENT / "ragls.vsix", vsix)
    return vsix


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workbench]:
    chromium, node_bin = prerequisites()
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("workbench")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    repo = tmp / "repo"
    shutil.copytree(FIXTURE, repo)
    (repo / ".ragls").mkdir(exist_ok=True)
    (repo / ".ragls" / "config.toml").write_text(CONFIG)
    user_dir, extensions = tmp / "user-data", tmp / "extensions"
    (user_dir / "User").mkdir(parents=True)
    settings = {
        "ragls.client.serverPath": str(Path(sys.executable).parent / "ragls"),
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "security.workspace.trust.enabled": False,
        "telemetry.telemetryLevel": "off",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "update.mode": "none",
        "editor.inlineSuggest.enabled": True,
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        "editor.wordBasedSuggestions": "off",
        "files.autoSave": "off",
        "chat.disableAIFeatures": True,
    }
    (user_dir / "User" / "settings.json").write_text(json.dumps(settings, indent=1))
    gallery = f"http://127.0.0.1:{free_port()}"  # nothing listens: the gallery is closed
    env = {
        **os.environ,
        "PATH": f"{node_bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_DATA_HOME": str(tmp / "data"),
        "EXTENSIONS_GALLERY": json.dumps(
            {"serviceUrl": f"{gallery}/gallery", "itemUrl": f"{gallery}/item", "resourceUrlTemplate": gallery}
        ),
    }
    common = [str(CODE_SERVER), "--user-data-dir", str(user_dir), "--extensions-dir", str(extensions)]
    vsix = build_vsix(tmp)
    done = subprocess.run(
        [*common, "--install-extension", str(vsix)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "ragls" in done.stdout, done.stdout + done.stderr

    port = free_port()
    log = (tmp / "code-server.log").open("w")
    server = subprocess.Popen(
        [
            *common,
            "--bind-addr",
            f"127.0.0.1:{port}",
            "--auth",
            "none",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--disable-getting-started-override",
            # A closed window's extension host (and the server it started) is kept this long for
            # the window to reconnect; code-server's default is 3 hours.
            "--reconnection-grace-time",
            str(RECONNECTION_GRACE_S),
            str(repo),
        ],  # fmt: skip
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "healthz", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, (tmp / "code-server.log").read_text()
                assert time.monotonic() < deadline, "code-server did not answer in 60 s"
                time.sleep(0.3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            bench = Workbench(server, url, repo, user_dir, page, browser)
            with bench.step("00-open-workbench"):
                page.goto(f"{url}?folder={repo}")
                page.locator(".monaco-workbench").wait_for(timeout=60_000)
            yield bench
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


def test_status_item_reaches_ready(workbench: Workbench) -> None:
    with workbench.step("01-status-ready"):
        workbench.open_file("shop/cart.py")
        item = workbench.status_item()
        item.locator(".codicon-check").wait_for(timeout=MODEL_WAIT_MS)
        assert ragls_servers(workbench.server.pid), descendants(workbench.server.pid)
        item.hover()
        workbench.page.locator(".monaco-hover", has_text="ready").wait_for()
        workbench.picture("status", clip={"x": 0, "y": 800, "width": 640, "height": 100})
        workbench.page.mouse.move(700, 300)


def visible_text(locator) -> str:
    """What a locator shows, with the editor's non-breaking spaces as spaces."""
    return "".join(locator.all_inner_texts()).replace("\u00a0", " ")


def test_alt_backslash_invokes_a_suggestion(workbench: Workbench) -> None:
    """The explicit trigger by its key (Alt+\\), here while the model may still be loading: an
    invoked request waits for it, an automatic one does not."""
    page = workbench.page
    with workbench.step("02-explicit-trigger"):
        page.keyboard.press("Control+End")
        page.keyboard.type("\n    def is_empty(self):\n")
        time.sleep(2)  # any automatic suggestion for that typing has been asked for
        page.keyboard.press("Escape")
        ghost = workbench.ghost()
        assert ghost.count() == 0, visible_text(ghost)
        page.keyboard.press("Alt+Backslash")
        ghost.first.wait_for(timeout=MODEL_WAIT_MS)
        assert visible_text(ghost).strip()
        page.keyboard.press("Escape")
        ghost.first.wait_for(state="detached")
        workbench.save()


def test_typing_shows_ghost_text_and_tab_accepts_it(workbench: Workbench) -> None:
    page = workbench.page
    path = workbench.repo / "shop" / "cart.py"
    with workbench.step("03-ghost-text"):
        page.keyboard.press("Control+End")
        page.keyboard.type("\ndef item_count(cart):\n")
        ghost = workbench.ghost()
        ghost.first.wait_for(timeout=MODEL_WAIT_MS)
        shown = [" ".join(text.split()) for text in ghost.all_inner_texts() if text.strip()]
        assert shown, "the ghost text is empty"
        workbench.picture("ghost-text", clip={"x": 340, "y": 60, "width": 760, "height": 640})
    with workbench.step("04-tab-accepts"):
        page.keyboard.press("Tab")
        ghost.first.wait_for(state="detached")
        workbench.save()
        # Only a newline and the indentation followed the def we typed: the rest came with Tab.
        added = " ".join(path.read_text().split("def item_count(cart):\n", 1)[1].split())
        assert added and all(part in added for part in shown), (shown, added)


def test_docstring_recipe_from_the_context_menu_edits_the_selection(workbench: Workbench) -> None:
    """The recipe's code replaces the selected lines and nothing else (the bundled model is too
    small to be trusted to write the docstring itself: what it wrote is not checked)."""
    page = workbench.page
    path = workbench.repo / "shop" / "cart.py"
    before = path.read_text().splitlines()
    assert before[15:17] == [
        "    def subtotal(self):",
        "        return sum(price * qty for price, qty in self.lines.values())",
    ]
    with workbench.step("05-docstring-recipe"):
        workbench.select_lines(16, 17)
        workbench.context_menu("subtotal", "Run Recipe")
        workbench.pick("Write a docstring")
        turn = workbench.chat().locator("section.turn", has_text="docstring: shop/cart.py")
        turn.wait_for(timeout=30_000)
        page.locator(".tabs-container .tab.active.dirty").wait_for(timeout=MODEL_WAIT_MS)
        workbench.save()
        after = path.read_text().splitlines()
        assert after[:15] == before[:15], after
        assert after[-len(before[18:]) :] == before[18:], after
        assert after[15 : -len(before[18:])] != before[15:18], "the selection did not change"


def test_explain_recipe_streams_into_the_chat_view(workbench: Workbench) -> None:
    with workbench.step("06-explain-recipe"):
        workbench.select_lines(12, 14)  # def add(...)
        workbench.context_menu("setdefault", "Run Recipe")
        workbench.pick("Explain this code")
        turn = workbench.chat().locator("section.turn").last
        turn.locator(".question", has_text="explain: shop/cart.py").wait_for(timeout=30_000)
        answer = turn.locator("pre.answer")
        deadline = time.monotonic() + MODEL_WAIT_MS / 1000
        while answer.inner_text().strip() in ("", "…") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert answer.inner_text().strip() not in ("", "…"), "no explanation streamed in"


def test_a_question_in_the_chat_view_cites_code_that_opens(workbench: Workbench) -> None:
    page = workbench.page
    chat = workbench.chat()
    with workbench.step("07-chat-answer"):
        question = "What does SmtpMailer do when it sends a message?"
        chat.locator("#question").fill(question)
        chat.locator("#question").press("Enter")
        turn = chat.locator("section.turn", has_text=question)
        link = turn.locator("a.span").last
        link.wait_for(timeout=MODEL_WAIT_MS)
        assert turn.locator("pre.answer").inner_text().strip() not in ("", "…")
        workbench.picture("chat", clip={"x": 340, "y": 560, "width": 1060, "height": 340})
    with workbench.step("08-citation-opens"):
        cited = re.fullmatch(r"(.+):(\d+)-(\d+)", link.inner_text().strip())
        assert cited, link.inner_text()
        path, first, last = cited[1], int(cited[2]), int(cited[3])
        link.click()
        workbench.tab(Path(path).name).wait_for()
        deadline = time.monotonic() + 10
        while not first <= workbench.cursor()[0] <= last + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert first <= workbench.cursor()[0] <= last + 1, (cited[0], workbench.cursor())
        assert "selected" in page.locator("[id='status.editor.selection']").inner_text()


def wait_for(predicate, timeout: float, what: str):
    """Poll ``predicate`` until it is true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what} (after {timeout:.0f} s)"
        time.sleep(0.3)
    return value


def test_restart_server_from_the_palette(workbench: Workbench) -> None:
    with workbench.step("09-restart-server"):
        (old,) = ragls_servers(workbench.server.pid)
        workbench.palette("ragls: Restart Server")
        new = wait_for(
            lambda: [p for p in ragls_servers(workbench.server.pid) if p != old], 60, "no new ragls serve"
        )
        wait_for(
            lambda: old not in ragls_servers(workbench.server.pid), 30, "the old ragls serve is still running"
        )
        assert len(new) == 1, new
        workbench.status_item().locator(".codicon-check").wait_for(timeout=MODEL_WAIT_MS)


def test_a_server_path_that_does_not_exist_is_named_in_a_notification(workbench: Workbench) -> None:
    """Set in the Settings editor, as a user does; then fixed again, the server comes back."""
    good = str(Path(sys.executable).parent / "ragls")
    with workbench.step("10-missing-server-path"):
        workbench.set_setting("ragls.client.serverPath", "/nonexistent/ragls")
        toast = workbench.notification("ragls.client.serverPath")
        toast.wait_for(timeout=60_000)
        message = toast.inner_text()
        assert "/nonexistent/ragls" in message and "Open settings" in message, message
        assert " at " not in message, f"a stack trace is no message for a user: {message}"
        wait_for(lambda: not ragls_servers(workbench.server.pid), 30, "a ragls serve is still running")
    with workbench.step("11-server-path-fixed"):
        workbench.set_setting("ragls.client.serverPath", good)
        wait_for(lambda: ragls_servers(workbench.server.pid), 60, "no ragls serve after the fix")
        workbench.status_item().locator(".codicon-check").wait_for(timeout=MODEL_WAIT_MS)


def test_closing_the_window_ends_its_server(workbench: Workbench) -> None:
    """code-server keeps a closed window's extension host for the reconnection grace time; when
    it goes, its ``ragls serve`` must go too (stdin closed, and its LSP processId gone)."""
    with workbench.step("12-close-window"):
        (server,) = ragls_servers(workbench.server.pid)
        workbench.page.close()
        wait_for(
            lambda: server not in ragls_servers(workbench.server.pid),
            RECONNECTION_GRACE_S + 60,
            f"ragls serve {server} outlived its window: {descendants(workbench.server.pid)}",
        )
