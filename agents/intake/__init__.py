"""The intake agent: the only writer of the intake table and of hub.events.

It reads the incoming topic (key = PublisherProgramId) in batches, with a
plain aiokafka consumer of its own consumer group (``{app_id}-intake``), not
a Faust stream: Faust's per-record delivery path costs ~270 µs a record here
and held the intake near 1,300 events/s; ``getmany`` hands over thousands of
records at once. Its state (dedupe entries and per-partition marks) is a dict
per owned partition, loaded from the intake changelog topic when the
partition is assigned and written through to it in bulk (docs/events.md). A
record
is either a stream publisher's event JSON (no reply headers), or a request of
the API in hub_stream.platform.request_reply format:

- ``publish`` {event fields} -> 201 {EventId} | 200 {EventId} | 409 | 400 | 413
- ``delete`` {EventId} -> 204 | 404
- ``deleted`` {EventIds} -> 200 {Deleted: [...]}: which of them are deleted (for GET)
- ``ping`` -> 200

Both kinds of publish go through one path: ``hub_stream.events.intake_rules`` validates
and decides; invalid stream records and stream conflicts go to the rejected
topic with the reason and the original bytes. A stream record whose
publisher is not in the programs registry (PostgreSQL) is rejected too
(``unknown_program``), as the API refuses it with a 422: the registry is
asked once per batch, and a yes is remembered for a few seconds
(``PublisherRegistry``).

A batch is made durable in an order that survives a SIGKILL anywhere
(docs/events.md, "Crash safety"), each step acknowledged by the broker
before the next: table entries; hub.events appends, rejections and
forwards; the per-partition marks and the replies. A partition is read from
its mark on when assigned, so the mark, not the group's committed offset,
says where work resumes (the committed offset follows it, for lag tools).
Offsets the consumer skipped, should any be, are read from the topic
directly (``Intake._without_gaps``).

The package, by responsibility: ``consumer`` (the consumer loop and its
rebalances), ``decisions`` (each record's outcome), ``durable`` (the
crash-safe batch pipeline), ``partitions`` (the per-partition state and its
loading), ``wire`` (record wrappers, header names, changelog bytes); ``Intake``
here joins the three parts that share a worker's state.
"""

from __future__ import annotations

from agents.intake.consumer import IntakeService
from agents.intake.decisions import RecordDecisions
from agents.intake.durable import DurableBatches, Outgoing
from agents.intake.partitions import PartitionState, PartitionStates
from agents.intake.wire import H_REJECT_REASON, RecordEvent, changelog_bytes
from hub_stream.platform.faust_app import HubApp, HubTopics

__all__ = [
    "H_REJECT_REASON",
    "Intake",
    "IntakeService",
    "Outgoing",
    "PartitionState",
    "RecordEvent",
    "changelog_bytes",
    "register",
]


class Intake(PartitionStates, RecordDecisions, DurableBatches):
    """Batches of incoming records -> decisions -> durable effects -> replies."""


def register(app: HubApp, topics: HubTopics) -> Intake:
    """Start the intake with ``app``'s worker (see ``IntakeService``)."""
    intake = Intake(app.hub_settings)
    app.add_dependency(IntakeService(app, intake, beacon=app.beacon))
    return intake
