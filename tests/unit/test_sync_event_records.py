"""decode_publisher_records: the range-read decoder agrees with decode_record."""

from __future__ import annotations

from types import SimpleNamespace

from hub_stream.events.records import (
    decode_publisher_records,
    decode_record,
    encode_deletion,
    encode_event,
)


def record(offset: int, encoded: tuple[bytes, bytes, list[tuple[str, bytes]]]) -> SimpleNamespace:
    key, value, headers = encoded
    return SimpleNamespace(offset=offset, key=key, value=value, headers=headers)


def test_keeps_the_publishers_events_and_markers_and_skips_the_rest() -> None:
    records = [
        record(0, encode_event({"EventId": "E:P-1", "PublisherProgramId": "P", "é": "ü"})),
        record(1, encode_event({"EventId": "E:Q-1", "PublisherProgramId": "Q"})),
        record(2, encode_deletion("P", "E:P-1", "2026-11-23T00:00:00.000Z")),
        SimpleNamespace(offset=3, key=b"P", value=b"not json", headers=[]),
        SimpleNamespace(offset=4, key=b"P", value=b"[1]", headers=[]),
        SimpleNamespace(offset=5, key=b"P", value=None, headers=None),
        SimpleNamespace(offset=6, key=b"P", value=b'{"EventId": "E:P-2"}', headers=None),  # no header: an event
    ]
    got = decode_publisher_records(records, b"P")
    assert [r.offset for r in got] == [0, 2, 6]
    assert got == [decode_record(r) for r in records if r.offset in (0, 2, 6)]
    assert got[1].deleted_event_id == "E:P-1" and got[1].event is None
