from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from roomler.sfu.srtp import REPLAY_WINDOW, SrtpContext, SrtpKeys, SrtpProfile

PROFILES = list(SrtpProfile)


def make_keys(profile: SrtpProfile) -> tuple[SrtpKeys, SrtpKeys]:
    """Matching key sets for two ends of one association (ours, theirs)."""
    a_key, b_key = os.urandom(profile.key_length), os.urandom(profile.key_length)
    a_salt, b_salt = os.urandom(profile.salt_length), os.urandom(profile.salt_length)
    return (
        SrtpKeys(profile, a_key, a_salt, b_key, b_salt),
        SrtpKeys(profile, b_key, b_salt, a_key, a_salt),
    )


def make_pair(profile: SrtpProfile) -> tuple[SrtpContext, SrtpContext]:
    ours, theirs = make_keys(profile)
    return SrtpContext(ours), SrtpContext(theirs)


def rtp_packet(seq: int, ssrc: int = 0x0BADCAFE, payload: bytes = b"opus frame " * 8) -> bytes:
    return struct.pack("!BBHII", 0x80, 111, seq, seq * 960, ssrc) + payload


def rtcp_receiver_report(ssrc: int = 0x01020304) -> bytes:
    block = struct.pack("!IIIIII", 0x0BADCAFE, 0, 1234, 0, 0, 0)
    return struct.pack("!BBHI", 0x81, 201, 7, ssrc) + block


# -- round trips ------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_rtp_round_trip(profile: SrtpProfile) -> None:
    sfu, browser = make_pair(profile)
    for seq in (65534, 65535, 0, 1):  # across a rollover
        packet = rtp_packet(seq)
        protected = sfu.protect_rtp(packet)
        assert protected[:12] == packet[:12]  # the header stays readable
        assert protected[12 : -profile.tag_length] != packet[12:]  # the payload does not
        assert len(protected) == len(packet) + profile.tag_length
        assert browser.unprotect_rtp(protected) == packet
    assert sfu.unprotect_rtp(browser.protect_rtp(rtp_packet(5))) == rtp_packet(5)


@pytest.mark.parametrize("profile", PROFILES)
def test_rtcp_round_trip(profile: SrtpProfile) -> None:
    sfu, browser = make_pair(profile)
    report = rtcp_receiver_report()
    first, second = sfu.protect_rtcp(report), sfu.protect_rtcp(report)
    assert first != second  # a new SRTCP index each time
    assert browser.unprotect_rtcp(first) == report
    assert browser.unprotect_rtcp(second) == report
    assert sfu.unprotect_rtcp(browser.protect_rtcp(report)) == report


@pytest.mark.parametrize("profile", PROFILES)
def test_one_outbound_session_serves_many_ssrcs(profile: SrtpProfile) -> None:
    """An SFU sends every consumer's stream on one transport."""
    sfu, browser = make_pair(profile)
    for ssrc in range(1000, 1040):
        for seq in (100, 101):
            packet = rtp_packet(seq, ssrc=ssrc)
            assert browser.unprotect_rtp(sfu.protect_rtp(packet)) == packet


@pytest.mark.parametrize("profile", PROFILES)
def test_reordered_packets_within_window_are_accepted(profile: SrtpProfile) -> None:
    sfu, browser = make_pair(profile)
    protected = {seq: sfu.protect_rtp(rtp_packet(seq)) for seq in range(1, 601)}
    order = list(range(600, 0, -1))  # fully reversed: the oldest is 599 behind
    for seq in order:
        assert browser.unprotect_rtp(protected[seq]) == rtp_packet(seq)


# -- replay and tampering -----------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_replayed_rtp_is_rejected(profile: SrtpProfile) -> None:
    sfu, browser = make_pair(profile)
    protected = sfu.protect_rtp(rtp_packet(10))
    browser.unprotect_rtp(protected)
    with pytest.raises(
        ValueError,
        match=r"SRTP cannot unprotect SRTP ssrc=195939070 seq=10: replayed packet",
    ):
        browser.unprotect_rtp(protected)


@pytest.mark.parametrize("profile", PROFILES)
def test_replayed_rtcp_is_rejected(profile: SrtpProfile) -> None:
    sfu, browser = make_pair(profile)
    protected = sfu.protect_rtcp(rtcp_receiver_report())
    browser.unprotect_rtcp(protected)
    with pytest.raises(ValueError, match="unprotect SRTCP ssrc=16909060: replayed packet"):
        browser.unprotect_rtcp(protected)


@pytest.mark.parametrize("profile", PROFILES)
def test_packet_older_than_window_is_rejected(profile: SrtpProfile) -> None:
    sfu, browser = make_pair(profile)
    late = sfu.protect_rtp(rtp_packet(1))
    for seq in range(2, REPLAY_WINDOW + 10):
        browser.unprotect_rtp(sfu.protect_rtp(rtp_packet(seq)))
    with pytest.raises(ValueError, match="older than the replay window"):
        browser.unprotect_rtp(late)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("where", ["header", "payload", "tag"])
def test_tampered_rtp_is_rejected(profile: SrtpProfile, where: str) -> None:
    sfu, browser = make_pair(profile)
    protected = bytearray(sfu.protect_rtp(rtp_packet(3)))
    # Byte 1 is marker + payload type: the header is authenticated, not encrypted.
    offset = {"header": 1, "payload": 20, "tag": len(protected) - 1}[where]
    protected[offset] ^= 0x01
    with pytest.raises(ValueError, match="authentication failed"):
        browser.unprotect_rtp(bytes(protected))
    # The genuine packet still gets through: a forgery does not poison the stream.
    assert browser.unprotect_rtp(sfu.protect_rtp(rtp_packet(4))) == rtp_packet(4)


@pytest.mark.parametrize("profile", PROFILES)
def test_tampered_rtcp_is_rejected(profile: SrtpProfile) -> None:
    sfu, browser = make_pair(profile)
    protected = bytearray(sfu.protect_rtcp(rtcp_receiver_report()))
    protected[10] ^= 0x80
    with pytest.raises(ValueError, match="authentication failed"):
        browser.unprotect_rtcp(bytes(protected))


@pytest.mark.parametrize("profile", PROFILES)
def test_wrong_key_is_rejected(profile: SrtpProfile) -> None:
    sfu, _ = make_pair(profile)
    _, stranger = make_pair(profile)
    with pytest.raises(ValueError, match="authentication failed"):
        stranger.unprotect_rtp(sfu.protect_rtp(rtp_packet(1)))


@pytest.mark.parametrize("profile", PROFILES)
def test_protecting_the_same_index_twice_is_refused(profile: SrtpProfile) -> None:
    """A NACK answered by re-protecting would reuse the keystream / GCM nonce."""
    sfu, browser = make_pair(profile)
    first = sfu.protect_rtp(rtp_packet(42))
    with pytest.raises(ValueError, match="seq=42: packet index already protected once"):
        sfu.protect_rtp(rtp_packet(42))
    # Resending the bytes we already protected is the way (the browser lost them).
    assert browser.unprotect_rtp(first) == rtp_packet(42)


# -- malformed input ------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "packet", "message"),
    [
        ("protect_rtp", b"\x80\x60\x00", "RTP packet is too short (3 bytes, need at least 12)"),
        ("unprotect_rtp", bytes(11), "RTP packet is too short"),
        ("protect_rtp", b"\x40" + bytes(20), "RTP packet has invalid version 1"),
        ("protect_rtcp", b"\x81\xc9\x00", "RTCP packet is too short (3 bytes, need at least 8)"),
        ("unprotect_rtcp", rtcp_receiver_report()[:12], "RTCP packet is too short"),
        ("unprotect_rtcp", b"\x00" + bytes(40), "RTCP packet has invalid version 0"),
        ("protect_rtp", rtp_packet(1, payload=bytes(1500)), "packet is too long"),
    ],
)
def test_malformed_packets_raise_value_error(call: str, packet: bytes, message: str) -> None:
    sfu, _ = make_pair(SrtpProfile.AEAD_AES_128_GCM)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        getattr(sfu, call)(packet)


def test_keys_of_the_wrong_length_are_rejected() -> None:
    with pytest.raises(ValueError, match="local_salt for SRTP_AEAD_AES_128_GCM must be 12 bytes"):
        SrtpKeys(SrtpProfile.AEAD_AES_128_GCM, bytes(16), bytes(14), bytes(16), bytes(12))
    with pytest.raises(ValueError, match="remote_key for SRTP_AES128_CM_SHA1_80 must be 16"):
        SrtpKeys(SrtpProfile.AES128_CM_SHA1_80, bytes(16), bytes(14), bytes(15), bytes(14))


def test_profile_names_are_the_openssl_ones() -> None:
    assert SrtpProfile.from_name("SRTP_AES128_CM_SHA1_80") is SrtpProfile.AES128_CM_SHA1_80
    with pytest.raises(ValueError, match="unsupported SRTP protection profile 'SRTP_NULL'"):
        SrtpProfile.from_name("SRTP_NULL")


# -- an independent implementation ---------------------------------------------
# Written from RFC 3711 / RFC 7714 on `cryptography`, to check that libsrtp, fed
# by our key handling, produces what the RFCs (and so a browser) expect.


def derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 section 4.3.1 with key_derivation_rate 0 (RFC 7714 section 11 pads the salt)."""
    x = bytearray(master_salt.ljust(14, b"\x00"))
    x[7] ^= label
    encryptor = Cipher(algorithms.AES(master_key), modes.CTR(bytes(x) + b"\x00\x00")).encryptor()
    return encryptor.update(bytes(length))


def test_independent_key_derivation_matches_rfc3711_vectors() -> None:
    """RFC 3711 appendix B.3."""
    key = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
    salt = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
    assert derive(key, salt, 0, 16).hex().upper() == "C61E7A93744F39EE10734AFE3FF7A087"
    assert derive(key, salt, 2, 14).hex().upper() == "30CBBC08863D8C85D49DB34A9AE1"
    assert derive(key, salt, 1, 20)[:16].hex().upper() == "CEBE321F6FF7716B6FD4AB49AF256A15"


def reference_srtp(profile: SrtpProfile, key: bytes, salt: bytes, packet: bytes, roc: int) -> bytes:
    """Protect `packet` (12-byte header, no CSRC/extension) per RFC 3711 or RFC 7714."""
    header, payload = packet[:12], packet[12:]
    seq, ssrc = struct.unpack_from("!H", packet, 2)[0], struct.unpack_from("!I", packet, 8)[0]
    session_key = derive(key, salt, 0, 16)
    session_salt = derive(key, salt, 2, profile.salt_length)
    if profile is SrtpProfile.AEAD_AES_128_GCM:
        # RFC 7714 section 8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt.
        block = struct.pack("!HIIH", 0, ssrc, roc, seq)
        iv = bytes(a ^ b for a, b in zip(block, session_salt, strict=True))
        return header + AESGCM(session_key).encrypt(iv, payload, header)
    # RFC 3711 section 4.1.1: IV = salt * 2^16 XOR SSRC * 2^64 XOR index * 2^16.
    index = (roc << 16) | seq
    iv_int = (int.from_bytes(session_salt, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
    encryptor = Cipher(
        algorithms.AES(session_key), modes.CTR(iv_int.to_bytes(16, "big"))
    ).encryptor()
    encrypted = header + encryptor.update(payload)
    auth_key = derive(key, salt, 1, 20)
    tag = hmac.new(auth_key, encrypted + struct.pack("!I", roc), hashlib.sha1).digest()[:10]
    return encrypted + tag


@pytest.mark.parametrize("profile", PROFILES)
def test_protected_rtp_matches_independent_implementation(profile: SrtpProfile) -> None:
    ours, _ = make_keys(profile)
    sfu = SrtpContext(ours)
    for seq in (1, 2, 65535):
        packet = rtp_packet(seq)
        expected = reference_srtp(profile, ours.local_key, ours.local_salt, packet, roc=0)
        assert sfu.protect_rtp(packet) == expected


@pytest.mark.parametrize("profile", PROFILES)
def test_independently_protected_rtp_is_accepted(profile: SrtpProfile) -> None:
    ours, _ = make_keys(profile)
    sfu = SrtpContext(ours)
    packet = rtp_packet(9, ssrc=0x12345678)
    protected = reference_srtp(profile, ours.remote_key, ours.remote_salt, packet, roc=0)
    assert sfu.unprotect_rtp(protected) == packet
