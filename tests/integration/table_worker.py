"""A worker with one table, for the table-recovery test (run as a script).

It uses the hub's own Faust app factory (short fetch wait, session timeouts,
request/reply serving), with a test topic and a test table, so what it
proves holds for the hub's tables.

Requests on "{prefix}.tabletest": kind "put" {"k", "v"} writes table[k] = v;
kind "dump" answers the whole local table.
"""

from __future__ import annotations

import logging

import faust

from agents.request_agent import request_agent
from hub_stream.platform.faust_app import HubTopics, create_faust_app, raw_topic
from hub_stream.platform.logs import setup_logging
from hub_stream.platform.request_reply import Reply, Request
from hub_stream.platform.settings import HubSettings

TABLE = "tabletest"


def main() -> None:
    settings = HubSettings()
    setup_logging(settings.log_level)
    # The test prints this log when a restart does not recover: show Faust's
    # recovery steps, which the hub's own logging keeps quiet.
    logging.getLogger("faust.tables").setLevel(logging.INFO)
    app = create_faust_app(settings)
    topics = HubTopics(app)
    requests = raw_topic(app, settings.topic("tabletest"), 1)
    table = app.Table(
        TABLE,
        default=None,
        partitions=1,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
    )

    async def put(request: Request) -> Reply:
        table[request.body["k"]] = request.body["v"]
        return Reply(200, {})

    async def dump(request: Request) -> Reply:
        return Reply(200, dict(table.items()))

    request_agent(app, requests, topics.replies, {"put": put, "dump": dump}, name="tabletest")
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False, override_logging=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
