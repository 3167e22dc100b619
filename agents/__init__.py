"""The hub's Faust agents. ``register(app)`` declares them on an app."""

from __future__ import annotations

from hub_stream.platform.faust_app import HubApp, HubTopics


def register(app: HubApp) -> HubTopics:
    """Declare every agent (and its tables) on ``app``; returns the topics."""
    from agents import consumer_lag, intake, subscription_health, subscriptions_agent, sync_agent

    topics = HubTopics(app)
    subscriptions_agent.register(app, topics)
    sync_agent.register(app, topics)
    intake_service = intake.register(app, topics)
    consumer_lag.register(app, intake_service)
    subscription_health.register(app)
    return topics
