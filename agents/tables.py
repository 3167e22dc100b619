"""The worker's Faust tables, declared in one place.

Each table has one writer (ARCHITECTURE.md): the subscriptions agent writes
``subscriptions``, the sync agent writes ``sync-cursors``; each agent also
reads the other's table. Both are keyed by subscriber on topics with the
same partition count, so a subscriber's two entries live on one worker.
Declaring them here lets both agents import them without importing each other.
"""

from __future__ import annotations

from typing import cast

import faust

from hub_stream.platform.faust_app import HubApp, table
from hub_stream.platform.topics import CURSORS_TABLE, PENDING_SYNCS_TABLE, SUBSCRIPTIONS_TABLE


def _declared_once(app: HubApp, name: str) -> faust.Table:
    if name in app.tables:
        return cast(faust.Table, app.tables[name])
    return table(app, name, partitions=app.hub_settings.subscriber_partitions)


def subscriptions_table(app: HubApp) -> faust.Table:
    """The subscriptions table of ``app`` (written by the subscriptions agent only)."""
    return _declared_once(app, SUBSCRIPTIONS_TABLE)


def cursors_table(app: HubApp) -> faust.Table:
    """The sync cursors table of ``app`` (written by the sync agent only)."""
    return _declared_once(app, CURSORS_TABLE)


def pending_syncs_table(app: HubApp) -> faust.Table:
    """Sync requests not answered yet, by subscriber (written by the sync agent only)."""
    return _declared_once(app, PENDING_SYNCS_TABLE)
