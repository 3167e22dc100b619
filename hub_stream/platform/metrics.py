"""Prometheus metrics of the hub, one registry per process.

The API serves its process's metrics at GET /metrics; a worker serves its own
on HUB_WORKER_METRICS_PORT (0: off; `hub dev` and docker-compose.yml use
9100) — each process is scraped on its own. Both answer through
``exposition``: the same format for the same Accept header (docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes, ...

HTTP_REQUESTS = Counter(
    "hub_http_requests_total", "HTTP requests by route and status.", ["method", "route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "hub_http_request_seconds",
    "HTTP request latency by route.",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
EVENTS = Counter(
    "hub_events_total", "Published events by outcome (accepted, deduplicated, rejected).", ["outcome"], registry=REGISTRY
)
REJECTED_RECORDS = Counter(
    "hub_rejected_records_total",
    "Stream records the intake sent to hub.events.rejected, by hub-reject-reason.",
    ["reason"],
    registry=REGISTRY,
)
FORWARDED_RECORDS = Counter(
    "hub_forwarded_records_total",
    "Stream records the intake forwarded to their publisher's partition of hub.events.incoming.",
    registry=REGISTRY,
)
SYNCS = Counter("hub_syncs_total", "Syncs by outcome (ok, failed; resumed: taken over after a worker stopped).", ["outcome"], registry=REGISTRY)
SYNC_SECONDS = Histogram(
    "hub_sync_duration_seconds",
    "Wall time of one processEvents sync (every SyncEnabled subscription of one program), by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
    registry=REGISTRY,
)
SYNC_ROWS = Counter("hub_sync_rows_total", "Rows by outcome (imported, ignored, failed).", ["outcome"], registry=REGISTRY)
SYNC_BATCHES = Counter(
    "hub_sync_batches_total",
    "CreateBatch calls by outcome (accepted, failed; resent: sent again after an attempt without an answer).",
    ["outcome"],
    registry=REGISTRY,
)
LB_LATENCY = Histogram(
    "hub_lb_create_batch_seconds",
    "CreateBatch latency, retries included.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
LB_RESPONSES = Counter(
    "hub_lb_responses_total",
    "Answers of LearningBuilder to CreateBatch attempts (retries each count), by HTTP status; 'none': no answer.",
    ["status"],
    registry=REGISTRY,
)
LB_ERRORS = Counter("hub_lb_errors_total", "CreateBatch failures by status.", ["status"], registry=REGISTRY)
CONSUMER_LAG = Gauge(
    "hub_consumer_lag_records",
    "Records after the consumer group's position, per partition this worker consumes (table changelogs excluded).",
    ["topic", "partition"],
    registry=REGISTRY,
)


def exposition(accept_header: str | None) -> tuple[bytes, str]:
    """The body and Content-Type of a scrape, negotiated as prometheus_client's own server does."""
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(REGISTRY), content_type


@dataclass(frozen=True)
class SubscriptionHealth:
    """What an operator asks first about one subscription (agents/subscription_health.py fills it)."""

    pending_records: int | None  # records after its cursor in the publisher's partition (upper bound)
    last_success_unix: float | None  # when the last sync that delivered it without error finished
    last_status: str | None  # "ok", the error code of its last sync, or "interrupted"
    parked_events: int = 0  # parked for it (OnRenderError park), in its cursor


class SubscriptionHealthCollector(Collector):
    """hub_subscription_* gauges of the subscriptions this worker owns, from the last snapshot."""

    def __init__(self) -> None:
        self._rows: Mapping[tuple[str, str], SubscriptionHealth] = {}

    def replace(self, rows: Mapping[tuple[str, str], SubscriptionHealth]) -> None:
        self._rows = dict(rows)

    def collect(self) -> Iterator[Metric]:
        labels = ["program", "publisher"]
        pending = GaugeMetricFamily(
            "hub_subscription_pending_records",
            "Records in the publisher's hub.events partition after the subscription's cursor: an upper bound of"
            " its events pending delivery (other publishers share the partition); absent before its first sync.",
            labels=labels,
        )
        last_ok = GaugeMetricFamily(
            "hub_subscription_last_success_timestamp_seconds",
            "Unix time at which the last sync that delivered this subscription without error finished.",
            labels=labels,
        )
        since_ok = GaugeMetricFamily(
            "hub_subscription_seconds_since_last_success",
            "Seconds since the last sync that delivered this subscription without error finished.",
            labels=labels,
        )
        status = GaugeMetricFamily(
            "hub_subscription_last_sync_status",
            "1 for the outcome of the subscription's last sync: ok, an error code of processEvents, or interrupted.",
            labels=[*labels, "status"],
        )
        parked = GaugeMetricFamily(
            "hub_subscription_parked_events",
            "Events parked for the subscription (OnRenderError park) and not yet redelivered or dropped.",
            labels=labels,
        )
        now = time.time()
        for (program, publisher), row in sorted(self._rows.items()):
            parked.add_metric([program, publisher], row.parked_events)
            if row.pending_records is not None:
                pending.add_metric([program, publisher], row.pending_records)
            if row.last_success_unix is not None:
                last_ok.add_metric([program, publisher], row.last_success_unix)
                since_ok.add_metric([program, publisher], max(0.0, now - row.last_success_unix))
            if row.last_status is not None:
                status.add_metric([program, publisher, row.last_status], 1)
        yield from (pending, last_ok, since_ok, status, parked)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # labels and values change with every snapshot


SUBSCRIPTION_HEALTH = SubscriptionHealthCollector()
"""Registered on REGISTRY by the worker only (agents/subscription_health.py)."""

