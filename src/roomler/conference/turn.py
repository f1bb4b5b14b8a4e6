"""The ICE servers a browser is given for its transports: TURN, with time-limited credentials.

With `ROOMLER__TURN__SECRET` set, each user gets credentials in the form coturn checks
when it runs with `use-auth-secret` / `static-auth-secret` (the "TURN REST API" draft,
draft-uberti-behave-turn-rest-00 section 2.2): the username is `<expiry>:<user_id>`,
the expiry a Unix time, and the password is base64(HMAC-SHA1(secret, username)). The
TURN server needs nothing per user, and a leaked credential stops working by itself.
Without a secret, the static `ROOMLER__TURN__USERNAME`/`PASSWORD` are handed out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from roomler.config import TurnSettings

# How long time-limited credentials stay valid: a day outlasts any meeting.
CREDENTIAL_TTL_SECS = 24 * 3600


def turn_urls(url: str | None) -> list[str]:
    """The configured TURN URLs: one, or several separated by commas."""
    if not url:
        return []
    return [part.strip() for part in url.split(",") if part.strip()]


def turn_credentials(
    secret: str, user_id: str, now: float, ttl: int = CREDENTIAL_TTL_SECS
) -> tuple[str, str]:
    """`(username, password)` valid until `now + ttl`, checkable with `secret` alone."""
    if not secret:
        raise ValueError("a TURN secret must not be empty")
    if ttl <= 0:
        raise ValueError(f"credential lifetime must be positive, got {ttl}")
    username = f"{int(now) + ttl}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(settings: TurnSettings, user_id: str, now: float) -> list[dict[str, Any]]:
    """`RTCIceServer` dictionaries for `user_id`; empty when no TURN server is configured."""
    urls = turn_urls(settings.url)
    if not urls:
        return []
    server: dict[str, Any] = {"urls": urls}
    if settings.secret:
        server["username"], server["credential"] = turn_credentials(settings.secret, user_id, now)
    elif settings.username and settings.password:
        server["username"], server["credential"] = settings.username, settings.password
    return [server]
