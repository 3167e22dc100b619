"""String.* helpers (Handlebars.Net.Helpers StringHelpers): same names, argument order and results.

Lengths and positions count code points where .NET counts UTF-16 units, so
no helper ever splits a character outside the Basic Multilingual Plane.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from hub_stream.templating.net_helpers.core import net_helper, net_text
from hub_stream.templating.net_helpers.dates import NetDateTime, format_datetime
from hub_stream.templating.net_helpers.errors import HelperError, check_length
from hub_stream.templating.net_helpers.numbers import format_number
from hub_stream.templating.values import UNDEFINED

# .NET's white space (char.IsWhiteSpace) for Trim and Split on white space.
_NET_SPACE = "".join(chr(c) for c in [*range(9, 14), 32, 133, 160, 5760, *range(8192, 8203), 8232, 8233, 8239, 8287, 12288])
_WORDS = re.compile(f"[^{re.escape(_NET_SPACE)}]+")


def _need(value: Any, argument: str) -> Any:
    if value is None:
        raise HelperError("must not be null", argument)
    return value


@net_helper("String.Append", "value:text append:text")
def append(value: str | None, tail: str | None) -> str | None:
    if not value:
        return tail
    if not tail:
        return value
    check_length(len(value) + len(tail))
    return value + tail


@net_helper("String.Concat", "value:text append:text")
def concat(value: str | None, tail: str | None) -> str | None:
    return append(value, tail)


@net_helper("String.Base64Decode", "value:text")
def base64_decode(value: str | None) -> str:
    try:
        raw = base64.b64decode(_need(value, "value").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise HelperError("is not valid Base64", "value") from None
    return raw.decode("utf-8", "replace")


@net_helper("String.Base64Encode", "value:text")
def base64_encode(value: str | None) -> str:
    text = _need(value, "value")
    check_length(len(text) * 4 // 3 + 4)
    return base64.b64encode(text.encode("utf-8", "replace")).decode("ascii")


@net_helper("String.Camelcase", "value:text")
def camelcase(value: str | None) -> str | None:
    if not value or len(value) < 2:
        return value
    words = _WORDS.findall(value)
    if not words:
        return ""
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])


@net_helper("String.Pascalcase", "value:text")
def pascalcase(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) < 2:
        return value.upper()
    return "".join(w[:1].upper() + w[1:] for w in _WORDS.findall(value))


@net_helper("String.Capitalize", "value:text")
def capitalize(value: str | None) -> str | None:
    return value[:1].upper() + value[1:] if value else value


@net_helper("String.Coalesce", "arguments:value*")
def coalesce(arguments: list[Any]) -> Any:
    for arg in arguments:
        if arg is None or arg is UNDEFINED:
            continue
        if isinstance(arg, str):
            if arg.strip(_NET_SPACE):
                return arg
            continue
        return arg
    return None


@net_helper("String.Contains", "value:text test:text")
def contains(value: str | None, test: str | None) -> bool:
    return _need(test, "test") in _need(value, "value")


def _cut(value: str | None, length: int, suffix: str) -> str | None:
    if length < 0:
        raise HelperError("must not be negative", "length")
    if not value or len(value) <= length:
        return value
    return value[:length] + suffix


net_helper("String.Ellipsis", "value:text length:int")(lambda value, length: _cut(value, length, "..."))
net_helper("String.Truncate", "value:text length:int")(lambda value, length: _cut(value, length, ""))


# StringComparison: CurrentCulture, CurrentCultureIgnoreCase, InvariantCulture,
# InvariantCultureIgnoreCase, Ordinal, OrdinalIgnoreCase (0..5).
_COMPARISONS = ["CurrentCulture", "CurrentCultureIgnoreCase", "InvariantCulture", "InvariantCultureIgnoreCase", "Ordinal", "OrdinalIgnoreCase"]


def _ignore_case(comparison: Any) -> bool | None:
    """Whether a StringComparison given by name or number ignores case; None when there is none."""
    if comparison is None or comparison is UNDEFINED or isinstance(comparison, bool):
        return None
    if isinstance(comparison, int) and 0 <= comparison < len(_COMPARISONS):
        return comparison % 2 == 1
    if isinstance(comparison, str):
        text = comparison.strip()
        if text in _COMPARISONS:
            return _COMPARISONS.index(text) % 2 == 1
        if text.isdigit() and int(text) < len(_COMPARISONS):
            return int(text) % 2 == 1
    return None


def _equal(value: str | None, test: str | None, comparison: Any) -> bool:
    if _ignore_case(comparison) and value is not None and test is not None:
        return value.casefold() == test.casefold()
    return value == test


for _name in ("String.Equal", "String.Equals"):
    net_helper(_name, "value:text test:text stringComparisonType:value?")(_equal)
for _name in ("String.NotEqual", "String.NotEquals"):
    net_helper(_name, "value:text test:text stringComparisonType:value?")(lambda v, t, c: not _equal(v, t, c))


def format_value(value: Any, fmt: str | None) -> str:
    """String.Format: a DateTime or a number formatted, anything else as its text."""
    if value is None or value is UNDEFINED:
        return ""
    if isinstance(value, NetDateTime):
        return format_datetime(value, fmt)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value, fmt or "G")
    if isinstance(value, list | dict):
        raise HelperError("cannot format an array or an object", "value")
    return net_text(value) or ""


net_helper("String.Format", "value:value format:text")(format_value)

# WrappedString's markers (the library's WireMock integration strips them later).
_WRAP_START, _WRAP_END = "ϟЊҜߍ", "ߍҜЊϟ"


@net_helper("String.FormatAsString", "value:value format:text?")
def format_as_string(value: Any, fmt: str | None) -> str:
    return _WRAP_START + format_value(value, fmt or "") + _WRAP_END


@net_helper("String.ToWrappedString", "value:value")
def to_wrapped_string(value: Any) -> str:
    return format_as_string(value, None)


def html_decode(value: str | None) -> str:
    """The library's HtmlDecode: &#N; (1 to 5 digits), &quot; &amp; &lt; &gt; ; anything else stays."""
    if not value:
        return ""

    def one(m: re.Match[str]) -> str:
        number, name = m.group(1), m.group(2)
        if number is not None:
            code = int(number)
            return chr(code) if 0 < code < 65536 and not 0xD800 <= code < 0xE000 else m.group()
        return {"quot": '"', "amp": "&", "lt": "<", "gt": ">"}[name]

    return re.sub(r"&(?:#(\d{1,5});|(quot|amp|lt|gt);)", one, value)


def html_encode(value: str | None) -> str:
    """The library's HtmlEncode: " & ' < > and U+00A0..U+00FF as entities."""
    if not value:
        return ""
    out = "".join(
        {'"': "&quot;", "&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;"}.get(ch, f"&#{ord(ch)};" if "\xa0" <= ch <= "\xff" else ch)
        for ch in value
    )
    check_length(len(out))
    return out


net_helper("String.HtmlDecode", "value:text")(html_decode)
net_helper("String.HtmlEncode", "value:text")(html_encode)
net_helper("String.IsNotNullOrEmpty", "value:text")(lambda v: bool(v))
net_helper("String.IsNullOrEmpty", "value:text")(lambda v: not v)
net_helper("String.IsNotNullOrWhiteSpace", "value:text")(lambda v: bool(v and v.strip(_NET_SPACE)))
net_helper("String.IsNullOrWhiteSpace", "value:text")(lambda v: not (v and v.strip(_NET_SPACE)))
net_helper("String.IsString", "value:value")(lambda v: isinstance(v, str))


@net_helper("String.Join", "values:list separator:text?")
def join(values: list[Any] | None, separator: str | None) -> str:
    items = ["" if v is None or v is UNDEFINED else (net_text(v) if not isinstance(v, list | dict) else "") for v in _need(values, "values")]
    sep = separator or ""
    check_length(sum(len(i or "") for i in items) + len(sep) * max(len(items) - 1, 0))
    return sep.join(i or "" for i in items)


@net_helper("String.Lowercase", "value:text")
def lowercase(value: str | None) -> str | None:
    return value.lower() if value else value


@net_helper("String.Uppercase", "value:text")
def uppercase(value: str | None) -> str | None:
    return value.upper() if value else value


# The names before the library's 2020 rename, which the vendor's help pages still show.
net_helper("String.ToLower", "value:text")(lowercase)
net_helper("String.ToUpper", "value:text")(uppercase)


def _pad(value: str | None, width: int, pad: str | None, left: bool) -> str:
    text = _need(value, "value")
    if width < 0:
        raise HelperError("must not be negative", "totalWidth")
    check_length(width, "padded text")
    fill = pad[0] if pad else " "
    return text.rjust(width, fill) if left else text.ljust(width, fill)


net_helper("String.PadLeft", "value:text totalWidth:int padChar:text")(lambda v, w, p: _pad(v, w, p, True))
net_helper("String.PadRight", "value:text totalWidth:int padChar:text")(lambda v, w, p: _pad(v, w, p, False))


@net_helper("String.Prepend", "value:text pre:text")
def prepend(value: str | None, pre: str | None) -> str | None:
    if not value:
        return value
    check_length(len(value) + len(pre or ""))
    return (pre or "") + value


@net_helper("String.Replace", "value:text oldValue:text newValue:text")
def replace(value: str | None, old: str | None, new: str | None) -> str:
    text, old_text, new_text = _need(value, "value"), _need(old, "oldValue"), new or ""
    if old_text == "":
        raise HelperError("must not be empty", "oldValue")
    count = text.count(old_text)
    check_length(len(text) + count * (len(new_text) - len(old_text)))
    return text.replace(old_text, new_text)


@net_helper("String.Remove", "value:text oldValue:text")
def remove(value: str | None, old: str | None) -> str:
    return replace(value, old, "")


@net_helper("String.Repeat", "value:text count:int")
def repeat(value: str | None, count: int) -> str:
    if count < 0:
        raise HelperError("must not be negative", "count")
    text = value or ""
    check_length(len(text) * count, "repeated text")
    return text * count


@net_helper("String.Reverse", "value:text")
def reverse(value: str | None) -> str | None:
    return value[::-1] if value else value


@net_helper("String.First", "values:list")
def first(values: list[Any] | None) -> Any:
    items = _need(values, "values")
    return items[0] if items else None


@net_helper("String.Last", "values:list")
def last(values: list[Any] | None) -> Any:
    items = _need(values, "values")
    return items[-1] if items else None


@net_helper("String.Split", "value:text separator:text")
def split(value: str | None, separator: str | None) -> list[str]:
    text, sep = _need(value, "value"), _need(separator, "separator")
    if sep == "":  # .NET splits on white space when the separator is empty
        return re.split(f"[{re.escape(_NET_SPACE)}]", text)
    return text.split(sep)


@net_helper("String.StartsWith", "value:text test:text")
def starts_with(value: str | None, test: str | None) -> bool:
    return _need(value, "value").startswith(_need(test, "test"))


@net_helper("String.Substring", "value:text start:int end:int?")
def substring(value: str | None, start: int, length: int | None) -> str:
    text = _need(value, "value")
    if text == "":
        raise HelperError("must not be empty", "value")
    if not 0 <= start <= len(text):
        raise HelperError(f"{start} is outside the text (length {len(text)})", "start")
    if length is None:
        return text[start:]
    if length < 0 or start + length > len(text):
        raise HelperError(f"{length} characters from {start} run past the text (length {len(text)})", "end")
    return text[start : start + length]


@net_helper("String.Titlecase", "value:text")
def titlecase(value: str | None) -> str:
    tokens = [t for t in re.split("[ -]", _need(value, "value")) if t]
    return " ".join(t if t == t.upper() else t[:1].upper() + t[1:].lower() for t in tokens)


@net_helper("String.Trim", "value:text")
def trim(value: str | None) -> str | None:
    return value.strip(_NET_SPACE) if value else value


@net_helper("String.TrimEnd", "value:text")
def trim_end(value: str | None) -> str | None:
    return value.rstrip(_NET_SPACE) if value else value


@net_helper("String.TrimStart", "value:text")
def trim_start(value: str | None) -> str | None:
    return value.lstrip(_NET_SPACE) if value else value

