"""Prometheus metrics of the hub, one registry per process.

The API serves its process's metrics at GET /metrics; a worker serves its own
on HUB_WORKER_METRICS_PORT (0: off) — each process is scraped on its own.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

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
SYNCS = Counter("hub_syncs_total", "Syncs by outcome (ok, failed; resumed: taken over after a worker stopped).", ["outcome"], registry=REGISTRY)
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
LB_ERRORS = Counter("hub_lb_errors_total", "CreateBatch failures by status.", ["status"], registry=REGISTRY)
CONSUMER_LAG = Gauge(
    "hub_consumer_lag", "Records behind the log end, per topic partition.", ["topic", "partition"], registry=REGISTRY
)
