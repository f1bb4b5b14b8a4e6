from __future__ import annotations

import random

import pytest
from aioice import stun

from roomler.sfu.ice import (
    CONSENT_TIMEOUT,
    ICE_CHARS,
    IceLiteServer,
    generate_password,
    generate_ufrag,
)

LOCAL_UFRAG = "srvUfrag"
LOCAL_PWD = "serverPassword0123456789"
REMOTE_UFRAG = "brws"
PEER = ("192.0.2.10", 50000)
PEER_MOVED = ("198.51.100.7", 40000)
PEER_V6 = ("2001:db8::1", 6000)


def request(
    username: str = f"{LOCAL_UFRAG}:{REMOTE_UFRAG}",
    password: str = LOCAL_PWD,
    *,
    nominate: bool = False,
    fingerprint: bool = True,
    controlled: bool = False,
    priority: bool = True,
    integrity: bool = True,
) -> tuple[bytes, stun.Message]:
    """A browser's connectivity check, built by aioice (RFC 8445 section 7.1.1)."""
    message = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    message.attributes["USERNAME"] = username
    if priority:
        message.attributes["PRIORITY"] = 1853817087
    if controlled:
        message.attributes["ICE-CONTROLLED"] = 12345
    else:
        message.attributes["ICE-CONTROLLING"] = 12345
    if nominate:
        message.attributes["USE-CANDIDATE"] = None
    if integrity:
        message.add_message_integrity(password.encode())
        if not fingerprint:
            del message.attributes["FINGERPRINT"]
    elif fingerprint:
        message.add_fingerprint()
    return bytes(message), message


def server() -> IceLiteServer:
    return IceLiteServer(LOCAL_UFRAG, LOCAL_PWD)


def parse_response(data: bytes | None) -> stun.Message:
    assert data is not None
    return stun.parse_message(data)  # verifies FINGERPRINT when present


def test_good_request_gets_signed_success_with_mapped_address() -> None:
    ice = server()
    data, sent = request()
    result = ice.receive_stun(data, PEER, now=0.0)
    response = parse_response(result.response)
    assert response.message_class == stun.Class.RESPONSE
    assert response.transaction_id == sent.transaction_id
    assert response.attributes["XOR-MAPPED-ADDRESS"] == PEER
    assert response.check_message_integrity(LOCAL_PWD.encode())
    assert "FINGERPRINT" in response.attributes
    assert result.error is None
    # Not nominated: nothing selected yet, no consent.
    assert result.selected_changed is False
    assert ice.selected is None
    assert ice.remote_ufrag == REMOTE_UFRAG
    assert not ice.is_alive(0.0)


def test_ipv6_peer() -> None:
    ice = server()
    result = ice.receive_stun(request(nominate=True)[0], (*PEER_V6, 0, 0), now=1.0)
    assert parse_response(result.response).attributes["XOR-MAPPED-ADDRESS"] == PEER_V6
    assert ice.selected == PEER_V6


@pytest.mark.parametrize(
    "username",
    [f"other:{REMOTE_UFRAG}", f"{LOCAL_UFRAG}:", LOCAL_UFRAG, f"{REMOTE_UFRAG}:{LOCAL_UFRAG}"],
)
def test_bad_username_gets_401_without_integrity(username: str) -> None:
    ice = server()
    result = ice.receive_stun(request(username, nominate=True)[0], PEER, now=0.0)
    response = parse_response(result.response)
    assert response.message_class == stun.Class.ERROR
    assert response.error_code == 401
    assert "MESSAGE-INTEGRITY" not in response.attributes
    assert result.error == "unknown USERNAME"
    assert ice.selected is None


def test_bad_integrity_gets_401_and_selects_nothing() -> None:
    ice = server()
    result = ice.receive_stun(
        request(password="wrongPassword0123456789", nominate=True)[0], PEER, now=0.0
    )
    assert parse_response(result.response).error_code == 401
    assert result.error == "bad MESSAGE-INTEGRITY"
    assert ice.selected is None
    assert not ice.is_alive(0.0)


def test_missing_fingerprint_is_accepted() -> None:
    ice = server()
    data, sent = request(fingerprint=False, nominate=True)
    assert "FINGERPRINT" not in stun.parse_message(data).attributes
    result = ice.receive_stun(data, PEER, now=0.0)
    assert parse_response(result.response).message_class == stun.Class.RESPONSE
    assert ice.selected == PEER


def test_corrupt_fingerprint_raises() -> None:
    data = bytearray(request()[0])
    data[-1] ^= 0xFF
    with pytest.raises(ValueError, match="fingerprint"):
        server().receive_stun(bytes(data), PEER, now=0.0)


@pytest.mark.parametrize(
    ("priority", "integrity", "missing"),
    [(False, True, "PRIORITY"), (True, False, "MESSAGE-INTEGRITY")],
)
def test_missing_attributes_get_400(priority: bool, integrity: bool, missing: str) -> None:
    data = request(priority=priority, integrity=integrity)[0]
    result = server().receive_stun(data, PEER, now=0.0)
    assert parse_response(result.response).error_code == 400
    assert result.error == f"missing {missing}"


def test_controlled_peer_gets_signed_role_conflict() -> None:
    ice = server()
    result = ice.receive_stun(request(controlled=True, nominate=True)[0], PEER, now=0.0)
    response = parse_response(result.response)
    assert response.error_code == 487
    assert response.check_message_integrity(LOCAL_PWD.encode())
    assert ice.selected is None


def test_use_candidate_selects_and_moves_with_the_peer() -> None:
    ice = server()
    first = ice.receive_stun(request(nominate=True)[0], PEER, now=0.0)
    assert first.selected_changed and ice.selected == PEER
    again = ice.receive_stun(request(nominate=True)[0], PEER, now=1.0)
    assert not again.selected_changed
    # A plain check from another address (a candidate pair being tested) does not move.
    probe = ice.receive_stun(request()[0], PEER_MOVED, now=2.0)
    assert probe.response is not None and not probe.selected_changed
    assert ice.selected == PEER
    # The peer moved (e.g. Wi-Fi to cellular) and nominates the new pair.
    moved = ice.receive_stun(request(nominate=True)[0], PEER_MOVED, now=3.0)
    assert moved.selected_changed and ice.selected == PEER_MOVED
    assert parse_response(moved.response).attributes["XOR-MAPPED-ADDRESS"] == PEER_MOVED


def test_consent_expires_30_seconds_after_last_valid_request() -> None:
    ice = server()
    ice.receive_stun(request(nominate=True)[0], PEER, now=100.0)
    assert ice.is_alive(100.0 + CONSENT_TIMEOUT - 0.1)
    assert not ice.is_alive(100.0 + CONSENT_TIMEOUT)
    # A consent check on the selected tuple refreshes it (RFC 7675 section 5.1) ...
    ice.receive_stun(request()[0], PEER, now=120.0)
    assert ice.is_alive(145.0)
    # ... but neither failed checks nor checks from other addresses do.
    ice.receive_stun(request(password="wrongPassword0123456789")[0], PEER, now=140.0)
    ice.receive_stun(request()[0], PEER_MOVED, now=140.0)
    assert not ice.is_alive(150.0)
    # A later nominated request brings the transport back.
    ice.receive_stun(request(nominate=True)[0], PEER, now=200.0)
    assert ice.is_alive(200.0)


def test_indications_responses_and_other_methods_are_dropped() -> None:
    ice = server()
    indication = stun.Message(stun.Method.BINDING, stun.Class.INDICATION)
    indication.add_fingerprint()
    response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE)
    allocate = stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST)
    for message in (indication, response, allocate):
        result = ice.receive_stun(bytes(message), PEER, now=0.0)
        assert result.response is None
        assert result.error is not None


def test_restart_accepts_old_credentials_until_new_ones_are_used() -> None:
    ice = server()
    params = ice.restart()
    assert params["usernameFragment"] != LOCAL_UFRAG
    assert params["iceLite"] is True
    old = ice.receive_stun(request(nominate=True)[0], PEER, now=0.0)
    assert parse_response(old.response).message_class == stun.Class.RESPONSE
    new_user = f"{params['usernameFragment']}:{REMOTE_UFRAG}"
    new = ice.receive_stun(request(new_user, params["password"])[0], PEER, now=1.0)
    assert parse_response(new.response).check_message_integrity(params["password"].encode())
    stale = ice.receive_stun(request()[0], PEER, now=2.0)
    assert parse_response(stale.response).error_code == 401


def test_generated_credentials_follow_rfc8445() -> None:
    ice = IceLiteServer()
    params = ice.ice_parameters()
    assert set(params) == {"usernameFragment", "password", "iceLite"}
    assert len(params["usernameFragment"]) >= 4
    assert len(params["password"]) >= 22
    assert set(params["usernameFragment"] + params["password"]) <= set(ICE_CHARS)
    assert IceLiteServer().local_pwd != ice.local_pwd
    assert len(generate_ufrag(4)) == 4 and len(generate_password(22)) == 22
    with pytest.raises(ValueError):
        generate_ufrag(3)
    with pytest.raises(ValueError):
        generate_password(21)


def _mutate(rng: random.Random, valid: bytes) -> bytes:
    data = bytearray(valid)
    for _ in range(rng.randrange(1, 5)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def test_random_bytes_only_raise_value_error() -> None:
    rng = random.Random(2024)
    valid = request(nominate=True)[0]
    ice = server()
    for i in range(3000):
        if i % 2:
            data = _mutate(rng, valid)
        else:
            data = bytes([rng.randrange(4)]) + rng.randbytes(rng.randrange(60))
        try:
            ice.receive_stun(data, PEER, now=float(i))
        except ValueError:
            pass
