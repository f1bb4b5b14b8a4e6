from __future__ import annotations

import hashlib
import hmac
import os
import random
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from roomler.sfu.certificate import DtlsCertificate, DtlsFingerprint
from roomler.sfu.dtls import (
    DTLS_MTU,
    INITIAL_TIMEOUT,
    MAX_FINAL_FLIGHT_RESENDS,
    MAX_RETRANSMISSIONS,
    SRTP_PROFILES,
    WALL_CLOCK_SLACK,
    DtlsEndpoint,
    DtlsState,
    check_plaintext_record,
    split_records,
)
from roomler.sfu.srtp import SrtpContext, SrtpProfile

# (direction, datagram) -> deliver it?
Deliver = Callable[[str, bytes], bool]


def deliver_all(direction: str, datagram: bytes) -> bool:
    return True


@pytest.fixture(scope="module")
def client_certificate() -> DtlsCertificate:
    return DtlsCertificate.generate()


@pytest.fixture(scope="module")
def server_certificate() -> DtlsCertificate:
    return DtlsCertificate.generate()


@dataclass
class Link:
    """Two endpoints joined by an in-memory link that may drop datagrams."""

    client: DtlsEndpoint
    server: DtlsEndpoint
    deliver: Deliver = deliver_all
    now: float = 0.0
    sent: list[bytes] = field(default_factory=list)

    def pump(self) -> None:
        """Carry datagrams both ways until neither side has anything to send."""
        for _ in range(100):
            moved = False
            for direction, source, target in (
                ("c->s", self.client, self.server),
                ("s->c", self.server, self.client),
            ):
                for datagram in source.datagrams_to_send():
                    moved = True
                    self.sent.append(datagram)
                    if self.deliver(direction, datagram):
                        target.receive(datagram, self.now)
            if not moved:
                return
        raise AssertionError("endpoints never went quiet")

    def run(self, limit: float = 200.0) -> None:
        """Start both sides and run until connected or failed, firing timers on our clock."""
        self.client.start(self.now)
        self.server.start(self.now)
        while True:
            self.pump()
            states = {self.client.state, self.server.state}
            if states == {DtlsState.CONNECTED} or states & {DtlsState.FAILED, DtlsState.CLOSED}:
                return
            timers = [t for t in (self.client.get_timer(), self.server.get_timer()) if t]
            assert timers, f"handshake stalled with no timer: {self.client!r} {self.server!r}"
            self.now = min(timers)
            assert self.now < limit
            self.client.handle_timer(self.now)
            self.server.handle_timer(self.now)


def make_link(
    client_certificate: DtlsCertificate,
    server_certificate: DtlsCertificate,
    *,
    deliver: Deliver = deliver_all,
    client_profiles: Sequence[SrtpProfile] = SRTP_PROFILES,
    server_profiles: Sequence[SrtpProfile] = SRTP_PROFILES,
    client_expects: DtlsCertificate | None = None,
    server_expects: DtlsCertificate | None = None,
) -> Link:
    client = DtlsEndpoint(client_certificate, "client", srtp_profiles=client_profiles)
    server = DtlsEndpoint(server_certificate, "server", srtp_profiles=server_profiles)
    client.set_remote_fingerprints(
        (client_expects or server_certificate).dtls_parameters()["fingerprints"]
    )
    server.set_remote_fingerprints(
        (server_expects or client_certificate).dtls_parameters()["fingerprints"]
    )
    return Link(client, server, deliver)


def assert_crossed_keys(link: Link) -> None:
    client_keys, server_keys = link.client.srtp_keys, link.server.srtp_keys
    assert client_keys is not None and server_keys is not None
    assert client_keys.profile == server_keys.profile
    assert client_keys.local_key == server_keys.remote_key
    assert client_keys.local_salt == server_keys.remote_salt
    assert client_keys.remote_key == server_keys.local_key
    assert client_keys.remote_salt == server_keys.local_salt
    assert client_keys.local_key != client_keys.remote_key


def rtp_packet(seq: int, ssrc: int = 0x11223344, payload: bytes = b"media" * 20) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, seq * 960, ssrc) + payload


def tls12_prf_sha256(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """RFC 5246 section 5: P_SHA256(secret, label + seed)."""
    seed = label + seed
    output, a = b"", seed
    while len(output) < length:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        output += hmac.new(secret, a + seed, hashlib.sha256).digest()
    return output[:length]


# -- handshake ------------------------------------------------------------


def test_handshake_connects_and_derives_crossed_keys(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    link = make_link(client_certificate, server_certificate)
    link.run()
    assert link.client.state is DtlsState.CONNECTED
    assert link.server.state is DtlsState.CONNECTED
    assert link.now == 0.0  # no loss, no retransmission
    assert_crossed_keys(link)
    # The server prefers GCM, as Chrome offers it too.
    assert link.client.srtp_keys and link.client.srtp_keys.profile is SrtpProfile.AEAD_AES_128_GCM
    assert link.client.remote_certificate == server_certificate.certificate
    assert link.server.remote_certificate == client_certificate.certificate
    assert link.client.get_timer() is None and link.server.get_timer() is None
    assert all(len(d) <= DTLS_MTU and split_records(d) for d in link.sent)


def test_srtp_keys_follow_rfc5764_exporter_layout(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    """Recompute the exporter (RFC 5705 over the TLS 1.2 PRF) from the session secrets."""
    link = make_link(client_certificate, server_certificate)
    link.run()
    connection = link.client._connection  # the session secrets are only there
    assert connection.get_cipher_name() == "ECDHE-ECDSA-AES128-GCM-SHA256"
    master, client_random, server_random = (
        connection.master_key(),
        connection.client_random(),
        connection.server_random(),
    )
    assert master and client_random and server_random
    material = tls12_prf_sha256(
        master, b"EXTRACTOR-dtls_srtp", client_random + server_random, 2 * (16 + 12)
    )
    client_key, server_key = material[0:16], material[16:32]
    client_salt, server_salt = material[32:44], material[44:56]
    keys = link.client.srtp_keys
    assert keys is not None
    assert (keys.local_key, keys.local_salt) == (client_key, client_salt)
    assert (keys.remote_key, keys.remote_salt) == (server_key, server_salt)


@pytest.mark.parametrize("profile", list(SrtpProfile))
def test_negotiated_profile_protects_media_both_ways(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate, profile: SrtpProfile
) -> None:
    link = make_link(client_certificate, server_certificate, client_profiles=[profile])
    link.run()
    assert link.client.srtp_keys and link.server.srtp_keys
    assert link.server.srtp_keys.profile is profile
    client = SrtpContext(link.client.srtp_keys)
    server = SrtpContext(link.server.srtp_keys)
    packet = rtp_packet(1)
    protected = client.protect_rtp(packet)
    assert protected != packet and len(protected) == len(packet) + profile.tag_length
    assert server.unprotect_rtp(protected) == packet
    assert client.unprotect_rtp(server.protect_rtp(rtp_packet(7))) == rtp_packet(7)
    report = struct.pack("!BBHI", 0x81, 201, 7, 0x55667788) + bytes(24)
    assert client.unprotect_rtcp(server.protect_rtcp(report)) == report
    assert server.unprotect_rtcp(client.protect_rtcp(report)) == report


def test_server_picks_its_preferred_profile_over_client_order(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    offered = [SrtpProfile.AES128_CM_SHA1_80, SrtpProfile.AEAD_AES_128_GCM]
    link = make_link(client_certificate, server_certificate, client_profiles=offered)
    link.run()
    assert link.client.srtp_keys and link.client.srtp_keys.profile is SrtpProfile.AEAD_AES_128_GCM


def test_no_common_srtp_profile_fails(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    link = make_link(
        client_certificate,
        server_certificate,
        client_profiles=[SrtpProfile.AES128_CM_SHA1_80],
        server_profiles=[SrtpProfile.AEAD_AES_128_GCM],
    )
    link.run()
    link.pump()
    failed = [e for e in (link.client, link.server) if e.state is DtlsState.FAILED]
    assert failed
    assert all("SRTP profile" in (e.failure_reason or "") for e in failed)
    assert link.client.srtp_keys is None or link.server.srtp_keys is None
    assert DtlsState.CONNECTED not in {link.client.state, link.server.state}


def test_datagrams_arriving_before_start_are_kept(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    link = make_link(client_certificate, server_certificate)
    link.client.start(0.0)
    for datagram in link.client.datagrams_to_send():
        link.server.receive(datagram, 0.0)  # ClientHello beats the connect signalling
    assert link.server.state is DtlsState.NEW
    assert link.server.datagrams_to_send() == []
    link.server.start(0.0)
    link.pump()
    assert link.client.state is DtlsState.CONNECTED
    assert_crossed_keys(link)


# -- loss and retransmission -------------------------------------------------


def test_lost_client_hello_is_retransmitted_after_one_second(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    dropped: list[bytes] = []

    def drop_first(direction: str, datagram: bytes) -> bool:
        if not dropped:
            dropped.append(datagram)
            return False
        return True

    link = make_link(client_certificate, server_certificate, deliver=drop_first)
    link.run()
    assert dropped
    assert link.now == INITIAL_TIMEOUT
    assert_crossed_keys(link)


def test_lost_final_flight_is_resent_when_peer_retransmits(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    """The server has no timer after its last flight; the client's retransmission must
    make it send that flight again."""
    link = make_link(client_certificate, server_certificate)
    dropped: list[bytes] = []

    def drop_final_flight(direction: str, datagram: bytes) -> bool:
        if direction == "s->c" and link.server.state is DtlsState.CONNECTED and not dropped:
            dropped.append(datagram)
            return False
        return True

    link.deliver = drop_final_flight
    link.run()
    assert dropped
    assert link.client.state is DtlsState.CONNECTED
    assert link.now == INITIAL_TIMEOUT
    assert_crossed_keys(link)


def test_final_flight_resends_are_capped(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    """Replayed handshake datagrams cannot make a connected server reflect forever."""
    link = make_link(client_certificate, server_certificate)
    client_flights: list[bytes] = []

    def record_client(direction: str, datagram: bytes) -> bool:
        if direction == "c->s":
            client_flights.append(datagram)
        return True

    link.deliver = record_client
    link.run()
    last_client_flight = client_flights[-1]
    answers = 0
    for _ in range(3 * MAX_FINAL_FLIGHT_RESENDS):
        link.server.receive(last_client_flight, 1.0)
        answers += len(link.server.datagrams_to_send())
    assert answers == MAX_FINAL_FLIGHT_RESENDS
    assert link.server.state is DtlsState.CONNECTED


@pytest.mark.parametrize("seed", range(12))
def test_lossy_link_completes_through_timers(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate, seed: int
) -> None:
    rng = random.Random(seed)
    drops = 0

    def lossy(direction: str, datagram: bytes) -> bool:
        nonlocal drops
        if rng.random() < 0.3:
            drops += 1
            return False
        return True

    link = make_link(client_certificate, server_certificate, deliver=lossy)
    link.run()
    assert (link.client.state, link.server.state) == (DtlsState.CONNECTED, DtlsState.CONNECTED)
    assert_crossed_keys(link)
    # Traffic after the handshake (e.g. the server's final flight resent late) settles too.
    link.pump()
    assert link.now > 0 or drops == 0


def test_handshake_gives_up_after_backed_off_retransmissions(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    link = make_link(client_certificate, server_certificate)
    client = link.client
    client.start(0.0)
    first = client.datagrams_to_send()
    retransmitted_at = []
    while (timer := client.get_timer()) is not None:
        client.handle_timer(timer - 0.001)  # early: nothing happens
        assert client.datagrams_to_send() == []
        client.handle_timer(timer)
        sent = client.datagrams_to_send()
        if sent:
            # The same ClientHello again (in a new record only if OpenSSL's wall clock agreed).
            assert [d[13:] for d in sent] == [d[13:] for d in first]
            retransmitted_at.append(timer)
    assert retransmitted_at == [1.0, 3.0, 7.0, 15.0, 31.0][:MAX_RETRANSMISSIONS]
    assert client.state is DtlsState.FAILED
    assert client.failure_reason == (
        f"DTLS handshake timed out after {MAX_RETRANSMISSIONS} retransmissions"
    )


def test_real_clock_retransmission_comes_from_openssl_in_a_fresh_record(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    """With a real clock, a timer fired a little early waits for OpenSSL's deadline
    instead of sending a verbatim copy; OpenSSL then retransmits in a new record."""
    link = make_link(client_certificate, server_certificate)
    link.client.start(time.monotonic())
    (lost,) = link.client.datagrams_to_send()
    timer = link.client.get_timer()
    assert timer is not None
    time.sleep(max(0.0, timer - 0.02 - time.monotonic()))
    link.client.handle_timer(timer)  # the caller's clock runs ~20 ms ahead of the wall clock
    early = link.client.datagrams_to_send()
    if not early:  # normal case; a loaded machine may have slept past OpenSSL's deadline
        postponed = link.client.get_timer()
        assert postponed is not None and timer < postponed <= timer + WALL_CLOCK_SLACK
        time.sleep(max(0.0, postponed - time.monotonic()) + 0.005)
        link.client.handle_timer(time.monotonic())
        early = link.client.datagrams_to_send()
    (again,) = early
    assert again[13:] == lost[13:]  # the same ClientHello ...
    assert again[3:11] == b"\x00\x00" + (1).to_bytes(6, "big")  # ... in epoch 0, record 1
    link.server.start(time.monotonic())
    link.server.receive(again, time.monotonic())
    link.pump()
    assert_crossed_keys(link)


# -- authentication -----------------------------------------------------------


def test_server_fails_on_fingerprint_mismatch(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    impostor = DtlsCertificate.generate()
    link = make_link(client_certificate, server_certificate, server_expects=impostor)
    link.run()
    link.pump()
    assert link.server.state is DtlsState.FAILED
    assert link.server.failure_reason == (
        f"DTLS fingerprint mismatch: expected sha-256 {impostor.fingerprint()}, "
        f"got {client_certificate.fingerprint()}"
    )
    assert link.server.srtp_keys is None
    # The client hears close_notify instead of hanging on a dead association.
    assert link.client.state is DtlsState.CLOSED


def test_client_fails_on_fingerprint_mismatch(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    impostor = DtlsCertificate.generate()
    link = make_link(client_certificate, server_certificate, client_expects=impostor)
    link.run()
    link.pump()
    assert link.client.state is DtlsState.FAILED
    assert link.client.failure_reason is not None
    assert link.client.failure_reason.startswith("DTLS fingerprint mismatch: expected sha-256")
    assert link.server.state is DtlsState.CLOSED


def test_strongest_offered_algorithm_decides(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    """RFC 8122 section 5: verify with the strongest hash the peer offered."""
    wrong_sha256 = DtlsFingerprint("sha-256", DtlsCertificate.generate().fingerprint())
    right_sha512 = DtlsFingerprint("sha-512", client_certificate.fingerprint("sha-512"))
    link = make_link(client_certificate, server_certificate)
    link.server.set_remote_fingerprints([wrong_sha256, right_sha512])
    link.run()
    assert link.server.state is DtlsState.CONNECTED

    right_sha256 = DtlsFingerprint("sha-256", client_certificate.fingerprint())
    wrong_sha512 = DtlsFingerprint("sha-512", DtlsCertificate.generate().fingerprint("sha-512"))
    link = make_link(client_certificate, server_certificate)
    link.server.set_remote_fingerprints([right_sha256, wrong_sha512])
    link.run()
    assert link.server.state is DtlsState.FAILED
    assert "expected sha-512" in (link.server.failure_reason or "")


# -- robustness ---------------------------------------------------------------


def record(content_type: int, epoch: int, sequence: int, body: bytes) -> bytes:
    return (
        struct.pack("!BHH", content_type, 0xFEFD, epoch)
        + sequence.to_bytes(6, "big")
        + (struct.pack("!H", len(body)) + body)
    )


MALFORMED = [
    os.urandom(1),
    b"\x80" + os.urandom(40),  # an RTP packet that strayed here
    record(22, 0, 3, b"x" * 20)[:-5],  # truncated body
    record(22, 0, 3, b"x" * 20)[:8],  # truncated header
    record(99, 0, 3, b"x" * 20),  # unknown content type
    struct.pack("!BHH", 22, 0x0303, 0) + bytes(6) + b"\x00\x01x",  # TLS, not DTLS, version
    record(23, 1, 9, b"x") + b"\x17",  # trailing junk after a good record
    # Well framed, but plaintext handshake content OpenSSL would abort on:
    record(22, 0, 7, b"\xff" + bytes(30)),  # unknown handshake type
    record(22, 0, 7, bytes([1, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9]) + bytes(9)),
    record(22, 0, 7, bytes([1, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 40]) + bytes(10)),
    record(20, 0, 7, b"\x02"),  # ChangeCipherSpec must be the byte 1
]


def test_garbage_is_counted_and_ignored_throughout(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    link = make_link(client_certificate, server_certificate)
    for datagram in MALFORMED:
        link.server.receive(datagram, 0.0)  # before start
    link.client.start(0.0)
    link.server.start(0.0)
    for datagram in link.client.datagrams_to_send():
        link.server.receive(datagram, 0.0)
    for datagram in MALFORMED:  # mid-handshake, both sides
        link.server.receive(datagram, 0.0)
        link.client.receive(datagram, 0.0)
    link.pump()
    assert link.client.state is DtlsState.CONNECTED and link.server.state is DtlsState.CONNECTED
    keys = link.server.srtp_keys

    well_framed_forgeries = [
        record(23, 1, 50, os.urandom(64)),  # fails decryption
        record(22, 1, 51, os.urandom(64)),
        record(21, 1, 52, os.urandom(26)),
        record(23, 7, 0, os.urandom(64)),  # unknown epoch
    ]
    for datagram in MALFORMED + well_framed_forgeries:  # after the handshake
        assert link.server.receive(datagram, 1.0) == []
    assert link.server.state is DtlsState.CONNECTED
    assert link.server.srtp_keys == keys
    assert link.server.dropped_datagrams == 3 * len(MALFORMED)
    assert link.client.dropped_datagrams == len(MALFORMED)

    link.client.send_application_data(b"still alive")
    (datagram,) = link.client.datagrams_to_send()
    assert link.server.receive(datagram, 1.0) == [b"still alive"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "datagram is empty"),
        (b"\x16\xfe\xfd", "truncated in its header"),
        (record(24, 0, 0, b""), "unknown type 24"),
        (struct.pack("!BHH", 22, 0x0301, 0) + bytes(8), "unknown version 0x0301"),
        (record(22, 0, 0, b"abcd")[:-1], "claims 4 bytes, 3 present"),
    ],
)
def test_split_records_explains_bad_framing(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_records(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (record(22, 0, 0, b""), "handshake record is empty"),
        (record(22, 0, 0, bytes(11)), "truncated in its header"),
        (record(22, 0, 0, b"\x63" + bytes(11)), "unknown type 99"),
        (record(22, 0, 0, bytes([2, 0, 0, 4, 0, 0, 0, 0, 2, 0, 0, 4]) + bytes(4)), "outside"),
        (record(22, 0, 0, bytes([2, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8]) + bytes(4)), "longer than"),
        (record(20, 0, 0, b"\x01\x01"), "ChangeCipherSpec record is not the single byte 1"),
    ],
)
def test_plaintext_record_check_explains_malformed_content(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_plaintext_record(data)


def test_plaintext_record_check_accepts_several_fragments_in_one_record() -> None:
    hello_done = bytes([14, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0])
    half = bytes([11, 0, 0, 8, 0, 3, 0, 0, 4, 0, 0, 4]) + bytes(4)  # second half of a message
    check_plaintext_record(record(22, 0, 5, half + hello_done))
    check_plaintext_record(record(20, 0, 6, b"\x01"))
    check_plaintext_record(record(21, 0, 7, b"\x02\x28"))  # alerts are OpenSSL's to judge


def test_split_records_returns_each_record() -> None:
    first, second = record(20, 0, 4, b"\x01"), record(22, 1, 0, b"f" * 48)
    assert split_records(first + second) == [first, second]


# -- application data and closing ---------------------------------------------------


def test_application_data_flows_both_ways(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    link = make_link(client_certificate, server_certificate)
    link.run()
    link.client.send_application_data(b"ping")
    (datagram,) = link.client.datagrams_to_send()
    assert link.server.receive(datagram, 0.0) == [b"ping"]
    link.server.send_application_data(b"pong")
    (datagram,) = link.server.datagrams_to_send()
    assert link.client.receive(datagram, 0.0) == [b"pong"]


def test_close_sends_close_notify_and_peer_closes(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    link = make_link(client_certificate, server_certificate)
    link.run()
    link.client.close()
    assert link.client.state is DtlsState.CLOSED
    (datagram,) = link.client.datagrams_to_send()
    assert [r[0] for r in split_records(datagram)] == [21]  # an alert record
    assert link.server.receive(datagram, 0.0) == []
    assert link.server.state is DtlsState.CLOSED
    assert link.server.failure_reason is None
    # The server answers with its own close_notify; the closed client ignores it.
    (reply,) = link.server.datagrams_to_send()
    assert link.client.receive(reply, 0.0) == []
    assert link.client.state is DtlsState.CLOSED
    link.client.close()  # idempotent
    assert link.client.datagrams_to_send() == []
    with pytest.raises(RuntimeError, match='Cannot call "send_application_data" in state closed'):
        link.client.send_application_data(b"late")


def test_close_during_handshake_stops_the_timer(
    client_certificate: DtlsCertificate, server_certificate: DtlsCertificate
) -> None:
    link = make_link(client_certificate, server_certificate)
    link.client.start(0.0)
    link.client.datagrams_to_send()
    assert link.client.get_timer() == INITIAL_TIMEOUT
    link.client.close()
    assert link.client.state is DtlsState.CLOSED
    assert link.client.get_timer() is None
    link.client.handle_timer(5.0)
    assert link.client.datagrams_to_send() == []


# -- misuse -------------------------------------------------------------------


def test_misuse_is_reported(client_certificate: DtlsCertificate) -> None:
    with pytest.raises(ValueError, match="DTLS role must be 'client' or 'server'"):
        DtlsEndpoint(client_certificate, "auto")
    endpoint = DtlsEndpoint(client_certificate, "server")
    with pytest.raises(RuntimeError, match='before "set_remote_fingerprints"'):
        endpoint.start(0.0)
    with pytest.raises(ValueError, match="no supported DTLS fingerprint algorithm among: md5"):
        endpoint.set_remote_fingerprints([{"algorithm": "md5", "value": "AB:" * 15 + "CD"}])
    endpoint.set_remote_fingerprints(client_certificate.dtls_parameters()["fingerprints"])
    endpoint.start(0.0)
    with pytest.raises(RuntimeError, match='Cannot call "start" in state connecting'):
        endpoint.start(0.0)
