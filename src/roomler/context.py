"""What the REST API's handlers are given: the services of one running server, typed.

Built once by `roomler.app` and reached through the `Context` dependency
(`api/deps.py`). The real-time layer does not see it: `Realtime` is given its own
dependencies when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from roomler.auth.passwords import HashingPool, default_hash_workers
from roomler.auth.ratelimit import AttemptLimiter, LocalLimiter
from roomler.auth.tokens import TokenIssuer
from roomler.conference.conference_media import ConferenceMedia
from roomler.conference.recording import Recordings
from roomler.config import Settings
from roomler.files.storage import FileStorage
from roomler.realtime.events import EventPublisher
from roomler.realtime.presence import Presence


@dataclass
class ServerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenIssuer
    # Delivery of REST changes to the connected clients.
    events: EventPublisher
    # Who is online, as the caller sees it (`GET .../presence`).
    presence: Presence
    # Starting, ending and leaving conferences' media rooms.
    media: ConferenceMedia
    # Where uploaded files' bytes live (files/storage.py).
    storage: FileStorage
    # Recording conferences into that storage (conference/recording.py).
    recordings: Recordings
    # Failed logins per account and per client address (auth/ratelimit.py).
    login_failures: AttemptLimiter = field(default_factory=LocalLimiter)
    # Registrations per client address.
    signups: AttemptLimiter = field(default_factory=lambda: LocalLimiter(20, 3600.0))
    # Where argon2 runs (auth/passwords.py).
    hashing: HashingPool = field(default_factory=lambda: HashingPool(default_hash_workers(), 8))
