"""Sign-in sessions: refresh tokens that rotate on use, with reuse detection and logout.

A sign-in (register or login) starts a family of refresh tokens. Each refresh marks the
presented token used, in one conditional UPDATE so two concurrent refreshes with the same
token cannot both win, and issues its successor in the same family. A token presented
after it was used means it was copied: the whole family is revoked and every holder has
to sign in again (RFC 6819 section 5.2.2.3; OAuth 2.0 Security BCP, RFC 9700 section
4.14.2). Logout revokes the family. Access tokens are not looked up per request: they are
short-lived (ROOMLER__JWT__ACCESS_TOKEN_TTL_SECS) and end at most that long after logout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.auth.tokens import InvalidToken, TokenIssuer
from roomler.db.models import RefreshToken, User, utcnow
from roomler.ids import new_id


class RefreshTokenReused(InvalidToken):
    """A rotated or revoked refresh token was presented again; its family is revoked."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str


async def start_session(session: AsyncSession, tokens: TokenIssuer, user: User) -> TokenPair:
    """A new family for `user`; the caller commits."""
    return _issue(session, tokens, user.id, family_id=new_id())


async def rotate(
    session: AsyncSession, tokens: TokenIssuer, refresh_token: str
) -> tuple[User, TokenPair]:
    """Trade a refresh token for the next pair of its family, and commit."""
    claims = tokens.verify(refresh_token, "refresh")
    row = await session.get(RefreshToken, claims.token_id) if claims.token_id else None
    if row is None or row.user_id != claims.user_id:
        raise InvalidToken("Unknown refresh token; sign in again")
    now = utcnow()
    used = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == row.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        await revoke_family(session, row.family_id)
        raise RefreshTokenReused("Refresh token already used; the session is revoked")
    user = await session.get(User, row.user_id)
    if user is None:
        raise InvalidToken("User no longer exists")
    pair = _issue(session, tokens, user.id, family_id=row.family_id)
    await session.commit()
    return user, pair


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    """Revoke every token of a sign-in, and commit."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await session.commit()


async def revoke_other_families(session: AsyncSession, user_id: str, keep: str | None) -> int:
    """Revoke every sign-in of the user but `keep` (a password change); how many ended.
    The caller commits. Their access tokens end at most the access TTL later."""
    live = (
        RefreshToken.user_id == user_id,
        RefreshToken.revoked_at.is_(None),
        RefreshToken.family_id != (keep or ""),
    )
    now = utcnow()
    usable = (RefreshToken.used_at.is_(None), RefreshToken.expires_at > now)
    families = set(await session.scalars(select(RefreshToken.family_id).where(*live, *usable)))
    await session.execute(update(RefreshToken).where(*live).values(revoked_at=now))
    return len(families)


def _issue(session: AsyncSession, tokens: TokenIssuer, user_id: str, family_id: str) -> TokenPair:
    token_id = new_id()
    session.add(
        RefreshToken(
            id=token_id,
            family_id=family_id,
            user_id=user_id,
            expires_at=utcnow() + timedelta(seconds=tokens.refresh_ttl),
        )
    )
    return TokenPair(
        access_token=tokens.issue(user_id, "access", session_id=family_id),
        refresh_token=tokens.issue(user_id, "refresh", session_id=family_id, token_id=token_id),
    )
