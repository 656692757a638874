"""``ragls serve``: the language server, on stdio (what editors start) or on TCP (for debugging)."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys


def _serve(args: argparse.Namespace) -> int:
    from ragls.server.app import serve_stdio, serve_tcp

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="ragls %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # pygls logs whole messages at INFO: code and answers must not reach a log.
    logging.getLogger("pygls").setLevel(logging.WARNING)
    # `kill -USR1 <pid>` prints every thread's stack to the log: what a server that seems stuck is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            raise SystemExit(f"ragls serve: --tcp takes HOST:PORT, got {args.tcp!r}")
        code = serve_tcp(host or "127.0.0.1", int(port))
    else:
        code = serve_stdio()
    # The session has closed its indexes and models. The reader thread may still sit in a blocking
    # read of stdin, which makes interpreter shutdown abort; nothing is left to finalize, so leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the language server (editors start this)")
    p.add_argument("--stdio", action="store_true", help="speak LSP on stdin/stdout (the default)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP port instead and serve one client")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the server does (never content)")
    p.set_defaults(run=_serve)
