"""ObjectId-style identifiers: 24 lowercase hex digits, roughly ordered by creation time.

Layout as in MongoDB's ObjectId: 4 bytes of seconds since the epoch, 5 random bytes
fixed per process, 3 bytes of a counter. IDs made in one process sort by creation.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time

_PROCESS_RANDOM = os.urandom(5)
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_lock = threading.Lock()
ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")


def new_id() -> str:
    with _lock:
        count = next(_counter) & 0xFFFFFF
    raw = int(time.time()).to_bytes(4, "big") + _PROCESS_RANDOM + count.to_bytes(3, "big")
    return raw.hex()


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.match(value) is not None
