"""Settings come from HUB_ variables only; secrets stay masked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import SecretStr, ValidationError

from hub_stream.platform.faust_app import create_faust_app
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import all_topics


def test_reads_hub_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("HUB_EVENTS_PARTITIONS", "12")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "wrong:1")
    s = HubSettings()
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert s.events_partitions == 12


def test_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_EVENTS_PARTITIONS", "zero")
    with pytest.raises(ValidationError, match="events_partitions"):
        HubSettings()


def test_faust_ignores_stray_unprefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "kafka://evil:1")
    monkeypatch.setenv("APP_DATADIR", "/tmp/evil")
    app = create_faust_app(HubSettings(kafka_bootstrap="good:9092"))
    assert [str(u) for u in app.conf.broker] == ["kafka://good:9092"]
    assert "evil" not in str(app.conf.datadir)


def test_config_command_masks_secrets() -> None:
    env = {"HUB_DATABASE_URL": "postgresql://hub:s3cr3t-pw@db/hub", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "hub_stream.cli", "config"], env=env, capture_output=True, text=True, check=True
    )
    assert "s3cr3t-pw" not in out.stdout + out.stderr
    shown = json.loads(out.stdout)
    assert shown["database_url"] == "**********"
    assert shown["kafka_bootstrap"] is None


def test_masked_reports_every_setting() -> None:
    s = HubSettings(database_url=SecretStr("postgresql://x:y@z/db"))
    assert set(s.masked()) == set(HubSettings.model_fields)
    assert "y@z" not in json.dumps(s.masked())


def test_every_topic_has_an_explicit_count_and_changelogs_are_compacted() -> None:
    s = HubSettings(events_partitions=6, subscriber_partitions=3)
    specs = {t.name: t for t in all_topics(s)}
    assert specs["hub.events"].partitions == 6
    assert specs["hub.events"].config["retention.ms"] == "-1"
    assert specs["hub.subscriptions.commands"].partitions == specs["hub.sync.requests"].partitions == 3
    changelogs = [t for name, t in specs.items() if name.endswith("-changelog")]
    assert changelogs and all(t.config.get("cleanup.policy") == "compact" for t in changelogs)
    assert all("retention.ms" not in t.config for t in changelogs)
