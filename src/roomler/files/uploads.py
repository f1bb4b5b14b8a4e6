"""Uploads that never became part of a message, removed after a while.

An upload belongs to its uploader alone until a message names it (api/files.py). One that
is never attached -- the tab closed before sending, the message abandoned -- would keep
its bytes forever, so `UnattachedUploads` removes those older than
`ROOMLER__FILES__UNATTACHED_TTL_SECS` (a day by default: a draft left overnight keeps its
files), every `ROOMLER__FILES__SWEEP_INTERVAL_SECS`.

The rows go first, each in a `DELETE ... RETURNING` that re-checks `message_id IS NULL`, so
an upload attached at that moment is never taken from its message; the bytes go after the
commit. With several nodes each sweeps: a row is deleted by one of them only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.db.models import StoredFile, utcnow
from roomler.files.storage import FileStorage

logger = logging.getLogger(__name__)

# Rows per statement: a long backlog goes in several short transactions.
SWEEP_BATCH = 500


def thumbnail_key(file_id: str) -> str:
    return f"{file_id}.thumb"


def stored_keys(file_id: str, thumbnail_type: str | None) -> list[str]:
    """The storage keys of a file: its bytes, and its thumbnail's if it has one."""
    return [file_id, thumbnail_key(file_id)] if thumbnail_type else [file_id]


async def remove_objects(storage: FileStorage, keys: Iterable[str]) -> None:
    """Remove stored bytes whose rows are gone; a failure leaves an orphan, logged."""
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:
            logger.exception("stored file %s could not be removed", key)


class UnattachedUploads:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        storage: FileStorage,
        ttl_secs: float,
        interval_secs: float,
    ) -> None:
        self.sessions = sessions
        self.storage = storage
        self.ttl = timedelta(seconds=ttl_secs)
        self.interval_secs = interval_secs
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._every_interval())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def sweep(self, now: datetime | None = None) -> int:
        """Remove every unattached upload older than the time to live; how many went."""
        cutoff = (now or utcnow()) - self.ttl
        removed = 0
        while True:
            async with self.sessions() as session:
                batch = (
                    select(StoredFile.id)
                    .where(StoredFile.message_id.is_(None), StoredFile.created_at < cutoff)
                    .limit(SWEEP_BATCH)
                    .scalar_subquery()
                )
                rows = (
                    await session.execute(
                        delete(StoredFile)
                        .where(StoredFile.id.in_(batch), StoredFile.message_id.is_(None))
                        .returning(StoredFile.id, StoredFile.thumbnail_type)
                    )
                ).all()
                await session.commit()
            await remove_objects(self.storage, [key for row in rows for key in stored_keys(*row)])
            removed += len(rows)
            if len(rows) < SWEEP_BATCH:
                break
        if removed:
            logger.info("removed %d upload(s) never attached to a message", removed)
        return removed

    async def _every_interval(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the database away for a while: try again next time
                logger.exception("removing unattached uploads failed")
            await asyncio.sleep(self.interval_secs)
