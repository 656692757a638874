"""A VS Code workbench for the tests: code-server (VS Code 1.139 for the browser, installed by
``make install-test`` under ``.cache/vscode-workbench``) with the freshly packaged ``.vsix``,
running the real ``ragls serve`` from this venv on a copy of the minirepo fixture, and a page of
Debian's chromium on it, driven with Playwright as a user drives it. Everything stays on
127.0.0.1: the browser resolves no other host, the extension gallery points at a closed port,
code-server has no auth and no telemetry or update checks."""

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
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.editors import pictures

ROOT = Path(__file__).parents[2]
CLIENT = ROOT / "editor-clients" / "vscode"
FIXTURE = ROOT / "tests" / "fixtures" / "minirepo"
WORKBENCH = ROOT / ".cache" / "vscode-workbench"
CODE_SERVER = WORKBENCH / "code-server" / "bin" / "code-server"
ARTIFACTS = ROOT / "build" / "test-artifacts" / "vscode-workbench"
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


def missing_prerequisites() -> list[str]:
    """What is missing to run a workbench here, each with how to get it."""
    return [
        what
        for what, ok in [
            ("code-server and node 24 (make install-test)", CODE_SERVER.exists() and node_bin()),
            ("chromium (apt-get install chromium)", shutil.which("chromium")),
            ("npm (apt-get install npm)", shutil.which("npm")),
            ("the client npm packages (make install-test)", (CLIENT / "node_modules/.bin/vsce").exists()),
            ("playwright (pip install -e '.[test]')", _has_playwright()),
        ]
        if not ok
    ]


def node_bin() -> Path | None:
    """The bin folder of the node 24 code-server runs on (the npm ``node`` package's binary)."""
    found = sorted(WORKBENCH.glob("node/node_modules/node/node_modules/node-linux-*/bin"))
    return found[-1] if found else None


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


def extension_hosts(pid: int) -> list[int]:
    """The extension host processes below ``pid`` (VS Code forks each with --type=extensionHost)."""
    return [p for p, cmd in descendants(pid) if "--type=extensionHost" in cmd]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


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
        if pictures.wanted():
            self.page.screenshot(path=str(pictures.picture_path("vscode", name)), clip=clip)

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


@contextmanager
def open_workbench(
    tmp: Path, config: str = CONFIG, extra_settings: dict | None = None
) -> Iterator[Workbench]:
    """code-server on a free port with the extension installed and a chromium page on the
    workspace ``tmp/repo`` (the minirepo, with ``config`` as its ragls config); all of it ends
    on leaving. Check ``missing_prerequisites()`` first."""
    from playwright.sync_api import sync_playwright

    extra_settings = extra_settings or {}
    repo = tmp / "repo"
    shutil.copytree(FIXTURE, repo)
    (repo / ".ragls").mkdir(exist_ok=True)
    (repo / ".ragls" / "config.toml").write_text(config)
    user_dir, extensions = tmp / "user-data", tmp / "extensions"
    (user_dir / "User").mkdir(parents=True)
    settings = {
        "ragls.client.serverPath": str(Path(sys.executable).parent / "ragls"),
        **extra_settings,
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
        "PATH": f"{node_bin()}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
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
        ],
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
                executable_path=shutil.which("chromium"),
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
        with suppress(ProcessLookupError):  # a test may have stopped code-server already
            os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


def visible_text(locator) -> str:
    """What a locator shows, with the editor's non-breaking spaces as spaces."""
    return "".join(locator.all_inner_texts()).replace("\u00a0", " ")


def wait_for(predicate, timeout: float, what: str):
    """Poll ``predicate`` until it is true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what} (after {timeout:.0f} s)"
        time.sleep(0.3)
    return value
