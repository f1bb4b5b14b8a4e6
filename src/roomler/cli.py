"""`roomler serve`, `roomler migrate`, and the administration commands (roomler.admin)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import Any

from roomler.config import ConfigError, Settings, load_settings
from roomler.logs import configure_logging

EXIT_FAILED = 1
EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="roomler", description="Roomler collaboration server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="apply pending migrations, then serve")
    serve.add_argument("--host", help="bind address (default from ROOMLER__APP__HOST)")
    serve.add_argument("--port", type=int, help="port (default from ROOMLER__APP__PORT)")
    commands.add_parser("migrate", help="apply pending database migrations")
    add_admin_commands(commands)
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"roomler: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    serving = args.command in ("serve", "migrate")
    # An administration command prints its result; the migrations' INFO lines are noise there.
    configure_logging(settings.log.format, settings.log.level if serving else "WARNING")
    if args.command == "migrate":
        migrate(settings)
        return 0
    if args.command == "serve":
        return serve_forever(settings, args.host, args.port)
    return run_admin_command(args, settings)


def add_admin_commands(commands: Any) -> None:
    user = commands.add_parser("user", help="create users, set passwords and workspace admins")
    actions = user.add_subparsers(dest="action", required=True)
    create = actions.add_parser(
        "create", help="create a user; the password is read from the terminal or stdin"
    )
    create.add_argument("username")
    create.add_argument("--email", required=True)
    create.add_argument("--display-name", help="default: the username")
    password = actions.add_parser(
        "set-password", help="set a user's password (read from the terminal or stdin)"
    )
    password.add_argument("username")
    admin = actions.add_parser("set-admin", help="make a user an admin of a workspace")
    admin.add_argument("username")
    admin.add_argument("--tenant", required=True, help="the workspace's slug")
    admin.add_argument("--revoke", action="store_true", help="make them a plain member again")
    backup = commands.add_parser(
        "backup", help="copy the SQLite database (online) and the JWT secret into DIR"
    )
    backup.add_argument("directory", type=Path)
    restore = commands.add_parser(
        "restore", help="put a backup back into the configured database and data directory"
    )
    restore.add_argument("directory", type=Path)
    restore.add_argument("--force", action="store_true", help="replace an existing database")


def run_admin_command(args: argparse.Namespace, settings: Settings) -> int:
    from roomler import admin

    try:
        if args.command == "backup":
            manifest = admin.backup(settings, args.directory)
            print(f"backed up to {args.directory} ({', '.join(sorted(_files(manifest)))})")
        elif args.command == "restore":
            database = admin.restore(settings, args.directory, args.force)
            migrate(settings)  # a backup of an older version: bring it up to this code's schema
            print(f"restored {database}")
        else:
            migrate(settings)  # a fresh install: `roomler user create` comes first
            print(asyncio.run(run_user_command(args, settings)))
    except admin.AdminError as exc:
        print(f"roomler: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


async def run_user_command(args: argparse.Namespace, settings: Settings) -> str:
    from roomler import admin

    if args.action == "create":
        display_name = args.display_name or args.username
        user_id = await admin.create_user(
            settings, args.username, args.email, display_name, read_password(confirm=True)
        )
        return f"created user {args.username} ({user_id})"
    if args.action == "set-password":
        await admin.set_password(settings, args.username, read_password(confirm=True))
        return f"password of {args.username} changed"
    role = await admin.set_admin(settings, args.username, args.tenant, not args.revoke)
    return f"{args.username} is now {role} of {args.tenant}"


def read_password(confirm: bool) -> str:
    """From the terminal without echo (twice), else the first line of standard input."""
    from roomler.admin import AdminError

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != password:
        raise AdminError("the two passwords differ")
    return password


def _files(manifest: dict[str, Any]) -> list[str]:
    return [name for key in ("database", "jwt_secret") if (name := manifest.get(key))]


def migrate(settings: Settings) -> None:
    from roomler.db.migrate import upgrade

    upgrade(settings.database.url)


def serve_forever(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    from roomler.app import create_app
    from roomler.realtime.keepalive import uvicorn_websocket_options
    from roomler.shutdown import GracefulServer

    migrate(settings)
    app = create_app(settings, owns_process=True)
    config = uvicorn.Config(
        app,
        host=host or settings.app.host,
        port=port or settings.app.port,
        log_config=None,  # roomler.logs configured every logger, uvicorn's included
        access_log=False,  # replaced by roomler.access, with durations (api/accesslog.py)
        # X-Forwarded-For / -Proto only from the configured proxies (none by default).
        proxy_headers=bool(settings.app.forwarded_allow_ips),
        forwarded_allow_ips=settings.app.forwarded_allow_ips or None,
        # Pings every ROOMLER__WS__PING_INTERVAL_SECS, frame size limit: see realtime/keepalive.py
        **uvicorn_websocket_options(settings.ws),
    )
    # SIGTERM drains the node first, and the whole stop is bounded (roomler/shutdown.py).
    server = GracefulServer(
        config, app.drain, settings.app.shutdown_timeout_secs, on_signal=app.draining
    )
    try:
        server.run()
    finally:
        server.cancel_watchdog()
    if server.should_exit:
        # Stopped by a signal with everything closed (listeners, WebSockets, the database
        # pool, the cluster link, the SFU workers): exit now. The interpreter's own
        # finalization was seen to hang for over 20 s in C code (faulthandler: one thread,
        # no Python frame) after calls on a loaded machine, past any shutdown bound.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
