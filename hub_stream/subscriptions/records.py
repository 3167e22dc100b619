"""Event subscriptions: the subscriptions table value and its state transitions.

Pure logic, no Faust and no I/O: the subscriptions agent feeds it commands
and writes back what it returns. One table value per subscriber
(``SubscriberRecord``) holds every subscription of that subscriber *and* the
outcomes of the last commands applied to it, so a command and the record of
having applied it are one table write: a redelivered command (at-least-once)
finds its id and answers the stored outcome without changing anything.

Commands are deterministic: the time they carry (``At``) is stamped by the
API, and a new subscription's id is the id of the command that created it.
Replaying a suffix of the command log over a recovered table therefore ends
in the same state as the first run (docs/subscriptions.md).

Failed mutations are recorded too: a ``create`` that answered 409 must not
succeed on replay just because a later ``delete`` (already applied) removed
the subscription in between.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hub_stream.templating.payload import category_map_in
from schemas.timefmt import format_utc, utc_now

APPLIED_LIMIT = 64
"""Outcomes kept per subscriber: far more than can be in flight between two commits."""

MAX_RECORD_BYTES = 900_000
"""A subscriber's record is one Kafka record in the changelog; brokers refuse ~1 MB."""

MUTATIONS = frozenset({"create", "patch", "delete"})

Problem = dict[str, Any]
TemplateCheck = Callable[[Any, "int | None"], "Problem | None"]


def problem(code: str, message: str, **details: Any) -> Problem:
    """The problem body of CONTRACT.md, as a worker puts it in a reply."""
    return {"error": code, "message": message, "details": details}


@dataclass(frozen=True)
class Outcome:
    """What a command answered: an HTTP-like status and a JSON body."""

    status: int
    body: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class CommandLog:
    """The outcomes of the last ``APPLIED_LIMIT`` commands applied to one table value."""

    entries: tuple[tuple[str, Outcome], ...] = ()

    def outcome_of(self, command_id: str) -> Outcome | None:
        for applied_id, outcome in reversed(self.entries):
            if applied_id == command_id:
                return outcome
        return None

    def recording(self, command_id: str, outcome: Outcome) -> CommandLog:
        return CommandLog((*self.entries, (command_id, outcome))[-APPLIED_LIMIT:])

    def to_json(self) -> list[list[Any]]:
        return [[cid, o.status, o.body] for cid, o in self.entries]

    @classmethod
    def from_json(cls, doc: Any) -> CommandLog:
        return cls(tuple((str(cid), Outcome(int(status), body)) for cid, status, body in doc or ()))


@dataclass(frozen=True)
class Subscription:
    """One subscription of a subscriber to a publisher, as stored.

    ``template`` is ``LbApiPayloadTemplate`` exactly as it was given (object,
    string or None). ``start_utc`` is the ``LastSyncUtc`` given at creation:
    the start point of the first sync, read by the sync agent when it has no
    cursor of this subscription yet (hub_stream.sync.cursors).
    """

    publisher: str
    subscription_id: str
    created_utc: str
    updated_utc: str
    sync_enabled: bool = False
    template: Any = None
    import_process_id: int | None = None
    start_utc: str | None = None
    on_render_error: str = "stop"  # "stop" | "park" (docs/subscriptions.md)

    def to_json(self) -> dict[str, Any]:
        return {
            "PublisherProgramId": self.publisher,
            "SubscriptionId": self.subscription_id,
            "CreatedUtc": self.created_utc,
            "UpdatedUtc": self.updated_utc,
            "SyncEnabled": self.sync_enabled,
            "LbApiPayloadTemplate": self.template,
            "ImportProcessId": self.import_process_id,
            "StartUtc": self.start_utc,
            "OnRenderError": self.on_render_error,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Subscription:
        return cls(
            publisher=doc["PublisherProgramId"],
            subscription_id=doc["SubscriptionId"],
            created_utc=doc["CreatedUtc"],
            updated_utc=doc["UpdatedUtc"],
            sync_enabled=bool(doc.get("SyncEnabled", False)),
            template=doc.get("LbApiPayloadTemplate"),
            import_process_id=doc.get("ImportProcessId"),
            start_utc=doc.get("StartUtc"),
            on_render_error=doc.get("OnRenderError") or "stop",
        )

    def resource(self, program_id: str, last_sync_utc: str | None) -> dict[str, Any]:
        """The subscription as the API answers it (``LastSyncUtc`` comes from its cursor)."""
        return {
            "ProgramId": program_id,
            "PublisherProgramId": self.publisher,
            "CreatedUtc": self.created_utc,
            "UpdatedUtc": self.updated_utc,
            "LastSyncUtc": last_sync_utc,
            "SyncEnabled": self.sync_enabled,
            "LbApiPayloadTemplate": self.template,
            "ImportProcessId": self.import_process_id,
            "OnRenderError": self.on_render_error,
        }


@dataclass(frozen=True)
class SubscriberRecord:
    """The subscriptions table value of one subscriber."""

    subscriptions: Mapping[str, Subscription] = field(default_factory=dict)
    log: CommandLog = CommandLog()

    def to_json(self) -> dict[str, Any]:
        return {
            "Subscriptions": {pub: s.to_json() for pub, s in sorted(self.subscriptions.items())},
            "Applied": self.log.to_json(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> SubscriberRecord:
        if not doc:
            return cls()
        subs = {pub: Subscription.from_json(s) for pub, s in (doc.get("Subscriptions") or {}).items()}
        return cls(subs, CommandLog.from_json(doc.get("Applied")))

    def sorted(self) -> list[Subscription]:
        """The subscriptions sorted by PublisherProgramId (ordinal, case-sensitive)."""
        return [self.subscriptions[pub] for pub in sorted(self.subscriptions)]

    def with_subscription(self, sub: Subscription) -> SubscriberRecord:
        return replace(self, subscriptions={**self.subscriptions, sub.publisher: sub})

    def without(self, publisher: str) -> SubscriberRecord:
        return replace(self, subscriptions={p: s for p, s in self.subscriptions.items() if p != publisher})


# --- templates ---------------------------------------------------------------


def is_plain_template(value: Any) -> bool:
    """True for the plain Handlebars form: a string that does not hold a category map.

    The rule is the parser's (hub_stream.templating.payload.category_map_in), so
    the ImportProcessId check here and the parse agree on every string.
    """
    return isinstance(value, str) and category_map_in(value) is None


def template_problem(template: Any, import_process_id: int | None) -> Problem | None:
    """None when ``template`` (with ``import_process_id``) can render; else a 422 problem.

    A plain template needs an ImportProcessId; the object forms name one per
    entry and take none. Every form is parsed: a stored subscription can render.
    """
    if template is None:
        if import_process_id is not None:
            return _needs("ImportProcessId is set but there is no LbApiPayloadTemplate; send the plain template it goes with, or ImportProcessId null.")
        return None
    plain = is_plain_template(template)
    if plain and import_process_id is None:
        return _needs("A plain Handlebars LbApiPayloadTemplate needs ImportProcessId (a positive integer) beside it.")
    if not plain and import_process_id is not None:
        return _needs("ImportProcessId goes only with a plain Handlebars template; the object form names importProcessId in each entry.")
    from hub_stream.templating import PayloadTemplateError, parse_payload_template

    try:
        parse_payload_template(template, import_process_id=import_process_id)
    except PayloadTemplateError as exc:
        return _invalid_template(exc)
    except RecursionError:
        return _invalid_template(ValueError("the template nests too deeply to compile"))
    except Exception as exc:  # noqa: BLE001 - a template is untrusted data: any failure to compile it is the template's (422)
        return _invalid_template(ValueError(f"the template cannot be compiled ({type(exc).__name__})"))
    return None


def _needs(message: str) -> Problem:
    return problem("invalid_template", message, field="ImportProcessId", entry=None, line=None, column=None, reason=message)


def _invalid_template(exc: Any) -> Problem:
    entry = getattr(exc, "entry", None)
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    reason = getattr(exc, "reason", None) or str(exc)
    where = f"entry {entry!r}" if entry is not None else "the template"
    at = f" at line {line}, column {column}" if line is not None else ""
    return problem(
        "invalid_template",
        f"LbApiPayloadTemplate is invalid: {where}{at}: {reason}",
        field="LbApiPayloadTemplate",
        entry=entry,
        line=line,
        column=column,
        reason=reason,
    )


# --- commands ------------------------------------------------------------------


def apply(
    record: SubscriberRecord,
    program_id: str,
    kind: str,
    command_id: str,
    body: Mapping[str, Any],
    *,
    check_template: TemplateCheck = template_problem,
) -> tuple[SubscriberRecord, Outcome]:
    """Apply one mutating command; returns the new record and the outcome.

    A command already applied returns ``record`` itself (unchanged, nothing
    to write) and the outcome it had the first time.
    """
    seen = record.log.outcome_of(command_id)
    if seen is not None:
        return record, seen
    at = _command_time(body)
    if kind == "create":
        new, outcome = _create(record, program_id, command_id, at, body, check_template)
    elif kind == "patch":
        new, outcome = _patch(record, program_id, at, body, check_template)
    elif kind == "delete":
        new, outcome = _delete(record, program_id, body)
    else:
        raise ValueError(f"not a subscription mutation: {kind!r}")
    if outcome.ok:
        size = record_size(new)
        if size > MAX_RECORD_BYTES:
            new, outcome = record, Outcome(
                422,
                problem(
                    "subscriptions_too_large",
                    f"The subscriptions of {program_id!r} would take {size} bytes, over the limit of"
                    f" {MAX_RECORD_BYTES}; use shorter templates.",
                    ProgramId=program_id,
                    bytes=size,
                    limit=MAX_RECORD_BYTES,
                ),
            )
    return replace(new, log=new.log.recording(command_id, outcome)), outcome


def record_size(record: SubscriberRecord) -> int:
    return len(json.dumps(record.to_json(), separators=(",", ":")).encode())


def _command_time(body: Mapping[str, Any]) -> str:
    at = body.get("At")
    return at if isinstance(at, str) and at else format_utc(utc_now())


def not_found(program_id: str, publisher: str) -> Outcome:
    return Outcome(
        404,
        problem(
            "subscription_not_found",
            f"Program {program_id!r} has no subscription to {publisher!r}.",
            ProgramId=program_id,
            PublisherProgramId=publisher,
        ),
    )


def _create(
    record: SubscriberRecord,
    program_id: str,
    command_id: str,
    at: str,
    body: Mapping[str, Any],
    check_template: TemplateCheck,
) -> tuple[SubscriberRecord, Outcome]:
    publisher = body["PublisherProgramId"]
    if publisher in record.subscriptions:
        return record, Outcome(
            409,
            problem(
                "subscription_exists",
                f"Program {program_id!r} already subscribes to {publisher!r}; PATCH it instead.",
                ProgramId=program_id,
                PublisherProgramId=publisher,
            ),
        )
    template = body.get("LbApiPayloadTemplate")
    ipid = body.get("ImportProcessId")
    bad = check_template(template, ipid)
    if bad is not None:
        return record, Outcome(422, bad)
    sub = Subscription(
        publisher=publisher,
        subscription_id=command_id,
        created_utc=at,
        updated_utc=at,
        sync_enabled=bool(body.get("SyncEnabled", False)),
        template=template,
        import_process_id=ipid,
        start_utc=body.get("LastSyncUtc"),
        on_render_error=body.get("OnRenderError") or "stop",
    )
    return record.with_subscription(sub), Outcome(201, {"SubscriptionId": sub.subscription_id})


def patched_template(template: Any, import_process_id: int | None, changes: Mapping[str, Any]) -> tuple[Any, int | None]:
    """(template, ImportProcessId) after a PATCH's ``changes``: a new template that is not
    plain drops a stored ImportProcessId, which only a plain template uses."""
    new = changes.get("LbApiPayloadTemplate", template)
    if "ImportProcessId" in changes:
        return new, changes["ImportProcessId"]
    if "LbApiPayloadTemplate" in changes and not is_plain_template(new):
        return new, None
    return new, import_process_id


def _patch(
    record: SubscriberRecord,
    program_id: str,
    at: str,
    body: Mapping[str, Any],
    check_template: TemplateCheck,
) -> tuple[SubscriberRecord, Outcome]:
    """``Changes`` may hold SyncEnabled, LbApiPayloadTemplate, ImportProcessId, LastSyncUtc, OnRenderError.

    LastSyncUtc moves the cursor, which the sync agent owns; here it only
    counts as a change (UpdatedUtc). A new template that is not plain drops
    a stored ImportProcessId, which only a plain template uses.
    """
    publisher = body["PublisherProgramId"]
    old = record.subscriptions.get(publisher)
    if old is None:
        return record, not_found(program_id, publisher)
    changes: Mapping[str, Any] = body.get("Changes") or {}
    template, ipid = patched_template(old.template, old.import_process_id, changes)
    if "LbApiPayloadTemplate" in changes or "ImportProcessId" in changes:
        bad = check_template(template, ipid)
        if bad is not None:
            return record, Outcome(422, bad)
    new = replace(
        old,
        sync_enabled=bool(changes.get("SyncEnabled", old.sync_enabled)),
        template=template,
        import_process_id=ipid,
        on_render_error=changes.get("OnRenderError", old.on_render_error),
        updated_utc=at,
    )
    return record.with_subscription(new), Outcome(200, {"SubscriptionId": old.subscription_id})


def _delete(record: SubscriberRecord, program_id: str, body: Mapping[str, Any]) -> tuple[SubscriberRecord, Outcome]:
    publisher = body["PublisherProgramId"]
    if publisher not in record.subscriptions:
        return record, not_found(program_id, publisher)
    return record.without(publisher), Outcome(204)
