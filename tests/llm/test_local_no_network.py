"""In ``local`` mode ragls opens no socket: not for models, redaction, config or the CLI.

pytest-socket already blocks sockets for every test in this folder that is not marked
``loopback``; a library that caught and ignored its error would go unnoticed, so this test also
watches the interpreter's audit events, which see every socket attempt whatever happens next.
"""

from __future__ import annotations

import socket
import sys
import threading

import pytest

from ragls import config
from ragls.cli import main
from ragls.llm import Message, create
from ragls.privacy import Privacy

_watching = threading.Event()
_seen: list[str] = []


def _hook(event: str, args: tuple) -> None:
    if _watching.is_set() and event.startswith("socket."):
        _seen.append(f"{event}{args!r}"[:200])


sys.addaudithook(_hook)  # audit hooks cannot be removed; it records only while _watching is set


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_sockets_are_blocked_in_this_folder():
    with pytest.raises(Exception, match="socket"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_a_whole_local_session_opens_no_socket(capsys):
    _seen.clear()
    _watching.set()
    try:
        cfg = config.load()
        assert cfg.privacy.mode == "local"
        for role in ("chat", "completion"):
            provider = create(role, cfg)
            assert provider.chat([Message("user", "hi")], max_tokens=4).text() is not None
            assert provider.complete("def f():", max_tokens=4).text() is not None
            provider.close()
        Privacy(cfg.privacy).redactor.session().redact('password = "hunter2hunter2"')
        assert main(["models"]) == 0
        assert main(["doctor"]) == 0
        assert main(["privacy", "audit"]) == 0
    finally:
        _watching.clear()
    assert _seen == []
    assert "none (every configured model is local)" in capsys.readouterr().out
