"""The shared queries (`roomler.db.queries`), on the test database: the membership rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.db.models import Channel, ChannelMember, Tenant, TenantMember, User, utcnow
from roomler.db.queries import (
    channel_member_ids,
    is_channel_member,
    store_presence,
    stored_presences,
    tenant_member_ids,
    tenant_peer_ids,
    tenant_peer_pairs,
    with_session,
)
from roomler.ids import new_id


async def _users(sessions: async_sessionmaker[AsyncSession], *names: str) -> list[str]:
    ids = [new_id() for _ in names]
    async with sessions() as session:
        for user_id, name in zip(ids, names, strict=True):
            session.add(
                User(
                    id=user_id,
                    email=f"{name}@example.com",
                    username=name,
                    display_name=name.title(),
                    password_hash="x",
                )
            )
        await session.commit()
    return ids


async def _tenant(session: AsyncSession, owner: str, *members: str) -> str:
    tenant_id = new_id()
    await session.execute(
        insert(Tenant).values(id=tenant_id, name="T", slug=f"t-{tenant_id}", owner_id=owner)
    )
    for user_id in (owner, *members):
        await session.execute(
            insert(TenantMember).values(id=new_id(), tenant_id=tenant_id, user_id=user_id)
        )
    return tenant_id


async def _channel(session: AsyncSession, tenant_id: str, *members: str) -> str:
    channel_id = new_id()
    await session.execute(
        insert(Channel).values(
            id=channel_id,
            tenant_id=tenant_id,
            name=f"c{channel_id}",
            path=f"c{channel_id}",
            created_by=members[0],
        )
    )
    for user_id in members:
        await session.execute(
            insert(ChannelMember).values(
                id=new_id(), tenant_id=tenant_id, channel_id=channel_id, user_id=user_id
            )
        )
    return channel_id


async def test_a_deleted_channel_has_no_members(app: Any) -> None:
    sessions = app.state.ctx.sessions
    alice, bob, carol = await _users(sessions, "alice", "bob", "carol")
    async with sessions() as session:
        tenant_id = await _tenant(session, alice, bob, carol)
        live = await _channel(session, tenant_id, alice, bob)
        deleted = await _channel(session, tenant_id, alice, bob)
        await session.execute(
            update(Channel).where(Channel.id == deleted).values(deleted_at=utcnow())
        )
        await session.commit()

        assert sorted(await channel_member_ids(session, live)) == sorted([alice, bob])
        assert await is_channel_member(session, live, bob)
        assert not await is_channel_member(session, live, carol)

        assert await channel_member_ids(session, deleted) == []
        assert not await is_channel_member(session, deleted, bob)
        assert await channel_member_ids(session, new_id()) == []


async def test_tenant_members_and_peers(app: Any) -> None:
    sessions = app.state.ctx.sessions
    alice, bob, carol, dave = await _users(sessions, "alice", "bob", "carol", "dave")
    async with sessions() as session:
        first = await _tenant(session, alice, bob)
        await _tenant(session, bob, carol)
        await session.commit()

        assert sorted(await tenant_member_ids(session, first)) == sorted([alice, bob])
        # Peers share at least one tenant; the user counts as their own peer.
        assert sorted(await tenant_peer_ids(session, bob)) == sorted([alice, bob, carol])
        assert sorted(await tenant_peer_ids(session, alice)) == sorted([alice, bob])
        assert await tenant_peer_ids(session, dave) == []
        pairs = await tenant_peer_pairs(session, [alice, dave])
        assert sorted(pairs) == sorted([(alice, alice), (alice, bob)])
        assert await tenant_peer_pairs(session, []) == []


async def test_presence_is_stored_and_read_back_in_sessions_of_their_own(app: Any) -> None:
    sessions = app.state.ctx.sessions
    alice, bob = await _users(sessions, "alice", "bob")
    await with_session(sessions, store_presence)(alice, "dnd")
    stored = await with_session(sessions, stored_presences)([alice, bob, new_id()])
    assert stored == {alice: "dnd", bob: "online"}
    assert await with_session(sessions, stored_presences)([]) == {}
