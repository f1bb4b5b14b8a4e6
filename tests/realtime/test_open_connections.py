"""OpenConnections (realtime/open_connections.py): who is connected, by user and by connection."""

from __future__ import annotations

import pytest

from roomler.realtime.open_connections import OpenConnections
from tests.realtime.senders import conn


def test_storage_indexes_by_user_and_by_connection() -> None:
    storage = OpenConnections()
    a1, a2, b1 = conn("a", "1"), conn("a", "2"), conn("b", "3")
    for c in (a1, a2, b1):
        storage.add(c.user_id, c.connection_id, c)
    assert storage.get_senders("a") == (a1, a2)
    assert storage.get_sender_by_connection("3") is b1
    assert sorted(storage.all_user_ids()) == ["a", "b"]
    assert storage.connection_count() == 3
    with pytest.raises(ValueError, match="already registered"):
        storage.add("a", "1", a1)


def test_storage_removes_by_identity_only() -> None:
    storage = OpenConnections()
    a1, a2 = conn("a", "1"), conn("a", "2")
    storage.add("a", "1", a1)
    storage.add("a", "2", a2)
    impostor = conn("a", "1")
    assert storage.remove("a", "1", impostor) is False
    assert storage.get_senders("a") == (a1, a2)
    assert storage.remove("a", "1", a1) is True
    assert storage.remove("a", "1", a1) is False
    assert storage.get_senders("a") == (a2,)
    assert storage.remove("a", "2", a2) is True
    assert storage.all_user_ids() == [] and storage.connection_count() == 0
    assert storage.get_senders("a") == ()
