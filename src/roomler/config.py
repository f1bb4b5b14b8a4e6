"""Server configuration from the environment (`ROOMLER__SECTION__KEY`) and a `.env` file.

The key names are the reference design's (`ROOMLER__MEDIASOUP__NUM_WORKERS`, ...);
`docs/configuration.md` lists every one of them.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "ROOMLER__"


class AppSettings(BaseModel):
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=1, le=65535)
    # Origins allowed for CORS and for cookie-authenticated WebSocket upgrades.
    # Accepts a JSON list or a comma-separated string.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    data_dir: Path = Path("./data")
    # Public base URL used in links such as a conference's join_url.
    public_url: str = ""
    # Addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
    # (uvicorn's forwarded_allow_ips: comma-separated IPs or networks, "*" for any).
    # Empty: none, so a client cannot choose the address the rate limits count it under.
    forwarded_allow_ips: str = ""
    # Graceful shutdown (SIGTERM): the whole drain and stop takes at most this long, after
    # which the process exits anyway (docs/operations.md, Rolling restarts).
    shutdown_timeout_secs: float = Field(default=15.0, gt=0)
    # After SIGTERM, how long /ready answers 503 while the node still serves everything,
    # before it closes its WebSockets: for load balancers that probe readiness.
    drain_delay_secs: float = Field(default=0.0, ge=0)
    # `roomler serve`: freeze long-lived objects so full garbage collections do not walk
    # them (roomler/gc_policy.py). Off: CPython's collector as it comes.
    gc_freeze: bool = True

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                try:
                    return json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not a JSON list: {exc.msg}") from None
            return [part.strip() for part in text.split(",") if part.strip()]
        return value


class DatabaseSettings(BaseModel):
    url: str = "sqlite+aiosqlite:///./data/roomler.db"

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class JwtSettings(BaseModel):
    secret: str | None = None
    # Short: an access token is not looked up per request, so it outlives a logout by at
    # most this long (auth/sessions.py).
    access_token_ttl_secs: int = Field(default=900, gt=0)
    refresh_token_ttl_secs: int = Field(default=604800, gt=0)
    issuer: str = "roomler"

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) < 32:
            raise ValueError("must be at least 32 bytes (RFC 7518 section 3.2)")
        return value


class AuthSettings(BaseModel):
    """Login and sign-up limits (docs/operations.md, Security)."""

    # Failed logins per account (whichever identifier names it) and per client address.
    login_max_failures: int = Field(default=10, ge=1)
    login_window_secs: float = Field(default=60.0, gt=0)
    # Who may register: anyone, holders of an invitation (issue 18), nobody.
    signup: Literal["open", "invite", "closed"] = "open"
    # Registrations per client address in the window.
    signup_per_address: int = Field(default=20, ge=1)
    signup_window_secs: float = Field(default=3600.0, gt=0)
    # Password hashes computed at once (argon2id: 64 MiB and a core each); default: cores.
    hash_workers: int | None = Field(default=None, ge=1, le=256)
    # Hashes that may wait for a worker; beyond them, 503 with Retry-After.
    hash_queue: int = Field(default=8, ge=0)


class RedisSettings(BaseModel):
    """Several nodes (`roomler.cluster`): unset `url` means one process, no Redis."""

    url: str | None = None
    # Prepended to every Redis key and channel; lets several clusters share one Redis.
    key_prefix: str = Field(default="roomler:", pattern=r"^[A-Za-z0-9:._-]*$", max_length=64)
    # This process's name in the cluster; default: host name, pid and a random suffix.
    node_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    # A node refreshes its heartbeat key this often; a node whose key expired is dead.
    heartbeat_secs: float = Field(default=3.0, gt=0)
    node_ttl_secs: float = Field(default=10.0, gt=0)
    # Redis commands waiting to be sent; beyond this, remote deliveries are dropped.
    max_pending: int = Field(default=10000, ge=100)

    @model_validator(mode="after")
    def _ttl_outlives_heartbeats(self) -> RedisSettings:
        if self.node_ttl_secs < 2 * self.heartbeat_secs:
            raise ValueError("NODE_TTL_SECS must be at least twice HEARTBEAT_SECS")
        return self


class MediasoupSettings(BaseModel):
    num_workers: int = Field(default=2, ge=1, le=64)
    listen_ip: str = "0.0.0.0"
    announced_ip: str | None = None
    rtc_min_port: int = Field(default=40000, ge=1024, le=65535)
    rtc_max_port: int = Field(default=49999, ge=1024, le=65535)
    # A worker carrying this many consumers takes no more participants of a room: the
    # room spreads to another worker, its producers piped between them (conference/placement.py).
    room_spread_consumers: int = Field(default=600, ge=1)
    # Cluster mode: a participant's transports are made on the node their WebSocket is on
    # and the room's routers on the nodes are piped to each other (cluster/remote_workers.py);
    # off, every participant's media goes to the node hosting the room.
    rooms_across_nodes: bool = True
    # Where pipe transports toward another node listen, and the address the other node
    # sends to when that one is not reachable as such.
    pipe_listen_ip: str = "127.0.0.1"
    pipe_announced_ip: str | None = None

    @model_validator(mode="after")
    def _port_range(self) -> MediasoupSettings:
        if self.rtc_min_port > self.rtc_max_port:
            raise ValueError("RTC_MIN_PORT must not be greater than RTC_MAX_PORT")
        return self


class TurnSettings(BaseModel):
    url: str | None = None
    username: str | None = None
    password: str | None = None
    secret: str | None = None


class ConferenceSettings(BaseModel):
    # A participant whose last connection in a conference closed is kept this long for a
    # rejoin (the same participant to the others); after it, its record is marked left.
    rejoin_grace_secs: float = Field(default=30.0, gt=0)
    # An in-progress conference with nobody present this long ends itself.
    empty_end_secs: float = Field(default=300.0, gt=0)
    # How often each participant's network quality is read and told (`media:score`,
    # conference/quality.py says why 2 s).
    score_interval_secs: float = Field(default=2.0, gt=0)
    # Last N: how many cameras the web client receives at once (those of the most recent
    # speakers), besides pinned tiles and screen shares; told in media:transport_created.
    video_last_n: int = Field(default=9, ge=0)


class TypingSettings(BaseModel):
    timeout_secs: float = Field(default=8.0, gt=0)


class FilesSettings(BaseModel):
    """Uploads (issue 18 item 6) and where stored files live (files/storage.py)."""

    # `local`: a directory (`dir`, default `<data_dir>/files`), for one node or nodes that
    # share it; `database`: the server's database, which every node of a cluster reaches.
    storage: Literal["local", "database"] = "local"
    dir: Path | None = None
    # The largest upload; beyond it, 413.
    max_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    # The longer side of an image's thumbnail, in pixels.
    thumbnail_px: int = Field(default=360, ge=16, le=2048)
    # Images with more pixels than this get no thumbnail (decompression bombs).
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    # An upload no message has named after this long is removed (files/uploads.py), checked
    # every `sweep_interval_secs`.
    unattached_ttl_secs: float = Field(default=24 * 3600, gt=0)
    sweep_interval_secs: float = Field(default=3600, gt=0)

    @field_validator("storage", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class WsSettings(BaseModel):
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    send_queue_frames: int = Field(default=1024, ge=1)
    rate_per_sec: float = Field(default=50.0, gt=0)
    rate_burst: int = Field(default=100, ge=1)
    flood_close_secs: float = Field(default=10.0, gt=0)
    ping_interval_secs: float = Field(default=25.0, gt=0)
    # A peer whose Pong has not come this long after a Ping is dropped (two intervals).
    ping_timeout_secs: float = Field(default=50.0, gt=0)
    # permessage-deflate (RFC 7692). Off by default: a compressing connection holds zlib
    # state, measured at 80 KB RSS per connection with it against 40 KB without, for
    # frames that are mostly small JSON.
    per_message_deflate: bool = False
    # Presence and call-participant events to a connection wait at most this long and go
    # out together in one `batch` frame (docs/protocol.md); 0 writes each at once.
    batch_ms: float = Field(default=50.0, ge=0, le=1000)


class MetricsSettings(BaseModel):
    # `GET /metrics` in Prometheus's text format; off: 404.
    enabled: bool = False
    # When set, a scrape must send `Authorization: Bearer <token>`.
    token: str | None = Field(default=None, min_length=16)


class LogSettings(BaseModel):
    # `text`: one line per record for people; `json`: one JSON object per line for machines.
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    app: AppSettings = Field(default_factory=AppSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    jwt: JwtSettings = Field(default_factory=JwtSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    mediasoup: MediasoupSettings = Field(default_factory=MediasoupSettings)
    turn: TurnSettings = Field(default_factory=TurnSettings)
    conference: ConferenceSettings = Field(default_factory=ConferenceSettings)
    typing: TypingSettings = Field(default_factory=TypingSettings)
    ws: WsSettings = Field(default_factory=WsSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @cached_property
    def jwt_secret(self) -> str:
        """The configured secret, else one generated once and kept in the data directory."""
        if self.jwt.secret:
            return self.jwt.secret
        return load_or_create_secret(self.app.data_dir / "jwt_secret")

    @property
    def files_dir(self) -> Path:
        return self.files.dir or self.app.data_dir / "files"


def load_or_create_secret(path: Path) -> str:
    """Read the secret at `path`, creating it (mode 0600) so tokens survive restarts."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its secret
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


class ConfigError(Exception):
    """A configuration value is invalid; the message is one line naming the key."""


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into a one-line `ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    parts = [str(p) for p in first["loc"] if not isinstance(p, int)]
    key = ENV_PREFIX + "__".join(p.upper() for p in parts) if parts else "configuration"
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid configuration: {key}: {message}{more}"
