""".NET DateTime for the helpers: a value that prints as Handlebars.Net prints one, parsing, format strings.

A DateTime is kept as .NET keeps it: ticks (100 ns) since 0001-01-01 and a
kind (Unspecified, Utc or Local). The service's local time zone is UTC, so a
Local value has the offset +00:00. ``NetDateTime`` is text (the round-trip
"o" form Handlebars.Net prints, 2020-04-15T23:59:58.0000000) that also holds
its ticks and kind, so the DateTime helpers can take it back without parsing.
Culture: invariant (month names in English, MM/dd/yyyy).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hub_stream.templating.net_helpers.errors import HelperError

TICKS_PER_SECOND = 10_000_000
TICKS_PER_DAY = 86_400 * TICKS_PER_SECOND
MAX_TICKS = 3_155_378_975_999_999_999  # 9999-12-31T23:59:59.9999999
_EPOCH = datetime(1, 1, 1)
MAX_FORMAT = 256

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

UNSPECIFIED, UTC_KIND, LOCAL = "Unspecified", "Utc", "Local"


class NetDateTime(str):
    """A DateTime: prints in the round-trip form; ``ticks`` and ``kind`` are the value."""

    ticks: int
    kind: str

    def __new__(cls, ticks: int, kind: str = UNSPECIFIED) -> NetDateTime:  # noqa: PYI034 - final
        if not 0 <= ticks <= MAX_TICKS:
            raise HelperError("the date is outside the range 0001-01-01 to 9999-12-31")
        self = super().__new__(cls, format_datetime_parts(ticks, kind, "o"))
        self.ticks = ticks
        self.kind = kind
        return self


def from_datetime(moment: datetime, kind: str = UNSPECIFIED, extra_ticks: int = 0) -> NetDateTime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    delta = moment - _EPOCH
    ticks = (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10 + extra_ticks
    return NetDateTime(ticks, kind)


def to_datetime(ticks: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ticks // 10)


# --- arithmetic ------------------------------------------------------------------


def add_ticks(value: NetDateTime, ticks: int) -> NetDateTime:
    return NetDateTime(value.ticks + ticks, value.kind)


def add_months(value: NetDateTime, months: int) -> NetDateTime:
    """DateTime.AddMonths: the day is kept, or the month's last day when the month is shorter."""
    moment = to_datetime(value.ticks)
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise HelperError("the date is outside the range 0001-01-01 to 9999-12-31")
    month += 1
    last_day = calendar.monthrange(year, month)[1]
    day = min(moment.day, last_day)
    time_ticks = value.ticks % TICKS_PER_DAY
    return from_datetime(datetime(year, month, day), value.kind, time_ticks)


# --- formatting ------------------------------------------------------------------

STANDARD = {
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "m": "MMMM dd",
    "M": "MMMM dd",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "U": "dddd, dd MMMM yyyy HH:mm:ss",
    "y": "yyyy MMMM",
    "Y": "yyyy MMMM",
}

# A run of one pattern letter, a quoted literal, an escaped character, or any other character.
_TOKEN = re.compile(r"(d+|f+|F+|g+|h+|H+|K|m+|M+|s+|t+|y+|z+)|'([^']*)'?|\"([^\"]*)\"?|\\(.)|%(?=.)|(.)", re.DOTALL)


def _offset(kind: str) -> str:
    return "" if kind == UNSPECIFIED else ("Z" if kind == UTC_KIND else "+00:00")


def _field(run: str, ticks: int, moment: datetime, kind: str, out: list[str]) -> None:
    letter, n = run[0], len(run)
    fraction = ticks % TICKS_PER_SECOND
    if letter == "d":
        out.append(str(moment.day).zfill(n) if n <= 2 else (DAYS[moment.weekday()][:3] if n == 3 else DAYS[moment.weekday()]))
    elif letter in "fF":
        if n > 7:
            raise HelperError(f"'{run}' in a date format: at most 7 fraction digits")
        digits = str(fraction).zfill(7)[:n]
        if letter == "F":
            digits = digits.rstrip("0")
            if not digits and out and out[-1].endswith("."):
                out[-1] = out[-1][:-1]  # .NET drops the point before an empty F
        out.append(digits)
    elif letter == "g":
        out.append("A.D.")
    elif letter == "h":
        out.append(str(moment.hour % 12 or 12).zfill(min(n, 2)))
    elif letter == "H":
        out.append(str(moment.hour).zfill(min(n, 2)))
    elif letter == "K":
        out.append(_offset(kind))
    elif letter == "m":
        out.append(str(moment.minute).zfill(min(n, 2)))
    elif letter == "M":
        out.append(str(moment.month).zfill(n) if n <= 2 else (MONTHS[moment.month - 1][:3] if n == 3 else MONTHS[moment.month - 1]))
    elif letter == "s":
        out.append(str(moment.second).zfill(min(n, 2)))
    elif letter == "t":
        out.append(("AM" if moment.hour < 12 else "PM")[: 1 if n == 1 else 2])
    elif letter == "y":
        out.append(str(moment.year % 100).zfill(n) if n <= 2 else str(moment.year).zfill(n))
    elif letter == "z":
        out.append("+0" if n == 1 else "+00" if n == 2 else "+00:00")


def format_datetime_parts(ticks: int, kind: str, fmt: str) -> str:
    """``DateTime.ToString(fmt, CultureInfo.InvariantCulture)``."""
    if not fmt:
        fmt = "G"
    if len(fmt) > MAX_FORMAT:
        raise HelperError(f"a date format longer than {MAX_FORMAT} characters")
    if len(fmt) == 1:
        if fmt not in STANDARD:
            raise HelperError(f"{fmt!r} is not a standard date format")
        if fmt in "rRuU" and kind == LOCAL:
            kind = UTC_KIND  # local time is UTC here: no shift
        fmt = STANDARD[fmt]
    moment = to_datetime(ticks)
    out: list[str] = []
    for m in _TOKEN.finditer(fmt):
        run, single, double, escaped, other = m.groups()
        if run:
            _field(run, ticks, moment, kind, out)
        elif single is not None or double is not None:
            out.append(single if single is not None else double)
        elif escaped is not None:
            out.append(escaped)
        elif other is not None:
            out.append(other)  # ':' and '/' are ':' and '/' in the invariant culture
    return "".join(out)


def format_datetime(value: NetDateTime, fmt: str | None) -> str:
    return format_datetime_parts(value.ticks, value.kind, fmt or "")


# --- parsing ---------------------------------------------------------------------

_MONTH = "|".join(m[:3] for m in MONTHS)
_TIME = r"(?P<h>\d{1,2})(?::(?P<mi>\d{1,2})(?::(?P<s>\d{1,2})(?:\.(?P<f>\d{1,7})\d*)?)?)?\s*(?P<ampm>[AaPp][Mm])?"
_ZONE = r"\s*(?P<z>Z|GMT|UTC|[+-]\d{2}(?::?\d{2})?)?"
_PATTERNS = [
    re.compile(r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})(?:[T ]\s*" + _TIME + r")?" + _ZONE, re.IGNORECASE),
    re.compile(r"(?P<y>\d{4})/(?P<mo>\d{1,2})/(?P<d>\d{1,2})(?:\s+" + _TIME + r")?" + _ZONE, re.IGNORECASE),
    re.compile(r"(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})(?:\s+" + _TIME + r")?" + _ZONE, re.IGNORECASE),
    re.compile(r"(?:[A-Za-z]{3,9},?\s+)?(?P<d>\d{1,2})\s+(?P<mn>" + _MONTH + r")[a-z]*\.?,?\s+(?P<y>\d{4})(?:\s+" + _TIME + r")?" + _ZONE, re.IGNORECASE),
    re.compile(r"(?:[A-Za-z]{3,9},?\s+)?(?P<mn>" + _MONTH + r")[a-z]*\.?\s+(?P<d>\d{1,2}),?\s+(?P<y>\d{4})(?:\s+" + _TIME + r")?" + _ZONE, re.IGNORECASE),
]
_TIME_FIRST = re.compile(_TIME + r"\s+(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})" + _ZONE, re.IGNORECASE)
MAX_DATE_TEXT = 100


def _build(parts: dict[str, str | None], text: str) -> NetDateTime:
    try:
        month = int(parts["mo"]) if parts.get("mo") else [m[:3].lower() for m in MONTHS].index((parts["mn"] or "")[:3].lower()) + 1
        hour = int(parts.get("h") or 0)
        ampm = (parts.get("ampm") or "").upper()
        if ampm:
            if not 1 <= hour <= 12:
                raise ValueError("hour")
            hour = hour % 12 + (12 if ampm == "PM" else 0)
        moment = datetime(int(parts["y"] or 0), month, int(parts["d"] or 0), hour, int(parts.get("mi") or 0), int(parts.get("s") or 0))
    except (ValueError, TypeError):
        raise HelperError(f"{text[:40]!r} is not a valid date") from None
    fraction = int((parts.get("f") or "").ljust(7, "0") or 0)
    zone = (parts.get("z") or "").upper()
    if not zone:
        return from_datetime(moment, UNSPECIFIED, fraction)
    offset = 0
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 60 + int(digits[2:4] or 0)
        offset = -offset if zone[0] == "-" else offset
    # .NET turns a time with a zone into local time (UTC here).
    return from_datetime(moment - timedelta(minutes=offset), LOCAL, fraction)


def parse_datetime(text: str) -> NetDateTime:
    """DateTime.Parse (invariant culture) for the usual forms: ISO 8601, MM/dd/yyyy, yyyy/MM/dd,
    "15 April 2020", "April 15, 2020", RFC 1123; each with an optional time (12 or 24 hours) and zone."""
    s = text.strip()
    if len(s) <= MAX_DATE_TEXT:
        for pattern in _PATTERNS:
            m = pattern.fullmatch(s)
            if m is not None:
                return _build(m.groupdict(), text)
        m = re.fullmatch(r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})\s+(?P<h>\d{1,2})\s*(?P<ampm>[AaPp][Mm])", s)
        if m is not None:
            return _build(m.groupdict(), text)
        m = _TIME_FIRST.fullmatch(s)  # "1:15:30 2000-02-01": .NET takes the time before the date too
        if m is not None:
            return _build(m.groupdict(), text)
    raise HelperError(f"{text[:40]!r} is not a date DateTime.Parse reads here")


def try_parse_datetime(text: str) -> NetDateTime | None:
    try:
        return parse_datetime(text)
    except HelperError:
        return None


_EXACT_FIELDS = {
    "yyyy": r"(?P<y>\d{4})", "yyy": r"(?P<y>\d{3,4})", "yy": r"(?P<yy>\d{2})", "y": r"(?P<yy>\d{1,2})",
    "MMMM": r"(?P<mn>" + "|".join(MONTHS) + ")", "MMM": r"(?P<mn>" + _MONTH + ")", "MM": r"(?P<mo>\d{2})", "M": r"(?P<mo>\d{1,2})",
    "dddd": r"(?:" + "|".join(DAYS) + ")", "ddd": r"(?:" + "|".join(d[:3] for d in DAYS) + ")", "dd": r"(?P<d>\d{2})", "d": r"(?P<d>\d{1,2})",
    "HH": r"(?P<h>\d{2})", "H": r"(?P<h>\d{1,2})", "hh": r"(?P<h12>\d{2})", "h": r"(?P<h12>\d{1,2})",
    "mm": r"(?P<mi>\d{2})", "m": r"(?P<mi>\d{1,2})", "ss": r"(?P<s>\d{2})", "s": r"(?P<s>\d{1,2})",
    "tt": r"(?P<ampm>AM|PM)", "t": r"(?P<ap>A|P)", "K": r"(?P<z>Z|[+-]\d{2}:\d{2})?",
    "zzz": r"(?P<z>[+-]\d{2}:\d{2})", "zz": r"(?P<z>[+-]\d{2})", "z": r"(?P<z>[+-]\d{1,2})",
}


def parse_exact(text: str, fmt: str) -> NetDateTime:
    """DateTime.ParseExact (invariant culture) with a custom or standard format."""
    if not fmt:
        raise HelperError("the format is empty")
    if len(fmt) == 1:
        if fmt not in STANDARD:
            raise HelperError(f"{fmt!r} is not a standard date format")
        fmt = STANDARD[fmt]
    if len(fmt) > MAX_FORMAT or len(text) > MAX_FORMAT:
        raise HelperError(f"date and format must be at most {MAX_FORMAT} characters")
    pattern: list[str] = []
    seen: set[str] = set()
    for m in _TOKEN.finditer(fmt):
        run, single, double, escaped, other = m.groups()
        if run:
            if run[0] in "fF":
                group = f"(?P<f>\\d{{{len(run)}}})" if run[0] == "f" else f"(?P<f>\\d{{0,{len(run)}}})"
            else:
                group = _EXACT_FIELDS.get(run) or _EXACT_FIELDS.get(run[: 4 if run[0] in "yMd" else 2], "")
            name = re.search(r"\?P<(\w+)>", group)
            if name is not None and name.group(1) in seen:
                raise HelperError(f"{fmt!r} names a date field twice")
            if name is not None:
                seen.add(name.group(1))
            pattern.append(group)
        else:
            literal = single if single is not None else double if double is not None else escaped if escaped is not None else other
            pattern.append(re.escape(literal or ""))
    m = re.fullmatch("".join(pattern), text, re.IGNORECASE)
    if m is None:
        raise HelperError(f"{text[:40]!r} does not have the format {fmt[:40]!r}")
    parts: dict[str, Any] = dict(m.groupdict())
    if parts.get("yy") and not parts.get("y"):
        yy = int(parts["yy"])
        parts["y"] = str(2000 + yy if yy < 50 else 1900 + yy)  # the invariant calendar's two-digit year window (2049)
    if parts.get("h12"):
        parts["h"] = parts["h12"]
        if parts.get("ap"):
            parts["ampm"] = parts["ap"] + "M"
    if parts.get("y") is None:
        parts["y"] = "1"
    parts.setdefault("d", None)
    parts["d"] = parts.get("d") or "1"
    if not parts.get("mo") and not parts.get("mn"):
        parts["mo"] = "1"
    return _build(parts, text)
