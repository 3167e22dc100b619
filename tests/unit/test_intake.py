"""Event intake, the pure part: validation, content hash, EventIds, dedupe and delete decisions."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from hub_stream.events.intake_rules import (
    InvalidEvent,
    PartitionMark,
    PublishedEntry,
    Rejection,
    content_hash,
    decide_delete,
    decide_publish,
    decode_event_record,
    ensure_fits,
    entry_key,
    new_event_id,
    next_created_ms,
    publisher_of,
    stored_event,
    utc_text,
    validate_event,
)
from schemas.timefmt import format_utc, parse_utc


def body(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "PublisherProgramId": "ACME-1.x",
        "PublisherEventId": "ev-1",
        "EventType": "COURSE_DONE",
        "PublisherParticipantId": "p1@example.org",
        "PublisherEventData": {"b": 2, "a": [1, {"y": 1, "x": 2}]},
        "EventStartUtc": "2026-11-20T10:00:00+01:00",
    }
    doc.update(overrides)
    return doc


def errors_of(doc: Any) -> dict[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(doc)
    return {e.field: e.problem for e in caught.value.errors}


def test_a_valid_event_is_normalised_with_every_field() -> None:
    event = validate_event(body(EventEndUtc="2026-11-20T12:30:00.123456"))
    assert event.body == {
        "PublisherProgramId": "ACME-1.x",
        "PublisherSystemId": None,
        "PublisherEventId": "ev-1",
        "EventType": "COURSE_DONE",
        "PublisherParticipantId": "p1@example.org",
        "PublisherEventCategory": None,
        "PublisherEventData": {"b": 2, "a": [1, {"y": 1, "x": 2}]},
        "EventStartUtc": "2026-11-20T09:00:00.000Z",
        "EventEndUtc": "2026-11-20T12:30:00.123Z",  # no offset means UTC
    }
    assert (event.publisher, event.publisher_event_id) == ("ACME-1.x", "ev-1")
    with_category = validate_event(body(PublisherEventCategory={"value": "EXAM"}))
    assert with_category.body["PublisherEventCategory"] == {"value": "EXAM", "label": None}


def test_every_field_error_is_listed_once() -> None:
    problems = errors_of(
        {
            "PublisherProgramId": "no spaces allowed",
            "PublisherSystemId": "",
            "PublisherEventId": "x" * 201,
            "EventType": 7,
            "PublisherEventCategory": {"value": "", "colour": "red"},
            "PublisherEventData": "not an object",
            "EventStartUtc": "2026-11-20 nonsense",
            "EventEndUtc": 1700000000,
            "Unexpected": True,
        }
    )
    assert problems == {
        "PublisherProgramId": "must be 1–25 characters of A-Z a-z 0-9 _ - .",
        "PublisherSystemId": "String should have at least 1 character",
        "PublisherEventId": "String should have at most 200 characters",
        "EventType": "must be a string",
        "PublisherParticipantId": "required",
        "PublisherEventCategory.value": "String should have at least 1 character",
        "PublisherEventCategory.colour": "unknown field; the contract has no such field",
        "PublisherEventData": "must be a JSON object",
        "EventStartUtc": "not an ISO 8601 timestamp: '2026-11-20 nonsense'",
        "EventEndUtc": "must be an ISO 8601 timestamp string, such as 2026-11-22T08:00:00Z",
        "Unexpected": "unknown field; the contract has no such field",
    }


@pytest.mark.parametrize(
    "text",
    ["2026-11-20T10:00:00Z", "2026-11-20T10:00:00.1z", "2026-11-20T10:00:00.123456Z", "2026-11-20T10:00:00.999999+00:00",
     "2024-02-29T23:59:59.5Z", "2026-11-20T11:00:00+01:00", "2026-11-20T10:00:00", "2026-11-20T10:00"],
)
def test_timestamps_are_normalised_alike_on_every_path(text: str) -> None:
    assert validate_event(body(EventStartUtc=text)).body["EventStartUtc"] == format_utc(parse_utc(text))


def test_impossible_dates_are_refused() -> None:
    for text in ("2026-02-30T00:00:00Z", "2026-11-20T24:00:00Z", "2026-11-20T10:00:00ZZ"):
        assert "EventStartUtc" in errors_of(body(EventStartUtc=text)), text


def test_limits_are_inclusive() -> None:
    validate_event(body(PublisherProgramId="P" * 25, PublisherSystemId="S" * 25, PublisherEventId="e" * 200, EventType="T" * 50, PublisherParticipantId="p" * 200))
    for field, value in [("PublisherProgramId", "P" * 26), ("PublisherSystemId", "S" * 26), ("EventType", "T" * 51), ("PublisherParticipantId", "p" * 201), ("PublisherEventId", "")]:
        assert set(errors_of(body(**{field: value}))) == {field}


def test_the_error_code_names_unknown_fields_when_there_are_any() -> None:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(body(Extra=1, EventType=None))
    assert caught.value.code == "unknown_fields"
    assert caught.value.details()["unknown_fields"] == ["Extra"]
    with pytest.raises(InvalidEvent) as caught:
        validate_event(body(EventType=None))
    assert caught.value.code == "invalid_event" and "unknown_fields" not in caught.value.details()
    assert [e.field for e in caught.value.errors] == ["EventType"]
    assert errors_of([body()]) == {"(body)": "must be a JSON object"}


def test_same_content_means_same_values_whatever_the_order_or_time_spelling() -> None:
    a = validate_event(body())
    b = validate_event(dict(reversed(list(body(EventStartUtc="2026-11-20T09:00:00Z", PublisherEventData={"a": [1, {"x": 2, "y": 1}], "b": 2}).items()))))
    assert a.content_hash == b.content_hash
    assert validate_event(body(PublisherSystemId=None)).content_hash == a.content_hash  # null is absent
    for change in ({"EventType": "OTHER"}, {"PublisherEventData": {"b": 3, "a": []}}, {"EventStartUtc": "2026-11-20T10:00:00.001+01:00"}):
        assert validate_event(body(**change)).content_hash != a.content_hash
    assert content_hash({"x": 1}) == content_hash({"x": 1}) and len(content_hash({})) == 32


def test_stream_records_are_decoded_or_rejected_with_a_reason() -> None:
    assert decode_event_record(json.dumps(body()).encode()).publisher == "ACME-1.x"
    cases = [(b"\xff\xfe", "not_json"), (b"{", "not_json"), (None, "not_json"), (b"[]", "not_an_object"), (b'"text"', "not_an_object"), (json.dumps(body(EventType="")).encode(), "invalid_event"), (json.dumps(body(Nope=1)).encode(), "unknown_fields")]
    for value, code in cases:
        with pytest.raises(Rejection) as caught:
            decode_event_record(value)
        assert caught.value.code == code, value
        assert caught.value.problem()["error"] == code
    with pytest.raises(Rejection) as caught:
        decode_event_record(json.dumps(body(EventType="")).encode())
    assert caught.value.details["errors"] == [{"field": "EventType", "problem": "String should have at least 1 character"}]


def test_an_event_must_fit_one_kafka_record() -> None:
    fits = validate_event(body(PublisherEventData={"x": "y" * 999_000}))
    assert ensure_fits(fits) is fits
    too_big = validate_event(body(PublisherEventData={"x": "y" * 999_700}))
    with pytest.raises(Rejection) as caught:
        ensure_fits(too_big)
    assert caught.value.code == "event_too_large" and caught.value.details["size"] == too_big.size
    with pytest.raises(Rejection) as caught:
        decode_event_record(json.dumps(body(PublisherEventData={"x": "y" * 999_700})).encode())
    assert caught.value.code == "event_too_large"


def test_event_ids_name_their_publisher() -> None:
    for publisher in ("ACME", "a-b-c", "x.y_z-1", "P" * 25):
        event_id = new_event_id(publisher)
        assert event_id.startswith(f"E:{publisher}-") and uuid.UUID(event_id[-36:]).version == 4
        assert publisher_of(event_id) == publisher
    good = str(uuid.uuid4())
    for bad in ("", "E:", f"E:-{good}", f"X:ACME-{good}", f"E:ACME{good}", f"E:ACME-{good.upper()}", f"E:AC ME-{good}", f"E:{'P' * 26}-{good}", "E:ACME-not-a-uuid-at-all-but-36-chars!", f"e:ACME-{good}"):
        assert publisher_of(bad) is None, bad


def test_created_utc_never_goes_backwards() -> None:
    assert next_created_ms(1000, 900) == 1000
    assert next_created_ms(800, 900) == 900  # the clock stepped back: keep the last one
    assert utc_text(1_795_433_941_779) == "2026-11-23T11:39:01.779Z"
    event = validate_event(body())
    stored = stored_event(event, "E:ACME-1.x-" + str(uuid.uuid4()), 1_795_433_941_779)
    keys = list(stored)
    assert (keys[0], keys[-1]) == ("EventId", "CreatedUtc")
    assert stored["CreatedUtc"] == "2026-11-23T11:39:01.779Z"


# --- decisions ------------------------------------------------------------------

EVENT = validate_event(body())
EID = "E:ACME-1.x-" + str(uuid.uuid4())


def fixed_id(publisher: str) -> str:
    return EID


def always(_: PublishedEntry) -> bool:
    return True


def never(_: PublishedEntry) -> bool:
    return False


def test_a_new_event_is_written_and_appended() -> None:
    d = decide_publish(None, EVENT, 10, appended=always, new_id=fixed_id)
    assert (d.status, d.outcome, d.event_id, d.write_entry, d.append, d.rejection) == (201, "accepted", EID, True, True, None)


def test_the_same_event_again_is_answered_with_its_id() -> None:
    entry = PublishedEntry(EID, EVENT.content_hash, offset=10)
    again = decide_publish(entry, EVENT, 25, appended=always)
    assert (again.status, again.outcome, again.event_id, again.write_entry, again.append) == (200, "deduplicated", EID, False, False)
    # Its own record redelivered (at-least-once) gets its first answer.
    own = decide_publish(entry, EVENT, 10, appended=always)
    assert (own.status, own.append) == (201, False)


def test_an_entry_whose_append_was_lost_is_appended_under_the_same_id() -> None:
    entry = PublishedEntry(EID, EVENT.content_hash, offset=10)
    own = decide_publish(entry, EVENT, 10, appended=never)
    assert (own.status, own.outcome, own.event_id, own.write_entry, own.append) == (201, "accepted", EID, False, True)
    other = decide_publish(entry, EVENT, 11, appended=never)
    assert (other.status, other.append) == (200, True)


def test_other_content_is_a_conflict() -> None:
    entry = PublishedEntry(EID, "another-hash", offset=10)
    d = decide_publish(entry, EVENT, 11, appended=always)
    assert (d.status, d.outcome, d.append, d.write_entry) == (409, "rejected", False, False)
    assert d.rejection is not None and d.rejection.code == "duplicate_publisher_event_id"
    assert d.rejection.details == {"PublisherProgramId": "ACME-1.x", "PublisherEventId": "ev-1", "EventId": EID}


def test_a_deleted_event_stays_deleted() -> None:
    entry = PublishedEntry(EID, EVENT.content_hash, offset=10).deleted("2026-11-23T00:00:00.000Z", "cmd-1", 40)
    again = decide_publish(entry, EVENT, 50, appended=always)
    assert again.status == 409 and again.rejection is not None and again.rejection.code == "publisher_event_deleted"
    redelivered = decide_publish(entry, EVENT, 10, appended=never)
    assert (redelivered.status, redelivered.append) == (201, False)  # published once, deleted since: nothing to do


def test_delete() -> None:
    entry = PublishedEntry(EID, EVENT.content_hash, offset=10)
    assert decide_delete(None, EID, "c1", marker_appended=always).status == 404
    assert decide_delete(entry, EID.replace("E:", "E:X"), "c1", marker_appended=always).status == 404
    first = decide_delete(entry, EID, "c1", marker_appended=never)
    assert (first.status, first.write_entry, first.append_marker) == (204, True, True)
    deleted = entry.deleted("2026-11-23T00:00:00.000Z", "c1", 40)
    assert decide_delete(deleted, EID, "c1", marker_appended=always) == type(first)(204, False, False)
    assert decide_delete(deleted, EID, "c1", marker_appended=never) == type(first)(204, False, True)
    assert decide_delete(deleted, EID, "c2", marker_appended=always).status == 404


def test_table_values_round_trip() -> None:
    entry = PublishedEntry(EID, "h", 7)
    assert PublishedEntry.from_json(entry.to_json()) == entry
    assert "DeletedUtc" not in entry.to_json()
    gone = entry.deleted("2026-11-23T00:00:00.000Z", "c", 9)
    assert PublishedEntry.from_json(json.loads(json.dumps(gone.to_json()))) == gone
    assert PublishedEntry.from_json(None) is None
    mark = PartitionMark(10, 5, 1000)
    assert PartitionMark.from_json(mark.to_json()) == mark
    assert PartitionMark.from_json(None) == PartitionMark(-1, 0, 0)
    assert entry_key("ACME", "a:b") == "p:ACME:a:b"


def test_the_mark_never_moves_back() -> None:
    mark = PartitionMark(100, 50, 5000)
    assert mark.advanced(120, 60, 6000) == PartitionMark(120, 60, 6000)
    # A batch redelivered from an older committed offset, with nothing appended.
    assert mark.advanced(40, 0, 0) == mark
