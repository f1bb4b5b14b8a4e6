"""LocalDispatcher (realtime/dispatcher.py): one frame to many connections, and the exclusions."""

from __future__ import annotations

from roomler.realtime.dispatcher import LocalDispatcher
from roomler.realtime.open_connections import OpenConnections
from roomler.realtime.wire import encode
from tests.realtime.senders import Recorder


async def test_broadcast_shares_one_frame_and_applies_exclusions() -> None:
    storage = OpenConnections()
    senders = [Recorder("a", "a1"), Recorder("a", "a2"), Recorder("b", "b1"), Recorder("c", "c1")]
    for s in senders:
        storage.add(s.user_id, s.connection_id, s)
    dispatcher = LocalDispatcher(storage)
    frame = encode("x", {})

    def received() -> list[int]:
        counts = [len(s.frames) for s in senders]
        for s in senders:
            s.frames.clear()
        return counts

    assert await dispatcher.broadcast(["a", "b", "a", "nobody"], frame) == 3
    assert all(f is frame for s in senders for f in s.frames)  # the same object: encoded once
    assert received() == [1, 1, 1, 0]
    await dispatcher.broadcast(["a", "b", "c"], frame, exclude_user="a")
    assert received() == [0, 0, 1, 1]
    await dispatcher.broadcast(["a", "b", "c"], frame, exclude_user="a", exclude_connection="a2")
    assert received() == [1, 0, 1, 1]
    # Another user's connection id does not narrow the sender's exclusion.
    await dispatcher.broadcast(["a", "b", "c"], frame, exclude_user="a", exclude_connection="b1")
    assert received() == [0, 0, 1, 1]
    await dispatcher.broadcast(["a", "b", "c"], frame, exclude_connection="c1")
    assert received() == [1, 1, 1, 0]
    assert await dispatcher.send_to_user("a", frame) == 2
    assert await dispatcher.send_to_connection("b1", frame) is True
    assert await dispatcher.send_to_connection("gone", frame) is False
    assert received() == [1, 1, 1, 0]
