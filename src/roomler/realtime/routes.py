"""`GET /api/tenant/{tid}/presence`: every member's presence as the caller sees it."""

from __future__ import annotations

from fastapi import APIRouter

from roomler.api.deps import Context, Membership, Session
from roomler.realtime.hub import realtime_of
from roomler.realtime.membership import tenant_member_ids

router = APIRouter(prefix="/tenant/{tid}", tags=["presence"])


@router.get("/presence")
async def tenant_presence(ctx: Context, member: Membership, session: Session) -> dict[str, str]:
    """`{user_id: presence}` for the tenant's members, so a client can draw them on load."""
    hub = realtime_of(ctx)
    members = await tenant_member_ids(session, member.tenant_id)
    return await hub.presence.snapshot(members, member.user_id)
