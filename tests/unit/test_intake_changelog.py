"""The intake writes its table's changelog in bulk: the bytes must be the ones Faust writes and reads."""

from __future__ import annotations

from typing import Any

import pytest

from agents.intake import changelog_bytes, intake_table
from hub_stream.faust_app import create_faust_app
from hub_stream.intake import PartitionMark, PublishedEntry
from hub_stream.settings import HubSettings

SAMPLES: list[tuple[str, Any]] = [
    ("p:ACME-1.x:ev-1", PublishedEntry("E:ACME-1.x-5f0c5a4e-0b7e-4d7e-9d55-3d6f1f0e2a11", "0" * 32, 17).to_json()),
    ("p:ACME:évènement/ü\"\\\n", PublishedEntry("E:ACME-x", "h", 0).deleted("2026-11-23T00:00:00.000Z", "c", 9).to_json()),
    ("e:E:ACME-x", {"PublisherEventId": "日本語 id"}),
    ("m:3", PartitionMark(120, 99, 1_795_433_941_779).to_json()),
]


@pytest.mark.parametrize(("key", "value"), SAMPLES)
def test_changelog_records_are_byte_for_byte_faust_s(key: str, value: Any) -> None:
    app = create_faust_app(HubSettings(kafka_bootstrap="unused:1"))
    table = intake_table(app)
    topic = table.changelog_topic
    assert changelog_bytes(key) == topic.prepare_key(key, table.key_serializer)[0]
    assert changelog_bytes(value) == topic.prepare_value(value, table.value_serializer)[0]
