"""What every helper module shares: the error a helper raises, the text limit, kinds of values."""

from __future__ import annotations

from typing import Any

from hub_stream.templating.values import UNDEFINED

# No helper builds text longer than the engine's whole output may be (1 MiB).
MAX_TEXT = 1024 * 1024


class HelperError(Exception):
    """A helper refused its input; ``argument`` names the parameter at fault, when one is."""

    def __init__(self, reason: str, argument: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.argument = argument


def check_length(length: int, what: str = "result") -> None:
    if length > MAX_TEXT:
        raise HelperError(f"the {what} would be {length} characters, more than the limit of {MAX_TEXT}")


def kind_of(value: Any) -> str:
    """A JSON value's kind, for error messages."""
    if value is None or value is UNDEFINED:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "an array"
    return "an object"
