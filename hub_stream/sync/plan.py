"""Pure logic of one subscription's sync: which rows go to LB in which batches.

The sync reads a publisher's partition from the cursor to the log end taken
at its start, renders every event it keeps, and then — only if every event
rendered — sends the rows grouped by importProcessId, in log order, split at
the row cap. A batch LB accepted is remembered (``delivered``: the last
offset accepted per importProcessId in the current window), so a retry after
a partial failure sends only what LB has not accepted yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class RowAt(NamedTuple):
    """A rendered row and the hub.events offset of the event it came from (one per row: a cheap tuple)."""

    offset: int
    import_process_id: int
    line: str


@dataclass(frozen=True)
class PlannedBatch:
    import_process_id: int
    rows: tuple[str, ...]
    first_offset: int
    last_offset: int


def plan_batches(
    rows: Iterable[RowAt], *, delivered: Mapping[int, int], row_cap: int, window_start: int = 0
) -> list[PlannedBatch]:
    """Group rows by importProcessId (first appearance order), skip what LB already
    accepted in this window, and split each group into batches of at most ``row_cap``.

    Rows before ``window_start`` are parked events sent again (they come
    first): ``delivered`` does not cover them (a parked event LB accepted is
    no longer parked), so they are never skipped."""
    if row_cap < 1:
        raise ValueError("row_cap must be at least 1")
    groups: dict[int, list[RowAt]] = {}
    for row in rows:
        if window_start <= row.offset <= delivered.get(row.import_process_id, -1):
            continue
        groups.setdefault(row.import_process_id, []).append(row)
    batches: list[PlannedBatch] = []
    for ipid, group in groups.items():
        for start in range(0, len(group), row_cap):
            chunk = group[start : start + row_cap]
            batches.append(
                PlannedBatch(ipid, tuple(r.line for r in chunk), chunk[0].offset, chunk[-1].offset)
            )
    return batches


def batch_file_name(publisher_program_id: str, when: datetime, sync_id: str, n: int) -> str:
    """The ``fileName`` LB shows under Recent Imports: unique per batch of a sync.

    ``n`` is the batch's number in the sync (its ledger seq). A batch sent again
    keeps its name, so LB staff see a possible duplicate as two imports of one file.
    """
    return f"Learning Hub {publisher_program_id} {when:%Y-%m-%d} {sync_id}-{n}"
