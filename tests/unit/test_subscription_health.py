"""The per-subscription gauges: what a snapshot says, from tables, log ends and the sync ledger."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.subscription_health import LastSync, health_rows, statuses_of
from hub_stream.events.records import partition_for
from hub_stream.platform.metrics import SubscriptionHealthCollector
from hub_stream.subscriptions.records import SubscriberRecord, Subscription
from hub_stream.sync.cursors import ParkedEvent, SubscriberCursors, SyncCursor

T = "2026-11-20T10:00:00.000Z"
PARTITIONS = 8


def sub(publisher: str, *, enabled: bool = True) -> Subscription:
    return Subscription(publisher, f"id-{publisher}", T, T, sync_enabled=enabled)


def failed_answer() -> dict[str, object]:
    return {
        "Subscriptions": [
            {"PublisherProgramId": "A", "Status": "ok"},
            {"PublisherProgramId": "B", "Status": "failed", "Error": "LB said no"},
        ],
        "error": "lb_rejected",
        "details": {"Subscriptions": [{"PublisherProgramId": "B", "Error": "lb_rejected"}]},
    }


def test_statuses_name_the_error_code_of_each_failed_subscription() -> None:
    assert statuses_of(LastSync("failed", failed_answer())) == {"A": "ok", "B": "lb_rejected"}
    assert statuses_of(LastSync("interrupted", {"error": "sync_interrupted"})) == {"*": "interrupted"}


def test_rows_from_cursors_log_ends_and_ledger() -> None:
    record = SubscriberRecord({"A": sub("A"), "B": sub("B"), "C": sub("C", enabled=False)})
    cursors = SubscriberCursors().with_cursor("A", SyncCursor("id-A", next_offset=40))
    ends = {partition_for("A", PARTITIONS): 100}
    ok_at = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    rows = health_rows(
        {"SUB": record}, {"SUB": cursors}, ends, PARTITIONS, {"SUB": LastSync("failed", failed_answer())}, {("SUB", "A"): ok_at}
    )
    assert rows[("SUB", "A")].pending_records == 60
    assert rows[("SUB", "A")].last_success_unix == ok_at.timestamp()
    assert rows[("SUB", "A")].last_status == "ok"
    assert rows[("SUB", "B")].pending_records is None  # never synced: no cursor offset yet
    assert (rows[("SUB", "B")].last_status, rows[("SUB", "B")].last_success_unix) == ("lb_rejected", None)
    assert rows[("SUB", "C")].last_status is None  # not SyncEnabled: no sync touches it


def test_the_collector_exposes_parseable_gauges() -> None:
    collector = SubscriptionHealthCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    ok_at = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    record = SubscriberRecord({"A": sub("A")})
    cursors = SubscriberCursors().with_cursor("A", SyncCursor("id-A", next_offset=5))
    collector.replace(health_rows({"SUB": record}, {"SUB": cursors}, {partition_for("A", PARTITIONS): 7}, PARTITIONS, {}, {("SUB", "A"): ok_at}))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    key = (("program", "SUB"), ("publisher", "A"))
    assert samples[("hub_subscription_pending_records", key)] == 2
    assert samples[("hub_subscription_last_success_timestamp_seconds", key)] == ok_at.timestamp()
    assert samples[("hub_subscription_seconds_since_last_success", key)] > 0
    collector.replace({})  # the subscription went away (deleted, or its partition moved): its series go too
    assert "hub_subscription_pending_records{" not in generate_latest(registry).decode()


def test_parked_events_are_counted_per_subscription() -> None:
    parked = tuple(ParkedEvent(f"E:A-{n}", n, "COURSE", "row is not valid JSON", datetime(2026, 11, 20, tzinfo=UTC)) for n in (3, 7))
    record = SubscriberRecord({"A": sub("A"), "B": sub("B")})
    cursors = SubscriberCursors().with_cursor("A", SyncCursor("id-A", next_offset=9, parked=parked))
    rows = health_rows({"SUB": record}, {"SUB": cursors}, {}, PARTITIONS, {}, {})
    assert (rows[("SUB", "A")].parked_events, rows[("SUB", "B")].parked_events) == (2, 0)
    collector = SubscriptionHealthCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    collector.replace(rows)
    text = generate_latest(registry).decode()
    assert 'hub_subscription_parked_events{program="SUB",publisher="A"} 2.0' in text
    assert 'hub_subscription_parked_events{program="SUB",publisher="B"} 0.0' in text
