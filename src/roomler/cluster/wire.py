"""What nodes send each other over Redis pub/sub: one `Envelope` per message.

Each node subscribes to its own channel, `<prefix>node:<node id>`, and nothing else, so a
node only ever receives traffic for connections it holds. An envelope is four fields
separated by newlines, the last of which (the body) may itself contain anything:

    <kind>\\n<target>,<target>,...\\n<skip connection id or empty>\\n<body>

- kind `u`: deliver the body (an encoded frame) to every connection of the target users
  held by the receiving node, except the skipped connection;
- kind `v`: the same, for a `presence:update` announcement (the receiving node
  remembers what its connections were told, see `cluster.presence`);
- kind `c`: deliver the body to the one target connection;
- kind `p`: the target user posted a message in channel `body`: their typing indicator
  there ends (it lives on the node holding the connection that typed);
- kind `q`: a forwarded client request (`media:*`) for a conference owned by the
  receiving node; the targets are the origin node, the connection and its user, the
  body is the client's frame as it arrived (see `roomler.cluster.conference`);
- kind `x`: a conference command for the receiving node, the action in the skip field:
  `closed` (targets: origin node, connection: it went away), `end`, `leave` and `revoke`
  (a user lost access to the conference; targets: origin node; body: JSON arguments);
- kind `w`: a request for a worker of the receiving node that another node leased (a
  room over nodes); targets: the origin node and the lease; body: the request as JSON
  (`roomler.cluster.remote_workers`);
- kind `y`: the answer to such a request, an event of the leased worker, or its death;
  target: the lease; body: JSON.

The Lua route script builds `u`, `v` and `p` envelopes itself (`scripts.py`); both sides must agree
with `serialize` here. User ids and connection ids never contain commas or newlines.
"""

from __future__ import annotations

from dataclasses import dataclass

USERS = "u"
PRESENCE = "v"
CONNECTION = "c"
POSTED = "p"
REQUEST = "q"
COMMAND = "x"
WORKER_REQUEST = "w"
WORKER_MESSAGE = "y"
KINDS = (USERS, PRESENCE, CONNECTION, POSTED, REQUEST, COMMAND, WORKER_REQUEST, WORKER_MESSAGE)


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: str
    targets: tuple[str, ...]
    skip: str
    body: str

    @classmethod
    def parse(cls, text: str) -> Envelope:
        parts = text.split("\n", 3)
        if len(parts) != 4:
            raise ValueError("cluster envelope has fewer than four fields")
        kind, targets, skip, body = parts
        if kind not in KINDS:
            raise ValueError(f"cluster envelope has unknown kind {kind[:8]!r}")
        if not targets:
            raise ValueError("cluster envelope has no targets")
        return cls(kind, tuple(targets.split(",")), skip, body)

    def serialize(self) -> str:
        for target in (*self.targets, self.skip):
            if "," in target or "\n" in target:
                raise ValueError(f"cluster envelope target {target[:64]!r} has a comma or newline")
        if not self.targets:
            raise ValueError("cluster envelope has no targets")
        return f"{self.kind}\n{','.join(self.targets)}\n{self.skip}\n{self.body}"


def node_channel(prefix: str, node_id: str) -> str:
    """The pub/sub channel of one node."""
    return f"{prefix}node:{node_id}"
