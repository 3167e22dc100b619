"""LbApiPayloadTemplate: the three forms, validation errors, routing, one JSON row per event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub_stream.templating import PayloadTemplateError, RowRenderError, parse_payload_template

ROW = '{\n  "email": "{{email}}",\n  "course": "{{course.code}}",\n  "who": "{{@event.PublisherParticipantId}}",\n  "score": {{json score}}\n}'


def event(category: str | None = "COURSE", **data: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "EventId": "E:ACME-1",
        "PublisherParticipantId": "p-7",
        "PublisherEventData": {"email": 'a"b@example.org', "course": {"code": "C1"}, "score": 99.0, **data},
    }
    if category is not None:
        e["PublisherEventCategory"] = {"value": category, "label": "x"}
    return e


def object_form() -> dict[str, Any]:
    return {
        "COURSE": {"action": "import", "label": "Course", "importProcessId": 12, "batchRowTemplate": ROW},
        "SPAM": {"action": "ignore", "label": "Nothing else"},
        "_default": {"importProcessId": 34, "batchRowTemplate": '{"other": "{{email}}"}'},
    }


def test_object_form_routes_renders_and_compacts() -> None:
    t = parse_payload_template(object_form())
    assert t.form == "object"
    row = t.render_row(event())
    assert row is not None and row.import_process_id == 12
    assert row.line == '{"email":"a\\"b@example.org","course":"C1","who":"p-7","score":99}'
    assert "\n" not in row.line and json.loads(row.line)["email"] == 'a"b@example.org'
    assert t.render_row(event("SPAM")) is None
    other = t.render_row(event("UNKNOWN"))
    assert other is not None and other.import_process_id == 34
    no_category = t.render_row(event(None))
    assert no_category is not None and no_category.import_process_id == 34


def test_string_holding_the_object_and_legacy_star_default() -> None:
    form = {"*": {"importProcessId": 5, "batchRowTemplate": '{"e":"{{email}}"}'}}
    t = parse_payload_template(json.dumps(form))
    assert t.form == "string-object"
    assert t.render_row(event("ANY")).import_process_id == 5  # type: ignore[union-attr]


def test_no_match_and_no_default_is_ignored() -> None:
    t = parse_payload_template({"COURSE": {"importProcessId": 1, "batchRowTemplate": "{}"}})
    assert t.render_row(event("OTHER")) is None
    assert t.route(event("OTHER")) is None


def test_plain_form_needs_an_import_process_id() -> None:
    t = parse_payload_template('{"e": "{{email}}"}', import_process_id=9)
    assert t.form == "plain" and t.render_row(event(None)).import_process_id == 9  # type: ignore[union-attr]
    with pytest.raises(PayloadTemplateError, match="ImportProcessId"):
        parse_payload_template('{"e": "{{email}}"}')


@pytest.mark.parametrize(
    ("value", "entry", "line", "column", "fragment"),
    [
        ({"C": {"importProcessId": 1, "batchRowTemplate": '{\n "a": "{{#if x}}"\n}'}}, "C", 2, 8, "unclosed block 'if'"),
        ({"C": {"importProcessId": 0, "batchRowTemplate": "{}"}}, "C", None, None, "positive integer importProcessId"),
        ({"C": {"importProcessId": True, "batchRowTemplate": "{}"}}, "C", None, None, "positive integer"),
        ({"C": {"importProcessId": 1, "batchRowTemplate": ""}}, "C", None, None, "non-empty batchRowTemplate"),
        ({"C": {"importProcessId": 1, "batchRowTemplate": "{}", "extra": 1}}, "C", None, None, "unknown field(s) extra"),
        ({"C": {"action": "skip"}}, "C", None, None, "action must be"),
        ({"C": "not an object"}, "C", None, None, "must be an object"),
        ({}, None, None, None, "no entries"),
        (42, None, None, None, "object or a string"),
        ("{{#each x}}", None, 1, 1, "unclosed block"),
    ],
)
def test_validation_errors_name_entry_line_and_column(value: Any, entry: str | None, line: int | None, column: int | None, fragment: str) -> None:
    with pytest.raises(PayloadTemplateError) as info:
        parse_payload_template(value, import_process_id=3)
    err = info.value
    assert (err.entry, err.line, err.column) == (entry, line, column)
    assert fragment in str(err)


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ('["not", "an object"]', "not a JSON object (got array)"),
        ('{"a": {{email}}}', "not valid JSON"),
        ('{"a": 1}{"b": 2}', "not valid JSON"),
        ("{{String.Substring x 5}}", "helper 'String.Substring'"),
    ],
)
def test_render_errors_name_event_and_entry(template: str, fragment: str) -> None:
    t = parse_payload_template({"COURSE": {"importProcessId": 1, "batchRowTemplate": template}})
    with pytest.raises(RowRenderError) as info:
        t.render_row(event())
    assert info.value.event_id == "E:ACME-1" and info.value.entry == "COURSE"
    assert str(info.value).startswith("event E:ACME-1: entry 'COURSE': ")
    assert fragment in str(info.value)


def test_escaping_keeps_rows_valid_json_for_hostile_values() -> None:
    t = parse_payload_template({"_default": {"importProcessId": 1, "batchRowTemplate": '{"v": "{{v}}", "raw": {{json v}}}'}})
    nasty = 'a"},"injected":{"x":"\\\n\u0000</script>'
    row = t.render_row(event(v=nasty))
    assert row is not None
    assert json.loads(row.line) == {"v": nasty, "raw": nasty}


def test_a_row_nested_too_deeply_is_a_row_error() -> None:
    t = parse_payload_template({"_default": {"importProcessId": 1, "batchRowTemplate": '{"a": {{{x}}}}'}})
    with pytest.raises(RowRenderError, match="nested too deeply") as info:
        t.render_row(event(x="[" * 100_000 + "]" * 100_000))
    assert info.value.event_id == "E:ACME-1"
