"""`GET /api/tenant/{tid}/presence`: every member's presence as the caller sees it."""

from __future__ import annotations

from fastapi import APIRouter

from roomler.api.deps import Context, Membership, Session
from roomler.db.queries import tenant_member_ids

router = APIRouter(prefix="/tenant/{tid}", tags=["presence"])


@router.get("/presence")
async def tenant_presence(ctx: Context, member: Membership, session: Session) -> dict[str, str]:
    """`{user_id: presence}` for the tenant's members, so a client can draw them on load."""
    members = await tenant_member_ids(session, member.tenant_id)
    return await ctx.presence.snapshot(members, member.user_id)
