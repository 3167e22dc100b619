"""When a dependency (PostgreSQL, the broker, the workers) does not answer.

CONTRACT.md "Conventions": such a request gets 503 ``unavailable`` with
``Retry-After``, and the logs say so with a line and a count, not a line per
attempt. Three parts, shared by the API and the workers:

- ``DependencyUnavailable``: the exception code raises for "X did not answer";
  ``unavailable_dependency(exc)`` recognises the client libraries' own
  exceptions for the same thing.
- ``OutageLog``: the first failure of a dependency is logged at once, then at
  most one line per interval with the number of failures since.
- ``RepeatFilter``: a logging filter that lets a few records of one kind
  through per interval and then one line saying how many it held back (for
  libraries that log every reconnect attempt, such as aiokafka).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

RETRY_AFTER_S = 2
"""What ``Retry-After`` says: a dependency back within seconds answers the retry."""

DATABASE = "PostgreSQL"
BROKER = "the broker"
WORKERS = "the workers"


request_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("request_deadline", default=None)
"""When the HTTP request being served must be answered (event loop time), set by the API's middleware."""


def time_left(budget_s: float) -> float:
    """``budget_s``, cut to what is left of the request's deadline (a little before it, so the
    part that waits can say what it waited for)."""
    deadline = request_deadline.get()
    if deadline is None:
        return budget_s
    return max(min(budget_s, deadline - asyncio.get_running_loop().time() - 0.1), 0.001)


class DependencyUnavailable(Exception):
    """A dependency the request needs did not answer (503 ``unavailable``)."""

    def __init__(self, dependency: str, reason: str = "") -> None:
        super().__init__(f"{dependency} did not answer" + (f": {reason}" if reason else ""))
        self.dependency = dependency
        self.reason = reason


def unavailable_dependency(exc: BaseException) -> str | None:
    """The dependency that ``exc`` says did not answer, else None (a bug, or bad input)."""
    if isinstance(exc, DependencyUnavailable):
        return exc.dependency
    import asyncpg
    from aiokafka import errors as kafka_errors

    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return DATABASE  # the client's side of a connection that broke or a pool that closed
    if isinstance(exc, asyncpg.PostgresError) and _database_state(exc):
        return DATABASE
    if isinstance(exc, kafka_errors.KafkaError | kafka_errors.ConsumerStoppedError):
        # Every error the Kafka client raises in a request path is the cluster's
        # (NodeNotReadyError, NotEnoughReplicas, KafkaTimeoutError, a client
        # stopped under a rebuild...): the request's content is checked before.
        return BROKER
    if isinstance(exc, OSError | TimeoutError):  # connection refused, socket gone, connect timeout
        return _library_of(exc) or "a dependency"
    return None


DATABASE_STATES = ("08", "53", "57", "58", "40001", "40P01", "25006")
"""SQLSTATEs (classes, or codes) that say the database, not the request, failed: connection
exceptions, insufficient resources, operator intervention (shutdown, cancelled by a timeout),
system errors, serialization failure and deadlock (a retry succeeds), read-only (a failover)."""


def _database_state(exc: BaseException) -> bool:
    state = str(getattr(exc, "sqlstate", "") or "")
    return state.startswith(DATABASE_STATES)


def _library_of(exc: BaseException) -> str | None:
    """Which client library raised ``exc``, from the modules on its traceback."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith("asyncpg"):
            found = DATABASE
        elif module.startswith("aiokafka"):
            found = BROKER
        tb = tb.tb_next
    return found


@dataclass
class _Outage:
    first: float
    last_line: float
    failures: int = 0  # since the last line
    total: int = 0


class OutageLog:
    """Rate-limited log lines about dependencies that do not answer: one per interval, with a count."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._outages: dict[str, _Outage] = {}

    def failed(self, dependency: str, reason: str) -> None:
        """Count one failure; log the first at once, later ones as one line per interval."""
        now = self._clock()
        outage = self._outages.get(dependency)
        if outage is None:
            self._outages[dependency] = _Outage(first=now, last_line=now, total=1)
            self._logger.warning("%s does not answer: %s", dependency, reason)
            return
        outage.failures += 1
        outage.total += 1
        if now - outage.last_line >= self.interval_s:
            self._logger.warning(
                "%s still does not answer: %d failure(s) in the last %.0f s, %d since it went away %.0f s ago; last: %s",
                dependency,
                outage.failures,
                now - outage.last_line,
                outage.total,
                now - outage.first,
                reason,
            )
            outage.failures = 0
            outage.last_line = now

    def recovered(self, dependency: str) -> None:
        """The dependency answered again: one line, if it was down."""
        outage = self._outages.pop(dependency, None)
        if outage is not None:
            self._logger.warning(
                "%s answers again after %.1f s and %d failure(s)", dependency, self._clock() - outage.first, outage.total
            )

    def down(self, dependency: str) -> bool:
        return dependency in self._outages


OUTAGES = OutageLog(logging.getLogger("hub_stream.outages"))
"""The process's outage log: every part that meets a missing dependency reports here."""


class RepeatFilter(logging.Filter):
    """Lets ``burst`` records of one kind (logger, level, message template) through per interval.

    The next record of that kind after the interval carries the count of
    those held back. Tracebacks of the ``noisy`` libraries become one line. Records below ``min_level`` pass untouched unless their
    logger is one of ``noisy`` (prefixes), whose records are all limited.
    """

    def __init__(
        self,
        *,
        burst: int = 5,
        interval_s: float = 10.0,
        min_level: int = logging.WARNING,
        noisy: tuple[str, ...] = ("aiokafka", "kafka", "asyncpg"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.interval_s = interval_s
        self.min_level = min_level
        self.noisy = noisy
        self._clock = clock
        self._windows: dict[tuple[str, int, str], list[float | int]] = {}  # key -> [start, passed, held]

    def filter(self, record: logging.LogRecord) -> bool:
        noisy = record.name.startswith(self.noisy)
        if noisy and record.exc_info and record.exc_info[1] is not None:
            # A library's traceback of a connection failure says no more than its last line.
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        if record.levelno < self.min_level and not noisy:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.interval_s:
            held = int(window[2]) if window is not None else 0
            if len(self._windows) > 10_000:
                self._windows.clear()
            self._windows[key] = [now, 1, 0]
            if held:
                record.msg = f"{record.msg} [and {held} more like this in the last {self.interval_s:.0f} s, not logged]"
            return True
        if window[1] < self.burst:
            window[1] += 1
            return True
        window[2] += 1
        return False
