"""Self-signed DTLS certificates and their fingerprints.

WebRTC endpoints do not use a PKI: each side presents a self-signed
certificate and the peer authenticates it by comparing its hash with the
fingerprint it received over the (already authenticated) signalling channel
(RFC 8122, RFC 8827 section 6.5). mediasoup-client carries those fingerprints
in `dtlsParameters` as `{"algorithm": "sha-256", "value": "AB:CD:..."}`.

One certificate is generated per worker process (`worker_certificate()`) and
shared by every transport of that worker, as mediasoup does.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# RFC 8122 section 5: hash function textual names (IANA "Hash Function
# Textual Names"). md2/md5 are in the registry but no longer acceptable.
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha-1": hashes.SHA1,
    "sha-224": hashes.SHA224,
    "sha-256": hashes.SHA256,
    "sha-384": hashes.SHA384,
    "sha-512": hashes.SHA512,
}

#: Supported fingerprint algorithms, weakest first.
FINGERPRINT_ALGORITHMS: tuple[str, ...] = tuple(_HASHES)

DTLS_ROLES = ("auto", "client", "server")

_HEX_DIGITS = frozenset(string.hexdigits)


def _hash_for(algorithm: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[algorithm.lower()]()
    except KeyError:
        raise ValueError(
            f"unsupported fingerprint algorithm {algorithm!r} "
            f"(supported: {', '.join(FINGERPRINT_ALGORITHMS)})"
        ) from None


def certificate_fingerprint(certificate: x509.Certificate, algorithm: str = "sha-256") -> str:
    """Return the fingerprint of `certificate` in SDP form ("AB:CD:...", uppercase).

    RFC 8122 section 5: the hash is taken over the DER encoding of the certificate.
    """
    digest = certificate.fingerprint(_hash_for(algorithm))
    return ":".join(f"{byte:02X}" for byte in digest)


class DtlsParameters(TypedDict):
    """mediasoup's `dtlsParameters` (role "auto", "client" or "server")."""

    role: str
    fingerprints: list[dict[str, str]]


@dataclass(frozen=True)
class DtlsFingerprint:
    """One entry of `dtlsParameters.fingerprints`; `value` is kept uppercase."""

    algorithm: str
    value: str

    @property
    def supported(self) -> bool:
        return self.algorithm in _HASHES

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> DtlsFingerprint:
        """Validate a `{"algorithm": ..., "value": ...}` mapping from the client.

        Unknown algorithms are accepted (RFC 8122 lets a peer offer several and
        the verifier picks one it knows); their value must still look like a
        fingerprint. For known algorithms the length must match the digest size.
        """
        algorithm = data.get("algorithm")
        value = data.get("value")
        if not isinstance(algorithm, str) or not algorithm:
            raise ValueError("DTLS fingerprint has no algorithm")
        if not isinstance(value, str) or not value:
            raise ValueError(f"DTLS fingerprint ({algorithm}) has no value")
        algorithm = algorithm.lower()
        octets = value.split(":")
        if any(len(octet) != 2 or not _HEX_DIGITS.issuperset(octet) for octet in octets):
            raise ValueError(
                f"DTLS fingerprint ({algorithm}) is not colon-separated hex octets: {value!r}"
            )
        if algorithm in _HASHES:
            expected = _hash_for(algorithm).digest_size
            if len(octets) != expected:
                raise ValueError(
                    f"DTLS fingerprint ({algorithm}) has {len(octets)} octets, expected {expected}"
                )
        return cls(algorithm=algorithm, value=value.upper())

    def serialize(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "value": self.value}

    def matches(self, certificate: x509.Certificate) -> bool:
        return self.supported and certificate_fingerprint(certificate, self.algorithm) == self.value


@dataclass(frozen=True)
class DtlsCertificate:
    """A self-signed ECDSA P-256 certificate with its private key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(
        cls, *, now: datetime | None = None, validity: timedelta = timedelta(days=30)
    ) -> DtlsCertificate:
        """Create a fresh key and certificate valid from `now - validity` to `now + validity`.

        The backdated start tolerates peers whose clocks run behind; browsers do
        not check the dates of WebRTC certificates, but OpenSSL-based peers may.
        """
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        # A random CN, as browsers do ("WebRTC" + random), so certificates of
        # different workers cannot be told apart or linked by their subject.
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, secrets.token_hex(8))])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - validity)
            .not_valid_after(now + validity)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate=certificate, private_key=key)

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        return certificate_fingerprint(self.certificate, algorithm)

    def dtls_parameters(self, role: str = "auto") -> DtlsParameters:
        """The `dtlsParameters` object mediasoup-client expects in transport options."""
        if role not in DTLS_ROLES:
            raise ValueError(f"DTLS role must be one of {', '.join(DTLS_ROLES)}, got {role!r}")
        return {
            "role": role,
            "fingerprints": [DtlsFingerprint("sha-256", self.fingerprint("sha-256")).serialize()],
        }


_worker_certificate: tuple[int, DtlsCertificate] | None = None


def worker_certificate() -> DtlsCertificate:
    """The certificate of the current process, generated on first use.

    Keyed by pid so that a worker forked from a parent that already made one
    generates its own instead of sharing the parent's private key.
    """
    global _worker_certificate
    pid = os.getpid()
    if _worker_certificate is None or _worker_certificate[0] != pid:
        _worker_certificate = (pid, DtlsCertificate.generate())
    return _worker_certificate[1]
