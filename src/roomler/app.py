"""The ASGI application: REST API under `/api`, WebSocket at `/ws`, the web client at `/`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from roomler import __version__
from roomler.api import (
    auth,
    avatars,
    channels,
    conferences,
    direct,
    files,
    health,
    invitations,
    messages,
    notifications,
    pins,
    presence,
    reactions,
    reads,
    search,
    tenants,
    turn,
)
from roomler.api import metrics as metrics_routes
from roomler.api.accesslog import AccessLogMiddleware
from roomler.api.docs import install_api_docs
from roomler.api.errors import install_error_handlers
from roomler.api.openapi import AllowedMethods, install_openapi
from roomler.auth.passwords import HashingPool, default_hash_workers
from roomler.auth.ratelimit import create_limiter
from roomler.auth.tokens import TokenIssuer
from roomler.cluster.conference import ClusterRooms, ConferenceForwarding
from roomler.cluster.node import ClusterNode
from roomler.cluster.remote_workers import CrossNodeWorkers, RemoteWorkers
from roomler.conference.attendance import Attendance
from roomler.conference.conference_media import ROOM_SERVER_SHUTDOWN, ConferenceMedia
from roomler.conference.in_call import InCall
from roomler.conference.quality import QualityReporter
from roomler.conference.recording import Recordings
from roomler.conference.signaling import MediaSignaling
from roomler.config import Settings, load_settings
from roomler.context import ServerContext
from roomler.db.engine import create_engine, create_session_factory
from roomler.db.queries import store_presence, tenant_peer_ids, with_session
from roomler.files.storage import create_storage
from roomler.files.uploads import UnattachedUploads
from roomler.gc_policy import FrozenHeap
from roomler.metrics import (
    RedisTrafficCollector,
    ServerMetrics,
    SfuCollector,
    StateReaders,
    WsTrafficCollector,
)
from roomler.readiness import Check, Readiness, SfuCheck, database_check, redis_check
from roomler.realtime.dispatcher import LocalDispatcher
from roomler.realtime.endpoint import websocket_endpoint
from roomler.realtime.layer import Realtime
from roomler.realtime.open_connections import OpenConnections
from roomler.realtime.presence import PresenceService
from roomler.web import mount_web_client

logger = logging.getLogger(__name__)

WS_PATH = "/ws"


# How long a node leaving the cluster waits for closed connections to be cleaned up.
SHUTDOWN_DRAIN_SECS = 3.0


class RoomlerApp(FastAPI):
    """FastAPI, with `/ws` served ahead of its middleware stack and router.

    A WebSocket lives for hours, and every frame between the server and the endpoint stays
    suspended that long. Through FastAPI's stack (error middleware, exception handlers,
    `AsyncExitStack`, router) they cost 11 KB of RSS per connection, a quarter of what one
    cost (docs/performance.md). `/ws` needs none of them: it checks its
    own handshake and answers its own errors (realtime/endpoint.py).
    """

    def __init__(self, server: Server, **options: Any) -> None:
        super().__init__(**options)
        self.server = server
        self.state.ctx = server.context

    def draining(self) -> None:
        """At the signal itself: not ready, and no new WebSocket (both are flags)."""
        readiness: Readiness = self.state.readiness
        readiness.drain()
        self.server.realtime.refuse_new()

    async def drain(self, budget_secs: float) -> None:
        """SIGTERM's first step (`roomler serve`, cli.py), within `budget_secs`: see
        `Server.drain`. The listening socket stays open meanwhile; uvicorn closes it next."""
        readiness: Readiness = self.state.readiness
        await self.server.drain(readiness, budget_secs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and _route_path(scope) == WS_PATH:
            scope["app"] = self  # what Starlette sets
            await websocket_endpoint(self.server.realtime, WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path without the root path a proxy mounts us under (uvicorn includes it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


@dataclass
class Server:
    """The layers of one server, composed: what `create_app` serves and its lifespan runs."""

    context: ServerContext
    realtime: Realtime
    media: ConferenceMedia
    # Who is present in each conference, and the empty ones that end (conference/attendance.py).
    attendance: Attendance
    # This process as one node of a cluster (`ROOMLER__REDIS__URL` set), else None.
    node: ClusterNode | None
    # Each participant's network quality, told to the rooms hosted here (`media:score`).
    quality: QualityReporter | None = None
    # Uploads never attached to a message, removed after a while (files/uploads.py).
    uploads: UnattachedUploads | None = None

    async def start(self) -> None:
        if self.node is not None:
            # Join the cluster (Redis unreachable: serve alone meanwhile).
            await self.node.start(self.realtime.typing)
        self.attendance.start()
        if self.quality is not None:
            self.quality.start(self.context.settings.conference.score_interval_secs)
        if self.uploads is not None:
            self.uploads.start()

    async def drain(self, readiness: Readiness, budget_secs: float) -> None:
        """Leave gracefully (docs/operations.md, Graceful shutdown), within `budget_secs`:

        1. `/ready` answers 503 and WebSocket upgrades are refused (503), while requests
           are still served for `ROOMLER__APP__DRAIN_DELAY_SECS` (a load balancer that
           probes readiness stops sending new clients meanwhile);
        2. every conference hosted here closes: its participants hear `media:room_closed
           {reason: "server_shutdown"}` (with several nodes the claim is released first,
           so they join again on a live node); the conferences stay in progress;
        3. every WebSocket is closed with 1001 (going away) once its queued frames are
           out, and cleaned up (presence, typing, forwarded participants) while the
           cluster link is still up.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_secs
        readiness.drain()
        self.realtime.refuse_new()
        delay = min(self.context.settings.app.drain_delay_secs, budget_secs / 2)
        logger.info(
            "shutting down: draining for at most %.1f s (not ready; new WebSockets refused)",
            budget_secs,
        )
        if delay > 0:
            await asyncio.sleep(delay)
        await self.attendance.close()
        try:
            async with asyncio.timeout(max(0.1, (deadline - loop.time()) / 2)):
                await self.media.drain(ROOM_SERVER_SHUTDOWN)
        except TimeoutError:
            logger.warning("shutting down: closing the conferences took too long")
        await self.realtime.shutdown()
        remaining = max(0.0, deadline - loop.time())
        if not await self.realtime.sockets_closed(remaining):
            logger.warning(
                "shutting down: %d WebSocket(s) still open; closing them now",
                self.realtime.open_sockets,
            )
            self.realtime.close_all_now()
        await self.realtime.drained(max(0.0, deadline - loop.time()))

    async def stop(self) -> None:
        if self.uploads is not None:
            await self.uploads.close()
        await self.attendance.close()
        if self.quality is not None:
            await self.quality.close()
        await self.realtime.shutdown()
        self.realtime.close_all_now()  # after a drain, none is left; otherwise time is up
        if self.node is not None:
            await self.realtime.drained(SHUTDOWN_DRAIN_SECS)
            await self.node.stop()
        await self.context.recordings.close()
        await self.media.close()
        await self.context.login_failures.close()
        await self.context.signups.close()
        self.context.hashing.close()
        await self.context.engine.dispose()


def build_server(settings: Settings) -> Server:
    """Build every layer, bottom up: each is given what it needs in its constructor."""
    engine = create_engine(settings.database.url)
    tokens = TokenIssuer(
        secret=settings.jwt_secret,
        issuer=settings.jwt.issuer,
        access_ttl=settings.jwt.access_token_ttl_secs,
        refresh_ttl=settings.jwt.refresh_token_ttl_secs,
    )
    sessions = create_session_factory(engine)
    storage = OpenConnections()
    peers_of = with_session(sessions, tenant_peer_ids)
    keep_presence = with_session(sessions, store_presence)
    node: ClusterNode | None = None
    if settings.redis.url:  # several nodes: see roomler.cluster
        node = ClusterNode(
            settings.redis, storage, sessions, peers_of=peers_of, store_presence=keep_presence
        )
        realtime = Realtime(
            settings,
            sessions,
            tokens,
            storage=storage,
            dispatcher=node.dispatcher,
            presence=node.presence,
            typing_ledger=node,
            on_message_posted=node.message_posted,
        )
    else:
        dispatcher = LocalDispatcher(storage)
        realtime = Realtime(
            settings,
            sessions,
            tokens,
            storage=storage,
            dispatcher=dispatcher,
            presence=PresenceService(dispatcher, keep_presence),
        )
    media, forwarding = _build_conferences(settings, realtime, node)
    signaling = MediaSignaling(
        media,
        settings.turn,
        forwarder=forwarding,
        video_last_n=settings.conference.video_last_n,
    )
    signaling.register(realtime)
    InCall(media, realtime).register(realtime, signaling)
    storage_of_files = create_storage(settings, sessions)
    context = ServerContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        tokens=tokens,
        events=realtime,
        login_failures=create_limiter(
            settings.auth.login_max_failures,
            settings.auth.login_window_secs,
            settings.redis.url,
            settings.redis.key_prefix + "login:",
        ),
        signups=create_limiter(
            settings.auth.signup_per_address,
            settings.auth.signup_window_secs,
            settings.redis.url,
            settings.redis.key_prefix + "signup:",
        ),
        hashing=HashingPool(
            settings.auth.hash_workers or default_hash_workers(), settings.auth.hash_queue
        ),
        presence=realtime.presence,
        media=media,
        storage=storage_of_files,
        recordings=Recordings(media, sessions, storage_of_files),
    )
    attendance = Attendance(
        media,
        sessions,
        realtime,
        rejoin_grace_secs=settings.conference.rejoin_grace_secs,
        empty_end_secs=settings.conference.empty_end_secs,
    )
    quality = QualityReporter(media.rooms.rooms, realtime.dispatcher)
    uploads = UnattachedUploads(
        sessions,
        context.storage,
        ttl_secs=settings.files.unattached_ttl_secs,
        interval_secs=settings.files.sweep_interval_secs,
    )
    return Server(context, realtime, media, attendance, node, quality, uploads)


def _build_conferences(
    settings: Settings, realtime: Realtime, node: ClusterNode | None
) -> tuple[ConferenceMedia, ConferenceForwarding | None]:
    """The media rooms; with several nodes, placed and reached through the cluster."""
    grace = settings.conference.rejoin_grace_secs
    if node is None:
        media = ConferenceMedia(
            settings.mediasoup, realtime.dispatcher, realtime.sessions, rejoin_grace_secs=grace
        )
        return media, None
    rooms = ClusterRooms(node)
    media = ConferenceMedia(
        settings.mediasoup,
        realtime.dispatcher,
        realtime.sessions,
        placement=rooms,
        rejoin_grace_secs=grace,
    )
    forwarding = ConferenceForwarding(node, rooms, realtime, media)
    node.attach(forwarding)
    # Every node lends its workers; a host uses them only with rooms across nodes.
    remote_workers = RemoteWorkers(node, media.pool, media.worker_lost)
    node.attach(remote_workers)
    if settings.mediasoup.rooms_across_nodes:
        media.spread_over_nodes(CrossNodeWorkers(remote_workers, forwarding.edge_of))
    realtime.on_disconnect(forwarding.connection_closed)
    return media, forwarding


def build_readiness(server: Server) -> Readiness:
    """`/ready`'s checks (roomler.readiness): the database, the SFU, Redis with several nodes."""
    checks: dict[str, Check] = {
        "database": database_check(server.context.engine),
        "sfu": SfuCheck(server.media),
    }
    node = server.node
    if node is not None:
        checks["redis"] = redis_check(lambda: node.link.up)
    return Readiness(checks)


def build_metrics(server: Server) -> ServerMetrics | None:
    """`/metrics`' collectors when ROOMLER__METRICS__ENABLED (roomler.metrics)."""
    if not server.context.settings.metrics.enabled:
        return None
    realtime, media, node = server.realtime, server.media, server.node
    checked_out = getattr(server.context.engine.sync_engine.pool, "checkedout", None)
    metrics = ServerMetrics(
        StateReaders(
            open_connections=lambda: realtime.live_sessions,
            pool_in_use=checked_out if callable(checked_out) else lambda: None,
            sfu_workers_alive=lambda: media.live_workers,
            redis_link_up=(lambda: node.link.up) if node is not None else None,
            redis_pending=(lambda: node.link.pending) if node is not None else None,
        )
    )
    realtime.close_observers.append(metrics.websocket_closed)
    metrics.add(WsTrafficCollector(realtime.counters))
    sfu = SfuCollector(lambda: media.started_pool)
    metrics.add(sfu, sfu.refresh)
    if node is not None:
        metrics.add(RedisTrafficCollector(node.link))
    return metrics


def create_app(settings: Settings | None = None, *, owns_process: bool = False) -> RoomlerApp:
    """The application; `owns_process` (`roomler serve`): it may tune the process's collector."""
    settings = settings or load_settings()
    server = build_server(settings)
    metrics = build_metrics(server)
    frozen = (
        FrozenHeap(server.realtime.counters) if owns_process and settings.app.gc_freeze else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        if metrics is not None:
            metrics.start()
        if frozen is not None:
            frozen.start()  # last: what start-up built is frozen
        try:
            yield
        finally:
            app.state.readiness.drain()
            if frozen is not None:
                await frozen.stop()
            if metrics is not None:
                await metrics.stop()
            await server.stop()

    app = RoomlerApp(
        server,
        title="Roomler",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served from our own assets: install_api_docs
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(AllowedMethods, api=app)
    install_api_docs(app)
    app.state.metrics = metrics
    app.add_middleware(
        AccessLogMiddleware, on_response=metrics.observe_http if metrics is not None else None
    )
    if settings.app.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.app.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )

    app.state.readiness = build_readiness(server)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    app.include_router(auth.router, prefix="/api")
    app.include_router(avatars.router, prefix="/api")
    app.include_router(presence.router, prefix="/api")
    app.include_router(tenants.router, prefix="/api")
    app.include_router(invitations.router, prefix="/api")
    app.include_router(channels.router, prefix="/api")
    app.include_router(messages.router, prefix="/api")
    app.include_router(files.router, prefix="/api")
    app.include_router(reactions.router, prefix="/api")
    app.include_router(pins.router, prefix="/api")
    app.include_router(direct.router, prefix="/api")
    app.include_router(reads.router, prefix="/api")
    app.include_router(notifications.router, prefix="/api")
    app.include_router(search.router, prefix="/api")
    app.include_router(conferences.router, prefix="/api")
    app.include_router(turn.router, prefix="/api")
    # Last: its catch-all route serves the browser client for paths no API route claims.
    mount_web_client(app)
    return app
