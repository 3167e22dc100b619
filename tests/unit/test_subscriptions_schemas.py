"""Subscription request bodies: the SynEnabled alias, timestamps, strict types."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.subscriptions import SubscriptionCreate, SubscriptionPatch


def test_syn_enabled_is_an_alias_of_sync_enabled() -> None:
    body = SubscriptionCreate.model_validate({"PublisherProgramId": "PUB", "SynEnabled": True})
    assert body.SyncEnabled is True
    assert "SynEnabled" not in body.model_dump()
    assert SubscriptionPatch.model_validate({"SynEnabled": False}).changes() == {"SyncEnabled": False}


def test_both_spellings_at_once_are_refused() -> None:
    with pytest.raises(ValidationError):
        SubscriptionPatch.model_validate({"SynEnabled": False, "SyncEnabled": True})


def test_last_sync_utc_is_normalised_to_utc_ms_z() -> None:
    body = SubscriptionCreate.model_validate({"PublisherProgramId": "P", "LastSyncUtc": "2026-11-22T09:00:00.123456+01:00"})
    assert body.LastSyncUtc == "2026-11-22T08:00:00.123Z"
    assert SubscriptionCreate.model_validate({"PublisherProgramId": "P", "LastSyncUtc": "2026-11-22T08:00:00"}).LastSyncUtc == "2026-11-22T08:00:00.000Z"
    assert SubscriptionPatch.model_validate({"LastSyncUtc": None}).changes() == {"LastSyncUtc": None}


@pytest.mark.parametrize(
    "doc",
    [
        {"PublisherProgramId": "P", "SyncEnabled": "true"},
        {"PublisherProgramId": "P", "SyncEnabled": None},
        {"PublisherProgramId": "P", "ImportProcessId": "5"},
        {"PublisherProgramId": "P", "ImportProcessId": 0},
        {"PublisherProgramId": "P", "LbApiPayloadTemplate": [1]},
        {"PublisherProgramId": "P", "LastSyncUtc": "soon"},
        {"PublisherProgramId": "has space"},
        {"PublisherProgramId": "x" * 26},
        {"PublisherProgramId": "P", "Extra": 1},
        {},
    ],
)
def test_invalid_create_bodies(doc: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SubscriptionCreate.model_validate(doc)


def test_patch_names_only_what_was_sent() -> None:
    assert SubscriptionPatch.model_validate({}).changes() == {}
    template = {"C": {"importProcessId": 1, "batchRowTemplate": "{}"}}
    patch = SubscriptionPatch.model_validate({"LbApiPayloadTemplate": template, "ImportProcessId": None})
    assert patch.changes() == {"ImportProcessId": None, "LbApiPayloadTemplate": template}
