"""Where the bytes of stored files live, behind one small interface.

`LocalStorage` keeps each object as a file in a directory (the default: one node, or
several sharing the directory). `DatabaseStorage` keeps them in the database in chunks,
so every node of a cluster reaches them with nothing more to run. Objects are written
once under a key and read back as a stream; nothing here knows what they are.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.config import Settings
from roomler.db.models import FileChunk

# Keys are chosen by the server (ids and suffixes), never by a client: a strict shape keeps
# one from ever naming a path outside the directory.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
READ_CHUNK = 256 * 1024


class ObjectNotFound(LookupError):
    """No object is stored under the key."""


class FileStorage(Protocol):
    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the stream under `key` (replacing what was there); returns its size."""
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; raises `ObjectNotFound` at the first read."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; no error if there is none."""
        ...


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid storage key {key!r}")
    return key


async def stream(data: bytes) -> AsyncIterator[bytes]:
    """`data` as a one-chunk stream, for `put`."""
    yield data


class LocalStorage:
    """One file per object in `directory`, written to a temporary name then renamed, so a
    reader never sees half an object."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / check_key(key)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        path = self._path(key)
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        size = 0
        handle = await asyncio.to_thread(open, partial, "wb")
        try:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
                size += len(chunk)
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, partial, path)
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            while chunk := await asyncio.to_thread(handle.read, READ_CHUNK):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


class DatabaseStorage:
    """Objects as rows of `file_chunks` (`chunk_bytes` each), in the server's own database:
    every node of a cluster reads what any node wrote."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], chunk_bytes: int = 1024 * 1024
    ) -> None:
        self.sessions = sessions
        self.chunk_bytes = chunk_bytes

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        check_key(key)
        size = 0
        seq = 0
        pending = bytearray()
        async with self.sessions() as session:
            await session.execute(delete(FileChunk).where(FileChunk.key == key))
            async for chunk in chunks:
                pending += chunk
                size += len(chunk)
                while len(pending) >= self.chunk_bytes:
                    session.add(
                        FileChunk(key=key, seq=seq, data=bytes(pending[: self.chunk_bytes]))
                    )
                    del pending[: self.chunk_bytes]
                    seq += 1
                    await session.flush()
            if pending or seq == 0:
                session.add(FileChunk(key=key, seq=seq, data=bytes(pending)))
            await session.commit()
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        check_key(key)
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(FileChunk).where(FileChunk.key == key)
            )
        if not count:
            raise ObjectNotFound(key)
        # One chunk a query: a 25 MB object is never held whole, nor a transaction kept open
        # while a slow client reads.
        for seq in range(count):
            async with self.sessions() as session:
                data = await session.scalar(
                    select(FileChunk.data).where(FileChunk.key == key, FileChunk.seq == seq)
                )
            if data is None:
                raise ObjectNotFound(key)
            yield data

    async def delete(self, key: str) -> None:
        check_key(key)
        async with self.sessions() as session:
            await session.execute(delete(FileChunk).where(FileChunk.key == key))
            await session.commit()


def create_storage(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> FileStorage:
    """The storage `ROOMLER__FILES__STORAGE` names."""
    if settings.files.storage == "database":
        return DatabaseStorage(sessions)
    return LocalStorage(settings.files_dir)
