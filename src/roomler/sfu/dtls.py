"""Sans-I/O DTLS 1.2 endpoint with DTLS-SRTP key export (RFC 6347, RFC 5764).

OpenSSL (through pyOpenSSL) runs the handshake over memory BIOs; this class
moves datagrams in and out, keeps the retransmission timer on the caller's
clock, checks the peer certificate against the fingerprint from signalling
(RFC 8122) and exports the SRTP master keys.

Retransmission (RFC 6347 section 4.2.4). The timer lives here, on the `now`
values the caller passes: 1 s for a new flight, doubled on each expiry up to
60 s, and the handshake fails after `MAX_RETRANSMISSIONS`. On expiry we first
ask OpenSSL to retransmit (it re-sends the flight in records with fresh
sequence numbers), but OpenSSL times the flight with the wall clock and
declines until its own deadline has passed. If that deadline is only a moment
away (`WALL_CLOCK_SLACK`) we wait for it; otherwise (the caller's clock is
simulated, as in tests) the last flight is sent again byte for byte. A peer
sees such a copy as a network duplicate: records it already has fall to its
replay check, the ones that were lost are accepted.

The side that sends the final flight (the server in a full handshake) has no
timer: if that flight is lost the peer retransmits its own, and OpenSSL would
answer only a retransmission in new records. So once connected, a datagram
carrying handshake records that makes OpenSSL say nothing is answered here
with our final flight again (at most `MAX_FINAL_FLIGHT_RESENDS` times).

Garbage. DTLS discards invalid records silently (RFC 6347 section 4.1.2.7) and
so does this endpoint: a datagram that is not a sequence of well-framed DTLS
records is counted in `dropped_datagrams` and ignored, and OpenSSL drops
records that fail decryption. Neither changes the state of the session.
Plaintext (epoch 0) handshake records are checked too, because OpenSSL aborts
the handshake on a malformed message header. What still gets through is a
well-formed forgery (a plausible handshake message or a plaintext alert) built
by someone who sees our traffic; it can break a handshake in progress, as
with any DTLS stack, but not a connected session.
"""

from __future__ import annotations

import enum
import logging
import struct
import weakref
from collections.abc import Iterable, Mapping, Sequence

from cryptography import x509
from OpenSSL import SSL

from .certificate import (
    FINGERPRINT_ALGORITHMS,
    DtlsCertificate,
    DtlsFingerprint,
    certificate_fingerprint,
)
from .srtp import SrtpKeys, SrtpProfile

logger = logging.getLogger(__name__)

DTLS_ROLES = ("client", "server")

#: Largest datagram we send; WebRTC stacks keep DTLS below ~1200 bytes so a
#: flight survives tunnels and TURN without IP fragmentation.
DTLS_MTU = 1200

INITIAL_TIMEOUT = 1.0  # RFC 6347 section 4.2.4.1
MAX_TIMEOUT = 60.0
MAX_RETRANSMISSIONS = 5  # gives up 63 s after the last new flight
#: How far OpenSSL's wall-clock deadline may lag ours before we stop waiting for it.
WALL_CLOCK_SLACK = 0.05
#: Times we answer a peer's retransmission with our final flight again.
MAX_FINAL_FLIGHT_RESENDS = 10

#: Datagrams kept when they arrive before `start()` (a ClientHello can beat
#: the `connect` signalling message to the server).
MAX_PENDING_DATAGRAMS = 8

# In order of preference. As server, OpenSSL picks the first of its own
# profiles that the client offers (RFC 5764 section 4.1.1 lets the server choose).
SRTP_PROFILES = (SrtpProfile.AEAD_AES_128_GCM, SrtpProfile.AES128_CM_SHA1_80)

# Forward-secret AEAD suites; Chrome and Firefox use ECDSA certificates, the
# RSA ones are there for peers that still present RSA.
CIPHERS = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    b"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
    b"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
)

# RFC 5764 section 4.2
SRTP_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"

DTLS1_2_VERSION = 0xFEFD

# RFC 6347 section 4.1: content type (1), version (2), epoch (2),
# sequence number (6), length (2).
_RECORD_HEADER = struct.Struct("!BHH6sH")
_CHANGE_CIPHER_SPEC, _ALERT, _HANDSHAKE, _APPLICATION_DATA = 20, 21, 22, 23
_CONTENT_TYPES = frozenset((_CHANGE_CIPHER_SPEC, _ALERT, _HANDSHAKE, _APPLICATION_DATA))
# 0xFEFF is DTLS 1.0, still the record version of a ClientHello.
_RECORD_VERSIONS = frozenset((0xFEFF, DTLS1_2_VERSION))

# RFC 6347 section 4.2.2: msg_type (1), length (3), message_seq (2),
# fragment_offset (3), fragment_length (3).
_HANDSHAKE_HEADER_SIZE = 12
# RFC 5246 section 7.4 and RFC 6347 section 4.2.1 (hello_verify_request).
_HANDSHAKE_TYPES = frozenset((0, 1, 2, 3, 4, 11, 12, 13, 14, 15, 16, 20))

_READ_SIZE = 65536


class DtlsState(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


def split_records(data: bytes) -> list[bytes]:
    """Split a datagram into DTLS records; ValueError if it is not exactly that."""
    records = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _RECORD_HEADER.size:
            raise ValueError(f"DTLS record at offset {offset} is truncated in its header")
        content_type, version, _, _, length = _RECORD_HEADER.unpack_from(data, offset)
        if content_type not in _CONTENT_TYPES:
            raise ValueError(f"DTLS record at offset {offset} has unknown type {content_type}")
        if version not in _RECORD_VERSIONS:
            raise ValueError(f"DTLS record at offset {offset} has unknown version 0x{version:04X}")
        end = offset + _RECORD_HEADER.size + length
        if end > len(data):
            raise ValueError(
                f"DTLS record at offset {offset} claims {length} bytes, "
                f"{len(data) - offset - _RECORD_HEADER.size} present"
            )
        records.append(data[offset:end])
        offset = end
    if not records:
        raise ValueError("DTLS datagram is empty")
    return records


def check_plaintext_record(record: bytes) -> None:
    """Check what can be checked of an epoch-0 record; ValueError if malformed.

    Handshake records must hold whole handshake fragments (RFC 6347 section
    4.2.3); a ChangeCipherSpec is the single byte 1 (RFC 5246 section 7.1).
    """
    content_type = record[0]
    body = record[_RECORD_HEADER.size :]
    if content_type == _CHANGE_CIPHER_SPEC and body != b"\x01":
        raise ValueError("DTLS ChangeCipherSpec record is not the single byte 1")
    if content_type != _HANDSHAKE:
        return
    offset = 0
    while offset < len(body):
        if len(body) - offset < _HANDSHAKE_HEADER_SIZE:
            raise ValueError("DTLS handshake fragment is truncated in its header")
        msg_type = body[offset]
        length = int.from_bytes(body[offset + 1 : offset + 4], "big")
        fragment_offset = int.from_bytes(body[offset + 6 : offset + 9], "big")
        fragment_length = int.from_bytes(body[offset + 9 : offset + 12], "big")
        if msg_type not in _HANDSHAKE_TYPES:
            raise ValueError(f"DTLS handshake fragment has unknown type {msg_type}")
        if fragment_offset + fragment_length > length:
            raise ValueError("DTLS handshake fragment lies outside its message")
        offset += _HANDSHAKE_HEADER_SIZE + fragment_length
        if offset > len(body):
            raise ValueError("DTLS handshake fragment is longer than its record")
    if not body:
        raise ValueError("DTLS handshake record is empty")


def _pack_datagrams(data: bytes) -> list[bytes]:
    """Group the records OpenSSL wrote into datagrams of at most DTLS_MTU bytes.

    A memory BIO does not keep datagram boundaries, so several records arrive
    concatenated; a record is never split (RFC 6347 section 4.1.1).
    """
    datagrams: list[bytes] = []
    current = b""
    for record in split_records(data):
        if current and len(current) + len(record) > DTLS_MTU:
            datagrams.append(current)
            current = b""
        current += record
    datagrams.append(current)
    return datagrams


def _describe(error: SSL.Error) -> str:
    """OpenSSL's error queue as text, e.g. "sslv3 alert bad certificate"."""
    entries = error.args[0] if error.args else None
    if isinstance(entries, list) and entries:
        return "; ".join(str(e[-1]) if isinstance(e, tuple) else str(e) for e in entries)
    return str(error) or type(error).__name__


# One context per certificate and SRTP profile list, shared by all the endpoints that use
# them (a worker's transports): an SSL_CTX with its certificate and key costs ~20 KB,
# measured, which a context per endpoint paid again for every transport.
_contexts: weakref.WeakKeyDictionary[DtlsCertificate, dict[tuple[SrtpProfile, ...], SSL.Context]]
_contexts = weakref.WeakKeyDictionary()


def _shared_context(certificate: DtlsCertificate, profiles: Sequence[SrtpProfile]) -> SSL.Context:
    by_profiles = _contexts.setdefault(certificate, {})
    key = tuple(profiles)
    context = by_profiles.get(key)
    if context is None:
        context = by_profiles[key] = _make_context(certificate, key)
    return context


def _make_context(certificate: DtlsCertificate, profiles: Sequence[SrtpProfile]) -> SSL.Context:
    context = SSL.Context(SSL.DTLS_METHOD)
    context.set_min_proto_version(DTLS1_2_VERSION)
    context.set_max_proto_version(DTLS1_2_VERSION)
    context.use_certificate(certificate.certificate)
    context.use_privatekey(certificate.private_key)
    context.check_privatekey()
    context.set_cipher_list(CIPHERS)
    # OP_NO_QUERY_MTU: a memory BIO has no path MTU, we set it instead.
    context.set_options(SSL.OP_NO_QUERY_MTU | SSL.OP_NO_TICKET | SSL.OP_NO_RENEGOTIATION)
    # Once connected, an association is nearly silent (SRTP runs on the exported keys):
    # free its idle record buffers (~9 KB per connected endpoint, measured).
    context.set_mode(SSL.MODE_RELEASE_BUFFERS)
    context.set_tlsext_use_srtp(":".join(p.value for p in profiles).encode("ascii"))
    # Peer certificates are self-signed (RFC 8827 section 6.5): accept any at
    # handshake time, the fingerprint decides once the handshake is done.
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_any)
    return context


def _accept_any(
    connection: SSL.Connection, certificate: object, errno: int, depth: int, ok: int
) -> bool:
    return True


def _fingerprint_mismatch(
    expected: list[DtlsFingerprint], certificate: x509.Certificate
) -> str | None:
    """RFC 8122 section 5: check against the strongest algorithm the peer offered.

    Returns the failure reason, or None if the certificate matches.
    """
    supported = [fp for fp in expected if fp.supported]
    algorithm = max(
        (fp.algorithm for fp in supported), key=FINGERPRINT_ALGORITHMS.index, default=None
    )
    if algorithm is None:
        return "DTLS fingerprint mismatch: no supported fingerprint to check against"
    candidates = [fp.value for fp in supported if fp.algorithm == algorithm]
    actual = certificate_fingerprint(certificate, algorithm)
    if actual in candidates:
        return None
    return (
        f"DTLS fingerprint mismatch: expected {algorithm} {' or '.join(candidates)}, got {actual}"
    )


def export_srtp_keys(connection: SSL.Connection, profile: SrtpProfile, role: str) -> SrtpKeys:
    """Derive the SRTP master keys of a finished handshake (RFC 5764 section 4.2).

    The exporter output is client_write_key | server_write_key |
    client_write_salt | server_write_salt; we protect with our role's half.
    """
    key_length, salt_length = profile.key_length, profile.salt_length
    material = connection.export_keying_material(
        SRTP_EXPORTER_LABEL, 2 * (key_length + salt_length)
    )
    client_key = material[:key_length]
    server_key = material[key_length : 2 * key_length]
    client_salt = material[2 * key_length : 2 * key_length + salt_length]
    server_salt = material[2 * key_length + salt_length :]
    if role == "client":
        return SrtpKeys(profile, client_key, client_salt, server_key, server_salt)
    return SrtpKeys(profile, server_key, server_salt, client_key, client_salt)


class DtlsEndpoint:
    """One DTLS association on one transport. No sockets, no clock of its own.

    Drive it with `start(now)`, `receive(data, now)` and `handle_timer(now)`
    (at `get_timer()`), and send whatever `datagrams_to_send()` returns.
    """

    def __init__(
        self,
        certificate: DtlsCertificate,
        role: str,
        *,
        srtp_profiles: Sequence[SrtpProfile] = SRTP_PROFILES,
    ) -> None:
        if role not in DTLS_ROLES:
            raise ValueError(f"DTLS role must be 'client' or 'server', got {role!r}")
        if not srtp_profiles:
            raise ValueError("DTLS endpoint needs at least one SRTP profile")
        self.role = role
        self.state = DtlsState.NEW
        self.failure_reason: str | None = None
        self.srtp_keys: SrtpKeys | None = None
        self.remote_certificate: x509.Certificate | None = None
        #: Datagrams ignored: malformed DTLS, or too many before `start()`.
        self.dropped_datagrams = 0
        self._remote_fingerprints: list[DtlsFingerprint] = []
        self._connection = SSL.Connection(_shared_context(certificate, srtp_profiles), None)
        self._connection.set_ciphertext_mtu(DTLS_MTU)
        self._outbox: list[bytes] = []
        self._pending: list[bytes] = []
        self._flight: list[bytes] = []
        self._sent_final_flight = False
        self._deadline: float | None = None
        self._timeout = INITIAL_TIMEOUT
        self._retransmissions = 0

    def __repr__(self) -> str:
        return f"DtlsEndpoint({self.role}, {self.state.value})"

    # -- API -------------------------------------------------------------

    def set_remote_fingerprints(
        self, fingerprints: Iterable[DtlsFingerprint | Mapping[str, object]]
    ) -> None:
        """The peer's `dtlsParameters.fingerprints`; needed before `start()`."""
        parsed = [
            fp if isinstance(fp, DtlsFingerprint) else DtlsFingerprint.parse(fp)
            for fp in fingerprints
        ]
        if not any(fp.supported for fp in parsed):
            offered = ", ".join(fp.algorithm for fp in parsed) or "none"
            raise ValueError(f"no supported DTLS fingerprint algorithm among: {offered}")
        self._remote_fingerprints = parsed

    def start(self, now: float) -> None:
        if self.state is not DtlsState.NEW:
            raise RuntimeError(f'Cannot call "start" in state {self.state.value}.')
        if not self._remote_fingerprints:
            raise RuntimeError('Cannot call "start" before "set_remote_fingerprints".')
        self.state = DtlsState.CONNECTING
        if self.role == "client":
            self._connection.set_connect_state()
        else:
            self._connection.set_accept_state()
        self._drive_handshake(now)
        pending, self._pending = self._pending, []
        for data in pending:
            self.receive(data, now)

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """Process one datagram; returns application data the peer sent, if any.

        Never raises for bad input: datagrams that are not DTLS are counted in
        `dropped_datagrams` and ignored.
        """
        if self.state is DtlsState.NEW:
            if len(self._pending) < MAX_PENDING_DATAGRAMS:
                self._pending.append(data)
            else:
                self.dropped_datagrams += 1
            return []
        if self.state is not DtlsState.CONNECTING and self.state is not DtlsState.CONNECTED:
            return []
        try:
            records = split_records(data)
            for record in records:
                if record[3:5] == b"\x00\x00":  # epoch 0: plaintext
                    check_plaintext_record(record)
        except ValueError as exc:
            self.dropped_datagrams += 1
            logger.debug("%r ignored a datagram: %s", self, exc)
            return []
        was_connected = self.state is DtlsState.CONNECTED
        self._connection.bio_write(data)
        if self.state is DtlsState.CONNECTING:
            self._drive_handshake(now)
        application_data = self._read_application_data()
        answered = bool(self._flush())
        if was_connected and self.state is DtlsState.CONNECTED and not answered:
            if any(record[0] == _HANDSHAKE for record in records):
                self._resend_final_flight()
        return application_data

    def datagrams_to_send(self) -> list[bytes]:
        datagrams, self._outbox = self._outbox, []
        return datagrams

    def get_timer(self) -> float | None:
        """When `handle_timer` must be called next, on the caller's clock."""
        return self._deadline if self.state is DtlsState.CONNECTING else None

    def handle_timer(self, now: float) -> None:
        if self.state is not DtlsState.CONNECTING or self._deadline is None:
            return
        if now < self._deadline:
            return
        if self._retransmissions >= MAX_RETRANSMISSIONS:
            self._fail(f"DTLS handshake timed out after {self._retransmissions} retransmissions")
            return
        try:
            retransmitted = self._connection.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._fail(f"DTLS handshake failed: {_describe(exc)}")
            return
        openssl_due = self._connection.DTLSv1_get_timeout()
        if not retransmitted and openssl_due is not None and openssl_due <= WALL_CLOCK_SLACK:
            # OpenSSL's own deadline is a moment away: wait for it rather than
            # sending a verbatim copy now and a fresh one right after.
            self._deadline = now + openssl_due
            return
        self._retransmissions += 1
        self._timeout = min(self._timeout * 2, MAX_TIMEOUT)
        self._deadline = now + self._timeout
        datagrams = self._flush()
        if datagrams:
            self._flight = datagrams
        else:
            self._outbox.extend(self._flight)

    def send_application_data(self, data: bytes) -> None:
        if self.state is not DtlsState.CONNECTED:
            raise RuntimeError(f'Cannot call "send_application_data" in state {self.state.value}.')
        self._connection.send(data)
        self._flush()

    def close(self) -> None:
        """Send close_notify (if a handshake was under way) and stop."""
        if self.state is DtlsState.CLOSED or self.state is DtlsState.FAILED:
            return
        if self.state is not DtlsState.NEW:
            self._shutdown()
        self.state = DtlsState.CLOSED
        self._deadline = None
        logger.info("%r closed", self)

    # -- internals -------------------------------------------------------

    def _drive_handshake(self, now: float) -> None:
        try:
            self._connection.do_handshake()
            complete = True
        except SSL.WantReadError:
            complete = False
        except SSL.Error as exc:
            self._flush()  # the alert OpenSSL queued for the peer
            self._fail(f"DTLS handshake failed: {_describe(exc)}")
            return
        datagrams = self._flush()
        if datagrams:
            # A new flight: fresh timer (RFC 6347 section 4.2.4.1).
            self._flight = datagrams
            self._sent_final_flight = complete
            self._timeout = INITIAL_TIMEOUT
            self._retransmissions = 0
            self._deadline = now + self._timeout
        if complete:
            self._deadline = None
            self._on_handshake_complete()

    def _resend_final_flight(self) -> None:
        """The peer is still retransmitting its last flight: ours was lost."""
        if not self._sent_final_flight or self._retransmissions >= MAX_FINAL_FLIGHT_RESENDS:
            return
        self._retransmissions += 1
        logger.debug("%r resends its final flight", self)
        self._outbox.extend(self._flight)

    def _on_handshake_complete(self) -> None:
        certificate = self._connection.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            self._abort("DTLS peer sent no certificate")
            return
        self.remote_certificate = certificate
        mismatch = _fingerprint_mismatch(self._remote_fingerprints, certificate)
        if mismatch is not None:
            self._abort(mismatch)
            return
        name = self._connection.get_selected_srtp_profile().decode("ascii")
        if not name:
            self._abort("DTLS peer did not negotiate an SRTP profile (use_srtp, RFC 5764)")
            return
        profile = SrtpProfile.from_name(name)
        self.srtp_keys = export_srtp_keys(self._connection, profile, self.role)
        self.state = DtlsState.CONNECTED
        logger.info(
            "%r connected (%s, %s)", self, self._connection.get_cipher_name(), profile.value
        )

    def _read_application_data(self) -> list[bytes]:
        received: list[bytes] = []
        while self.state is DtlsState.CONNECTED:
            try:
                received.append(self._connection.recv(_READ_SIZE))
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                logger.info("%r closed by peer (close_notify)", self)
                self._shutdown()
                self.state = DtlsState.CLOSED
            except SSL.Error as exc:
                self._fail(f"DTLS connection failed: {_describe(exc)}")
        return received

    def _flush(self) -> list[bytes]:
        """Move what OpenSSL wrote into the outbox; return the new datagrams."""
        data = b""
        while True:
            try:
                data += self._connection.bio_read(_READ_SIZE)
            except SSL.WantReadError:
                break
        if not data:
            return []
        datagrams = _pack_datagrams(data)
        self._outbox.extend(datagrams)
        return datagrams

    def _shutdown(self) -> None:
        try:
            self._connection.shutdown()
        except SSL.Error:
            pass  # e.g. mid-handshake: there is nothing to notify
        self._flush()

    def _abort(self, reason: str) -> None:
        """Fail after a completed handshake, telling the peer with close_notify."""
        self._shutdown()
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        self.state = DtlsState.FAILED
        self.failure_reason = reason
        self._deadline = None
        logger.warning("%r failed: %s", self, reason)
