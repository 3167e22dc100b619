"""The subscriptions table value: state transitions and idempotency (pure logic)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub_stream.subscriptions import records as subs
from hub_stream.subscriptions.records import (
    APPLIED_LIMIT,
    CommandLog,
    Outcome,
    SubscriberRecord,
    apply,
    is_plain_template,
)

T0 = "2026-11-22T08:00:00.000Z"
T1 = "2026-11-22T09:00:00.000Z"
OBJECT_TEMPLATE = {"C1": {"action": "import", "label": "L", "importProcessId": 5, "batchRowTemplate": '{"a": "{{x}}"}'}}


def accept_all(template: Any, import_process_id: int | None) -> dict[str, Any] | None:
    return None


def refuse(template: Any, import_process_id: int | None) -> dict[str, Any] | None:
    return subs.problem("invalid_template", "bad", entry="C1", line=1, column=3, reason="bad")


def run(record: SubscriberRecord, kind: str, cid: str, body: dict[str, Any], check: Any = accept_all) -> tuple[SubscriberRecord, Outcome]:
    return apply(record, "SUB", kind, cid, body, check_template=check)


def create(record: SubscriberRecord = SubscriberRecord(), cid: str = "c1", **fields: Any) -> tuple[SubscriberRecord, Outcome]:
    body = {"PublisherProgramId": "PUB", "SyncEnabled": False, "At": T0, **fields}
    return run(record, "create", cid, body)


def test_create_stores_the_subscription_as_given() -> None:
    record, outcome = create(SyncEnabled=True, LbApiPayloadTemplate=OBJECT_TEMPLATE, LastSyncUtc=T1)
    assert outcome == Outcome(201, {"SubscriptionId": "c1"})
    sub = record.subscriptions["PUB"]
    assert (sub.subscription_id, sub.created_utc, sub.updated_utc, sub.sync_enabled) == ("c1", T0, T0, True)
    assert sub.template == OBJECT_TEMPLATE
    assert sub.start_utc == T1
    assert sub.resource("SUB", None) == {
        "ProgramId": "SUB",
        "PublisherProgramId": "PUB",
        "CreatedUtc": T0,
        "UpdatedUtc": T0,
        "LastSyncUtc": None,
        "SyncEnabled": True,
        "LbApiPayloadTemplate": OBJECT_TEMPLATE,
        "ImportProcessId": None,
        "OnRenderError": "stop",
    }


def test_create_twice_with_another_id_conflicts() -> None:
    record, _ = create()
    again, outcome = create(record, cid="c2")
    assert outcome.status == 409
    assert outcome.body["error"] == "subscription_exists"
    assert again.subscriptions == record.subscriptions


def test_same_create_command_twice_answers_the_same_and_changes_nothing() -> None:
    record, first = create()
    again, second = create(record, cid="c1")
    assert second == first
    assert again is record  # nothing to write


def test_same_patch_twice_gives_one_updated_utc() -> None:
    record, _ = create()
    body = {"PublisherProgramId": "PUB", "Changes": {"SyncEnabled": True}, "At": T1}
    once, first = run(record, "patch", "p1", body)
    redelivered = {**body, "At": "2027-01-01T00:00:00.000Z"}  # even if the time differed, nothing changes
    twice, second = run(once, "patch", "p1", redelivered)
    assert first == second == Outcome(200, {"SubscriptionId": "c1"})
    assert twice is once
    assert twice.subscriptions["PUB"].updated_utc == T1
    assert twice.subscriptions["PUB"].sync_enabled is True


def test_failed_mutations_are_recorded_so_a_replay_cannot_succeed_later() -> None:
    # c2 conflicted; then d1 deleted the subscription. Replaying c2 must still say 409.
    record, _ = create()
    record, conflict = create(record, cid="c2")
    record, deleted = run(record, "delete", "d1", {"PublisherProgramId": "PUB"})
    assert deleted.status == 204 and "PUB" not in record.subscriptions
    replayed, outcome = create(record, cid="c2")
    assert outcome == conflict
    assert replayed is record and "PUB" not in replayed.subscriptions


def test_patch_changes_only_what_it_names() -> None:
    record, _ = create(SyncEnabled=True, LbApiPayloadTemplate=OBJECT_TEMPLATE)
    record, outcome = run(record, "patch", "p1", {"PublisherProgramId": "PUB", "Changes": {"LastSyncUtc": T0}, "At": T1})
    sub = record.subscriptions["PUB"]
    assert outcome.status == 200
    assert (sub.sync_enabled, sub.template, sub.created_utc, sub.updated_utc) == (True, OBJECT_TEMPLATE, T0, T1)
    assert sub.start_utc is None  # LastSyncUtc is the cursor's business (sync agent)


def test_patch_unknown_subscription_is_404() -> None:
    record, outcome = run(SubscriberRecord(), "patch", "p1", {"PublisherProgramId": "NOPE", "Changes": {"SyncEnabled": True}})
    assert outcome.status == 404
    assert outcome.body["error"] == "subscription_not_found"
    assert record.subscriptions == {}


def test_invalid_template_is_refused_on_create_and_patch_and_nothing_changes() -> None:
    record, outcome = run(SubscriberRecord(), "create", "c1", {"PublisherProgramId": "PUB", "LbApiPayloadTemplate": "x"}, refuse)
    assert outcome.status == 422 and record.subscriptions == {}
    record, _ = create()
    after, outcome = run(record, "patch", "p1", {"PublisherProgramId": "PUB", "Changes": {"LbApiPayloadTemplate": "{{"}}, refuse)
    assert outcome.status == 422
    assert outcome.body["details"]["entry"] == "C1"
    assert after.subscriptions == record.subscriptions


def test_patch_to_an_object_template_drops_the_plain_templates_import_process_id() -> None:
    record, _ = create(LbApiPayloadTemplate='{"a": {{json x}}}', ImportProcessId=7)
    assert record.subscriptions["PUB"].import_process_id == 7
    record, outcome = run(record, "patch", "p1", {"PublisherProgramId": "PUB", "Changes": {"LbApiPayloadTemplate": OBJECT_TEMPLATE}})
    assert outcome.status == 200
    assert record.subscriptions["PUB"].import_process_id is None


def test_delete_then_delete_again() -> None:
    record, _ = create()
    record, first = run(record, "delete", "d1", {"PublisherProgramId": "PUB"})
    record, second = run(record, "delete", "d2", {"PublisherProgramId": "PUB"})
    assert (first.status, second.status) == (204, 404)


def test_a_new_subscription_after_delete_has_a_new_id() -> None:
    record, _ = create()
    record, _ = run(record, "delete", "d1", {"PublisherProgramId": "PUB"})
    record, outcome = create(record, cid="c9")
    assert outcome.body == {"SubscriptionId": "c9"}


def test_applied_outcomes_are_bounded() -> None:
    record, _ = create()
    for i in range(APPLIED_LIMIT + 10):
        record, _ = run(record, "patch", f"p{i}", {"PublisherProgramId": "PUB", "Changes": {"SyncEnabled": bool(i % 2)}})
    assert len(record.log.entries) == APPLIED_LIMIT
    assert record.log.outcome_of("p0") is None
    assert record.log.outcome_of(f"p{APPLIED_LIMIT + 9}") is not None


def test_record_round_trips_through_json() -> None:
    record, _ = create(LbApiPayloadTemplate=OBJECT_TEMPLATE, LastSyncUtc=T1)
    record, _ = create(record, cid="c2")
    doc = json.loads(json.dumps(record.to_json()))
    assert SubscriberRecord.from_json(doc) == record
    assert SubscriberRecord.from_json(None) == SubscriberRecord()


def test_list_is_sorted_by_publisher_ordinally() -> None:
    record = SubscriberRecord()
    for i, pub in enumerate(["b", "B", "a", "A-1"]):
        record, _ = run(record, "create", f"c{i}", {"PublisherProgramId": pub})
    assert [s.publisher for s in record.sorted()] == ["A-1", "B", "a", "b"]


def test_a_record_over_the_size_limit_is_refused() -> None:
    big = {"C": {"action": "import", "importProcessId": 1, "batchRowTemplate": "x" * 500_000}}
    record, ok = create(LbApiPayloadTemplate=big)
    assert ok.status == 201
    after, outcome = run(record, "create", "c2", {"PublisherProgramId": "P2", "LbApiPayloadTemplate": big})
    assert outcome.status == 422
    assert outcome.body["error"] == "subscriptions_too_large"
    assert set(after.subscriptions) == {"PUB"}


def test_command_log_keeps_the_newest_outcome_of_an_id() -> None:
    log = CommandLog().recording("a", Outcome(201)).recording("a", Outcome(409))
    assert log.outcome_of("a") == Outcome(409)
    assert CommandLog.from_json(log.to_json()) == log


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ('{"C": {"importProcessId": 1, "batchRowTemplate": "{}"}}', False),
        ("  {\"C\": {}}  ", False),
        ("  {\"a\": 1}  ", True),  # a JSON object whose values are not entries: a row template
        ('{"e": "{{email}}"}', True),
        ('{"C": {"importProcessId": 1}, "e": "x"}', True),  # one value is not an entry
        ("{}", False),  # every value (none) is an entry: the category map form, refused as empty
        ("{{x}}", True),
        ('{"a": {{json x}}}', True),  # looks like JSON, is not
        ("[1, 2]", True),
        ({"C": {}}, False),
        (None, False),
    ],
)
def test_plain_template_form(value: Any, plain: bool) -> None:
    assert is_plain_template(value) is plain


def test_import_process_id_rules_without_parsing() -> None:
    assert subs.template_problem(None, None) is None
    assert subs.template_problem(None, 3)["error"] == "invalid_template"
    missing = subs.template_problem("{{x}}", None)
    assert missing is not None and missing["details"]["field"] == "ImportProcessId"
    stray = subs.template_problem({"C": {}}, 3)
    assert stray is not None and stray["details"]["field"] == "ImportProcessId"


def test_a_plain_template_whose_text_is_json_is_saved_with_its_import_process_id() -> None:
    """CONTRACT.md: '{"e": "{{email}}"}' is a plain template (form 3), not a category map."""
    assert subs.template_problem('{"e": "{{email}}"}', 7) is None
    missing = subs.template_problem('{"e": "{{email}}"}', None)
    assert missing is not None and missing["details"]["field"] == "ImportProcessId"
    category_map = json.dumps({"C": {"importProcessId": 1, "batchRowTemplate": '{"e": "{{email}}"}'}})
    assert subs.template_problem(category_map, None) is None
    stray = subs.template_problem(category_map, 7)
    assert stray is not None and stray["details"]["field"] == "ImportProcessId"
