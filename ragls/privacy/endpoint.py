"""Where an HTTP model endpoint really is: on this machine (loopback, a unix socket) or not.

A model served on loopback is a local model: the privacy policy allows it in ``local`` mode and
nothing sent to it is redacted. The decision is made from the URL's literal host, never from DNS,
so a name that resolves to 127.0.0.1 only sometimes (a hosts file, a resolver) stays remote:
``127.0.0.0/8``, ``::1`` (also written as an IPv4-mapped ``::ffff:127.x.y.z``), the name
``localhost`` (connected to as 127.0.0.1, so no resolver is asked where it is) and
``http+unix://<percent-encoded socket path>/...`` URLs (the requests-unixsocket spelling).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

UNIX_SCHEME = "http+unix"


@dataclass(frozen=True)
class Endpoint:
    """A base URL as configured (``shown``), the URL requests go to, and how it is reached."""

    shown: str
    url: str
    local: bool
    socket: str | None = None  # a unix socket path: requests go through it, the URL's host is a label


def parse(base_url: str) -> Endpoint:
    """Classify ``base_url`` without resolving anything."""
    shown = base_url.rstrip("/")
    parts = urlsplit(shown)
    if parts.scheme == UNIX_SCHEME:
        socket = unquote(parts.netloc)
        return Endpoint(shown, urlunsplit(("http", "localhost", parts.path, parts.query, "")), True, socket)
    host = (parts.hostname or "").lower()
    if host == "localhost":
        netloc = "127.0.0.1" + (f":{parts.port}" if parts.port else "")
        return Endpoint(shown, urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), True)
    return Endpoint(shown, shown, is_loopback_literal(host))


def is_loopback_literal(host: str) -> bool:
    """True for an IP literal on loopback; a name (other than localhost, handled above) is never."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback
