"""LSP base protocol framing over a pair of byte streams (stdio, or a TCP connection's files).

A dedicated thread reads frames, so a busy worker pool can never delay the next keystroke's
message; the event loop only dispatches. Frames are read defensively: unknown headers are
skipped, a missing or bad ``Content-Length`` loses only that frame, an oversized body is
discarded in pieces without holding it in memory. Writes from any thread are serialised, and
a client that has gone away turns writes into no-ops instead of exceptions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

log = logging.getLogger(__name__)

MAX_HEADER_LINE = 8192
MAX_BODY = 256 * 1024 * 1024  # a larger message is read and thrown away, with a log line
DISCARD_PIECE = 1 << 20


def read_frames(stream: BinaryIO) -> Iterator[bytes]:
    """Message bodies, in order, until the stream ends."""
    while True:
        length: int | None = None
        while True:
            line = stream.readline(MAX_HEADER_LINE)
            if not line:
                return
            if line.strip() == b"":
                if length is not None:
                    break
                continue  # a blank line with no header before it: keep looking
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    log.warning("ignored a bad Content-Length header: %r", line[:80])
            if length is not None and length < 0:
                log.warning("ignored a negative Content-Length: %r", line[:80])
                length = None
        if length > MAX_BODY:
            log.error("a %d-byte message is over the %d-byte limit; discarded", length, MAX_BODY)
            if not _discard(stream, length):
                return
            continue
        body = stream.read(length)
        if len(body) < length:
            return  # the client went away in the middle of a message
        yield body


def _discard(stream: BinaryIO, length: int) -> bool:
    while length > 0:
        piece = stream.read(min(length, DISCARD_PIECE))
        if not piece:
            return False
        length -= len(piece)
    return True


class FrameWriter:
    """pygls' writer: ``write`` receives a whole framed message (header and body)."""

    def __init__(self, stream: BinaryIO, on_lost: Callable[[], None]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._on_lost = on_lost
        self.lost = False

    def write(self, data: bytes) -> None:
        with self._lock:
            if self.lost:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):  # broken pipe, reset connection, closed file
                self.lost = True
        if self.lost:
            log.info("the client's end of the connection is closed")
            self._on_lost()
