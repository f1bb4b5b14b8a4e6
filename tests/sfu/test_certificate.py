from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from roomler.sfu.certificate import (
    FINGERPRINT_ALGORITHMS,
    DtlsCertificate,
    DtlsFingerprint,
    certificate_fingerprint,
    worker_certificate,
)

SDP_FINGERPRINT = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2})*$")


@pytest.fixture(scope="module")
def certificate() -> DtlsCertificate:
    return DtlsCertificate.generate()


def test_generated_certificate_is_self_signed_ecdsa_p256(certificate: DtlsCertificate) -> None:
    cert = certificate.certificate
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    assert cert.issuer == cert.subject
    # Raises InvalidSignature if the certificate was not signed by its own key.
    public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    assert certificate.private_key.public_key().public_numbers() == public_key.public_numbers()


def test_validity_window_surrounds_now() -> None:
    now = datetime(2030, 6, 1, tzinfo=UTC)
    cert = DtlsCertificate.generate(now=now).certificate
    assert cert.not_valid_before_utc == now - timedelta(days=30)
    assert cert.not_valid_after_utc == now + timedelta(days=30)
    default = DtlsCertificate.generate().certificate
    assert default.not_valid_before_utc < datetime.now(UTC) < default.not_valid_after_utc


def test_certificates_differ_in_key_serial_and_name(certificate: DtlsCertificate) -> None:
    other = DtlsCertificate.generate()
    assert other.certificate.serial_number != certificate.certificate.serial_number
    assert other.certificate.subject != certificate.certificate.subject
    assert other.fingerprint() != certificate.fingerprint()


def test_sha256_fingerprint_is_uppercase_colon_hex_of_der(certificate: DtlsCertificate) -> None:
    der = certificate.certificate.public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    expected = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    assert certificate.fingerprint() == expected
    assert SDP_FINGERPRINT.match(certificate.fingerprint())


@pytest.mark.parametrize("algorithm", FINGERPRINT_ALGORITHMS)
def test_every_supported_algorithm_hashes_the_der(
    certificate: DtlsCertificate, algorithm: str
) -> None:
    der = certificate.certificate.public_bytes(serialization.Encoding.DER)
    digest = hashlib.new(algorithm.replace("-", ""), der).hexdigest().upper()
    value = certificate_fingerprint(certificate.certificate, algorithm.upper())
    assert value.replace(":", "") == digest


@pytest.mark.parametrize("algorithm", ["md5", "sha-3", ""])
def test_unknown_algorithm_is_rejected(certificate: DtlsCertificate, algorithm: str) -> None:
    with pytest.raises(ValueError, match="unsupported fingerprint algorithm"):
        certificate_fingerprint(certificate.certificate, algorithm)


def test_dtls_parameters_match_mediasoup_shape(certificate: DtlsCertificate) -> None:
    assert certificate.dtls_parameters() == {
        "role": "auto",
        "fingerprints": [{"algorithm": "sha-256", "value": certificate.fingerprint()}],
    }
    assert certificate.dtls_parameters("server")["role"] == "server"
    with pytest.raises(ValueError, match="DTLS role must be one of"):
        certificate.dtls_parameters("passive")


def test_certificate_loads_into_pyopenssl(certificate: DtlsCertificate) -> None:
    context = SSL.Context(SSL.DTLS_METHOD)
    context.use_certificate(certificate.certificate)
    context.use_privatekey(certificate.private_key)
    context.check_privatekey()  # raises if key and certificate do not belong together


def test_worker_certificate_is_generated_once_per_process() -> None:
    assert worker_certificate() is worker_certificate()


def test_fingerprint_parse_normalises_case(certificate: DtlsCertificate) -> None:
    value = certificate.fingerprint()
    parsed = DtlsFingerprint.parse({"algorithm": "SHA-256", "value": value.lower()})
    assert parsed == DtlsFingerprint("sha-256", value)
    assert parsed.serialize() == {"algorithm": "sha-256", "value": value}
    assert parsed.matches(certificate.certificate)
    assert not parsed.matches(DtlsCertificate.generate().certificate)


def test_fingerprint_parse_keeps_unknown_algorithms_as_unsupported() -> None:
    parsed = DtlsFingerprint.parse({"algorithm": "md5", "value": "ab:" * 15 + "cd"})
    assert parsed.algorithm == "md5"
    assert not parsed.supported


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"value": "AB:CD"}, "has no algorithm"),
        ({"algorithm": "sha-256"}, "has no value"),
        ({"algorithm": "sha-256", "value": 42}, "has no value"),
        ({"algorithm": "sha-256", "value": "AB:CD:GG"}, "not colon-separated hex octets"),
        ({"algorithm": "sha-256", "value": "ABCD"}, "not colon-separated hex octets"),
        ({"algorithm": "sha-256", "value": "AB:CD"}, "has 2 octets, expected 32"),
    ],
)
def test_fingerprint_parse_rejects_malformed(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DtlsFingerprint.parse(data)
