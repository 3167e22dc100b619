"""The sync agent: the only writer of the sync cursors table."""

from __future__ import annotations

from agents.serving import request_agent
from hub_stream.faust_app import HubApp, HubTopics


def register(app: HubApp, topics: HubTopics) -> None:
    request_agent(app, topics.sync_requests, topics.replies, {}, name="sync")
