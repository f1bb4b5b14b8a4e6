"""The ASGI application: REST API under `/api`, WebSocket at `/ws`, the web client at `/`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from roomler import __version__
from roomler.api import auth, tenants
from roomler.api.errors import install_error_handlers
from roomler.auth.tokens import TokenIssuer
from roomler.config import Settings, load_settings
from roomler.context import ServerContext
from roomler.db.engine import create_engine, create_session_factory


class _NoDelivery:
    """Placeholder until the real-time layer is wired in: events go nowhere."""

    async def publish(self, user_ids: Any, event_type: str, data: Any, **_: Any) -> None:
        return None

    async def message_posted(self, channel_id: str, author_id: str) -> None:
        return None


def build_context(settings: Settings) -> ServerContext:
    engine = create_engine(settings.database.url)
    tokens = TokenIssuer(
        secret=settings.jwt_secret,
        issuer=settings.jwt.issuer,
        access_ttl=settings.jwt.access_token_ttl_secs,
        refresh_ttl=settings.jwt.refresh_token_ttl_secs,
    )
    return ServerContext(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        tokens=tokens,
        events=_NoDelivery(),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    ctx = build_context(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await ctx.engine.dispose()

    app = FastAPI(
        title="Roomler",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    if settings.app.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.app.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(auth.router, prefix="/api")
    app.include_router(tenants.router, prefix="/api")
    return app
