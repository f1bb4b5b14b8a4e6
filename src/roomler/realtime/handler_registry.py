"""The table of client message types and their handlers.

A feature plugs in with `registry.register("media:join", handler, parse)`: `parse` turns
the frame's `data` object into whatever the handler wants and raises `ValueError` with a
precise message when a field is missing or wrong (the client then gets `bad_request`).
The handler gets a `Request` (the connection, the request id, a way to reply) and the
parsed data; it may reply to the connection, publish to others, or raise `Refused`.
A handler is given what it needs when it is built (a bound method of an object that
holds its services), never the whole layer through the request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from roomler.realtime.connection import CloseHook, Peer
from roomler.realtime.wire import (
    ERROR_BAD_REQUEST,
    ERROR_INTERNAL,
    MAX_ECHOED_TYPE_LENGTH,
    ClientMessage,
    encode,
    encode_error,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
Parser = Callable[[dict[str, Any]], T]
Handler = Callable[["Request", T], Awaitable[None]]


class Refused(Exception):
    """A well-formed request the server will not carry out; answered with `error`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Request:
    """One client message being handled, with the connection it came on."""

    connection: Peer
    type: str
    request_id: str | None

    @property
    def user_id(self) -> str:
        return self.connection.user_id

    @property
    def connection_id(self) -> str:
        return self.connection.connection_id

    def reply(self, event_type: str, data: dict[str, Any]) -> bool:
        """Send a direct reply to this connection only, echoing the request id."""
        return self.connection.send(encode(event_type, data, self.request_id))

    def reply_error(self, code: str, message: str) -> bool:
        frame = encode_error(code, message, request_type=self.type, request_id=self.request_id)
        return self.connection.send(frame)

    def on_close(self, hook: CloseHook) -> None:
        """Run `hook(connection)` when this connection goes away."""
        self.connection.on_close(hook)


def _keep_data(data: dict[str, Any]) -> dict[str, Any]:
    return data


@dataclass(frozen=True, slots=True)
class Registration(Generic[T]):
    handler: Handler[T]
    parse: Parser[T]


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Registration[Any]] = {}

    def register(
        self, message_type: str, handler: Handler[T], parse: Parser[T] | None = None
    ) -> None:
        if message_type in self._handlers:
            raise ValueError(f"a handler for {message_type!r} is already registered")
        self._handlers[message_type] = Registration(handler, parse or _keep_data)

    def get(self, message_type: str) -> Registration[Any] | None:
        return self._handlers.get(message_type)

    def types(self) -> list[str]:
        return sorted(self._handlers)

    async def handle(self, connection: Peer, message: ClientMessage) -> None:
        """Run the handler of one parsed client message, answering every failure with `error`."""
        registration = self._handlers.get(message.type)
        if registration is None:
            kind = message.type[:MAX_ECHOED_TYPE_LENGTH]
            connection.send(
                encode_error(
                    ERROR_BAD_REQUEST,
                    f"unknown message type {kind!r}",
                    request_type=kind,
                    request_id=message.request_id,
                )
            )
            return
        request = Request(connection, message.type, message.request_id)
        try:
            data = registration.parse(message.data)
            await registration.handler(request, data)
        except Refused as exc:
            request.reply_error(exc.code, exc.message)
        except ValueError as exc:
            request.reply_error(ERROR_BAD_REQUEST, str(exc))
        except Exception:
            logger.exception("%r: handling %s failed", connection, message.type)
            request.reply_error(ERROR_INTERNAL, "the server failed to handle this message")
