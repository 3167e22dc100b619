"""The Faust app: settings from HubSettings only, topics declared with their counts.

Two deliberate departures from Faust's defaults:
- Faust is given an empty environment (``env={}``): otherwise an unprefixed
  ``BROKER_URL`` in the environment overrides the broker we pass.
- Faust hard-codes ``fetch_max_wait_ms=1500`` for its consumers. Tansu waits
  that long on every Fetch, so every hop would cost ~0.75 s. The consumer
  thread below sets the wait from ``HUB_FETCH_MAX_WAIT_MS`` instead; Apache
  Kafka answers a long poll as soon as data arrives, so it is harmless there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from hub_stream.platform import kafka_fetch, kafka_metadata
from hub_stream.platform import topics as topic_specs
from hub_stream.platform.idempotence import supports_idempotence
from hub_stream.platform.offsets import log_ends, merge_reported
from hub_stream.platform.settings import HubSettings

logger = logging.getLogger(__name__)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.app.hub_settings.fetch_max_wait_ms
        return consumer

    async def _highwaters(self, partitions: Any) -> Any:
        # Table recovery reads each changelog up to these offsets: they must
        # be the true log ends, which Tansu's ListOffsets is not (offsets.py).
        reported = await super()._highwaters(partitions)
        if self.consumer.in_transaction or not reported:
            return reported
        true_ends = await log_ends(self.app.hub_settings.kafka_bootstrap or "", list(reported))
        return merge_reported(reported, true_ends)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Producer(faust_aiokafka.Producer):
    """Faust's producer, idempotent where the broker supports it (hub_stream/platform/idempotence.py)."""

    _idempotent = False

    def _settings_extra(self) -> Mapping[str, Any]:
        extra = dict(super()._settings_extra())
        if self._idempotent:
            extra.update(acks="all", enable_idempotence=True)
        return extra

    async def on_start(self) -> None:
        self._idempotent = await supports_idempotence(self.app.hub_settings.kafka_bootstrap or "")
        await super().on_start()


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class HubApp(faust.App):
    """faust.App carrying the hub's settings and the short-wait consumer."""

    hub_settings: HubSettings

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def create_faust_app(settings: HubSettings) -> HubApp:
    """A Faust app configured from ``settings`` alone, with every topic declared."""
    if not settings.kafka_bootstrap:
        raise ValueError("HUB_KAFKA_BOOTSTRAP is not set (or run `hub dev` for the embedded broker)")
    kafka_metadata.install()  # every aiokafka client of the worker, the intake's too
    kafka_fetch.install(settings.prefetch_backoff_ms / 1000)
    brokers = ";".join(f"kafka://{hp.strip()}" for hp in settings.kafka_bootstrap.split(","))
    store = "memory://" if settings.table_store == "memory" else "rocksdb://"
    app = HubApp(
        settings.app_id,
        env={},
        broker=brokers,
        store=store,
        datadir=str(settings.data_dir / "worker"),
        autodiscover=False,
        web_enabled=False,
        processing_guarantee="at_least_once",
        topic_replication_factor=settings.replication_factor,
        topic_partitions=settings.subscriber_partitions,
        topic_allow_declare=False,  # ensure_topics creates them, with their final counts
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_request_timeout=settings.broker_request_timeout_s,
        broker_commit_interval=1.0,
        table_cleanup_interval=3600.0,
        # Standbys replay the changelog of partitions a worker does not own;
        # recovery after a restart reads the changelog instead.
        table_standby_replicas=0,
    )
    app.hub_settings = settings
    return app


def raw_topic(app: HubApp, name: str, partitions: int) -> faust.TopicT:
    """A topic of raw bytes: the hub parses and validates values itself."""
    return app.topic(
        name,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )


class HubTopics:
    """The hub's topics as Faust topic objects of one app."""

    def __init__(self, app: HubApp) -> None:
        s = app.hub_settings
        self.events = raw_topic(app, s.topic("events"), s.events_partitions)
        self.incoming = raw_topic(app, s.topic("events.incoming"), s.events_partitions)
        self.rejected = raw_topic(app, s.topic("events.rejected"), s.rejected_partitions)
        self.subscription_commands = raw_topic(
            app, s.topic("subscriptions.commands"), s.subscriber_partitions
        )
        self.sync_requests = raw_topic(app, s.topic("sync.requests"), s.subscriber_partitions)
        self.replies = raw_topic(app, s.topic("replies"), s.replies_partitions)


def table(app: HubApp, name: str, *, partitions: int, default: Any = None) -> faust.Table:
    """A Faust table whose changelog is the compacted topic ensure_topics made."""
    spec = topic_specs.table_topics(app.hub_settings)[name]
    assert spec.partitions == partitions, (name, spec.partitions, partitions)
    return app.Table(
        name,
        default=default,
        partitions=partitions,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
        help=f"{name} (changelog {spec.name})",
    )
