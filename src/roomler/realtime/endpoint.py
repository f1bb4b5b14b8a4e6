"""`GET /ws`: authenticate the upgrade, then run one connection until it goes away.

The ASGI task of the connection reads: it parses and handles client frames in order.
Frames to the client are written directly or by the connection's writer task, which runs
only while frames wait (realtime/connection.py). The read loop ends when the peer leaves;
a close the server asks for (or a failed write) cancels it where it waits. The
connection is then forgotten everywhere before a server-initiated close frame is sent.
No task per connection besides the one ASGI gives it: an idle connection costs less
memory and fewer objects for the garbage collector (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any, NamedTuple

from sqlalchemy import select
from starlette.websockets import WebSocket, WebSocketDisconnect

from roomler.auth.tokens import InvalidToken
from roomler.db.models import TenantMember, User
from roomler.errors import error_response
from roomler.logs import bind_log_context
from roomler.realtime.connection import Connection
from roomler.realtime.handshake import (
    HandshakeRejected,
    allowed_origins,
    handshake_token,
)
from roomler.realtime.layer import Realtime
from roomler.realtime.ratelimit import MessageRateLimiter, Verdict
from roomler.realtime.uvicorn_protocol import EXTENSION
from roomler.realtime.wire import (
    CLOSE_GOING_AWAY,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOKEN_EXPIRED,
    ERROR_BAD_REQUEST,
    ERROR_RATE_LIMITED,
    BadRequest,
    ClientMessage,
    encode_connected,
    encode_error,
)

logger = logging.getLogger(__name__)

# How long a server-initiated close may wait for a socket that is not being read.
CLOSE_TIMEOUT_SECS = 10.0


async def websocket_endpoint(realtime: Realtime, websocket: WebSocket) -> None:
    try:
        if realtime.draining:  # shutting down: the client (or the proxy) tries another node
            raise HandshakeRejected(503, "the server is shutting down; connect again")
        handshake = await authenticate(realtime, websocket)
        if realtime.draining:
            raise HandshakeRejected(503, "the server is shutting down; connect again")
    except HandshakeRejected as exc:
        await deny(websocket, exc)
        return
    # What the handshake parsed (URL, headers, query, cookies) is cached on the WebSocket
    # for its lifetime, which is hours: ~1 KB per connection that nothing reads again.
    for parsed in _HANDSHAKE_CACHES:
        websocket.__dict__.pop(parsed, None)
    await websocket.accept()
    realtime.open_sockets += 1
    try:
        await WsSession(realtime, websocket, handshake).run()
    finally:
        realtime.open_sockets -= 1


# Starlette's HTTPConnection caches (requests.py): a missing name is simply not popped.
_HANDSHAKE_CACHES = ("_url", "_base_url", "_headers", "_query_params", "_cookies")


class Handshake(NamedTuple):
    """Who an accepted upgrade is, as the database had them at that moment."""

    user_id: str
    presence: str  # the stored choice
    tenant_ids: tuple[str, ...]  # presence is announced to these tenants' members
    expires_at: int  # the access token's expiry, epoch seconds


async def authenticate(realtime: Realtime, websocket: WebSocket) -> Handshake:
    """Check an upgrade's token and read its user, with their tenants, in one statement."""
    app = realtime.settings.app
    allowed = allowed_origins(
        websocket.url.scheme, websocket.headers.get("host"), app.public_url, app.cors_origins
    )
    token = handshake_token(
        websocket.query_params, websocket.cookies, websocket.headers.get("origin"), allowed
    )
    try:
        claims = realtime.tokens.verify(token, "access")
    except InvalidToken as exc:
        raise HandshakeRejected(401, str(exc)) from None
    async with realtime.sessions() as session:
        rows = (
            await session.execute(
                select(User.presence, TenantMember.tenant_id)
                .outerjoin(TenantMember, TenantMember.user_id == User.id)
                .where(User.id == claims.user_id)
            )
        ).all()
    if not rows:
        raise HandshakeRejected(401, "User no longer exists")
    tenant_ids = tuple(tenant_id for _, tenant_id in rows if tenant_id is not None)
    return Handshake(claims.user_id, rows[0][0], tenant_ids, claims.expires_at)


async def deny(websocket: WebSocket, rejection: HandshakeRejected) -> None:
    """Answer the upgrade with a plain HTTP error; no WebSocket is opened."""
    headers = {"WWW-Authenticate": "Bearer"} if rejection.status == 401 else None
    if rejection.status == 503:
        headers = {"Retry-After": "1"}
    try:
        await websocket.send_denial_response(
            error_response(rejection.status, rejection.message, headers)
        )
    except RuntimeError:  # the server lacks the denial-response extension: 403 at best
        await websocket.close(CLOSE_POLICY_VIOLATION)


class WsSession:
    """One accepted connection, from the `connected` frame to its cleanup."""

    __slots__ = (
        "realtime",
        "websocket",
        "expires_at",
        "arrival",
        "connection",
        "max_frame_chars",
        "peer_close_code",
        "_reading",
        "_stopped",
    )

    def __init__(self, realtime: Realtime, websocket: WebSocket, handshake: Handshake):
        self.realtime = realtime
        self.websocket = websocket
        self.expires_at = handshake.expires_at
        # What the arrival announces; dropped once it has (a connection lives for hours).
        self.arrival: Handshake | None = handshake
        ws = realtime.settings.ws
        direct = websocket.scope.get("extensions", {}).get(EXTENSION, {})
        self.connection = Connection(
            handshake.user_id,
            str(uuid.uuid4()),
            websocket.send_text,
            ws.send_queue_frames,
            direct.get("write"),
            realtime.counters,
            realtime.batcher,
        )
        self.max_frame_chars = ws.max_frame_bytes
        self.peer_close_code: int | None = None
        # The task running the read loop while it runs; `_stopped`: we cancelled it.
        self._reading: asyncio.Task[Any] | None = None
        self._stopped = False

    async def run(self) -> None:
        connection = self.connection
        # The connection's own task: every line it logs from here on says whose it is.
        bind_log_context(user_id=connection.user_id, connection_id=connection.connection_id)
        opened = time.monotonic()
        done = connection.start_writer()
        done.add_done_callback(self._stop_reading)
        connection.send(encode_connected(connection.user_id, connection.connection_id))
        self.realtime.open(connection)
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, self.expires_at - time.time()),
            connection.close,
            CLOSE_TOKEN_EXPIRED,
            "access token expired",
        )
        server_close: int | None = None
        failure: BaseException | None = None
        try:
            failure = await self._read_until_stopped()
            server_close = connection.close_code
        finally:
            expiry.cancel()
            connection.close(CLOSE_GOING_AWAY)  # no-op if a code was already chosen
            if failure is None and done.done() and not done.cancelled():
                failure = done.exception()  # the writer's: a write to the socket failed
            if failure is not None and not _is_disconnect(failure):
                logger.error("%r failed", connection, exc_info=failure)
            await self.realtime.closed(connection)
            ended_by = "the client" if server_close is None else f"the server ({server_close})"
            code = server_close if server_close is not None else self.peer_close_code
            for observe in self.realtime.close_observers:
                observe(code)
            logger.info(
                "WebSocket closed by %s after %.1f s %s",
                ended_by,
                time.monotonic() - opened,
                connection.close_reason,
            )
        if server_close is not None:
            await self._close_socket(server_close, connection.close_reason)

    async def _read_until_stopped(self) -> Exception | None:
        """The read loop in this task, until the peer leaves or `_stop_reading` cancels it.

        Returns what it failed with, if it did; a cancellation from elsewhere (the server
        shutting down) is not ours to swallow.
        """
        task = asyncio.current_task()
        assert task is not None
        self._reading = task
        try:
            await self.read_loop()
        except asyncio.CancelledError:
            if not self._stopped:
                raise
            task.uncancel()
        except Exception as exc:
            return exc
        finally:
            self._reading = None
        return None

    def _stop_reading(self, _done: asyncio.Future[None]) -> None:
        """A close was requested or the writer failed: the read loop ends where it waits."""
        reading = self._reading
        if reading is not None and not self._stopped:
            self._stopped = True
            reading.cancel()

    async def _close_socket(self, code: int, reason: str) -> None:
        # A peer that does not read may never let the close frame out; give up after a while.
        with contextlib.suppress(TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
            await asyncio.wait_for(self.websocket.close(code, reason), CLOSE_TIMEOUT_SECS)

    async def read_loop(self) -> None:
        """Handle client frames in order until the peer leaves or a close is requested.

        The user's arrival is announced first, so by the time the client gets an answer
        to its first message, its peers have been told it is here.
        """
        connection = self.connection
        arrival, self.arrival = self.arrival, None
        assert arrival is not None  # one read loop per session
        await self.realtime.arrived(connection, arrival.presence, arrival.tenant_ids)
        ws = self.realtime.settings.ws
        limiter = MessageRateLimiter(
            ws.rate_per_sec, ws.rate_burst, ws.flood_close_secs, time.monotonic()
        )
        receive = self.websocket.receive
        counters = self.realtime.counters
        while not connection.closing:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                # The peer's close code, or the server's own when uvicorn closed for it
                # (a frame over the size limit: 1009).
                self.peer_close_code = message.get("code")
                return
            counters.frames_in += 1
            text = message.get("text")
            verdict = limiter.check(time.monotonic())
            if verdict is Verdict.CLOSE:
                connection.close(CLOSE_POLICY_VIOLATION, "rate limit exceeded")
            elif verdict is Verdict.LIMIT:
                self.refuse_rate_limited(text, ws.rate_per_sec)
            elif text is None:
                self.send_error("binary frames are not supported; send JSON text frames")
            elif len(text) > self.max_frame_chars:
                connection.close(CLOSE_MESSAGE_TOO_BIG, "frame too large")
            else:
                await self.handle(text)

    async def handle(self, text: str) -> None:
        try:
            message = ClientMessage.parse(text)
        except BadRequest as exc:
            self.send_error(str(exc), exc.request_type, exc.request_id)
            return
        await self.realtime.registry.handle(self.connection, message)

    def send_error(
        self, message: str, request_type: str | None = None, request_id: str | None = None
    ) -> None:
        self.connection.send(
            encode_error(
                ERROR_BAD_REQUEST, message, request_type=request_type, request_id=request_id
            )
        )

    def refuse_rate_limited(self, text: str | None, rate: float) -> None:
        request_type = request_id = None
        if text is not None and len(text) <= self.max_frame_chars:
            with contextlib.suppress(BadRequest):
                message = ClientMessage.parse(text)
                request_type, request_id = message.type, message.request_id
        self.connection.send(
            encode_error(
                ERROR_RATE_LIMITED,
                f"more than {rate:g} messages per second; this one was dropped",
                request_type=request_type,
                request_id=request_id,
            )
        )


def _is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, (WebSocketDisconnect, OSError))
