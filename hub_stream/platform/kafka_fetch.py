"""Kafka consumers that fetch a partition again as soon as its records are taken.

aiokafka 0.14.0's fetcher leaves out of its next fetch a partition whose
fetched records the application has not taken yet, and looks at it again
only after ``prefetch_backoff`` (0.1 s; not an option of AIOKafkaConsumer),
however soon the application takes them. A request that follows another on
the same partition within that time waits for it: a sync's claim, sent to
the sync agent right after the sync request it answers, took 103 ms instead
of 7 ms (bench_sync, docs/decisions.md).

``install(backoff_s)`` makes that wait ``HUB_PREFETCH_BACKOFF_MS`` (5 ms by
default) for every consumer this process creates afterwards: Faust's, the
intake's, the API's reply reader, the range readers. An idle partition is
not affected (nothing is held); a busy one is looked at every 5 ms instead of
every 100 ms while the application works through its records. It wraps the
constructor of a class of the pinned aiokafka; the test of the request path
checks that a started consumer has the value.
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer import fetcher as aiokafka_fetcher

_ORIGINAL = aiokafka_fetcher.Fetcher.__init__
_backoff_s = 0.1


def _init(self: aiokafka_fetcher.Fetcher, *args: Any, **kwargs: Any) -> None:
    kwargs.setdefault("prefetch_backoff", _backoff_s)
    _ORIGINAL(self, *args, **kwargs)


def install(backoff_s: float) -> None:
    """Consumers created from now on in this process wait ``backoff_s`` (idempotent; the last value wins)."""
    global _backoff_s
    _backoff_s = backoff_s
    aiokafka_fetcher.Fetcher.__init__ = _init  # type: ignore[method-assign]


def prefetch_backoff_of(consumer: Any) -> float | None:
    """The wait of a started consumer (None before it started)."""
    fetcher = getattr(consumer, "_fetcher", None)
    return None if fetcher is None else float(fetcher._prefetch_backoff)
