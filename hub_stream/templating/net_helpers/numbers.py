""".NET numbers for the helpers: parsing (NumberStyles.Any), printing and format strings, invariant culture.

Integers are 64-bit (``long``): arithmetic on them wraps as C#'s unchecked
arithmetic does, and a JSON integer beyond 64 bits is taken as a double, so
no helper ever works on an unbounded Python integer.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from hub_stream.templating.net_helpers.errors import HelperError, kind_of
from hub_stream.templating.values import UNDEFINED

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_NUMBER_TEXT = 400
MAX_PRECISION = 100  # .NET allows precision specifiers up to 999,999,999: far more text than a row needs
_EXACT = Context(prec=2000)  # every double is exact in fewer digits than this

Number = int | float


def wrap64(value: int) -> int:
    """C#'s unchecked ``long`` arithmetic: the result modulo 2**64."""
    return ((value - INT64_MIN) % 2**64) + INT64_MIN


# --- parsing -------------------------------------------------------------------

_NUMBER = re.compile(r"(\d[\d,]*)?(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_SPECIAL = {"nan": math.nan, "infinity": math.inf, "∞": math.inf, "-infinity": -math.inf, "-∞": -math.inf, "+infinity": math.inf}


def parse_number(text: str) -> Number | None:
    """int.TryParse, then long, then double with NumberStyles.Any (invariant); None when it is no number.

    Allowed as .NET allows them: surrounding white space, a leading or trailing
    sign, parentheses for a negative number, the currency sign ¤, thousands
    separators, a decimal point, an exponent. A value with no fraction that
    fits 64 bits is an int, anything else a float.
    """
    s = text.strip()
    if not s or len(s) > MAX_NUMBER_TEXT:
        return None
    special = _SPECIAL.get(s.lower())
    if special is not None:
        return special
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1].strip()
    s = s.replace("¤", "").strip()
    if s[:1] in "+-" and s[:1]:
        negative, s = (negative != (s[0] == "-")), s[1:].lstrip()
    elif s[-1:] in ("+", "-"):
        negative, s = (negative != (s[-1] == "-")), s[:-1].rstrip()
    m = _NUMBER.fullmatch(s)
    if m is None or not (m.group(1) or m.group(2)):
        return None
    digits = (m.group(1) or "0").replace(",", "") + "." + (m.group(2) or "") + "e" + (m.group(3) or "0")
    if len(m.group(3) or "") > 6:  # an exponent of a million digits or more: 0 or infinity as a double
        value = float(digits)
        return -value if negative else value
    exact = Decimal(digits)
    if exact == exact.to_integral_value() and abs(exact) <= INT64_MAX + (1 if negative else 0):
        whole = int(exact)
        return -whole if negative else whole
    value = float(exact)
    return -value if negative else value


def to_operand(value: Any, argument: str) -> Number:
    """ArgumentsParser.ParseAsIntLongOrDouble: a number, or the text of one; null is 0."""
    if value is None or value is UNDEFINED:
        return 0
    if isinstance(value, bool):
        raise HelperError(f"{'True' if value else 'False'} cannot be converted to an int, long or double", argument)
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return value
        return float(value) if abs(value) < 2**1024 else (math.inf if value > 0 else -math.inf)
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        parsed = parse_number(value)
        if parsed is None:
            raise HelperError(f"{value[:40]!r} cannot be converted to an int, long or double", argument)
        return parsed
    raise HelperError(f"expected a number, got {kind_of(value)}", argument)


def to_double(value: Any, argument: str) -> float:
    """Convert.ToDouble: numbers, their text, booleans (1 and 0); null is 0."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    number = to_operand(value, argument)
    try:
        return float(number)
    except OverflowError:  # pragma: no cover - ints here fit 64 bits
        raise HelperError("number too large", argument) from None


# --- printing ------------------------------------------------------------------


def _digits(value: float) -> tuple[str, int]:
    """The shortest round-trip digits of abs(value) and its decimal exponent (d.ddd × 10^exp)."""
    text = repr(abs(value))
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    if frac == "0":
        frac = ""
    digits = (whole + frac).lstrip("0")
    exponent = int(exp or 0) + len(whole) - 1
    if not digits:
        return "0", 0
    leading_zeros = len(whole + frac) - len((whole + frac).lstrip("0"))
    exponent -= leading_zeros
    return digits.rstrip("0") or "0", exponent


def _scientific(negative: bool, digits: str, exponent: int, min_exp_digits: int, e: str = "E") -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if exponent < 0 else "+"
    return f"{'-' if negative else ''}{mantissa}{e}{sign}{abs(exponent):0{min_exp_digits}d}"


def _general(value: float, digits: str, exponent: int, precision: int) -> str:
    """.NET 'G': fixed point when -5 < exponent < precision, else d.dddE+xx."""
    negative = math.copysign(1.0, value) < 0
    if exponent >= precision or exponent <= -5:
        return _scientific(negative, digits, exponent, 2)
    if exponent < 0:
        text = "0." + "0" * (-exponent - 1) + digits
    elif len(digits) <= exponent + 1:
        text = digits + "0" * (exponent + 1 - len(digits))
    else:
        text = digits[: exponent + 1] + "." + digits[exponent + 1 :]
    return ("-" if negative else "") + text


def double_text(value: float) -> str:
    """``double.ToString()`` on .NET Core 3.0 and later: shortest round-trip, 1E+15, 1E-05, -0."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits, exponent = _digits(value)
    return _general(value, digits, exponent, 15)


def number_text(value: Number) -> str:
    return double_text(value) if isinstance(value, float) else str(value)


# --- format strings ------------------------------------------------------------

_STANDARD = re.compile(r"([CcDdEeFfGgNnPpRrXx])(\d{0,9})")


def _exact(value: Number) -> Decimal:
    return Decimal(value) if isinstance(value, int) else _EXACT.create_decimal_from_float(value)


def _fixed(value: Number, decimals: int) -> str:
    """abs(value) with ``decimals`` digits after the point, ties away from zero (as .NET rounds)."""
    quantum = Decimal(1).scaleb(-decimals)
    rounded = abs(_exact(value)).quantize(quantum, rounding=ROUND_HALF_UP, context=_EXACT)
    return f"{rounded:f}"


def _group(whole: str) -> str:
    head = len(whole) % 3 or 3
    return ",".join([whole[:head]] + [whole[i : i + 3] for i in range(head, len(whole), 3)])


def _is_negative(value: Number) -> bool:
    """.NET Core 3.0 and later print the sign of a negative value that rounds to zero (-0.00)."""
    return value < 0 or (isinstance(value, float) and math.copysign(1.0, value) < 0)


def format_number(value: Number, fmt: str) -> str:
    """``value.ToString(fmt, CultureInfo.InvariantCulture)`` for a standard or custom numeric format."""
    if isinstance(value, float) and not math.isfinite(value):
        return double_text(value)
    m = _STANDARD.fullmatch(fmt)
    if m is None:
        return _custom(value, fmt)
    letter, digits = m.group(1), m.group(2)
    precision = int(digits) if digits else None
    if precision is not None and precision > MAX_PRECISION:
        raise HelperError(f"precision {precision} in format {fmt!r} is larger than {MAX_PRECISION}")
    kind = letter.upper()
    if kind in ("R", "G") and precision in (None, 0):
        return number_text(value)
    if kind == "G":
        assert precision is not None
        exact = _exact(value)
        if not exact:
            return "0"
        rounded = abs(exact).quantize(Decimal(1).scaleb(abs(exact).adjusted() - precision + 1), rounding=ROUND_HALF_UP, context=_EXACT)
        digits_text = "".join(map(str, rounded.as_tuple().digits)).rstrip("0") or "0"
        text = _general(-1.0 if exact < 0 else 1.0, digits_text, rounded.adjusted(), precision)
        return text.replace("E", "e") if letter == "g" else text
    if kind in ("D", "X"):
        if not isinstance(value, int):
            raise HelperError(f"format {fmt!r} is for whole numbers only")
        if kind == "X":
            text = format(value & (2**64 - 1) if value < 0 else value, "X" if letter == "X" else "x")
            return text.rjust(precision or 0, "0")
        return ("-" if value < 0 else "") + str(abs(value)).rjust(precision or 0, "0")
    if kind == "E":
        exact = abs(_exact(value))
        p = 6 if precision is None else precision
        if exact:
            rounded = exact.quantize(Decimal(1).scaleb(exact.adjusted() - p), rounding=ROUND_HALF_UP, context=_EXACT)
            exponent = rounded.adjusted()
            digits_text = "".join(map(str, rounded.as_tuple().digits))[: p + 1].ljust(p + 1, "0")
        else:
            exponent, digits_text = 0, "0" * (p + 1)
        mantissa = digits_text[0] + ("." + digits_text[1:] if p else "")
        negative = _is_negative(value)
        return f"{'-' if negative else ''}{mantissa}{letter}{'-' if exponent < 0 else '+'}{abs(exponent):03d}"
    scale = 100 if kind == "P" else 1
    decimals = 2 if precision is None else precision
    text = _fixed(value * scale, decimals)
    negative = _is_negative(value)
    if kind in ("N", "C", "P"):
        whole, _, frac = text.partition(".")
        text = _group(whole) + ("." + frac if frac else "")
    if kind == "C":
        return f"(¤{text})" if negative else f"¤{text}"
    if kind == "P":
        text += " %"
    return ("-" if negative else "") + text


# --- custom numeric formats ------------------------------------------------------


def _sections(fmt: str) -> list[str]:
    sections, current, quote, i = [], "", "", 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "\\" and i + 1 < len(fmt):
            current += fmt[i : i + 2]
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            sections.append(current)
            current = ""
            i += 1
            continue
        current += ch
        i += 1
    sections.append(current)
    return sections


def _tokens(section: str) -> list[tuple[str, str]]:
    """('digit', '0'|'#'), ('point', '.'), ('comma', ','), ('percent', '%'|'‰') or ('text', literal)."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(section):
        ch = section[i]
        if ch == "\\" and i + 1 < len(section):
            out.append(("text", section[i + 1]))
            i += 2
            continue
        if ch in "'\"":
            end = section.find(ch, i + 1)
            end = len(section) if end < 0 else end
            out.append(("text", section[i + 1 : end]))
            i = end + 1
            continue
        kind = {"0": "digit", "#": "digit", ".": "point", ",": "comma", "%": "percent", "‰": "percent"}.get(ch, "text")
        out.append((kind, ch))
        i += 1
    return out


def _custom(value: Number, fmt: str) -> str:
    """A custom numeric format: 0 and # placeholders, '.', ',' (grouping and scaling), % and ‰, literals, sections."""
    sections = _sections(fmt)
    chosen = sections[0]
    negative_section = False
    if len(sections) >= 2 and _is_negative(value) and sections[1]:
        chosen, negative_section = sections[1], True
    elif len(sections) >= 3 and value == 0 and sections[2]:
        chosen = sections[2]
    tokens = _tokens(chosen)
    point = next((i for i, (k, _) in enumerate(tokens) if k == "point"), len(tokens))
    int_tokens, frac_tokens = tokens[:point], tokens[point + 1 :]
    # Commas right after the last placeholder of the whole part divide by 1000 each;
    # a comma between placeholders turns grouping on.
    last_digit = max((i for i, (k, _) in enumerate(int_tokens) if k == "digit"), default=-1)
    j = last_digit + 1
    while j < len(int_tokens) and int_tokens[j][0] == "comma":
        j += 1
    scale_commas = j - last_digit - 1
    grouping = any(k == "comma" for k, _ in int_tokens[:last_digit])
    int_tokens = [t for t in int_tokens[: last_digit + 1] if t[0] != "comma"] + int_tokens[j:]
    exact = _exact(value)
    for kind, ch in tokens:
        if kind == "percent":
            exact *= 100 if ch == "%" else 1000
    exact /= Decimal(1000) ** scale_commas
    frac_places = [ch for k, ch in frac_tokens if k == "digit"]
    rounded = abs(exact).quantize(Decimal(1).scaleb(-len(frac_places)), rounding=ROUND_HALF_UP, context=_EXACT)
    whole, _, frac = f"{rounded:f}".partition(".")
    whole = whole.lstrip("0")
    min_whole = sum(1 for k, ch in int_tokens if k == "digit" and ch == "0")
    first_zero = next((i for i, (k, ch) in enumerate(int_tokens) if k == "digit" and ch == "0"), None)
    if first_zero is not None:
        min_whole = sum(1 for k, _ in int_tokens[first_zero:] if k == "digit")
    whole = whole.rjust(min_whole, "0")
    if grouping and whole:
        whole = _group(whole)
    # Fraction: placeholders up to the last '0' always print; '#' beyond it drop trailing zeros.
    last_zero = max((i for i, ch in enumerate(frac_places) if ch == "0"), default=-1)
    frac = frac.rstrip("0").ljust(last_zero + 1, "0") if frac else ""
    # Put the digits in the places of the placeholders: the whole part from the right, extra digits first.
    out: list[str] = []
    digit_slots = [i for i, (k, _) in enumerate(int_tokens) if k == "digit"]
    pieces = [""] * len(int_tokens)
    if digit_slots:
        chars = list(whole)
        for slot in reversed(digit_slots[1:]):
            pieces[slot] = chars.pop() if chars else ""
            while chars and chars[-1] == ",":
                pieces[slot] = chars.pop() + pieces[slot]
        pieces[digit_slots[0]] = "".join(chars)
    for i, (kind, ch) in enumerate(int_tokens):
        out.append(pieces[i] if kind == "digit" else ch)
    if frac:
        out.append(".")
    frac_iter = iter(frac)
    for kind, ch in frac_tokens:
        if kind == "digit":
            out.append(next(frac_iter, ""))
        elif kind != "point":
            out.append(ch)
    text = "".join(out)
    if _is_negative(value) and not negative_section:
        text = "-" + text
    return text

