"""Connections without a socket, for the unit tests of the real-time parts."""

from __future__ import annotations

from roomler.realtime.connection import Connection


async def _nowhere(_frame: str) -> None:
    raise AssertionError("nothing is written in these tests")


def conn(user_id: str, connection_id: str, limit: int = 8) -> Connection:
    return Connection(user_id, connection_id, _nowhere, limit)


class Recorder:
    """A `WsSender` that keeps what it was given."""

    def __init__(self, user_id: str, connection_id: str) -> None:
        self.user_id = user_id
        self.connection_id = connection_id
        self.frames: list[str] = []

    def send(self, frame: str) -> bool:
        self.frames.append(frame)
        return True
