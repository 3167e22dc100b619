"""Rate-limited logs for a dependency that is down: a line and a count, not a line per attempt."""

from __future__ import annotations

import logging

import asyncpg
from aiokafka.errors import KafkaConnectionError

from hub_stream.platform.outages import (
    BROKER,
    DATABASE,
    DependencyUnavailable,
    OutageLog,
    RepeatFilter,
    unavailable_dependency,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_with_the_count(caplog) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    log = OutageLog(logging.getLogger("test.outages"), interval_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.outages"):
        for _ in range(1000):  # 1,000 failures over 20 s
            log.failed(DATABASE, "ConnectionRefusedError")
            clock.now += 0.02
        log.recovered(DATABASE)
        log.recovered(DATABASE)  # not down any more: nothing to say
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines  # the first failure, one after 10 s with the count, the recovery
    assert "501 failure(s) in the last 10 s" in lines[1], lines
    assert lines[-1].startswith("PostgreSQL answers again after 20.0 s and 1000 failure(s)")


def test_repeat_filter_passes_a_burst_then_counts() -> None:
    clock = Clock()
    flt = RepeatFilter(burst=3, interval_s=10.0, clock=clock)

    def record(name: str = "aiokafka.conn", level: int = logging.ERROR, msg: str = "Unable connect to node with id %s") -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, msg, (1,), None)

    passed = [flt.filter(record()) for _ in range(5000)]
    assert passed.count(True) == 3
    assert flt.filter(record(msg="another message %s"))  # another kind has its own budget
    assert flt.filter(record(name="hub_stream.api", level=logging.INFO, msg="x %s"))  # INFO of the hub: untouched
    clock.now = 11.0
    summary = record()
    assert flt.filter(summary)
    assert "4997 more like this" in summary.getMessage()


def test_which_dependency_an_exception_names() -> None:
    assert unavailable_dependency(DependencyUnavailable(BROKER)) == BROKER
    assert unavailable_dependency(asyncpg.CannotConnectNowError("starting up")) == DATABASE
    assert unavailable_dependency(KafkaConnectionError("no")) == BROKER
    assert unavailable_dependency(ConnectionRefusedError(111, "refused")) is not None
    assert unavailable_dependency(ValueError("a bug")) is None
    assert unavailable_dependency(RecursionError()) is None


def test_log_budget_holds_lines_past_the_budget_and_counts_them() -> None:
    import io
    import json

    from hub_stream.platform.logs import BudgetedStreamHandler, JsonFormatter

    clock, out = Clock(), io.StringIO()
    handler = BudgetedStreamHandler(out, budget_bytes=10_000, window_s=60.0, clock=clock)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.budget")
    logger.propagate = False
    logger.handlers[:] = [handler]
    access = logging.getLogger("hub_stream.access")
    access.propagate, access.handlers[:] = False, [handler]
    access.setLevel(logging.INFO)
    try:
        # Lines that differ each time (what RepeatFilter cannot group): 20,000 in one minute.
        for n in range(20_000):
            logger.error("Unable connect to node with id %d at 127.0.0.1:%d", n % 3, 9000 + n)
            if n % 100 == 0:
                access.info("GET /api/events/{id} 503 1.0 ms")  # one per request: always written
            clock.now += 0.002
        logger.critical("worker stops: a reason")  # always written
        written = out.getvalue()
        lines = [json.loads(line) for line in written.splitlines()]
        counted = [x for x in lines if x["logger"] != "hub_stream.access" and x["level"] != "CRITICAL"]
        assert sum(len(json.dumps(x)) + 1 for x in counted) <= 10_000 + 300, len(written)
        assert any("log budget of 10000 bytes" in x["message"] for x in lines), lines[-3:]
        assert sum(x["logger"] == "hub_stream.access" for x in lines) == 200
        assert lines[-1]["message"] == "worker stops: a reason"
        errors_written = sum(x["logger"] == "test.budget" and x["level"] == "ERROR" for x in lines)

        clock.now += 60  # the next window: its first line gives the count
        logger.error("Unable connect to node with id %d", 1)
        last = [json.loads(line) for line in out.getvalue().splitlines()][-2:]
        assert last[0]["message"].startswith(f"{20_000 - errors_written} log line(s)"), last
        assert last[1]["message"] == "Unable connect to node with id 1"
    finally:
        logger.handlers.clear()
        access.handlers.clear()
        access.propagate = True
        access.setLevel(logging.NOTSET)
