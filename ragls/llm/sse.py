"""Server-sent events (the WHATWG ``text/event-stream`` format) parsed from a stream of lines.

Both OpenAI and Anthropic stream this way. An event whose terminating blank line never came
(a cut-off stream) is not dispatched, as the spec says; providers notice the missing final
event and report the stream as truncated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    event: str
    data: str


def events(lines: Iterable[str]) -> Iterator[Event]:
    name, data = "", []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data or name:
                yield Event(name or "message", "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
