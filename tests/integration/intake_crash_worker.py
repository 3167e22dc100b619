"""A `hub worker` whose intake agent dies (os._exit, like SIGKILL) at a chosen point of a batch.

Run as a script by tests/integration/test_intake_stream.py. The environment
names the point: ``INTAKE_CRASH_AT`` is

- ``after_entries``: the batch's table entries are on the changelog, nothing
  is on hub.events yet;
- ``mid_appends``: half of the batch's hub.events records are written;
- ``after_appends``: every record is on hub.events, the partition mark is not
  written and no reply went out;

and ``INTAKE_CRASH_AFTER_APPENDS`` = N: batches go through normally until N
records are on hub.events; the next batch with appends dies at that point.
Everything else is the real worker: the same app, agents and settings.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import faust

from agents import intake
from hub_stream.platform.faust_app import create_faust_app
from hub_stream.platform.logs import setup_logging
from hub_stream.platform.settings import HubSettings

CRASH_AT = os.environ["INTAKE_CRASH_AT"]
CRASH_AFTER_APPENDS = int(os.environ.get("INTAKE_CRASH_AFTER_APPENDS", "0"))
_original_send_all = intake.Intake._send_all
_appended = 0


async def _crashing_send_all(self: intake.Intake, records: list[intake.Outgoing]) -> dict[int, int]:
    global _appended
    appends = [r for r in records if r.topic == self.events_topic]
    if not appends or _appended < CRASH_AFTER_APPENDS:
        _appended += len(appends)
        return await _original_send_all(self, records)
    if CRASH_AT == "after_entries":
        os._exit(137)
    if CRASH_AT == "mid_appends":
        await _original_send_all(self, records[: len(records) // 2])
        os._exit(137)
    await _original_send_all(self, records)
    os._exit(137)


def main() -> None:
    settings = HubSettings()
    setup_logging(settings.log_level)
    intake.Intake._send_all = _crashing_send_all  # type: ignore[method-assign]
    app = create_faust_app(settings)
    importlib.import_module("agents").register(app)
    worker: Any = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False, override_logging=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
