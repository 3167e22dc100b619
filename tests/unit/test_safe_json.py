"""The one JSON decoder for outside text, and what it promises the rest of the hub."""

from __future__ import annotations

import json

import pytest

from hub_stream.events.intake_rules import validate_event
from hub_stream.platform import safe_json
from hub_stream.templating import parse_payload_template


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": [Infinity]}', "invalid_json"),
        (b'{"a": -Infinity}', "invalid_json"),
        (b'{"a": 1e400}', "invalid_json"),
        (b'{"a": -1.5e+309}', "invalid_json"),
        (b'{"a": ' + b"9" * 309 + b"}", "invalid_json"),
        (b'{"a": ' + b"9" * 5000 + b"}", "invalid_json"),
        (b'{"a": "\\ud800"}', "invalid_text"),
        (b'{"\\uDFFF": 1}', "invalid_text"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[" * 65 + b"]" * 65, "too_deep"),
        (b"[" * 100_000, "too_deep"),
        (b"{", "invalid_json"),
    ],
)
def test_refused(text: bytes, code: str) -> None:
    with pytest.raises(safe_json.JsonRefused) as refused:
        safe_json.loads(text)
    assert refused.value.code == code


def test_accepted_at_the_limits() -> None:
    assert safe_json.loads(b"[" * 64 + b"]" * 64) is not None
    assert safe_json.loads(b'{"a": 1e308, "b": -1.7976931348623157e308, "c": 1e-400}')["c"] == 0.0
    assert safe_json.loads(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    # Brackets inside strings are text, not nesting.
    assert safe_json.loads(b'{"a": "' + b"[{" * 500 + b'\\" ]"}')["a"].startswith("[{")


def test_plainly_safe_text_parses_to_the_same_verdict() -> None:
    assert safe_json.plainly_safe(b'{"a": [1, 2.5, "x"]}')
    assert not safe_json.plainly_safe(b"[" * 65 + b"]" * 65)
    assert not safe_json.plainly_safe(b'{"a": "\\ud800"}')
    assert safe_json.numbers_fit({"a": [1, 2.5, {"b": 10**300}]})
    assert not safe_json.numbers_fit({"a": [{"b": float("nan")}]})
    assert not safe_json.numbers_fit({"a": 10**400})


def test_the_deepest_accepted_event_renders_with_the_json_helper() -> None:
    """Issue 16 item 6: the hub never accepts an event its own helpers cannot render."""
    deepest = event_text(safe_json.MAX_DEPTH)
    event = validate_event(safe_json.loads(deepest)).body
    template = parse_payload_template('{"whole": {{json this}}, "a": {{json a}}}', import_process_id=7)
    row = template.render_row({**event, "EventId": "E:PUB-1"})
    assert row is not None
    assert json.loads(row.line)["a"] == event["PublisherEventData"]["a"]
    with pytest.raises(safe_json.JsonRefused) as refused:
        safe_json.loads(event_text(safe_json.MAX_DEPTH + 1))
    assert refused.value.code == "too_deep"


def event_text(depth: int) -> bytes:
    """An event whose whole body nests ``depth`` levels (the body itself is level 1)."""
    data: object = [1]  # PublisherEventData is level 2 of the body: it nests depth - 1 levels itself
    for _ in range(depth - 2):
        data = {"a": data}
    body = {
        "PublisherProgramId": "PUB",
        "PublisherEventId": "ev-1",
        "EventType": "T",
        "PublisherParticipantId": "p1",
        "PublisherEventData": data,
        "EventStartUtc": "2026-11-20T10:00:00Z",
    }
    return json.dumps(body).encode()
