"""In the call across nodes (issue 14 item 5): the room lives on node 1 with Alice, its
organizer; Bob's WebSocket is on node 2. His hand, Alice's mute and her removal of him
are carried out by the host and reach him through node 2.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cluster.conftest import (
    RedisTarget,
    StartNodes,
    is_type,
    media_settings,
    open_tab,
    settle,
)
from tests.cluster.test_conference import joined, media, started_call

pytestmark = pytest.mark.nodb  # brings its own PostgreSQL database: one run is enough


async def test_hands_mute_and_removal_reach_a_participant_on_another_node(
    start_nodes: StartNodes, shared_redis: RedisTarget, cluster_db: AsyncEngine
) -> None:
    n1, n2 = start_nodes(2, shared_redis, per_node=media_settings)
    call = await started_call(n1, cluster_db)  # the room lives on node 1, Alice organizes
    alice_tab, bob_tab = await open_tab(n1, call.alice), await open_tab(n2, call.bob)
    await settle(alice_tab, bob_tab)
    alice, bob = media(alice_tab, call.conference_id), media(bob_tab, call.conference_id)
    await joined(alice)
    await joined(bob)
    await alice_tab.wait_for(is_type("media:peer_joined", user_id=call.bob.id))

    raised = await bob.request("media:raise_hand", "media:hand_raised")
    assert raised == {"conference_id": call.conference_id, "user_id": call.bob.id, "raised": True}
    await alice_tab.wait_for(is_type("media:hand_raised", user_id=call.bob.id, raised=True))

    # Bob is no organizer, wherever his socket is.
    error = await bob.error("media:mute_participant", user_id=call.alice.id)
    assert error["message"].startswith("only the organizer or a workspace owner/admin")

    bob_audio = await bob.produce("audio")
    # Alice's frames are read by her tab (a new_producer waits among them).
    request_id = await alice.send("media:mute_participant", user_id=call.bob.id)
    muted = await alice_tab.wait_for(lambda f: f.get("request_id") == request_id)
    assert muted["type"] == "media:participant_muted", muted
    assert muted["data"]["producer_ids"] == [bob_audio]
    notice = await bob_tab.wait_for(is_type("media:muted", by_user_id=call.alice.id))
    assert notice["data"]["producer_ids"] == [bob_audio]

    request_id = await alice.send("media:remove_participant", user_id=call.bob.id)
    removed = await alice_tab.wait_for(lambda f: f.get("request_id") == request_id)
    assert removed["type"] == "media:participant_removed", removed
    closed = await bob_tab.wait_for(is_type("media:room_closed"))
    assert closed["data"] == {"conference_id": call.conference_id, "reason": "removed"}
    await alice_tab.wait_for(is_type("media:peer_left", user_id=call.bob.id))

    # His way back, through node 2 to the host, is refused.
    error = await bob.error("media:join")
    assert error["message"] == (
        f"you were removed from conference {call.conference_id} by its organizer"
    )
    await alice_tab.client.close()
    await bob_tab.client.close()
