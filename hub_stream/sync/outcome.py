"""A subscription's part of a sync answer (``SubscriptionOutcome``), and the processEvents answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub_stream.sync.cursors import ParkedEvent
from schemas.timefmt import format_utc, parse_utc

# Error codes of a failed subscription, and the HTTP status each gives the
# whole answer; when several subscriptions fail differently, the first listed wins.
ERROR_STATUS = {
    "lb_rejected": 502,
    "render_failed": 422,
    "cursor_moved": 409,
    "sync_interrupted": 503,
    "events_unavailable": 503,
    "internal_error": 500,
}


@dataclass
class SubscriptionOutcome:
    publisher: str
    status: str = "ok"
    events: int = 0
    imported: int = 0
    ignored: int = 0
    batches: list[dict[str, Any]] = field(default_factory=list)
    last_sync_utc: datetime | None = None
    error: str | None = None
    error_code: str | None = None  # a key of ERROR_STATUS
    failed_event_ids: list[str] = field(default_factory=list)
    lb_status: int | None = None
    resent: int = 0  # batches sent again after an attempt without an answer (possible duplicates at LB)
    window: tuple[int, int] | None = None  # [start, end) of hub.events offsets read
    parked: list[ParkedEvent] = field(default_factory=list)  # parked by this sync
    refailed: list[ParkedEvent] = field(default_factory=list)  # parked before, redelivered, failing again
    resolved: list[str] = field(default_factory=list)  # parked events the template now ignores (or sent)
    redelivering: dict[int, tuple[int, str]] = field(default_factory=dict)  # offset -> (importProcessId, EventId)
    redelivered: int = 0  # parked events LB accepted in this sync
    seconds: dict[str, float] = field(default_factory=dict)  # time per phase, for the log

    def fail(self, code: str, message: str) -> None:
        """Mark failed; the first failure's code and message stay (later ones follow from it)."""
        if self.error_code is None:
            self.error_code, self.error = code, message
        self.status = "failed"

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SubscriptionOutcome:
        """An outcome as ``as_json`` wrote it (a resumed sync keeps what an earlier run completed)."""
        last = doc.get("LastSyncUtc")
        outcome = cls(
            doc["PublisherProgramId"],
            events=doc.get("Events", 0),
            imported=doc.get("Imported", 0),
            ignored=doc.get("Ignored", 0),
            batches=list(doc.get("Batches") or []),
            last_sync_utc=parse_utc(last) if last else None,
            resent=doc.get("Resent", 0),
            redelivered=doc.get("Redelivered", 0),
        )
        outcome.parked = [ParkedEvent(p["EventId"], -1, None, p["Reason"], datetime.min) for p in doc.get("Parked") or ()]
        if doc.get("Status") != "ok":
            outcome.fail("internal_error", str(doc.get("Error")))
        return outcome

    def as_json(self) -> dict[str, Any]:
        return {
            "PublisherProgramId": self.publisher,
            "Status": self.status,
            "Events": self.events,
            "Imported": self.imported,
            "Ignored": self.ignored,
            "Batches": self.batches,
            "Resent": self.resent,
            "Parked": [{"EventId": p.event_id, "Reason": p.reason} for p in self.refailed + self.parked],
            "Redelivered": self.redelivered,
            "LastSyncUtc": format_utc(self.last_sync_utc) if self.last_sync_utc else None,
            "Error": self.error,
        }


def sync_answer(
    program_id: str, sync_id: str, started: datetime, finished: datetime, outcomes: list[SubscriptionOutcome]
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body of processEvents for these outcomes."""
    body: dict[str, Any] = {
        "ProgramId": program_id,
        "SyncId": sync_id,
        "StartedUtc": format_utc(started),
        "FinishedUtc": format_utc(finished),
        "Subscriptions": [o.as_json() for o in sorted(outcomes, key=lambda o: o.publisher)],
    }
    failed = [o for o in outcomes if o.error_code is not None]
    if not failed:
        return 200, body
    code = next(c for c in ERROR_STATUS if any(o.error_code == c for o in failed))
    first = next(o for o in failed if o.error_code == code)
    body.update(
        error=code,
        message=_headline(code, first, failed),
        details={"Subscriptions": [_failure_detail(o) for o in sorted(failed, key=lambda o: o.publisher)]},
    )
    return ERROR_STATUS[code], body


def _headline(code: str, first: SubscriptionOutcome, failed: list[SubscriptionOutcome]) -> str:
    if code == "lb_rejected":
        who = ", ".join(o.publisher for o in failed if o.error_code == code)
        return f"LearningBuilder refused or failed a batch of {who}: {first.error}"
    if code == "render_failed":
        count = sum(len(o.failed_event_ids) for o in failed)
        return f"A template failed on {count} event(s) of {first.publisher}: {first.error}"
    return f"The sync of {first.publisher} did not complete: {first.error}"


def _failure_detail(o: SubscriptionOutcome) -> dict[str, Any]:
    detail: dict[str, Any] = {"PublisherProgramId": o.publisher, "Error": o.error_code, "Message": o.error}
    if o.error_code == "lb_rejected":
        detail["LbStatus"] = o.lb_status
    if o.failed_event_ids:
        detail["EventIds"] = o.failed_event_ids
    return detail
