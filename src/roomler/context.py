"""Everything a running server holds, built once per application."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from roomler.auth.ratelimit import AttemptLimiter, LocalLimiter
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
    # Filled by the real-time and media layers when they start.
    extras: dict[str, Any] = field(default_factory=dict)
