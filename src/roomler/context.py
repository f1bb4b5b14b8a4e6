"""Everything a running server holds, built once per application."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from roomler.auth.passwords import HashingPool, default_hash_workers
from roomler.auth.ratelimit import AttemptLimiter, LocalLimiter
from roomler.auth.signup import Invitations, NoInvitations
from roomler.auth.tokens import TokenIssuer
from roomler.config import Settings
from roomler.realtime.events import EventPublisher


@dataclass
class ServerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenIssuer
    events: EventPublisher
    # Failed logins per account and per client address (auth/ratelimit.py).
    login_failures: AttemptLimiter = field(default_factory=LocalLimiter)
    # Registrations per client address.
    signups: AttemptLimiter = field(default_factory=lambda: LocalLimiter(20, 3600.0))
    # Where argon2 runs (auth/passwords.py).
    hashing: HashingPool = field(default_factory=lambda: HashingPool(default_hash_workers(), 8))
    # Invitation codes for ROOMLER__AUTH__SIGNUP=invite (issue 18 plugs in here).
    invitations: Invitations = field(default_factory=NoInvitations)
    # Filled by the real-time and media layers when they start.
    extras: dict[str, Any] = field(default_factory=dict)
