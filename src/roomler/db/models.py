"""The relational schema. Alembic migrations in `migrations/versions` create it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from roomler.ids import new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def id_column() -> Mapped[str]:
    return mapped_column(String(24), primary_key=True, default=new_id)


def created_column() -> Mapped[datetime]:
    return mapped_column(UtcDateTime(), default=utcnow, nullable=False)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = id_column()
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    username: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(100), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    # A URL the user gave, or None; an uploaded picture is `avatar_key` instead (its
    # storage key, files/storage.py) and served by api/avatars.py.
    avatar: Mapped[str | None] = mapped_column(String(2048))
    avatar_key: Mapped[str | None] = mapped_column(String(128))
    # An IANA time zone name (`Europe/Paris`), or None when the user has not said.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # The presence the user chose (online|idle|dnd|invisible); survives reconnects.
    presence: Mapped[str] = mapped_column(String(16), nullable=False, default="online")
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    slug: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = created_column()


class TenantMember(Base):
    __tablename__ = "tenant_members"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="member")
    joined_at: Mapped[datetime] = created_column()


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (
        # A path is unique among the tenant's live channels; deleted ones free their path.
        Index(
            "uq_channels_tenant_path_live",
            "tenant_id",
            "path",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
    )
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("channels.id"))
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    path: Mapped[str] = mapped_column(String(1024), nullable=False)
    channel_type: Mapped[str] = mapped_column(String(16), nullable=False, default="text")
    is_private: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    purpose: Mapped[str | None] = mapped_column(String(1000))
    member_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Archived: read-only (history, search and files stay readable; nothing new is
    # written), until unarchived. None for a channel in use.
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ChannelMember(Base):
    __tablename__ = "channel_members"
    __table_args__ = (UniqueConstraint("channel_id", "user_id"),)

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
    )
    channel_id: Mapped[str] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    joined_at: Mapped[datetime] = created_column()
    # The read marker: the newest top-level message the member has read, and when it was
    # posted (what is compared; kept if that message is deleted). Unset, the member has
    # read everything posted before joined_at.
    last_read_message_id: Mapped[str | None] = mapped_column(String(24))
    last_read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Muted: the channel's messages make no notification for this member, except one
    # naming them as @username.
    muted: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_channel_created", "channel_id", "created_at", "id"),
        # A tenant's newest messages: search walks it for a frequent word (search/index.py).
        Index("ix_messages_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    channel_id: Mapped[str] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), nullable=False
    )
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    message_type: Mapped[str] = mapped_column(String(16), nullable=False, default="default")
    thread_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"), index=True)
    referenced_message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    is_edited: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_pinned: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # A top-level message's thread: live replies and when the newest of them was posted.
    reply_count: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    last_reply_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Who pinned it and when, while it is pinned.
    pinned_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    pinned_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    nonce: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class MessageReaction(Base):
    """One user's unicode emoji on a message; a user gives each emoji to a message once."""

    __tablename__ = "message_reactions"
    __table_args__ = (UniqueConstraint("message_id", "user_id", "emoji"),)

    id: Mapped[str] = id_column()
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    emoji: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = created_column()


class ThreadFollower(Base):
    """A user told of new replies in the thread of a top-level message."""

    __tablename__ = "thread_followers"
    __table_args__ = (UniqueConstraint("message_id", "user_id"),)

    id: Mapped[str] = id_column()
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = created_column()


class Notification(Base):
    """A message that asks for one user's attention: it names them (`mention`), the whole
    channel (`channel`, `here`), or was sent to them in a direct conversation (`direct`).
    Unread while `read_at` is unset."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("message_id", "user_id"),
        Index("ix_notifications_user_tenant_created", "user_id", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    channel_id: Mapped[str] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), nullable=False
    )
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), nullable=False
    )
    actor_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = created_column()
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Conference(Base):
    """A video meeting in a tenant, optionally announced in a channel."""

    __tablename__ = "conferences"
    __table_args__ = (Index("ix_conferences_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    channel_id: Mapped[str | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL"), index=True
    )
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    # instant | scheduled
    conference_type: Mapped[str] = mapped_column(String(16), nullable=False, default="instant")
    # scheduled | in_progress | ended
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="scheduled")
    # "ddd-ddd-ddd", unique across all tenants.
    meeting_code: Mapped[str] = mapped_column(String(11), unique=True, nullable=False)
    organizer_id: Mapped[str] = mapped_column(ForeignKey("users.id"), nullable=False)
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = created_column()


class ConferenceParticipant(Base):
    """One stay of a user in a conference: joined_at until left_at."""

    __tablename__ = "conference_participants"
    __table_args__ = (
        # At most one open record per user and conference, even under concurrent joins.
        Index(
            "uq_conference_participants_present",
            "conference_id",
            "user_id",
            unique=True,
            sqlite_where=text("is_present"),
            postgresql_where=text("is_present"),
        ),
    )

    id: Mapped[str] = id_column()
    conference_id: Mapped[str] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    joined_at: Mapped[datetime] = created_column()
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    is_present: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class Recording(Base):
    """One recorded producer of a conference (conference/recording.py): a WebM file in the
    file storage under its id. A recording run (`run_id`) of N producers makes N rows;
    `offset_ms` places each file on the run's timeline."""

    __tablename__ = "recordings"

    id: Mapped[str] = id_column()
    conference_id: Mapped[str] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), nullable=False, index=True
    )
    run_id: Mapped[str] = mapped_column(String(32), nullable=False)
    started_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Whose camera, microphone or screen it is.
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    producer_id: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    content_type: Mapped[str] = mapped_column(String(32), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    frames: Mapped[int] = mapped_column(Integer, nullable=False)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    offset_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = created_column()


class RefreshToken(Base):
    """A refresh token issued (its JWT `jti`). The tokens of one sign-in form a family:
    each refresh marks its token used and issues the next one in the family; a used or
    revoked token presented again revokes the whole family (RFC 6819 section 5.2.2.3,
    OAuth 2.0 Security BCP, RFC 9700 section 4.14.2)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = id_column()
    family_id: Mapped[str] = mapped_column(String(24), nullable=False, index=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    # Exchanged for its successor; presenting it again is reuse.
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Logged out, or its family was revoked on reuse.
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Invitation(Base):
    """An invite link into a tenant: signs a new user up into it, or lets a user join it.

    Valid while not revoked, not expired and (with `max_uses`) not used up; `uses` is
    incremented by the redemption itself, so two redemptions cannot both take the last use.
    """

    __tablename__ = "invitations"

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
    )
    code: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_by: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class StoredFile(Base):
    """A file uploaded into a channel; attached to at most one message (`message_id`, set
    when the message is posted). Its bytes are in the file storage (files/storage.py) under
    its id, an image's thumbnail under `<id>.thumb`."""

    __tablename__ = "files"

    id: Mapped[str] = id_column()
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    channel_id: Mapped[str] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), nullable=False, index=True
    )
    uploader_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    message_id: Mapped[str | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(127), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    # Set for an image Pillow could read: shown inline, with a thumbnail.
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    thumbnail_type: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_column()


class FileChunk(Base):
    """A piece of an object in the database file storage (files/storage.py)."""

    __tablename__ = "file_chunks"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
