"""How a Handlebars.Net.Helpers helper is called: its arguments counted and converted, its block form, its errors.

Each helper is a Python function over JSON values registered under the
library's name (``String.Append``) with a parameter list such as
``"value:text append:text"``. The wrapper built here does what the library's
reflection layer does: it checks the number of arguments, gives missing ones
(and unresolved paths) the parameter type's default, and, when the helper is
used as a block, renders the body with the helper's result as its context,
or the ``{{else}}`` part when the result is ``false``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub_stream.templating.net_helpers.errors import HelperError, kind_of
from hub_stream.templating.net_helpers.numbers import double_text, parse_number
from hub_stream.templating.runtime import Options, TemplateRenderError
from hub_stream.templating.values import UNDEFINED, js_string

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# --- .NET's text of a value ----------------------------------------------------


def net_text(value: Any) -> str | None:
    """``value.ToString()`` as .NET prints it (True, 1.5, 1E+15); None for null."""
    if value is None or value is UNDEFINED:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return double_text(value)
    raise HelperError(f"expected text, got {kind_of(value)}")


def net_print(value: Any) -> Any:
    """What a mustache prints for a helper's result: booleans and numbers as .NET prints them."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return net_text(value)
    if isinstance(value, list):
        return [net_print(item) for item in value]
    return value


# --- parameters ----------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None or value is UNDEFINED else net_text(value)


def _value(value: Any) -> Any:
    return None if value is UNDEFINED else value


def _int(value: Any) -> int:
    """An ``int`` parameter (32 bits): a number with no fraction, or its text."""
    if value is None or value is UNDEFINED:
        return 0
    if isinstance(value, bool):
        raise HelperError("expected a whole number, got a boolean")
    number: Any = value
    if isinstance(value, str):
        number = parse_number(value)
        if number is None:
            raise HelperError(f"expected a whole number, got {value[:40]!r}")
    if isinstance(number, float):
        if not math.isfinite(number) or number != int(number):
            raise HelperError(f"expected a whole number, got {js_string(number)}")
        number = int(number)
    if not isinstance(number, int):
        raise HelperError(f"expected a whole number, got {kind_of(value)}")
    if not INT32_MIN <= number <= INT32_MAX:
        raise HelperError(f"{number} is outside the 32-bit range")
    return number


def _bool(value: Any) -> bool:
    if value is None or value is UNDEFINED:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise HelperError(f"expected true or false, got {kind_of(value)}")


def _list(value: Any) -> list[Any] | None:
    if value is None or value is UNDEFINED:
        return None
    if isinstance(value, list):
        return value
    raise HelperError(f"expected an array, got {kind_of(value)}")


CONVERTERS: dict[str, Callable[[Any], Any]] = {"text": _text, "value": _value, "int": _int, "bool": _bool, "list": _list}


@dataclass(frozen=True)
class Param:
    name: str
    convert: Callable[[Any], Any]
    optional: bool
    rest: bool  # C#'s params array: takes all the remaining arguments


def parse_params(spec: str) -> tuple[Param, ...]:
    """``"value:text count:int format:text?"``; ``values:value*`` takes the rest."""
    params = []
    for item in spec.split():
        name, kind = item.split(":")
        rest = kind.endswith("*")
        optional = kind.endswith("?")
        params.append(Param(name, CONVERTERS[kind.rstrip("*?")], optional, rest))
    return tuple(params)


def _count_error(name: str, params: tuple[Param, ...], got: int) -> str | None:
    required = sum(1 for p in params if not p.optional and not p.rest)
    if any(p.rest for p in params):
        return None if got >= required else f"takes at least {required} argument{'s' * (required != 1)}, got {got}"
    allowed = len(params)
    if required <= got <= allowed:
        return None
    if required == allowed:
        return f"takes {'no arguments' if not allowed else f'exactly {allowed} argument' + 's' * (allowed != 1)}, got {got}"
    return f"takes {required} to {allowed} arguments, got {got}"


# --- registration --------------------------------------------------------------

HelperFn = Callable[..., Any]
HELPERS: dict[str, HelperFn] = {}


def _wrap(name: str, params: tuple[Param, ...], fn: HelperFn, block: HelperFn | None) -> HelperFn:
    positions = {param.name: i + 1 for i, param in enumerate(params)}

    def helper(*args: Any) -> Any:
        options: Options = args[-1]
        values = args[:-1]
        problem = _count_error(name, params, len(values))
        if problem is not None:
            raise TemplateRenderError(f"helper {name!r} {problem}")
        if options.hash:
            raise TemplateRenderError(f"helper {name!r} takes no hash arguments ({', '.join(sorted(options.hash))}=)")
        converted: list[Any] = []
        for i, param in enumerate(params):
            if param.rest:
                converted.append([param.convert(v) for v in values[i:]])
                break
            try:
                converted.append(param.convert(values[i]) if i < len(values) else None)
            except HelperError as exc:
                raise TemplateRenderError(f"helper {name!r}: argument {i + 1} ({param.name}): {exc.reason}") from None
        try:
            result = (block if block is not None and options.is_block else fn)(*converted)
        except HelperError as exc:
            at = f"argument {positions.get(exc.argument, '?')} ({exc.argument}): " if exc.argument else ""
            raise TemplateRenderError(f"helper {name!r}: {at}{exc.reason}") from None
        except (ArithmeticError, ValueError) as exc:
            raise TemplateRenderError(f"helper {name!r}: {exc}") from None
        if options.is_block:  # the body runs with the result as its context; false runs {{else}}
            return options.inverse(result) if result is False else options.fn(result)
        return result

    return helper


def net_helper(name: str, spec: str = "", *, block: HelperFn | None = None) -> Callable[[HelperFn], HelperFn]:
    """Register ``fn`` as the helper ``name`` with the parameters ``spec`` (``block``: its own block form)."""

    def register(fn: HelperFn) -> HelperFn:
        if name in HELPERS:
            raise RuntimeError(f"helper {name} registered twice")
        HELPERS[name] = _wrap(name, parse_params(spec), fn, block)
        return fn

    return register
