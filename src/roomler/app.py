"""The ASGI application: REST API under `/api`, WebSocket at `/ws`, the web client at `/`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from roomler import __version__
from roomler.api import auth, channels, conferences, health, messages, tenants, turn
from roomler.api import metrics as metrics_routes
from roomler.api.accesslog import AccessLogMiddleware
from roomler.api.docs import install_api_docs
from roomler.api.errors import install_error_handlers
from roomler.api.openapi import AllowedMethods, install_openapi
from roomler.auth.passwords import HashingPool, default_hash_workers
from roomler.auth.ratelimit import create_limiter
from roomler.auth.tokens import TokenIssuer
from roomler.cluster.conference import ClusterRooms, ConferenceForwarding
from roomler.conference.attendance import ATTENDANCE_KEY, Attendance
from roomler.conference.media import CONFERENCE_KEY, ConferenceMedia, media_of
from roomler.conference.signaling import register_media_signaling
from roomler.config import Settings, load_settings
from roomler.context import ServerContext
from roomler.db.engine import create_engine, create_session_factory
from roomler.metrics import (
    RedisTrafficCollector,
    ServerMetrics,
    SfuCollector,
    StateReaders,
    WsTrafficCollector,
)
from roomler.readiness import Readiness, SfuCheck, database_check, redis_check
from roomler.realtime import routes as realtime_routes
from roomler.realtime.endpoint import websocket_endpoint
from roomler.realtime.hub import REALTIME_KEY, Realtime, realtime_of
from roomler.web import mount_web_client

WS_PATH = "/ws"


class RoomlerApp(FastAPI):
    """FastAPI, with `/ws` served ahead of its middleware stack and router.

    A WebSocket lives for hours, and every frame between the server and the endpoint stays
    suspended that long. Through FastAPI's stack (error middleware, exception handlers,
    `AsyncExitStack`, router) they cost 11 KB of RSS per connection, a quarter of what one
    cost (docs/performance.md). `/ws` needs none of them: it checks its
    own handshake and answers its own errors (realtime/endpoint.py).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and _route_path(scope) == WS_PATH:
            scope["app"] = self  # what Starlette sets; the endpoint reads app.state from it
            await websocket_endpoint(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path without the root path a proxy mounts us under (uvicorn includes it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def build_context(settings: Settings) -> ServerContext:
    engine = create_engine(settings.database.url)
    tokens = TokenIssuer(
        secret=settings.jwt_secret,
        issuer=settings.jwt.issuer,
        access_ttl=settings.jwt.access_token_ttl_secs,
        refresh_ttl=settings.jwt.refresh_token_ttl_secs,
    )
    sessions = create_session_factory(engine)
    realtime = Realtime(settings, sessions, tokens)
    node = realtime.cluster
    grace = settings.conference.rejoin_grace_secs
    if node is None:
        media = ConferenceMedia(
            settings.mediasoup, realtime.dispatcher, sessions, rejoin_grace_secs=grace
        )
        register_media_signaling(realtime, media)
    else:  # several nodes: rooms are placed and requests forwarded (roomler.cluster)
        rooms = ClusterRooms(node)
        media = ConferenceMedia(
            settings.mediasoup,
            realtime.dispatcher,
            sessions,
            placement=rooms,
            rejoin_grace_secs=grace,
        )
        forwarding = ConferenceForwarding(node, rooms, realtime, media)
        node.attach(forwarding)
        register_media_signaling(realtime, media, forwarder=forwarding)
    return ServerContext(
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
        extras={
            REALTIME_KEY: realtime,
            CONFERENCE_KEY: media,
            ATTENDANCE_KEY: Attendance(
                media,
                sessions,
                realtime,
                rejoin_grace_secs=grace,
                empty_end_secs=settings.conference.empty_end_secs,
            ),
        },
    )


def build_readiness(ctx: ServerContext) -> Readiness:
    """`/ready`'s checks (roomler.readiness): the database, the SFU, Redis with several nodes."""
    checks = {"database": database_check(ctx.engine), "sfu": SfuCheck(media_of(ctx))}
    cluster = realtime_of(ctx).cluster
    if cluster is not None:
        checks["redis"] = redis_check(lambda: cluster.link.up)
    return Readiness(checks)


def build_metrics(ctx: ServerContext) -> ServerMetrics | None:
    """`/metrics`' collectors when ROOMLER__METRICS__ENABLED (roomler.metrics)."""
    if not ctx.settings.metrics.enabled:
        return None
    realtime = realtime_of(ctx)
    media = media_of(ctx)
    checked_out = getattr(ctx.engine.sync_engine.pool, "checkedout", None)
    cluster = realtime.cluster
    metrics = ServerMetrics(
        StateReaders(
            open_connections=lambda: realtime.live_sessions,
            pool_in_use=checked_out if callable(checked_out) else lambda: None,
            sfu_workers_alive=lambda: media.live_workers,
            redis_link_up=(lambda: cluster.link.up) if cluster is not None else None,
            redis_pending=(lambda: cluster.link.pending) if cluster is not None else None,
        )
    )
    realtime.close_observers.append(metrics.websocket_closed)
    metrics.add(WsTrafficCollector(realtime.counters))
    sfu = SfuCollector(lambda: media.started_pool)
    metrics.add(sfu, sfu.refresh)
    if cluster is not None:
        metrics.add(RedisTrafficCollector(cluster.link))
    return metrics


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    ctx = build_context(settings)
    metrics = build_metrics(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await realtime_of(ctx).start()
        attendance: Attendance = ctx.extras[ATTENDANCE_KEY]
        attendance.start()
        if metrics is not None:
            metrics.start()
        try:
            yield
        finally:
            app.state.readiness.drain()
            await attendance.close()
            if metrics is not None:
                await metrics.stop()
            await realtime_of(ctx).shutdown()
            await media_of(ctx).close()
            await ctx.login_failures.close()
            await ctx.signups.close()
            ctx.hashing.close()
            await ctx.engine.dispose()

    app = RoomlerApp(
        title="Roomler",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served from our own assets: install_api_docs
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
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

    app.state.readiness = build_readiness(ctx)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    app.include_router(auth.router, prefix="/api")
    app.include_router(realtime_routes.router, prefix="/api")
    app.include_router(tenants.router, prefix="/api")
    app.include_router(channels.router, prefix="/api")
    app.include_router(messages.router, prefix="/api")
    app.include_router(conferences.router, prefix="/api")
    app.include_router(turn.router, prefix="/api")
    # Last: its catch-all route serves the browser client for paths no API route claims.
    mount_web_client(app)
    return app
