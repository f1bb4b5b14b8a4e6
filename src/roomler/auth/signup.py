"""Who may create an account: `ROOMLER__AUTH__SIGNUP` = open | invite | closed.

`invite` admits a registration only with a valid invitation code. Invitation links come
with issue 18; until then `NoInvitations` is the registry and accepts no code, so an
`invite` server refuses every sign-up. The feature plugs in by giving the server context
an `Invitations` whose `redeem` checks and consumes a code inside the registration's
transaction (so a refused registration does not use it up).
"""

from __future__ import annotations

from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

SignupPolicy = Literal["open", "invite", "closed"]


class SignupRefused(Exception):
    """Registration is not allowed; the message says why (403)."""


class Invitations(Protocol):
    async def redeem(self, session: AsyncSession, code: str, email: str) -> bool:
        """Consume invitation `code` for a sign-up as `email`; False when it is not valid."""
        ...


class NoInvitations:
    """Until invitation links exist (issue 18): no code is valid."""

    async def redeem(self, session: AsyncSession, code: str, email: str) -> bool:
        return False


def admit(policy: SignupPolicy, invite_code: str | None) -> None:
    """Raise `SignupRefused` when the policy refuses this registration outright; under
    `invite` the code itself is redeemed later, in the registration's transaction."""
    if policy == "closed":
        raise SignupRefused("Sign-up is closed on this server")
    if policy == "invite" and not invite_code:
        raise SignupRefused("Sign-up on this server needs an invitation (invite_code)")
