"""Everything a running server holds, built once per application."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from roomler.auth.ratelimit import FailureLimiter
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
    login_failures: FailureLimiter = field(default_factory=FailureLimiter)
    # Filled by the real-time and media layers when they start.
    extras: dict[str, Any] = field(default_factory=dict)
