"""The hub's Faust agents. ``register(app)`` declares them on an app."""

from __future__ import annotations

from hub_stream.faust_app import HubApp, HubTopics


def register(app: HubApp) -> HubTopics:
    """Declare every agent (and its tables) on ``app``; returns the topics."""
    from agents import intake, lag, subscriptions, sync

    topics = HubTopics(app)
    subscriptions.register(app, topics)
    sync.register(app, topics)
    intake.register(app, topics)
    lag.register(app)
    return topics
