"""`WsCounters`: what this node's WebSockets have done, as plain integers.

The hot path (a frame read, a frame queued or written) adds one to an attribute and
nothing more; `roomler.metrics` reads the figures only when `/metrics` is scraped, so
counting costs the same whether metrics are enabled or not.
"""

from __future__ import annotations


class WsCounters:
    __slots__ = ("frames_in", "frames_out", "deliveries", "opened", "closed")

    def __init__(self) -> None:
        self.frames_in = 0  # client frames read
        self.frames_out = 0  # frames written to a socket (directly or by the writer task)
        self.deliveries = 0  # frames a connection accepted (`Connection.send` returned True)
        self.opened = 0  # connections accepted (`Realtime.open`)
        self.closed = 0  # connections cleaned up after they went (`Realtime.closed`)
