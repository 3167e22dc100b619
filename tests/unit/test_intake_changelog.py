"""The intake's changelog: JSON keys and values, the bytes a Faust table writes.

Earlier versions kept the intake state in a Faust table; the intake now
replays the same changelog topic itself (``Intake._load_store``). The bytes
must stay Faust's json codec's, so a changelog written by either version
reads back the same.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from faust.serializers import codecs

from agents.intake import changelog_bytes
from hub_stream.events.intake_rules import PartitionMark, PublishedEntry

SAMPLES: list[tuple[str, Any]] = [
    ("p:ACME-1.x:ev-1", PublishedEntry("E:ACME-1.x-5f0c5a4e-0b7e-4d7e-9d55-3d6f1f0e2a11", "0" * 32, 17).to_json()),
    ("p:ACME:évènement/ü\"\\\n", PublishedEntry("E:ACME-x", "h", 0).deleted("2026-11-23T00:00:00.000Z", "c", 9).to_json()),
    ("e:E:ACME-x", {"PublisherEventId": "日本語 id"}),
    ("m:3", PartitionMark(120, 99, 1_795_433_941_779).to_json()),
]


@pytest.mark.parametrize(("key", "value"), SAMPLES)
def test_changelog_records_are_byte_for_byte_faust_s(key: str, value: Any) -> None:
    assert changelog_bytes(key) == codecs.dumps("json", key)
    assert changelog_bytes(value) == codecs.dumps("json", value)


@pytest.mark.parametrize(("key", "value"), SAMPLES)
def test_changelog_records_read_back_as_written(key: str, value: Any) -> None:
    assert json.loads(changelog_bytes(key)) == key
    assert json.loads(changelog_bytes(value)) == value
