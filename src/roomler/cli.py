"""`roomler serve` and `roomler migrate`."""

from __future__ import annotations

import argparse
import sys

from roomler.config import ConfigError, Settings, load_settings
from roomler.logs import configure_logging

EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="roomler", description="Roomler collaboration server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="apply pending migrations, then serve")
    serve.add_argument("--host", help="bind address (default from ROOMLER__APP__HOST)")
    serve.add_argument("--port", type=int, help="port (default from ROOMLER__APP__PORT)")
    commands.add_parser("migrate", help="apply pending database migrations")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"roomler: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log.format, settings.log.level)
    if args.command == "migrate":
        migrate(settings)
        return 0
    return serve_forever(settings, args.host, args.port)


def migrate(settings: Settings) -> None:
    from roomler.db.migrate import upgrade

    upgrade(settings.database.url)


def serve_forever(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    from roomler.app import create_app
    from roomler.realtime.keepalive import uvicorn_websocket_options

    migrate(settings)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.app.host,
        port=port or settings.app.port,
        log_config=None,  # roomler.logs configured every logger, uvicorn's included
        access_log=False,  # replaced by roomler.access, with durations (api/accesslog.py)
        # Pings every ROOMLER__WS__PING_INTERVAL_SECS, frame size limit: see realtime/keepalive.py
        **uvicorn_websocket_options(settings.ws),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
