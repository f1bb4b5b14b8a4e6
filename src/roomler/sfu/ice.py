"""ICE-lite server side (RFC 8445 section 2.5), sans-I/O.

The SFU is a lite agent: it never sends checks, it answers the browser's
STUN Binding requests (RFC 5389 with short-term credentials), takes the
5-tuple of a nominated request (USE-CANDIDATE) as the selected one, and
follows the peer when a nominated request arrives from a new address.
Consent (RFC 7675) lasts 30 s from the last authenticated request on the
selected tuple; :meth:`IceLiteServer.is_alive` reports it, the caller
decides what to do when it runs out. Time is always passed in (``now``, any
monotonic clock in seconds).

The STUN wire format is aioice's (``aioice.stun``).

How requests are answered (RFC 5389 section 10.1.2, RFC 8445 section 7.3):

* datagrams that are not STUN, or whose FINGERPRINT does not match
  (RFC 5389 section 7.3), raise ValueError -- nothing is sent;
* indications, responses and non-Binding methods are dropped: a lite agent
  sends no requests, and Binding indications are keepalives that carry no
  consent (RFC 7675 section 5.1);
* a request without USERNAME, MESSAGE-INTEGRITY or PRIORITY gets 400;
* a request whose USERNAME is not "<our ufrag>:<their ufrag>" or whose
  MESSAGE-INTEGRITY does not verify with our password gets 401, without
  MESSAGE-INTEGRITY (there is no shared key to sign with);
* a request with ICE-CONTROLLED gets 487 Role Conflict: a lite agent is
  always controlled (RFC 8445 section 6.1.1), so the peer must take control;
* anything else gets a success response with XOR-MAPPED-ADDRESS,
  MESSAGE-INTEGRITY and FINGERPRINT. FINGERPRINT is checked when present but
  not required.

After :meth:`IceLiteServer.restart` the previous credentials stay valid until
the first request that uses the new ones, as the browser applies the new
remote description a little later than the server.
"""

from __future__ import annotations

import ipaddress
import secrets
import string
import struct
from dataclasses import dataclass
from typing import Any

from aioice import stun

__all__ = [
    "CONSENT_TIMEOUT",
    "ICE_CHARS",
    "IceLiteServer",
    "IceResult",
    "generate_password",
    "generate_ufrag",
]

# RFC 8445 section 5.3 / RFC 8839 section 5.4: ice-char = ALPHA / DIGIT / "+" / "/".
ICE_CHARS = string.ascii_letters + string.digits + "+/"
# RFC 7675 section 5.1: consent expires 30 s after the last authenticated check.
CONSENT_TIMEOUT = 30.0

Address = tuple[str, int]


def generate_ufrag(length: int = 16) -> str:
    """A random username fragment; at least 4 ice-chars (RFC 8445 section 5.3)."""
    if not 4 <= length <= 256:
        raise ValueError("ICE ufrag length must be 4..256")
    return "".join(secrets.choice(ICE_CHARS) for _ in range(length))


def generate_password(length: int = 32) -> str:
    """A random password; at least 22 ice-chars, 128 bits (RFC 8445 section 5.3)."""
    if not 22 <= length <= 256:
        raise ValueError("ICE password length must be 22..256")
    return "".join(secrets.choice(ICE_CHARS) for _ in range(length))


@dataclass(frozen=True)
class IceResult:
    """What one received STUN datagram asks of the caller.

    ``response`` is the datagram to send back to the source address (or
    None); ``selected_changed`` is True when this request selected a tuple or
    moved the selection; ``error`` says why a request was refused or dropped.
    """

    response: bytes | None = None
    selected_changed: bool = False
    error: str | None = None


def parse_stun(data: bytes) -> stun.Message:
    """Decode a STUN message (RFC 5389 section 6), any defect as ValueError."""
    if len(data) >= 8 and struct.unpack_from("!I", data, 4)[0] != stun.COOKIE:
        raise ValueError("STUN message has no magic cookie")
    try:
        return stun.parse_message(data)
    except ValueError:
        raise
    except (struct.error, IndexError, TypeError) as exc:
        raise ValueError(f"STUN message is malformed: {exc}") from None


def _normalize(addr: tuple[Any, ...]) -> Address:
    """(host, port) with a canonical IP string; IPv6 flow info and scope dropped."""
    host = str(addr[0]).split("%", 1)[0]
    return str(ipaddress.ip_address(host)), int(addr[1])


class IceLiteServer:
    """The lite agent of one WebRTC transport (RFC 8445 section 2.5)."""

    def __init__(self, local_ufrag: str | None = None, local_pwd: str | None = None) -> None:
        self.local_ufrag = local_ufrag or generate_ufrag()
        self.local_pwd = local_pwd or generate_password()
        self._previous: tuple[str, str] | None = None
        self.remote_ufrag: str | None = None
        self.selected: Address | None = None
        self._consent_at: float | None = None

    def __repr__(self) -> str:
        return f"IceLiteServer(ufrag={self.local_ufrag!r}, selected={self.selected!r})"

    def ice_parameters(self) -> dict[str, Any]:
        """The local parameters in mediasoup's ``IceParameters`` shape."""
        return {"usernameFragment": self.local_ufrag, "password": self.local_pwd, "iceLite": True}

    def restart(self) -> dict[str, Any]:
        """New credentials (ICE restart, RFC 8445 section 9); returns the new parameters."""
        self._previous = (self.local_ufrag, self.local_pwd)
        self.local_ufrag = generate_ufrag()
        self.local_pwd = generate_password()
        return self.ice_parameters()

    def is_alive(self, now: float) -> bool:
        """Whether the selected tuple has consent (RFC 7675 section 5.1)."""
        return self._consent_at is not None and now - self._consent_at < CONSENT_TIMEOUT

    def receive_stun(self, data: bytes, addr: tuple[Any, ...], now: float) -> IceResult:
        """Handle one STUN datagram from ``addr``; see the module docstring."""
        message = parse_stun(data)
        if message.message_method != stun.Method.BINDING:
            return IceResult(error=f"ignored STUN {message.message_method.name} method")
        if message.message_class != stun.Class.REQUEST:
            return IceResult(error=f"ignored STUN Binding {message.message_class.name}")
        source = _normalize(addr)
        missing = [
            name
            for name in ("USERNAME", "MESSAGE-INTEGRITY", "PRIORITY")
            if name not in message.attributes
        ]
        if missing:
            return self._refuse(message, 400, "Bad Request", f"missing {', '.join(missing)}")
        password = self._password_for(message.attributes["USERNAME"])
        if password is None:
            return self._refuse(message, 401, "Unauthorized", "unknown USERNAME")
        if not message.check_message_integrity(password.encode("utf8")):
            return self._refuse(message, 401, "Unauthorized", "bad MESSAGE-INTEGRITY")
        self._accept_credentials(message.attributes["USERNAME"])
        if "ICE-CONTROLLED" in message.attributes:
            return self._role_conflict(message, password)
        changed = self._on_valid_request(source, "USE-CANDIDATE" in message.attributes, now)
        return IceResult(self._success(message, source, password), changed)

    def _password_for(self, username: str) -> str | None:
        """Our password when USERNAME is "<our ufrag>:<their ufrag>" (RFC 8445 section 7.2.2)."""
        local, sep, remote = username.partition(":")
        if not sep or not remote:
            return None
        if local == self.local_ufrag:
            return self.local_pwd
        if self._previous is not None and local == self._previous[0]:
            return self._previous[1]
        return None

    def _accept_credentials(self, username: str) -> None:
        local, _, remote = username.partition(":")
        self.remote_ufrag = remote
        if local == self.local_ufrag:
            self._previous = None

    def _on_valid_request(self, source: Address, nominated: bool, now: float) -> bool:
        """Refresh consent; a nomination selects or moves the tuple (RFC 8445 section 7.3.1.5)."""
        changed = nominated and source != self.selected
        if changed:
            self.selected = source
        if source == self.selected:
            self._consent_at = now
        return changed

    def _success(self, request: stun.Message, source: Address, password: str) -> bytes:
        response = stun.Message(
            stun.Method.BINDING, stun.Class.RESPONSE, transaction_id=request.transaction_id
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = source
        response.add_message_integrity(password.encode("utf8"))
        return bytes(response)

    def _role_conflict(self, request: stun.Message, password: str) -> IceResult:
        response = self._error(request, 487, "Role Conflict")
        response.add_message_integrity(password.encode("utf8"))
        return IceResult(bytes(response), error="peer claims the controlled role")

    def _refuse(self, request: stun.Message, code: int, reason: str, why: str) -> IceResult:
        # RFC 5389 section 10.1.2: 400 and 401 carry no MESSAGE-INTEGRITY.
        response = self._error(request, code, reason)
        response.add_fingerprint()
        return IceResult(bytes(response), error=why)

    @staticmethod
    def _error(request: stun.Message, code: int, reason: str) -> stun.Message:
        return stun.Message(
            stun.Method.BINDING,
            stun.Class.ERROR,
            transaction_id=request.transaction_id,
            attributes={"ERROR-CODE": (code, reason)},
        )
