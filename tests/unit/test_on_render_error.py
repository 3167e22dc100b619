"""OnRenderError: stored, answered, changed by PATCH, validated by the request schemas."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub_stream.subscriptions import records as subs
from hub_stream.subscriptions.records import SubscriberRecord, Subscription
from schemas.subscriptions import SubscriptionCreate, SubscriptionPatch

AT = "2026-11-22T08:00:00.000Z"


def test_the_policy_is_stored_answered_and_patched() -> None:
    record, outcome = subs.apply(SubscriberRecord(), "SUB", "create", "c1", {"PublisherProgramId": "PUB", "OnRenderError": "park", "At": AT})
    assert outcome.status == 201
    assert record.subscriptions["PUB"].resource("SUB", None)["OnRenderError"] == "park"
    again = SubscriberRecord.from_json(record.to_json())  # through the changelog
    assert again.subscriptions["PUB"].on_render_error == "park"
    patched, outcome = subs.apply(again, "SUB", "patch", "c2", {"PublisherProgramId": "PUB", "Changes": {"SyncEnabled": True}, "At": AT})
    assert patched.subscriptions["PUB"].on_render_error == "park"  # a PATCH that does not name it keeps it
    patched, outcome = subs.apply(patched, "SUB", "patch", "c3", {"PublisherProgramId": "PUB", "Changes": {"OnRenderError": "stop"}, "At": AT})
    assert outcome.status == 200 and patched.subscriptions["PUB"].on_render_error == "stop"


def test_a_subscription_stored_before_the_field_existed_stops() -> None:
    old = {"PublisherProgramId": "PUB", "SubscriptionId": "c1", "CreatedUtc": AT, "UpdatedUtc": AT}
    assert Subscription.from_json(old).on_render_error == "stop"


def test_the_request_schemas_take_stop_or_park_only() -> None:
    assert SubscriptionCreate.model_validate({"PublisherProgramId": "PUB"}).OnRenderError == "stop"
    assert SubscriptionPatch.model_validate({"OnRenderError": "park"}).changes() == {"OnRenderError": "park"}
    for bad in ("Park", "skip", None, 1):
        with pytest.raises(ValidationError):
            SubscriptionPatch.model_validate({"OnRenderError": bad})
