"""Math.* helpers (Handlebars.Net.Helpers MathHelpers): int, long and double arithmetic as C# does it.

Two whole numbers give a whole number (64 bits, wrapping on overflow as
C#'s unchecked arithmetic does); a double on either side gives a double.
Text arguments are read as numbers first ("1.5"); null and missing values are 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hub_stream.templating.net_helpers.core import net_helper
from hub_stream.templating.net_helpers.errors import HelperError
from hub_stream.templating.net_helpers.numbers import (
    INT64_MIN,
    Number,
    to_double,
    to_operand,
    wrap64,
)

TOLERANCE = 1e-20  # the library's tolerance for Equal and NotEqual on doubles


def _pair(a: Any, b: Any) -> tuple[Number, Number]:
    return to_operand(a, "value1"), to_operand(b, "value2")


def _binary(int_op: Callable[[int, int], Any], float_op: Callable[[float, float], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        x, y = _pair(a, b)
        if isinstance(x, int) and isinstance(y, int):
            return int_op(x, y)
        return float_op(float(x), float(y))

    return run


def _int_remainder(x: int, y: int) -> int:
    if y == 0:
        raise HelperError("division by zero", "value2")
    r = abs(x) % abs(y)
    return -r if x < 0 else r


def _float_remainder(x: float, y: float) -> float:
    if y == 0 or math.isinf(x) or math.isnan(y):
        return math.nan
    return math.fmod(x, y)


def _divide(a: Any, b: Any) -> float:
    x, y = to_double(a, "value1"), to_double(b, "value2")
    if y == 0:
        return math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _power(a: Any, b: Any) -> float:
    x, y = to_double(a, "value1"), to_double(b, "value2")
    try:
        return math.pow(x, y)
    except OverflowError:
        return math.inf if x > 0 or y % 2 == 0 else -math.inf
    except ValueError:  # pow(0, negative) is infinity in .NET, pow(negative, fraction) NaN
        return math.inf if x == 0 else math.nan


def _abs(value: Any) -> Number:
    x = to_operand(value, "value")
    if x == INT64_MIN and isinstance(x, int):
        raise HelperError("negating the minimum value of a long overflows", "value")
    return abs(x)


def _sign(value: Any) -> int:
    x = to_operand(value, "value")
    if isinstance(x, float) and math.isnan(x):
        raise HelperError("the sign of NaN is undefined", "value")
    return (x > 0) - (x < 0)


def _round(value: Any) -> float:
    x = to_double(value, "value")
    return x if not math.isfinite(x) else float(round(x))  # to even, as Math.Round


def _ceiling(value: Any) -> float:
    x = to_double(value, "value")
    return x if not math.isfinite(x) else float(math.ceil(x))


def _floor(a: Any, b: Any) -> float:
    # The library computes Math.Floor(1.0 * x1 / 1.0 * x2): the floor of the product.
    x, y = to_double(a, "value1"), to_double(b, "value2")
    product = x * y
    return product if not math.isfinite(product) else float(math.floor(product))


def _sqrt(value: Any) -> float:
    x = to_double(value, "value")
    return math.nan if x < 0 or math.isnan(x) else math.sqrt(x)


_add = _binary(lambda x, y: wrap64(x + y), lambda x, y: x + y)
_minus = _binary(lambda x, y: wrap64(x - y), lambda x, y: x - y)
_multiply = _binary(lambda x, y: wrap64(x * y), lambda x, y: x * y)

for _name in ("Math.Add", "Math.Plus"):
    net_helper(_name, "value1:value value2:value")(_add)
for _name in ("Math.Minus", "Math.Subtract"):
    net_helper(_name, "value1:value value2:value")(_minus)
for _name in ("Math.Multiply", "Math.Times"):
    net_helper(_name, "value1:value value2:value")(_multiply)

net_helper("Math.Abs", "value:value")(_abs)
net_helper("Math.Avg", "value1:value value2:value")(lambda a, b: (to_double(a, "value1") + to_double(b, "value2")) / 2.0)
net_helper("Math.Ceiling", "value:value")(_ceiling)
net_helper("Math.Divide", "value1:value value2:value")(_divide)
net_helper("Math.Equal", "value1:value value2:value")(_binary(lambda x, y: x == y, lambda x, y: abs(x - y) < TOLERANCE))
net_helper("Math.NotEqual", "value1:value value2:value")(_binary(lambda x, y: x != y, lambda x, y: abs(x - y) > TOLERANCE))
net_helper("Math.Floor", "value1:value value2:value")(_floor)
net_helper("Math.GreaterThan", "value1:value value2:value")(_binary(lambda x, y: x > y, lambda x, y: x > y))
net_helper("Math.GreaterThanEqual", "value1:value value2:value")(_binary(lambda x, y: x >= y, lambda x, y: x >= y))
net_helper("Math.LessThan", "value1:value value2:value")(_binary(lambda x, y: x < y, lambda x, y: x < y))
net_helper("Math.LessThanEqual", "value1:value value2:value")(_binary(lambda x, y: x <= y, lambda x, y: x <= y))
net_helper("Math.Max", "value1:value value2:value")(_binary(max, lambda x, y: math.nan if math.isnan(x) or math.isnan(y) else max(x, y)))
net_helper("Math.Min", "value1:value value2:value")(_binary(min, lambda x, y: math.nan if math.isnan(x) or math.isnan(y) else min(x, y)))
net_helper("Math.Modulo", "value1:value value2:value")(_binary(_int_remainder, _float_remainder))
net_helper("Math.Power", "value1:value value2:value")(_power)
net_helper("Math.Round", "value:value")(_round)
net_helper("Math.Sign", "value:value")(_sign)
net_helper("Math.Sqrt", "value:value")(_sqrt)
