"""DateTime.* helpers (Handlebars.Net.Helpers DateTimeHelpers): Now, UtcNow, Format, Parse, ParseExact, Add*.

The clock is read only by Now and UtcNow, through ``CLOCK`` (tests pin it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hub_stream.templating.net_helpers.core import net_helper, net_text
from hub_stream.templating.net_helpers.dates import (
    LOCAL,
    TICKS_PER_DAY,
    TICKS_PER_SECOND,
    UTC_KIND,
    NetDateTime,
    add_months,
    add_ticks,
    format_datetime,
    from_datetime,
    parse_datetime,
    parse_exact,
    try_parse_datetime,
)
from hub_stream.templating.net_helpers.errors import HelperError

# The current time, timezone-aware; a test replaces it with a fixed one.
CLOCK: list[Callable[[], datetime]] = [lambda: datetime.now(UTC)]


def _now(kind: str, fmt: str | None) -> Any:
    now = from_datetime(CLOCK[0](), kind)  # local time is UTC here
    return now if fmt is None else format_datetime(now, fmt)


def _format(value: Any, fmt: str | None) -> str:
    if isinstance(value, NetDateTime):
        return format_datetime(value, fmt)
    if isinstance(value, str):
        parsed = try_parse_datetime(value)
        return format_datetime(parsed, fmt) if parsed is not None else ""
    return ""


def _date(value: Any, fmt: str | None) -> NetDateTime:
    """GetDateTimeNonNullable: a DateTime, or text read by Parse (no format) or ParseExact."""
    if value is None:
        raise HelperError("must not be null", "value")
    if isinstance(value, NetDateTime):
        return value
    text = value if isinstance(value, str) else net_text(value)
    assert text is not None
    return parse_exact(text, fmt) if fmt else parse_datetime(text)


_UNITS = {
    "days": TICKS_PER_DAY,
    "hours": 3600 * TICKS_PER_SECOND,
    "minutes": 60 * TICKS_PER_SECOND,
    "seconds": TICKS_PER_SECOND,
    "milliseconds": 10_000,
    "ticks": 1,
}


def _add(value: Any, increment: int, part: str | None, fmt: str | None) -> NetDateTime:
    moment = _date(value, fmt)
    if part == "years":
        return add_months(moment, 12 * increment)
    if part == "months":
        return add_months(moment, increment)
    if part in _UNITS:
        return add_ticks(moment, increment * _UNITS[part])
    raise HelperError("must be one of years, months, days, hours, minutes, seconds, milliseconds or ticks", "datePart")


net_helper("DateTime.Now", "format:text?")(lambda fmt: _now(LOCAL, fmt))
net_helper("DateTime.UtcNow", "format:text?")(lambda fmt: _now(UTC_KIND, fmt))
net_helper("DateTime.Format", "value:value format:text")(_format)
net_helper("DateTime.Parse", "value:text")(lambda text: parse_datetime(text if text is not None else ""))
net_helper("DateTime.ParseExact", "value:text format:text")(lambda text, fmt: parse_exact(text or "", fmt or ""))
net_helper("DateTime.Add", "value:value increment:int datePart:text format:text?")(_add)


def _adder(part: str) -> Callable[[Any, int, str | None], NetDateTime]:
    return lambda value, increment, fmt: _add(value, increment, part, fmt)


for _part in ("Years", "Months", "Days", "Hours", "Minutes", "Seconds", "Milliseconds", "Ticks"):
    net_helper(f"DateTime.Add{_part}", "value:value increment:int format:text?")(_adder(_part.lower()))
