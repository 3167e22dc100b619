"""The intake's check of stream publishers against the programs registry, without broker or database.

``PublisherRegistry``: one lookup per batch for the publishers not known to
be registered, a yes remembered for the TTL, a no never, and a registry that
does not answer is an error, never a "no". ``Intake.decide``: an unregistered
publisher's new event goes to the rejected topic as ``unknown_program``; a
record on another partition is forwarded unchecked; requests of the API and
redeliveries of accepted records are not checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from support import event_doc

from agents.intake import (
    H_REJECT_REASON,
    Intake,
    PartitionState,
    RecordEvent,
)
from hub_stream.access.programs import PublisherRegistry, RegistryUnavailable
from hub_stream.events.intake_rules import (
    PartitionMark,
    PublishedEntry,
    decode_event_record,
    entry_key,
)
from hub_stream.events.records import partition_for
from hub_stream.platform import metrics
from hub_stream.platform.request_reply import H_REPLY_PARTITION, H_REPLY_TO
from hub_stream.platform.settings import HubSettings

PARTITIONS = 4


class FakeRegistry:
    """The programs table as a set; counts lookups; fails while ``down``."""

    def __init__(self, *programs: str) -> None:
        self.programs = set(programs)
        self.lookups: list[list[str]] = []
        self.down = False

    async def __call__(self, program_ids: list[str]) -> Iterable[str]:
        self.lookups.append(program_ids)
        if self.down:
            raise ConnectionRefusedError("database down")
        return [p for p in program_ids if p in self.programs]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_one_lookup_for_the_unsure_and_a_yes_is_remembered_for_the_ttl() -> None:
    lookup, clock = FakeRegistry("A", "B"), Clock()
    registry = PublisherRegistry(lookup, ttl_s=10.0, clock=clock)
    assert await registry.registered({"A", "B", "X"}) == {"A", "B"}
    assert lookup.lookups == [["A", "B", "X"]]  # one lookup for the whole batch
    assert await registry.registered({"A", "B"}) == {"A", "B"}
    assert len(lookup.lookups) == 1  # remembered
    assert await registry.registered(set()) == set()
    assert len(lookup.lookups) == 1
    lookup.programs.discard("A")  # deleted from the registry: still accepted until the TTL runs out
    clock.now += 9.9
    assert await registry.registered({"A"}) == {"A"}
    clock.now += 0.2
    assert await registry.registered({"A", "B"}) == {"B"}
    assert lookup.lookups[-1] == ["A", "B"]


async def test_a_no_is_never_remembered() -> None:
    lookup = FakeRegistry()
    registry = PublisherRegistry(lookup, clock=Clock())
    assert await registry.registered({"X"}) == set()
    lookup.programs.add("X")  # registered after its first records were rejected
    assert await registry.registered({"X"}) == {"X"}
    assert lookup.lookups == [["X"], ["X"]]


async def test_a_registry_that_does_not_answer_is_an_error_not_a_no() -> None:
    lookup = FakeRegistry("A")
    lookup.down = True
    registry = PublisherRegistry(lookup, budget_s=0.5)
    with pytest.raises(RegistryUnavailable, match="database down"):
        await registry.registered({"A"})
    assert len(lookup.lookups) > 1  # retried within the budget first
    lookup.down = False
    assert await registry.registered({"A"}) == {"A"}


async def test_a_lookup_that_fails_once_is_retried() -> None:
    calls = 0

    async def flaky(program_ids: list[str]) -> Iterable[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("connection reset")
        return program_ids

    assert await PublisherRegistry(flaky).registered({"A"}) == {"A"}
    assert calls == 2


# --- Intake.decide ----------------------------------------------------------------


def publisher_in(partition: int, prefix: str) -> str:
    return next(f"{prefix}{i}" for i in range(10_000) if partition_for(f"{prefix}{i}", PARTITIONS) == partition)


class Feed:
    """Incoming records of one partition, offsets from 0."""

    def __init__(self, intake: Intake, partition: int) -> None:
        self.intake = intake
        self.partition = partition
        self.offset = 0

    def record(self, doc: Any, *, key: str = "", headers: list[tuple[str, bytes]] | None = None) -> RecordEvent:
        value = json.dumps(doc).encode()
        raw = SimpleNamespace(
            partition=self.partition, offset=self.offset, key=key.encode(), value=value, headers=headers or [], timestamp=1_000
        )
        self.offset += 1
        return RecordEvent(self.intake.incoming_topic, raw)


def make_intake(lookup: FakeRegistry, *partitions: int) -> Intake:
    intake = Intake(HubSettings(topic_prefix="t", events_partitions=PARTITIONS))
    intake.publishers = PublisherRegistry(lookup, budget_s=0.3)
    for p in partitions:
        intake.stores[p] = {}
        intake.states[p] = PartitionState(PartitionMark(), 0, set(), set())
    return intake


def outcome(intake: Intake, batch: Any) -> dict[str, list[Any]]:
    """What a batch sends, by topic: hub.events publishers, rejection reasons, forwards' partitions."""
    out: dict[str, list[Any]] = {"events": [], "rejected": [], "forwarded": []}
    for o in batch.produce:
        if o.topic == intake.events_topic:
            out["events"].append(json.loads(o.value)["PublisherEventId"])
        elif o.topic == intake.rejected_topic:
            out["rejected"].append((o.value, dict(o.headers)[H_REJECT_REASON].decode(), dict(o.headers)))
        elif o.topic == intake.incoming_topic:
            out["forwarded"].append(o.partition)
    return out


async def test_an_unregistered_publisher_s_new_events_are_rejected_as_unknown_program() -> None:
    lookup = FakeRegistry()
    intake = make_intake(lookup, 0)
    good, bad = publisher_in(0, "REG"), publisher_in(0, "UNREG")
    lookup.programs.add(good)
    feed = Feed(intake, 0)
    records = [feed.record(event_doc(good, 1), key=good), feed.record(event_doc(bad, 1), key=bad), feed.record(event_doc(bad, 2), key=bad)]
    unknown_before = metrics.REJECTED_RECORDS.labels("unknown_program")._value.get()
    batch = await intake.decide(records)
    assert metrics.REJECTED_RECORDS.labels("unknown_program")._value.get() == unknown_before + 2
    sent = outcome(intake, batch)
    assert sent["events"] == ["ev-1"]
    assert [r[:2] for r in sent["rejected"]] == [(records[1].value, "unknown_program"), (records[2].value, "unknown_program")]
    headers = sent["rejected"][0][2]
    assert headers["hub-reject-message"].decode() == (
        f"Program '{bad}' is not registered; staff register publishers with PUT /api/programs."
    )
    assert json.loads(headers["hub-reject-details"]) == {"PublisherProgramId": bad}
    assert lookup.lookups == [sorted([good, bad])]  # one lookup for the batch
    assert batch.outcomes == {"accepted": 1, "rejected": 2}
    assert entry_key(bad, "ev-1") not in intake.stores[0]  # nothing written for a rejected record

    lookup.programs.add(bad)  # registered: its next record is accepted (a no is not remembered)
    batch = await intake.decide([feed.record(event_doc(bad, 1), key=bad)])
    assert outcome(intake, batch)["events"] == ["ev-1"]


async def test_a_record_on_another_partition_is_forwarded_and_checked_at_home() -> None:
    lookup = FakeRegistry()
    intake = make_intake(lookup, 0, 1)
    stranger = publisher_in(1, "UNREG")
    forwarded_before = metrics.FORWARDED_RECORDS._value.get()
    record = Feed(intake, 0).record(event_doc(stranger, 1), key="the producer's key", headers=[("trace", b"t1")])
    batch = await intake.decide([record])
    assert outcome(intake, batch) == {"events": [], "rejected": [], "forwarded": [1]}
    (copy,) = batch.produce
    # The producer's record as it was (docs/events.md), one header added; counted, not logged.
    assert (copy.key, copy.value) == (b"the producer's key", record.message.value)
    assert copy.headers == [("trace", b"t1"), ("hub-forwarded-from", f"{intake.incoming_topic}/0/0".encode())]
    assert metrics.FORWARDED_RECORDS._value.get() == forwarded_before + 1
    assert lookup.lookups == []  # not looked up where it does not belong
    batch = await intake.decide([Feed(intake, 1).record(event_doc(stranger, 1), key=stranger)])
    assert [r[1] for r in outcome(intake, batch)["rejected"]] == ["unknown_program"]


async def test_requests_of_the_api_are_not_checked_again() -> None:
    lookup = FakeRegistry()
    intake = make_intake(lookup, 0)
    pub = publisher_in(0, "UNREG")
    request = {"kind": "publish", "id": "c1", "body": event_doc(pub, 1)}
    headers = [(H_REPLY_TO, b"replies"), (H_REPLY_PARTITION, b"0")]
    batch = await intake.decide([Feed(intake, 0).record(request, key=pub, headers=headers)])
    assert outcome(intake, batch)["events"] == ["ev-1"]
    assert [reply.status for _, reply in batch.replies] == [201]
    assert lookup.lookups == []


async def test_a_redelivered_accepted_record_is_not_refused_when_its_program_is_gone() -> None:
    """The entry was written, the worker died before the append, and the program was deleted meanwhile:
    the redelivery still appends the event (its entry promises it), under the EventId given."""
    lookup = FakeRegistry()
    intake = make_intake(lookup, 0)
    pub = publisher_in(0, "GONE")
    feed = Feed(intake, 0)
    first = feed.record(event_doc(pub, 1), key=pub)
    # As a batch leaves it that wrote its entries and died before any append (the mark is before it).
    hashed = decode_event_record(first.message.value).content_hash
    intake.stores[0][entry_key(pub, "ev-1")] = PublishedEntry("E:" + pub + "-x", hashed, first.message.offset).to_json()
    batch = await intake.decide([first])
    sent = outcome(intake, batch)
    assert sent["events"] == ["ev-1"] and sent["rejected"] == []
    assert json.loads(batch.produce[0].value or b"")["EventId"] == "E:" + pub + "-x"


async def test_a_registry_that_does_not_answer_fails_the_batch_and_rejects_nothing() -> None:
    lookup = FakeRegistry()
    lookup.down = True
    intake = make_intake(lookup, 0)
    pub = publisher_in(0, "REG")
    with pytest.raises(RegistryUnavailable):
        await intake.decide([Feed(intake, 0).record(event_doc(pub, 1), key=pub)])
    assert intake._last_stages is None  # no batch joined the chain: nothing is made durable
    assert intake.stores[0] == {}
