"""Who may create an account: `ROOMLER__AUTH__SIGNUP` = open | invite | closed.

`invite` admits a registration only with an invitation link's code (api/invitations.py),
which is checked and used inside the registration's transaction (so a refused
registration does not use it up); under `open` a code is optional and joins its tenant.
"""

from __future__ import annotations

from typing import Literal

SignupPolicy = Literal["open", "invite", "closed"]


class SignupRefused(Exception):
    """Registration is not allowed; the message says why (403)."""


def admit(policy: SignupPolicy, invite_code: str | None) -> None:
    """Raise `SignupRefused` when the policy refuses this registration outright; under
    `invite` the code itself is redeemed later, in the registration's transaction."""
    if policy == "closed":
        raise SignupRefused("Sign-up is closed on this server")
    if policy == "invite" and not invite_code:
        raise SignupRefused("Sign-up on this server needs an invitation (invite_code)")
