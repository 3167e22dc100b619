"""A Faust agent that answers the requests of one topic (see hub_stream.platform.request_reply)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

import faust

from hub_stream.platform.faust_app import HubApp
from hub_stream.platform.request_reply import Handler, Reply, Request, answer, decode_request

logger = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


async def ping(request: Request) -> Reply:
    """Proves the path: the reply names the worker and partition that answered."""
    return Reply(200, {"worker": WORKER_ID, "partition": request.partition})


async def _unknown_kind(request: Request) -> Reply:
    return Reply(400, {"error": "unknown_request", "message": f"No handler for {request.kind!r}."})


def request_agent(
    app: HubApp,
    topic: faust.TopicT,
    replies: faust.TopicT,
    handlers: Mapping[str, Handler],
    *,
    name: str,
) -> Any:
    """Register an agent that dispatches each request of ``topic`` by its kind."""
    table = {"ping": ping, **handlers}

    async def send_reply(request: Request, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        # force=True: send now, not when the request's offset is committed.
        await replies.send(
            key=(request.reply_to or "").encode(),
            value=value,
            partition=request.reply_partition,
            headers=headers,
            force=True,
        )

    async def serve(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            try:
                request = decode_request(
                    event.key,
                    event.value,
                    message.headers,
                    partition=message.partition,
                    offset=message.offset,
                )
            except ValueError as exc:
                logger.warning(
                    "skipping malformed request on %s[%d]@%d: %s",
                    message.topic,
                    message.partition,
                    message.offset,
                    exc,
                )
                continue
            await answer(request, table.get(request.kind, _unknown_kind), send_reply)

    return app.agent(topic, name=name)(serve)
