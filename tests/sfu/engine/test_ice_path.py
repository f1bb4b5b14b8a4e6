"""IcePath on its own: valid and selected addresses, where to send, the ICE state."""

from __future__ import annotations

from roomler.sfu.engine.ice_path import IceChange, IcePath

A, B, C = ("10.0.0.1", 5000), ("10.0.0.2", 5000), ("10.0.0.3", 5000)


def test_states_follow_checks_nomination_and_consent() -> None:
    path = IcePath()
    assert (path.state, path.destination()) == ("new", None)
    assert path.on_check(A, False, 1.0) == IceChange("connected", False)
    assert path.on_check(A, False, 2.0) == IceChange(None, False)
    assert path.on_check(B, True, 3.0) == IceChange("completed", True)
    assert path.on_consent_check(alive=True) is None
    assert path.on_consent_check(alive=False) == "disconnected"
    assert path.on_consent_check(alive=False) is None  # told once
    # A check from another address does not bring the selected path back; one from it does.
    assert path.on_check(A, False, 4.0) == IceChange(None, False)
    assert path.on_check(B, False, 5.0) == IceChange("completed", False)
    path.close()
    assert path.state == "closed"


def test_no_consent_to_lose_before_a_nomination() -> None:
    path = IcePath()
    path.on_check(A, False, 1.0)
    assert path.on_consent_check(alive=False) is None
    assert path.state == "connected"


def test_send_to_the_selected_address_else_the_latest_valid_one() -> None:
    path = IcePath()
    path.on_check(A, False, 1.0)
    path.on_check(B, False, 2.0)
    assert path.destination() == B
    path.on_check(A, False, 3.0)
    assert path.destination() == A
    path.on_check(C, True, 4.0)
    path.on_check(A, False, 5.0)
    assert path.destination() == C


def test_only_the_latest_valid_addresses_are_kept_and_never_the_selected_one_dropped() -> None:
    path = IcePath(max_valid=2)
    path.on_check(A, True, 1.0)
    path.on_check(B, False, 2.0)
    path.on_check(C, False, 3.0)  # the oldest is A, selected: B goes instead
    assert set(path.valid) == {A, C}
    path.on_check(B, False, 4.0)
    assert set(path.valid) == {A, B}
    assert path.destination() == A
