"""Enumerable.* helpers (Handlebars.Net.Helpers EnumerableHelpers) over JSON arrays."""

from __future__ import annotations

import json
import math
from typing import Any

from hub_stream.templating.net_helpers.core import net_helper
from hub_stream.templating.net_helpers.errors import HelperError
from hub_stream.templating.net_helpers.numbers import to_double


def _need(values: list[Any] | None) -> list[Any]:
    if values is None:
        raise HelperError("must not be null", "values")
    return values


def _doubles(values: list[Any] | None) -> list[float]:
    out = []
    for i, value in enumerate(_need(values)):
        try:
            out.append(to_double(value, "values"))
        except HelperError:
            raise HelperError(f"item {i} cannot be converted to a double", "values") from None
    return out


def _nonempty(numbers: list[float]) -> list[float]:
    if not numbers:
        raise HelperError("the sequence contains no elements", "values")
    return numbers


def _same(a: Any, b: Any) -> bool:
    """Equality of two JSON values by kind and value (1 and true are not the same)."""
    return type(a) is type(b) and a == b or (isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, list | dict) else f"{type(value).__name__}:{value!r}"


@net_helper("Enumerable.Distinct", "values:list")
def distinct(values: list[Any] | None) -> list[Any]:
    seen: set[str] = set()
    out = []
    for value in _need(values):
        key = _key(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _average(values: list[Any] | None) -> float:
    numbers = _nonempty(_doubles(values))
    return math.fsum(numbers) / len(numbers)


def _max(values: list[Any] | None) -> float:
    numbers = _nonempty(_doubles(values))
    return math.nan if any(math.isnan(n) for n in numbers) else max(numbers)


def _min(values: list[Any] | None) -> float:
    numbers = _nonempty(_doubles(values))
    return math.nan if any(math.isnan(n) for n in numbers) else min(numbers)


def _page(values: list[Any] | None, page: int, per_page: int) -> list[Any]:
    items = _need(values)
    start = max(per_page * page, 0)
    return items[start : start + max(per_page, 0)]


def _select(values: list[Any] | None, name: str | None, skip_nulls: bool) -> list[Any]:
    if not name:
        raise HelperError("must not be null or empty", "propertyName")
    path = name.split(".")  # "B.Num": a nested property, as the library's reflection reads it
    picked = []
    for item in _need(values):
        for key in path:
            item = item.get(key) if isinstance(item, dict) else None
        picked.append(item)
    return [v for v in picked if v is not None] if skip_nulls else picked


net_helper("Enumerable.Average", "values:list")(_average)
net_helper("Enumerable.Count", "value:list")(lambda values: len(values) if values is not None else 0)
net_helper("Enumerable.IsEmpty", "value:list")(lambda values: not values)
net_helper("Enumerable.IsFirst", "values:list value:value")(lambda values, value: _same(_need(values)[0] if values else None, value))
net_helper("Enumerable.IsLast", "values:list value:value")(lambda values, value: _same(_need(values)[-1] if values else None, value))
net_helper("Enumerable.Max", "values:list")(_max)
net_helper("Enumerable.Min", "values:list")(_min)
net_helper("Enumerable.Page", "values:list pageNumber:int numberOfObjectsPerPage:int?")(_page)
net_helper("Enumerable.Reverse", "values:list")(lambda values: list(reversed(_need(values))))
net_helper("Enumerable.Select", "values:list propertyName:text skipNullValues:bool?")(_select)
net_helper("Enumerable.Skip", "values:list count:int")(lambda values, count: _need(values)[max(count, 0) :])
net_helper("Enumerable.Sum", "values:list")(lambda values: math.fsum(_doubles(values)))
net_helper("Enumerable.Take", "values:list count:int")(lambda values, count: _need(values)[: max(count, 0)])
