"""SRTP / SRTCP protection for one transport (RFC 3711, RFC 7714), on libsrtp.

A transport has one `SrtpContext` holding two libsrtp sessions:

- outbound, keyed with our DTLS write key, protects RTP/RTCP for *every* SSRC
  we send (an SFU sends many consumers' streams on one transport). The policy
  is an `SSRC_ANY_OUTBOUND` template, so libsrtp clones a stream (own
  rollover counter and replay list) the first time it sees an SSRC.
- inbound, keyed with the peer's write key, an `SSRC_ANY_INBOUND` template that
  accepts any SSRC the browser sends (producers, RTX, RTCP).

Retransmissions. `allow_repeat_tx` stays off: protecting the same packet index
(SSRC, rollover counter, sequence number) twice raises ValueError. Re-protecting
reuses the keystream, and with AEAD_AES_128_GCM the nonce; if the header changed
in between (an SFU rewrites the transport-wide sequence number extension on
every send) two GCM tags under one nonce let an observer recover the
authentication key (RFC 7714 section 8). So an SFU answers NACKs either
- over RTX (RFC 4588): new SSRC and sequence number, a fresh index, or
- by resending the protected bytes it sent the first time (its send buffer
  keeps them); nothing here needs to run again.
The replay window is 1024 packets in both directions (libsrtp's default is
128): forwarded streams arrive reordered, and a late packet is still useful.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pylibsrtp

REPLAY_WINDOW = 1024

_RTP_HEADER_LENGTH = 12
_RTCP_HEADER_LENGTH = 8
# RFC 3711 section 3.4: E flag + 31-bit SRTCP index after the payload.
_SRTCP_INDEX_LENGTH = 4


class SrtpProfile(enum.Enum):
    """DTLS-SRTP protection profiles we negotiate (RFC 5764 section 4.1.2, RFC 7714 section 14.2).

    Values are the OpenSSL profile names used in the `use_srtp` extension.
    """

    AEAD_AES_128_GCM = "SRTP_AEAD_AES_128_GCM"
    AES128_CM_SHA1_80 = "SRTP_AES128_CM_SHA1_80"

    @property
    def key_length(self) -> int:
        return 16

    @property
    def salt_length(self) -> int:
        # RFC 5764 section 4.1.2 (112-bit salt); RFC 7714 section 12 (96-bit salt).
        return 12 if self is SrtpProfile.AEAD_AES_128_GCM else 14

    @property
    def tag_length(self) -> int:
        return 16 if self is SrtpProfile.AEAD_AES_128_GCM else 10

    @property
    def libsrtp_profile(self) -> int:
        if self is SrtpProfile.AEAD_AES_128_GCM:
            return int(pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM)
        return int(pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80)

    @classmethod
    def from_name(cls, name: str) -> SrtpProfile:
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f"unsupported SRTP protection profile {name!r}") from None


@dataclass(frozen=True)
class SrtpKeys:
    """Master keys and salts of one DTLS-SRTP association, from our point of view.

    `local_*` protect what we send, `remote_*` unprotect what we receive.
    """

    profile: SrtpProfile
    local_key: bytes
    local_salt: bytes
    remote_key: bytes
    remote_salt: bytes

    def __post_init__(self) -> None:
        for name in ("local_key", "remote_key"):
            self._check_length(name, self.profile.key_length)
        for name in ("local_salt", "remote_salt"):
            self._check_length(name, self.profile.salt_length)

    def _check_length(self, name: str, expected: int) -> None:
        actual = len(getattr(self, name))
        if actual != expected:
            raise ValueError(
                f"SRTP {name} for {self.profile.value} must be {expected} bytes, got {actual}"
            )


class SrtpContext:
    """Protect outgoing and unprotect incoming RTP/RTCP of one transport."""

    def __init__(self, keys: SrtpKeys) -> None:
        self.profile = keys.profile
        self._outbound = pylibsrtp.Session(
            _policy(keys.profile, keys.local_key + keys.local_salt, outbound=True)
        )
        self._inbound = pylibsrtp.Session(
            _policy(keys.profile, keys.remote_key + keys.remote_salt, outbound=False)
        )

    def protect_rtp(self, packet: bytes) -> bytes:
        ssrc, seq = _rtp_ids(packet)
        return _run(
            self._outbound.protect, packet, f"protect RTP ssrc={ssrc} seq={seq}", outbound=True
        )

    def unprotect_rtp(self, packet: bytes) -> bytes:
        ssrc, seq = _rtp_ids(packet)
        return _run(
            self._inbound.unprotect, packet, f"unprotect SRTP ssrc={ssrc} seq={seq}", outbound=False
        )

    def protect_rtcp(self, packet: bytes) -> bytes:
        ssrc = _rtcp_ssrc(packet, minimum=_RTCP_HEADER_LENGTH)
        return _run(self._outbound.protect_rtcp, packet, f"protect RTCP ssrc={ssrc}", outbound=True)

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        minimum = _RTCP_HEADER_LENGTH + _SRTCP_INDEX_LENGTH + self.profile.tag_length
        ssrc = _rtcp_ssrc(packet, minimum=minimum)
        return _run(
            self._inbound.unprotect_rtcp, packet, f"unprotect SRTCP ssrc={ssrc}", outbound=False
        )


def _policy(profile: SrtpProfile, key: bytes, *, outbound: bool) -> pylibsrtp.Policy:
    ssrc_type = (
        pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND
    )
    policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile.libsrtp_profile)
    policy.allow_repeat_tx = False
    policy.window_size = REPLAY_WINDOW
    return policy


def _rtp_ids(packet: bytes) -> tuple[int, int]:
    """Check the fixed RTP header (RFC 3550 section 5.1); return (SSRC, sequence number)."""
    if len(packet) < _RTP_HEADER_LENGTH:
        raise ValueError(
            f"RTP packet is too short ({len(packet)} bytes, need at least {_RTP_HEADER_LENGTH})"
        )
    if packet[0] >> 6 != 2:
        raise ValueError(f"RTP packet has invalid version {packet[0] >> 6}")
    seq, _, ssrc = struct.unpack_from("!HII", packet, 2)
    return ssrc, seq


def _rtcp_ssrc(packet: bytes, *, minimum: int) -> int:
    """Check the first RTCP header (RFC 3550 section 6.4.1); return the sender SSRC."""
    if len(packet) < minimum:
        raise ValueError(f"RTCP packet is too short ({len(packet)} bytes, need at least {minimum})")
    if packet[0] >> 6 != 2:
        raise ValueError(f"RTCP packet has invalid version {packet[0] >> 6}")
    (ssrc,) = struct.unpack_from("!I", packet, 4)
    return int(ssrc)


# libsrtp status strings (pylibsrtp.ERRORS) mapped to what they mean here.
_INBOUND_REASONS = {
    "replay check failed (bad index)": "replayed packet (index already seen)",
    "replay check failed (index too old)": "packet index is older than the replay window",
    "authentication failure": "authentication failed (tampered packet or wrong key)",
    "cipher failure": "authentication failed (tampered packet or wrong key)",
}
_OUTBOUND_REASONS = {
    "replay check failed (bad index)": (
        "packet index already protected once (resend the protected bytes or use RTX)"
    ),
    "replay check failed (index too old)": "packet index is older than the replay window",
}


def _run(operation: Callable[[bytes], bytes], packet: bytes, what: str, *, outbound: bool) -> bytes:
    try:
        return operation(packet)
    except pylibsrtp.Error as exc:
        reasons = _OUTBOUND_REASONS if outbound else _INBOUND_REASONS
        raise ValueError(f"SRTP cannot {what}: {reasons.get(str(exc), str(exc))}") from None
    except ValueError as exc:
        # pylibsrtp's own check: the packet does not fit its 1500-byte buffer.
        raise ValueError(f"SRTP cannot {what}: {exc} ({len(packet)} bytes)") from None
