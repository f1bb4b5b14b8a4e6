"""Which credential a WebSocket upgrade carries, and whether its Origin may use a cookie.

A `token` query parameter is used as given. Without one, the `access_token` cookie is
accepted only from a page of our own origin or a configured CORS origin: a browser sends
cookies with a cross-site WebSocket upgrade too (RFC 6455 section 10.2 leaves the
Origin check to the server), so without this check any site could open a socket as
the visitor ("cross-site WebSocket hijacking").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

ACCESS_COOKIE = "access_token"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HandshakeRejected(Exception):
    """The upgrade is refused with an HTTP status (401 or 403) before it happens."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port; None if not an origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def allowed_origins(
    ws_scheme: str, host_header: str | None, public_url: str, cors_origins: Iterable[str]
) -> frozenset[str]:
    """The server's own origin (from the Host header and the public URL) and the CORS list."""
    candidates = list(cors_origins)
    if host_header:
        http_scheme = "https" if ws_scheme == "wss" else "http"
        candidates.append(f"{http_scheme}://{host_header}")
    if public_url:
        candidates.append(public_url)
    return frozenset(o for o in map(normalize_origin, candidates) if o is not None)


def handshake_token(
    query: Mapping[str, str],
    cookies: Mapping[str, str],
    origin: str | None,
    allowed: frozenset[str],
) -> str:
    """The access token to verify; raises `HandshakeRejected` when there is none to use."""
    if "token" in query:
        token = query["token"]
        if not token:
            raise HandshakeRejected(401, "The token parameter is empty")
        return token
    cookie = cookies.get(ACCESS_COOKIE)
    if not cookie:
        raise HandshakeRejected(401, "Authentication required: connect with ?token=<access JWT>")
    if origin is None:
        raise HandshakeRejected(403, "Cookie authentication needs an Origin header")
    if normalize_origin(origin) not in allowed:
        raise HandshakeRejected(403, "Origin not allowed for cookie authentication")
    return cookie
