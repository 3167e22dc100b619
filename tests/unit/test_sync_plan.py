"""Which rows a sync sends, in which batches."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub_stream.sync.plan import RowAt, batch_file_name, plan_batches


def rows(*spec: tuple[int, int]) -> list[RowAt]:
    return [RowAt(offset, ipid, f'{{"o":{offset}}}') for offset, ipid in spec]


def test_groups_by_import_process_in_log_order() -> None:
    plan = plan_batches(rows((3, 7), (5, 9), (8, 7), (9, 9), (12, 7)), delivered={}, row_cap=100)
    assert [(b.import_process_id, b.first_offset, b.last_offset) for b in plan] == [(7, 3, 12), (9, 5, 9)]
    assert plan[0].rows == ('{"o":3}', '{"o":8}', '{"o":12}')


def test_splits_at_the_row_cap() -> None:
    plan = plan_batches(rows(*[(i, 1) for i in range(5)]), delivered={}, row_cap=2)
    assert [b.rows for b in plan] == [('{"o":0}', '{"o":1}'), ('{"o":2}', '{"o":3}'), ('{"o":4}',)]


def test_skips_rows_lb_already_accepted_per_process() -> None:
    # Process 7 was accepted up to offset 8 in the failed attempt, process 9 not at all.
    plan = plan_batches(rows((3, 7), (5, 9), (8, 7), (9, 9), (12, 7)), delivered={7: 8}, row_cap=100)
    assert [(b.import_process_id, b.rows) for b in plan] == [(9, ('{"o":5}', '{"o":9}')), (7, ('{"o":12}',))]


def test_nothing_to_send_is_no_batch() -> None:
    assert plan_batches([], delivered={}, row_cap=10) == []
    assert plan_batches(rows((1, 1)), delivered={1: 1}, row_cap=10) == []


def test_row_cap_must_be_positive() -> None:
    with pytest.raises(ValueError):
        plan_batches([], delivered={}, row_cap=0)


def test_file_name() -> None:
    when = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)
    assert batch_file_name("ACME", when, "S:SUB-5f0c", 3) == "Learning Hub ACME 2026-11-22 S:SUB-5f0c-3"
