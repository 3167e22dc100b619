"""Consumer lag per topic partition, for the worker's metrics."""

from __future__ import annotations

import logging

from hub_stream.platform.faust_app import HubApp
from hub_stream.platform.metrics import CONSUMER_LAG

logger = logging.getLogger(__name__)

LAG_INTERVAL_S = 15.0


def register(app: HubApp) -> None:
    """Every 15 s, set hub_consumer_lag{topic,partition} = high watermark - next offset to read."""

    @app.timer(interval=LAG_INTERVAL_S)
    async def report_lag() -> None:
        consumer = app.consumer
        try:
            assigned = consumer.assignment()
            for tp in assigned:
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue  # the broker has not reported one for this partition yet
                read = consumer._read_offset.get(tp)  # Faust keeps the last offset it read
                position = (read + 1) if read is not None else 0
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))
        except Exception:  # a metric must never take the worker down
            logger.debug("consumer lag not available", exc_info=True)
