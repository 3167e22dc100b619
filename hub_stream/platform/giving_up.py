"""A worker that cannot go on: one clear last line, then the process ends, promptly.

The intake stops its worker when it cannot make a batch durable (the broker
refused or did not answer): its effects may be half made, and the restart
repairs them from the partition marks (docs/events.md). Faust's own stop then
waited up to a minute in its consumer thread with brokers away, while the
worker kept its partitions (BROKER-FACTS.md). So the stop is given
``STOP_GRACE_S``: a stop that is not over by then ends the process with
``EXIT_CANNOT_GO_ON``, and the broker hands its partitions to the other
workers after their session timeout. Either way the process exits non-zero
and a supervisor starts it again (docs/operations.md, "Supervision").
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

logger = logging.getLogger("hub_stream.worker")

STOP_GRACE_S = 8.0
EXIT_CANNOT_GO_ON = 70
"""The worker's exit status when it stopped because it could not go on (EX_SOFTWARE)."""

_armed = threading.Lock()


def give_up(reason: str, exc: BaseException | None = None, *, grace_s: float = STOP_GRACE_S) -> None:
    """Log why the worker stops and make sure the process is gone within ``grace_s``.

    The caller then asks the app to stop (``app.crash``); this only bounds how long that may take.
    """
    cause = f" ({type(exc).__name__}: {exc})"[:400] if exc is not None else ""
    if not _armed.acquire(blocking=False):
        logger.error("worker: %s%s (already stopping)", reason, cause)
        return
    logger.critical(
        "worker stops: %s%s; the process exits within %.0f s (status %d) so that its partitions move"
        " and a supervisor starts it again",
        reason,
        cause,
        grace_s,
        EXIT_CANNOT_GO_ON,
    )
    threading.Thread(target=_exit_after, args=(grace_s,), name="worker-exit", daemon=True).start()


def _exit_after(grace_s: float) -> None:
    time.sleep(grace_s)
    logger.critical(
        "worker: the stop did not finish within %.0f s; exiting now (status %d)", grace_s, EXIT_CANNOT_GO_ON
    )
    exit_now()


def exit_now(status: int = EXIT_CANNOT_GO_ON) -> Any:
    """End the process at once, log lines written first."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # exiting regardless
            handler.flush()
    os._exit(status)


def gave_up() -> bool:
    """Whether ``give_up`` was called in this process."""
    return _armed.locked()
