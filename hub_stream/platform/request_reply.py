"""Request/reply between API processes and workers, over Kafka topics.

The API never reads Faust tables: it puts a request on the topic of the
owning agent, keyed by the subscriber (or publisher), and awaits the reply.
Reads and writes of one key go through one partition, so a read after a
write sees it.

Wire format (kept here, in one place, so the mechanism can be swapped):
- request value: JSON ``{"kind": str, "id": str, "body": {...}}``; ``id`` is
  the command id that makes redelivered commands idempotent.
- request headers: ``hub-reply-to`` (client id), ``hub-reply-partition``
  (partition of the replies topic the client reads), ``hub-correlation-id``;
  ``hub-request-id``: the X-Request-ID of the HTTP request it serves, so the
  worker's lines about it (a sync's) carry the same request_id.
  A record without them (a plain producer's) gets no reply.
- reply value: JSON ``{"status": int, "body": ...}`` on the replies topic,
  with the same ``hub-correlation-id`` and ``hub-reply-to`` headers.

The client side is plain aiokafka, not a Faust client app: Faust's client
mode is slow to start and hangs on stop (BROKER-FACTS.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from hub_stream.platform import kafka_fetch, kafka_metadata, safe_json
from hub_stream.platform.idempotence import supports_idempotence
from hub_stream.platform.logs import request_id_var
from hub_stream.platform.outages import BROKER, OUTAGES, DependencyUnavailable, time_left
from hub_stream.platform.settings import HubSettings

logger = logging.getLogger(__name__)

H_REPLY_TO = "hub-reply-to"
H_REPLY_PARTITION = "hub-reply-partition"
H_CORRELATION = "hub-correlation-id"
H_REQUEST_ID = "hub-request-id"


class RpcTimeout(TimeoutError):
    """No worker answered within the timeout."""


@dataclass(frozen=True)
class Request:
    """One request as a worker sees it."""

    kind: str
    key: str
    body: dict[str, Any]
    command_id: str
    reply_to: str | None = None
    reply_partition: int | None = None
    correlation_id: str | None = None
    partition: int | None = None
    offset: int | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def encode_request(kind: str, body: Mapping[str, Any], command_id: str) -> bytes:
    return json.dumps({"kind": kind, "id": command_id, "body": body}).encode()


def _headers_dict(headers: Any) -> dict[str, str]:
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for k, v in items:
        if isinstance(v, bytes | bytearray):
            v = bytes(v).decode("utf-8", "replace")
        out[str(k)] = str(v)
    return out


def decode_request(
    key: bytes | None,
    value: bytes | None,
    headers: Any,
    *,
    partition: int | None = None,
    offset: int | None = None,
) -> Request:
    """Parse a request record; raises ValueError on a malformed one."""
    h = _headers_dict(headers)
    try:
        doc = safe_json.loads(value or b"")
    except safe_json.JsonRefused as exc:
        raise ValueError(f"request is not JSON the hub accepts: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        raise ValueError("request has no 'kind'")
    body = doc.get("body") or {}
    if not isinstance(body, dict):
        raise ValueError("request 'body' is not an object")
    reply_partition = h.get(H_REPLY_PARTITION)
    return Request(
        kind=doc["kind"],
        key=(key or b"").decode("utf-8", "replace"),
        body=body,
        command_id=str(doc.get("id") or h.get(H_CORRELATION) or ""),
        reply_to=h.get(H_REPLY_TO),
        reply_partition=int(reply_partition) if reply_partition is not None else None,
        correlation_id=h.get(H_CORRELATION),
        partition=partition,
        offset=offset,
        request_id=h.get(H_REQUEST_ID),
    )


def encode_reply(request: Request, reply: Reply) -> tuple[bytes, list[tuple[str, bytes]]]:
    value = json.dumps({"status": reply.status, "body": reply.body}).encode()
    headers = [
        (H_CORRELATION, (request.correlation_id or "").encode()),
        (H_REPLY_TO, (request.reply_to or "").encode()),
    ]
    return value, headers


Handler = Callable[[Request], Awaitable[Reply]]
SendReply = Callable[[Request, bytes, list[tuple[str, bytes]]], Awaitable[Any]]


async def answer(request: Request, handler: Handler, send_reply: SendReply) -> Reply:
    """Run ``handler`` for one request and send its reply, if a reply is wanted.

    An exception in the handler becomes a 500 reply and a log line: it must
    not kill the agent, which would commit and skip the record.
    """
    try:
        reply = await handler(request)
    except Exception:
        logger.exception(
            "handler for %r failed (partition %s, offset %s)",
            request.kind,
            request.partition,
            request.offset,
        )
        reply = Reply(500, {"error": "internal_error", "message": "The worker failed on this request."})
    if request.reply_to and request.reply_partition is not None:
        value, headers = encode_reply(request, reply)
        await send_reply(request, value, headers)
    return reply


class RpcClient:
    """Sends requests to worker topics and awaits their replies (plain aiokafka)."""

    def __init__(self, settings: HubSettings, *, client_id: str | None = None) -> None:
        assert settings.kafka_bootstrap, "HUB_KAFKA_BOOTSTRAP is not set"
        kafka_metadata.install()
        kafka_fetch.install(settings.prefetch_backoff_ms / 1000)
        self._settings = settings
        self.client_id = client_id or uuid.uuid4().hex
        self._replies = settings.topic("replies")
        self._partition = int(self.client_id[:8], 16) % settings.replies_partitions
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connector: asyncio.Task[None] | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        """The started producer, shared with callers that only publish."""
        assert self._producer is not None, "RpcClient is not started"
        return self._producer

    async def start(self, *, background: bool = False) -> None:
        """Connect to the broker; raises when it does not answer.

        ``background``: when the broker does not answer, return anyway and keep
        connecting in the background; until then ``request`` raises
        DependencyUnavailable (the API then answers 503 instead of not starting).
        """
        try:
            await self._connect()
        except (KafkaError, OSError) as exc:
            if not background:
                raise
            OUTAGES.failed(BROKER, f"{type(exc).__name__}: {exc}"[:300])
            self._connector = asyncio.create_task(self._keep_connecting(), name="rpc-connect")

    async def _connect(self) -> None:
        s = self._settings
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap,
            acks="all",
            linger_ms=0,
            client_id=f"hub-api-{self.client_id[:8]}",
            enable_idempotence=await supports_idempotence(s.kafka_bootstrap or ""),
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            client_id=f"hub-api-{self.client_id[:8]}",
        )
        try:
            await producer.start()
            await consumer.start()
            tp = TopicPartition(self._replies, self._partition)
            consumer.assign([tp])
            await consumer.seek_to_end(tp)
            # Resolve the position now, before any request goes out: a lazily
            # resolved "end" could land after a reply already written. On Tansu
            # the end answered may be short of the real end; older replies read
            # then carry unknown correlation ids and are ignored.
            await consumer.position(tp)
        except BaseException:
            await asyncio.gather(consumer.stop(), producer.stop(), return_exceptions=True)
            raise
        self._producer, self._consumer = producer, consumer
        self._reader = asyncio.create_task(self._read_replies(), name="rpc-replies")

    async def _keep_connecting(self) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except (KafkaError, OSError) as exc:
                OUTAGES.failed(BROKER, f"{type(exc).__name__}: {exc}"[:300])
                delay = min(delay * 2, 5.0)
                continue
            OUTAGES.recovered(BROKER)
            return

    async def stop(self) -> None:
        if self._connector:
            self._connector.cancel()
            await asyncio.gather(self._connector, return_exceptions=True)
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        if self._consumer:
            await self._consumer.stop()
        if self._producer:
            await self._producer.stop()

    def reading_replies(self) -> bool:
        """Whether the reply reader runs (connected, and its task not ended)."""
        return self._reader is not None and not self._reader.done()

    async def request(
        self,
        topic: str,
        key: str,
        kind: str,
        body: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        command_id: str | None = None,
        partition: int | None = None,
    ) -> Reply:
        """Send one request and wait for its reply, all within ``timeout``.

        Raises DependencyUnavailable when the broker does not take the request
        within the request timeout (it may still be delivered later), RpcTimeout
        when no reply comes in the rest of ``timeout``.
        ``partition`` overrides the key's partition: for requests every
        partition must answer (one per partition), not one subscriber.
        """
        if self._producer is None:
            raise DependencyUnavailable(BROKER, "not connected yet")
        loop = asyncio.get_running_loop()
        total = time_left(timeout or self._settings.request_timeout_s)
        give_up = loop.time() + total
        correlation = uuid.uuid4().hex
        fut: asyncio.Future[Reply] = loop.create_future()
        self._pending[correlation] = fut
        headers = [
            (H_REPLY_TO, self.client_id.encode()),
            (H_REPLY_PARTITION, str(self._partition).encode()),
            (H_CORRELATION, correlation.encode()),
        ]
        request_id = request_id_var.get()
        if request_id is not None:
            headers.append((H_REQUEST_ID, request_id.encode()))
        send_s = min(total, self._settings.request_timeout_s)
        try:
            try:
                await asyncio.wait_for(
                    self._producer.send_and_wait(
                        topic,
                        encode_request(kind, body or {}, command_id or correlation),
                        key=key.encode(),
                        headers=headers,
                        partition=partition,
                    ),
                    send_s,
                )
            except (TimeoutError, KafkaError) as exc:
                reason = f"the request was not acknowledged within {send_s:g} s" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
                raise DependencyUnavailable(BROKER, reason) from None
            OUTAGES.recovered(BROKER)
            try:
                return await asyncio.wait_for(fut, max(give_up - loop.time(), 0.001))
            except TimeoutError:
                raise RpcTimeout(f"no reply to {kind!r} on {topic} within the timeout") from None
        finally:
            self._pending.pop(correlation, None)

    async def _read_replies(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep reading; the outage log says why
                OUTAGES.failed(BROKER, f"reading replies failed: {type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                self._deliver(records)

    def _deliver(self, records: Sequence[Any]) -> None:
        for record in records:
            h = _headers_dict(record.headers)
            if h.get(H_REPLY_TO) != self.client_id:
                continue
            fut = self._pending.get(h.get(H_CORRELATION, ""))
            if fut is None or fut.done():
                continue
            try:
                doc = json.loads(record.value)
                fut.set_result(Reply(int(doc["status"]), doc.get("body")))
            except (ValueError, KeyError, TypeError) as exc:
                fut.set_exception(RuntimeError(f"malformed reply: {exc}"))
