"""Url.* helpers (Handlebars.Net.Helpers UrlHelpers): System.Net.WebUtility.UrlEncode and UrlDecode."""

from __future__ import annotations

import re

from hub_stream.templating.net_helpers.core import net_helper
from hub_stream.templating.net_helpers.errors import check_length

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!*()")


def encode_uri(value: str | None) -> str | None:
    """WebUtility.UrlEncode: letters, digits and -_.!*() stay, space is +, every other UTF-8 byte %XX."""
    if value is None:
        return None
    data = value.encode("utf-8", "replace")
    check_length(len(data) * 3)
    return "".join(chr(b) if b in _SAFE else "+" if b == 32 else f"%{b:02X}" for b in data)


def decode_uri(value: str | None) -> str | None:
    """WebUtility.UrlDecode: + is space, %XX are bytes read as UTF-8; a bad escape stays as it is."""
    if value is None:
        return None
    spaced = value.replace("+", " ")
    parts = re.split(r"((?:%[0-9A-Fa-f]{2})+)", spaced)
    return "".join(bytes.fromhex(p.replace("%", "")).decode("utf-8", "replace") if i % 2 else p for i, p in enumerate(parts))


net_helper("Url.EncodeUri", "value:text")(encode_uri)
net_helper("Url.DecodeUri", "value:text")(decode_uri)
