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


def user_out(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "display_name": user.display_name,
        "avatar": user.avatar,
    }
