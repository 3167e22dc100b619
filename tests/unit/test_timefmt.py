from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.timefmt import format_utc, from_millis, parse_utc, to_millis


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T08:00:00Z", "2026-11-22T08:00:00.000Z"),
        ("2026-11-22T08:00:00.1234z", "2026-11-22T08:00:00.123Z"),
        ("2026-11-22T10:00:00+02:00", "2026-11-22T08:00:00.000Z"),
        ("2026-11-22T08:00:00", "2026-11-22T08:00:00.000Z"),  # no offset: UTC
        ("2026-11-22", "2026-11-22T00:00:00.000Z"),
    ],
)
def test_parse_then_format(text: str, expected: str) -> None:
    assert format_utc(parse_utc(text)) == expected


@pytest.mark.parametrize("bad", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-22T25:00Z"])
def test_bad_timestamps_name_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_utc(bad)


def test_format_converts_other_zones_and_naive() -> None:
    assert format_utc(datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-01-01T00:00:00.000Z"
    assert format_utc(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000Z"


def test_millis_round_trip() -> None:
    moment = datetime(2026, 11, 22, 8, 0, 0, 123000, tzinfo=UTC)
    assert from_millis(to_millis(moment)) == moment
