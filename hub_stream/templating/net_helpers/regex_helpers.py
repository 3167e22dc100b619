"""Regex.* helpers (Handlebars.Net.Helpers RegexHelpers) on RE2, which matches in time linear in the text.

Templates are untrusted: .NET's backtracking engine (and Python's) can be made
to run for hours by a crafted pattern, inside C code the render's time check
never reaches. RE2 has no backtracking, so it has no lookarounds,
backreferences, atomic groups, possessive quantifiers, conditionals or
right-to-left matching; a pattern that uses them is refused with RE2's reason.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import re2

from hub_stream.templating.net_helpers.core import net_helper
from hub_stream.templating.net_helpers.errors import HelperError

MAX_PATTERN = 4096
_CACHE: OrderedDict[tuple[str, str], Any] = OrderedDict()
_CACHE_SIZE = 256

# .NET RegexOptions letters the library reads: RE2 has i, m and s; n (explicit
# capture), c (compiled), C (culture-invariant) and e (ECMAScript) change
# nothing a match returns here; x and r cannot be had.
_FLAGS = {"i": "i", "m": "m", "s": "s", "n": "", "c": "", "C": "", "e": ""}
_UNSUPPORTED = {"x": "IgnorePatternWhitespace (x)", "r": "RightToLeft (r)"}


def compile_pattern(pattern: str, flags: str | None) -> Any:
    key = (pattern, flags or "")
    cached = _CACHE.get(key)
    if cached is not None:
        _CACHE.move_to_end(key)
        return cached
    if len(pattern) > MAX_PATTERN:
        raise HelperError(f"longer than {MAX_PATTERN} characters", "regexPattern")
    inline = ""
    for letter in dict.fromkeys(flags or ""):
        if letter in _UNSUPPORTED:
            raise HelperError(f"the option {_UNSUPPORTED[letter]} is not supported", "options")
        inline += _FLAGS.get(letter, "")
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(f"(?{inline}){pattern}" if inline else pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise HelperError(f"not supported by the linear-time engine (RE2): {reason}", "regexPattern") from None
    _CACHE[key] = compiled
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled


def _search(value: str | None, pattern: str | None, flags: str | None) -> Any:
    if value is None:
        raise HelperError("must not be null", "value")
    if pattern is None:
        raise HelperError("must not be null", "regexPattern")
    return compile_pattern(pattern, flags).search(value)


def _groups(compiled: Any, match: Any) -> dict[str, str]:
    """RegexUtils.GetNamedGroups: "0", then unnamed groups by number, then named groups; only those that took part."""
    names_of = {index: name for name, index in compiled.groupindex.items()}
    out: dict[str, str] = {"0": match.group(0)}
    unnamed = [i for i in range(1, compiled.groups + 1) if i not in names_of]
    for number, index in enumerate(unnamed, start=1):
        if match.span(index) != (-1, -1):
            out[str(number)] = match.group(index)
    for index in sorted(names_of):
        if match.span(index) != (-1, -1):
            out[names_of[index]] = match.group(index)
    return out


def is_match(value: str | None, pattern: str | None, flags: str | None) -> bool:
    return _search(value, pattern, flags) is not None


def match(value: str | None, pattern: str | None, flags: str | None) -> str | None:
    found = _search(value, pattern, flags)
    return found.group(0) if found is not None else None


def match_groups(value: str | None, pattern: str | None, flags: str | None) -> dict[str, str] | None:
    """The block form of Regex.Match: the groups that took part, by name ("0", "1", "year")."""
    found = _search(value, pattern, flags)
    if found is None:
        return None
    return _groups(compile_pattern(pattern or "", flags), found)


net_helper("Regex.IsMatch", "value:text regexPattern:text options:text?")(is_match)
net_helper("Regex.Match", "value:text regexPattern:text options:text?", block=match_groups)(match)
