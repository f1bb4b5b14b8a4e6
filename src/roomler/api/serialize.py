"""JSON shapes shared by several routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from roomler.db.models import User


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z` suffix, as JavaScript's Date parses it."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def avatar_url(user: User) -> str | None:
    """The user's picture: an uploaded one (served by api/avatars.py, the key in the URL so
    a new picture is a new URL), else the URL they gave, else None."""
    if user.avatar_key:
        return f"/api/user/{user.id}/avatar/{user.avatar_key}"
    return user.avatar


def profile_out(user: User) -> dict[str, Any]:
    """What everyone who shares a workspace with the user sees of them."""
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar": avatar_url(user),
        "time_zone": user.time_zone,
    }


def user_out(user: User) -> dict[str, Any]:
    """The user as they see themselves."""
    return {**profile_out(user), "email": user.email}
