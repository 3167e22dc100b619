"""Timestamps as the contract wants them.

Input: ISO 8601 with ``Z`` or an offset; a value with no offset is UTC.
Output: always UTC, millisecond precision, ``Z`` suffix (``2026-11-22T08:00:00.000Z``).
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_utc(moment: datetime) -> str:
    """``moment`` in UTC, milliseconds, ``Z`` (a naive value is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_utc(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text; raises ValueError naming the value."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1:] in "zZ" else raw)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # such as 0001-01-01T00:00:00+01:00: before year 1 in UTC
        raise ValueError(f"not a timestamp the hub can hold in UTC: {text!r}") from None


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_millis(moment: datetime) -> int:
    """Epoch milliseconds (Kafka record timestamps)."""
    return int(moment.timestamp() * 1000)


def from_millis(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def utc_now_text() -> str:
    """Now, formatted as the contract wants."""
    return format_utc(utc_now())
