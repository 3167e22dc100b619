"""LbApiPayloadTemplate: the three accepted forms, routing by category, one JSON row per event.

Forms (CONTRACT.md): a JSON object mapping a category value to an entry
``{"action", "label", "importProcessId", "batchRowTemplate"}``; a string
holding that object; or a plain Handlebars string (then ``ImportProcessId``
is given beside it). ``_default`` (legacy ``*``) catches other categories
and events without one; no match and no default: the event is ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Literal, NamedTuple

from hub_stream.templating.errors import TemplateError, TemplateRenderError, TemplateSyntaxError
from hub_stream.templating.template import Template, compile_template
from hub_stream.templating.validation import check_helper_names

DEFAULT_KEYS = ("_default", "*")
ENTRY_KEYS = {"action", "label", "importProcessId", "batchRowTemplate"}
PLAIN = "(template)"


class PayloadTemplateError(ValueError):
    """A template that cannot be stored; names the entry, and line/column for syntax errors."""

    def __init__(self, reason: str, *, entry: str | None = None, line: int | None = None, column: int | None = None) -> None:
        where = f"entry {entry!r}: " if entry is not None else ""
        at = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{at}{reason}")
        self.entry = entry
        self.line = line
        self.column = column
        self.reason = reason


class RowRenderError(ValueError):
    """One event could not be turned into a row; names the event and the entry."""

    def __init__(
        self,
        reason: str,
        *,
        event_id: str | None,
        entry: str,
        code: str = "render_error",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(f"event {event_id}: entry {entry!r}: {reason}")
        self.event_id = event_id
        self.entry = entry
        self.reason = reason
        self.code = code  # render_error | row_not_json | row_not_object
        self.line = line  # where in the rendered row (row_not_json), else None
        self.column = column


@dataclass(frozen=True)
class RouteEntry:
    key: str
    action: Literal["import", "ignore"]
    label: str | None
    import_process_id: int | None
    template: Template | None
    # the template's row text for an event: template.render(event.get("PublisherEventData"),
    # data={"event": event}, escape="json"), as one function of the event (Template.renderer)
    render: Callable[[Mapping[str, Any]], str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.render is None and self.template is not None:
            object.__setattr__(self, "render", self.template.renderer("PublisherEventData", "event", "json"))


class RenderedRow(NamedTuple):
    """One event's row (a named tuple: a sync makes one per event, and a frozen dataclass costs more to build)."""

    import_process_id: int
    line: str


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _compile(source: str, entry: str | None) -> Template:
    try:
        template = compile_template(source)
        check_helper_names(source)
        return template
    except TemplateSyntaxError as exc:
        raise PayloadTemplateError(exc.reason, entry=entry, line=exc.line, column=exc.column) from None
    except TemplateError as exc:
        raise PayloadTemplateError(str(exc), entry=entry) from None


def _entry(key: str, raw: Any) -> RouteEntry:
    if not isinstance(raw, dict):
        raise PayloadTemplateError("an entry must be an object with action, label, importProcessId, batchRowTemplate", entry=key)
    unknown = sorted(set(raw) - ENTRY_KEYS)
    if unknown:
        raise PayloadTemplateError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ENTRY_KEYS))}", entry=key)
    action = raw.get("action", "import")
    if action not in ("import", "ignore"):
        raise PayloadTemplateError(f"action must be 'import' or 'ignore', got {action!r}", entry=key)
    label = raw.get("label")
    if label is not None and not isinstance(label, str):
        raise PayloadTemplateError("label must be a string", entry=key)
    ipid = raw.get("importProcessId")
    source = raw.get("batchRowTemplate")
    if action == "ignore":
        if ipid is not None and not _positive_int(ipid):
            raise PayloadTemplateError(f"importProcessId must be a positive integer, got {ipid!r}", entry=key)
        if source is not None and not isinstance(source, str):
            raise PayloadTemplateError("batchRowTemplate must be a string", entry=key)
        template = _compile(source, key) if isinstance(source, str) and source else None
        return RouteEntry(key, "ignore", label, ipid, template)
    if not _positive_int(ipid):
        raise PayloadTemplateError(f"an import entry needs a positive integer importProcessId, got {ipid!r}", entry=key)
    if not isinstance(source, str) or not source.strip():
        raise PayloadTemplateError("an import entry needs a non-empty batchRowTemplate string", entry=key)
    return RouteEntry(key, "import", label, ipid, _compile(source, key))


class PayloadTemplate:
    """A validated LbApiPayloadTemplate, ready to route and render events."""

    def __init__(self, form: Literal["object", "string-object", "plain"], entries: dict[str, RouteEntry]) -> None:
        self.form = form
        self.entries = entries
        self._default = next((entries[k] for k in DEFAULT_KEYS if k in entries), None)
        self._plain = entries[PLAIN] if form == "plain" else None
        self._by_category = {k: v for k, v in entries.items() if k not in DEFAULT_KEYS}

    def route(self, event: Mapping[str, Any]) -> RouteEntry | None:
        """The entry for the event's category value, else the default, else None (ignored)."""
        if self._plain is not None:
            return self._plain
        category = event.get("PublisherEventCategory")
        if isinstance(category, dict):
            value = category.get("value")
            if isinstance(value, str):
                return self._by_category.get(value, self._default)
        return self._default

    def render_row(self, event: Mapping[str, Any]) -> RenderedRow | None:
        """The event's row as one compact JSON line, or None when the event is ignored."""
        entry = self.route(event)
        if entry is None or entry.action == "ignore":
            return None
        assert entry.render is not None and entry.import_process_id is not None
        try:
            text = entry.render(event)  # entry.template, with the event's data as the root and @event
        except TemplateRenderError as exc:
            raise RowRenderError(str(exc), event_id=event.get("EventId"), entry=entry.key) from None
        try:
            row = _load(text)
        except json.JSONDecodeError as exc:
            raise RowRenderError(
                f"row is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
                event_id=event.get("EventId"),
                entry=entry.key,
                code="row_not_json",
                line=exc.lineno,
                column=exc.colno,
            ) from None
        except RecursionError:  # arrays or objects nested past the decoder's depth
            raise RowRenderError(
                "row is not valid JSON (nested too deeply)", event_id=event.get("EventId"), entry=entry.key, code="row_not_json"
            ) from None
        if not isinstance(row, dict):
            raise RowRenderError(
                f"row is not a JSON object (got {_json_kind(row)})", event_id=event.get("EventId"), entry=entry.key, code="row_not_object"
            )
        line = _compact(row)
        if not line.isascii() and _SURROGATE.search(line):  # a lone surrogate (decoded from \\ud800 by _load)
            line = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)
        return RenderedRow(entry.import_process_id, line)


# The row check and compaction are json.loads and json.dumps(separators=(",", ":"),
# ensure_ascii=False). Both spend a good part of a row's time in their Python
# layers (dumps builds a new encoder per call), so the row path calls the same C
# scanner and a C encoder built once, and leaves every failure to json.loads.
_scan_once = json.JSONDecoder().scan_once
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # no UTF-8 for these: a row never holds one
_JSON_SPACE = " \t\n\r"


def _load(text: str) -> Any:
    """json.loads(text), or its exact error."""
    try:
        value, end = _scan_once(text, 0)
    except (StopIteration, ValueError):
        return json.loads(text)  # leading space (rare), or an error to report as it reports it
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        return json.loads(text)  # extra data
    return value


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _c_compact() -> Callable[[Any], str] | None:
    """The C encoder json.dumps would build, built once; None where it differs or is missing."""
    if c_make_encoder is None:
        return None
    try:  # a private signature: check it still means what it meant
        encode = c_make_encoder(None, None, encode_basestring, None, ":", ",", False, False, True)
        sample = {"a": [1, 2.5, None, True, "é\n\"", {"b": -0.0}], "c": float("nan")}
        if "".join(encode(sample, 0)) != _COMPACT.encode(sample):
            return None
    except (TypeError, ValueError):
        return None
    # No circular check (markers None): a value fresh from json.loads is a tree.
    return lambda row: "".join(encode(row, 0))


_compact: Callable[[Any], str] = _c_compact() or _COMPACT.encode


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def category_map_in(text: str) -> dict[str, Any] | None:
    """The category map a string template holds (form 2), or None for a plain template (form 3).

    CONTRACT.md: a string is form 2 only when it parses as a JSON object whose
    every value is an object (an entry). A row template may itself be JSON
    (``{"e": "{{email}}"}``): its values are strings, so it is plain.
    """
    try:
        decoded = json.loads(text)
    except ValueError:
        return None
    if isinstance(decoded, dict) and all(isinstance(v, dict) for v in decoded.values()):
        return decoded
    return None


def parse_payload_template(value: Any, *, import_process_id: int | None = None) -> PayloadTemplate:
    """Validate and compile an LbApiPayloadTemplate in any of its three forms."""
    form: Literal["object", "string-object", "plain"]
    if isinstance(value, dict):
        form, mapping = "object", value
    elif isinstance(value, str):
        decoded = category_map_in(value)
        if decoded is not None:
            form, mapping = "string-object", decoded
        else:
            if not value.strip():
                raise PayloadTemplateError("the template is empty")
            if not _positive_int(import_process_id):
                raise PayloadTemplateError("a plain template needs ImportProcessId (a positive integer) beside it")
            entry = RouteEntry(PLAIN, "import", None, import_process_id, _compile(value, None))
            return PayloadTemplate("plain", {PLAIN: entry})
    else:
        raise PayloadTemplateError("LbApiPayloadTemplate must be an object or a string")
    if not mapping:
        raise PayloadTemplateError("the template object has no entries")
    if "_default" in mapping and "*" in mapping:
        raise PayloadTemplateError("use either '_default' or its legacy alias '*', not both", entry="*")
    entries = {}
    for key, raw in mapping.items():
        if not isinstance(key, str) or not key:
            raise PayloadTemplateError("entry keys must be non-empty category values", entry=str(key))
        entries[key] = _entry(key, raw)
    return PayloadTemplate(form, entries)
