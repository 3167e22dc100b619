"""Production topic settings: replication factor, min ISR, unclean election; shown, checked, applied."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest

from hub_stream.platform import topics
from hub_stream.platform.faust_app import create_faust_app
from hub_stream.platform.settings import HubSettings


def _hub(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub_stream.cli", *args], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, check=False)


def test_hub_config_shows_the_replication_settings_with_min_isr_one_below_the_factor() -> None:
    out = _hub("config", HUB_REPLICATION_FACTOR="3")
    shown = json.loads(out.stdout)
    assert (shown["replication_factor"], shown["min_insync_replicas"], shown["unclean_leader_election"]) == (3, 2, False)
    default = json.loads(_hub("config").stdout)
    assert (default["replication_factor"], default["min_insync_replicas"]) == (1, 1)


def test_min_isr_above_the_factor_is_refused_with_both_names() -> None:
    out = _hub("config", HUB_REPLICATION_FACTOR="2", HUB_MIN_INSYNC_REPLICAS="3")
    assert out.returncode == 2
    assert "HUB_MIN_INSYNC_REPLICAS=3" in out.stderr and "HUB_REPLICATION_FACTOR=2" in out.stderr
    assert "Traceback" not in out.stderr


def test_new_topics_get_min_isr_and_no_unclean_election() -> None:
    config = topics.durability_config(HubSettings(replication_factor=3, unclean_leader_election=False))
    assert config == {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
    assert topics.durability_config(HubSettings(unclean_leader_election=True))["unclean.leader.election.enable"] == "true"


def test_only_topics_below_the_configured_factor_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    s = HubSettings(replication_factor=3)
    factors = {"hub.events": 1, "hub.replies": 3, "hub.sync.requests": 2}
    assert topics.under_replicated(factors, s) == {"hub.events": 1, "hub.sync.requests": 2}
    with caplog.at_level(logging.WARNING, logger=topics.__name__):
        topics._warn_under_replicated(factors, s)
        topics._warn_under_replicated({"hub.replies": 3}, s)
    assert len(caplog.records) == 1, "one warning for all low topics, none when all are right"
    message = caplog.records[0].getMessage()
    assert "hub.events (RF 1)" in message and "hub.sync.requests (RF 2)" in message
    assert "HUB_REPLICATION_FACTOR=3" in message and "hub.replies" not in message


def test_a_refused_create_names_the_topic_and_the_replication_factor() -> None:
    s = HubSettings(replication_factor=3)
    refused = SimpleNamespace(topic_errors=[
        ("hub.events", 38, "Unable to replicate the partition 3 time(s): only 1 broker(s) are registered."),
        ("hub.replies", 36, None),  # already exists: another process won the race
    ])
    with pytest.raises(topics.TopicMismatch, match="HUB_REPLICATION_FACTOR=3") as caught:
        topics._raise_create_errors(refused, s)
    assert "hub.events" in str(caught.value) and "1 topic(s)" in str(caught.value)
    topics._raise_create_errors(SimpleNamespace(topic_errors=[("hub.replies", 36)]), s)  # v0 answer: no message


def test_worker_producers_wait_for_all_in_sync_replicas() -> None:
    app = create_faust_app(HubSettings(kafka_bootstrap="k1:9092", replication_factor=3))
    assert app.conf.producer_acks == -1
    assert app.conf.topic_replication_factor == 3
