"""The server against a second, independent client stack: Microsoft's vscode-jsonrpc and
vscode-languageserver-protocol in Node (what VS Code's client is built on), so the protocol is
not only checked pygls against pygls. ``make install-test`` installs its packages (npm ci)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from lsp_support import FAST_SETTINGS
from ragls_testing import missing

CLIENT = Path(__file__).parents[1] / "node"


def test_vscode_jsonrpc_client_session(repo: Path) -> None:
    if shutil.which("node") is None or not (CLIENT / "node_modules" / "vscode-jsonrpc").is_dir():
        missing("node or tests/node/node_modules is missing (make install-test runs npm ci)")
    calc = repo / "shop" / "calc.py"
    calc.write_text("def add(a, b):\n    return a +")
    run = subprocess.run(
        ["node", str(CLIENT / "client.mjs"), sys.executable, str(repo), str(calc), json.dumps(FAST_SETTINGS)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["capabilities"]["inlineCompletionProvider"] is not None
    assert seen["capabilities"]["positionEncoding"] == "utf-16"
    (item,) = seen["inline"]["items"]
    assert item["insertText"].strip() == "b"
    assert {"refactor.ragls.explain", "refactor.ragls.docstring"} <= set(seen["actionKinds"])
    assert seen["explain"]["output"] == "text" and seen["explain"]["path"] == "shop/calc.py"
    assert seen["explain"]["answer"] and seen["explain"]["answer"] == seen["explain"]["streamed"]
    assert seen["progress"][0] == "begin" and seen["progress"][-1] == "end", seen["progress"]
    assert seen["edits"] == 0 and seen["exitCode"] == 0
