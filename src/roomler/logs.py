"""Logging: text or JSON lines on stderr, what a line is about, and no secrets in any of it.

- `configure_logging` installs one stderr handler on the root logger, so every logger's
  records (ours, uvicorn's access and error logs, SQLAlchemy's, Alembic's) pass through
  the same formatter. Both formatters redact the finished text, tracebacks included.
- `redact` removes credentials wherever they appear: query parameters whose *decoded* name
  is a credential (`/ws?%74oken=…` is `token` to the server, so it is to us too), the
  password of a URL's userinfo, and anything shaped like a JWT (RFC 7519 compact form).
- `log_context` / `bind_log_context` / `annotate_log_context` carry the request id, user
  id, connection id and conference id of the work in progress, so a line says what it is
  about without every call passing them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

LogFormat = Literal["text", "json"]
REDACTED = "[redacted]"

# Query parameters (by decoded, lower-cased name) whose values are never logged.
SECRET_PARAMETERS = frozenset({"token", "access_token", "refresh_token", "password", "secret"})
# A query string: after '?', up to whitespace, a quote or the end (access-log paths, URLs).
_QUERY = re.compile(r"\?([^\s\"'<>]*)")
# scheme://user:password@host (RFC 3986 section 3.2.1 userinfo).
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@")
# Base64url JOSE header starting '{"' (eyJ), then payload and signature: RFC 7519 section 3.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    """`text` with query credentials, URL passwords and JWT-shaped strings replaced."""
    text = _QUERY.sub(_redact_query, text)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    return _JWT.sub(REDACTED, text)


def _redact_query(match: re.Match[str]) -> str:
    fields = match.group(1).split("&")
    return "?" + "&".join(_redact_field(field) for field in fields)


def _redact_field(field: str) -> str:
    """`name=value` with the value hidden when the name decodes to a credential's name."""
    name, equals, _value = field.partition("=")
    if equals and unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
        return f"{name}={REDACTED}"
    return field


# --- what a line is about -----------------------------------------------------------------


@dataclass
class LogContext:
    request_id: str | None = None
    user_id: str | None = None
    connection_id: str | None = None
    conference_id: str | None = None

    def fields(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value is not None}


_current: ContextVar[LogContext | None] = ContextVar("roomler_log_context", default=None)


@contextmanager
def log_context(**fields: str | None) -> Iterator[LogContext]:
    """Within the block, log lines also carry `fields` (on top of the enclosing ones)."""
    token = _current.set(_derived(fields))
    try:
        yield _current.get()  # type: ignore[misc]
    finally:
        _current.reset(token)


def bind_log_context(**fields: str | None) -> None:
    """For the rest of the current task (a WebSocket connection's), lines carry `fields`."""
    _current.set(_derived(fields))


def annotate_log_context(**fields: str | None) -> None:
    """Fill in what became known inside the block (the user, once a token was checked).

    The enclosing `log_context` object is changed in place, so code that opened it (the
    access log) sees the value too.
    """
    current = _current.get()
    if current is not None:
        for key, value in fields.items():
            setattr(current, key, value)


def _derived(fields: dict[str, str | None]) -> LogContext:
    parent = _current.get()
    return replace(parent, **fields) if parent is not None else LogContext(**fields)


def current_log_fields() -> dict[str, str]:
    current = _current.get()
    return current.fields() if current is not None else {}


# --- formatting -------------------------------------------------------------------------------

# LogRecord's own attributes; anything else on a record came from `extra=` and is logged.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [key=value ...]`, redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        about = {**current_log_fields(), **_context_extras(record)}
        if about:
            head, newline, rest = line.partition("\n")  # after the message, before a traceback
            tags = " ".join(f"{key}={value}" for key, value in about.items())
            line = f"{head} [{tags}]{newline}{rest}"
        return redact(line)


def _context_extras(record: logging.LogRecord) -> dict[str, str]:
    names = LogContext.__dataclass_fields__
    return {k: str(v) for k, v in extra_fields(record).items() if k in names and v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context, `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **current_log_fields(),
        }
        entry.update({k: v for k, v in extra_fields(record).items() if v is not None})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(_redacted(entry), default=str, ensure_ascii=False)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def configure_logging(log_format: LogFormat = "text", level: str = "INFO") -> None:
    """Every record goes to stderr through one formatter that redacts (see module doc)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's loggers then reach the root handler rather than their own.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    install_token_redaction()


class TokenRedactingFilter(logging.Filter):
    """Redacts a record's message and arguments before any handler sees it.

    `configure_logging`'s formatters already redact their output; this filter also covers
    handlers someone else attached (a test's capture, an embedding application's).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            if isinstance(record.args, dict):
                record.args = {k: _redact_arg(v) for k, v in record.args.items()}
            else:
                record.args = tuple(_redact_arg(a) for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def _redact_arg(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def install_token_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
            logger.addFilter(TokenRedactingFilter())
