"""The Emacs client (editor-clients/emacs/ragls.el) in a real Emacs: its ERT suite runs in
``emacs --batch`` with eglot (and lsp-mode), driving the real ``ragls serve`` from this venv.
``make install-test`` installs emacs-nox, elpa-eglot and elpa-lsp-mode with apt when missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ragls_testing import missing, requantised

CLIENT = Path(__file__).parents[2] / "editor-clients" / "emacs"
# Every ERT test must pass (none skipped): a test that silently disappeared would go unnoticed.
EXPECTED = {
    "ragls-test-byte-compiles-without-warnings",
    "ragls-test-installs-with-package-install-file",
    "ragls-test-registers-with-eglot",
    "ragls-test-inline-completion-on-demand-is-accepted",
    "ragls-test-inline-completion-after-typing-and-dismissed",
    "ragls-test-fontification-neither-stops-nor-drops-the-completion",
    "ragls-test-a-request-sent-while-one-is-in-flight-is-shown",
    "ragls-test-moving-away-drops-the-completion",
    "ragls-test-explain-code-action-streams-into-the-chat-buffer",
    "ragls-test-recipe-command-edits-the-buffer",
    "ragls-test-ask-streams-an-answer-with-clickable-citations",
    "ragls-test-follow-up-and-search-route-in-the-chat-buffer",
    "ragls-test-search-lists-results-in-xref",
    "ragls-test-status-names-the-index-state",
    "ragls-test-models-picker-uses-a-model-and-writes-the-config",
    "ragls-test-arena-shows-both-answers-blind-then-takes-the-vote",
    "ragls-test-missing-binary-names-the-command",
    "ragls-test-server-crashing-at-start-is-explained",
    "ragls-test-remote-and-non-file-buffers-are-skipped",
    "ragls-test-huge-file-gets-no-inline-completion",
    "ragls-test-reconnects-after-the-server-dies",
    "ragls-test-lsp-mode-registration-serves-inline-ask-and-search",
}


# The server-death tests run in an Emacs of their own: in the Emacs that ran the others (after
# the huge-file test), Emacs 28 was seen not to notice a killed server for minutes.
PROCESS_TESTS = r"ragls-test-reconnects\\|ragls-test-server-crashing"  # an Elisp string literal


def run_ert(emacs: str, selector: str, tmp_path: Path) -> tuple[int, str, set[str]]:
    """Run the ERT tests matching ``selector`` in ``emacs --batch``; exit code, log, passed tests."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "RAGLS_ARENA_MODEL": str(requantised(tmp_path)),  # the arena's second model
    }
    run = subprocess.run(
        [
            emacs,
            "--batch",
            "-L",
            str(CLIENT),
            "-l",
            "ert",
            "-l",
            str(CLIENT / "test" / "ragls-test.el"),
            "--eval",
            f"(ert-run-tests-batch-and-exit '{selector})",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
        cwd=tmp_path,
    )
    log = run.stdout + run.stderr
    return run.returncode, log, set(re.findall(r"^\s+passed\s+\d+/\d+\s+(\S+)", log, re.MULTILINE))


def test_emacs_client_ert_suite(tmp_path: Path) -> None:
    emacs = shutil.which("emacs")
    if emacs is None:
        missing("emacs is missing (make install-test installs emacs-nox, elpa-eglot, elpa-lsp-mode)")
    (tmp_path / "main").mkdir()
    (tmp_path / "process").mkdir()
    code, log, passed = run_ert(emacs, f'(not "{PROCESS_TESTS}")', tmp_path / "main")
    assert code == 0, log[-6000:]
    code, process_log, process_passed = run_ert(emacs, f'"{PROCESS_TESTS}"', tmp_path / "process")
    assert code == 0, process_log[-6000:]
    passed |= process_passed
    assert passed == EXPECTED, f"not passed: {EXPECTED - passed}; unknown: {passed - EXPECTED}\n{log[-3000:]}"
