"""The intake agent: the only writer of the intake table (not written yet)."""

from __future__ import annotations

from hub_stream.faust_app import HubApp, HubTopics


def register(app: HubApp, topics: HubTopics) -> None:
    """Declare the intake agent on ``app``."""
