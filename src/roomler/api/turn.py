"""`GET /api/turn`: the ICE servers (TURN with time-limited credentials) for the caller."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from roomler.api.deps import Context, CurrentUser
from roomler.conference.turn import ice_servers

router = APIRouter(tags=["conferences"])


@router.get("/turn")
async def turn_servers(ctx: Context, user: CurrentUser) -> dict[str, list[dict[str, Any]]]:
    return {"ice_servers": ice_servers(ctx.settings.turn, user.id, time.time())}
