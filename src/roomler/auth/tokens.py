"""JWT access and refresh tokens (HS256) with `sub`, `iat`, `exp`, `iss`, `token_type`, `jti`.

Both carry `sid`, the sign-in (refresh token family) they belong to; a refresh token's
`jti` is its row in `refresh_tokens` (auth/sessions.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt

TokenType = Literal["access", "refresh"]
ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, expired, of the wrong type or badly signed."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    token_type: TokenType
    issued_at: int
    expires_at: int
    token_id: str = ""
    session_id: str | None = None


@dataclass(frozen=True)
class TokenIssuer:
    secret: str
    issuer: str
    access_ttl: int
    refresh_ttl: int

    def issue(
        self,
        user_id: str,
        token_type: TokenType,
        now: float | None = None,
        *,
        session_id: str | None = None,
        token_id: str | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        ttl = self.access_ttl if token_type == "access" else self.refresh_ttl
        claims: dict[str, object] = {
            "sub": user_id,
            "iat": issued,
            "exp": issued + ttl,
            "iss": self.issuer,
            "token_type": token_type,
            # A unique id so two tokens issued in the same second differ.
            "jti": token_id or _random_jti(),
        }
        if session_id is not None:
            claims["sid"] = session_id
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str, expected: TokenType) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"require": ["sub", "iat", "exp", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("Token expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"Invalid token: {exc}") from None
        if claims.get("token_type") != expected:
            raise InvalidToken(f"Expected an {expected} token")
        if not isinstance(claims["sub"], str):
            raise InvalidToken("Invalid token subject")
        token_id, session_id = claims.get("jti"), claims.get("sid")
        return TokenClaims(
            claims["sub"],
            expected,
            int(claims["iat"]),
            int(claims["exp"]),
            token_id if isinstance(token_id, str) else "",
            session_id if isinstance(session_id, str) else None,
        )


def _random_jti() -> str:
    import secrets

    return secrets.token_hex(8)
