"""A `hub worker` whose intake agent dies (os._exit, like SIGKILL) at a chosen point of a batch.

Run as a script by tests/integration/test_intake_stream.py. The environment
names the point: ``INTAKE_CRASH_AT`` is

- ``after_entries``: the batch's table entries are on the changelog, nothing
  is on hub.events yet;
- ``mid_appends``: half of the batch's hub.events records are written;
- ``after_appends``: every record is on hub.events, the partition mark is not
  written and no reply went out;

- ``stalls``: the intake takes its first batch and never finishes deciding it
  (an agent stuck while the worker's other agents answer);
- ``broker_fails``: the batch's writes fail as with brokers away
  (``KafkaTimeoutError``), and the intake's stop then hangs as aiokafka's did
  with brokers away (BROKER-FACTS.md): the worker must still exit promptly;

and ``INTAKE_CRASH_AFTER_APPENDS`` = N: batches go through normally until N
records are on hub.events; the next batch with appends dies at that point.
Everything else is the real worker: the same app, agents and settings
(``broker_fails`` runs `hub worker` itself, ``hub_stream.cli.cmd_worker``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from typing import Any

import faust
from aiokafka.errors import KafkaTimeoutError

from agents import intake
from agents.intake.consumer import IntakeService
from hub_stream.cli import cmd_worker
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
    if CRASH_AT == "broker_fails":
        raise KafkaTimeoutError("the batch was not acknowledged (brokers away)")
    if CRASH_AT == "after_entries":
        os._exit(137)
    if CRASH_AT == "mid_appends":
        await _original_send_all(self, records[: len(records) // 2])
        os._exit(137)
    await _original_send_all(self, records)
    os._exit(137)


async def _stalled_decide(self: intake.Intake, events: list[Any]) -> Any:
    await asyncio.Event().wait()


async def _hanging_stop(self: IntakeService) -> None:
    await asyncio.sleep(600)


def main() -> None:
    settings = HubSettings()
    setup_logging(settings.log_level)
    intake.Intake._send_all = _crashing_send_all  # type: ignore[method-assign]
    if CRASH_AT == "stalls":
        intake.Intake.decide = _stalled_decide  # type: ignore[method-assign]
    if CRASH_AT == "broker_fails":
        IntakeService.on_stop = _hanging_stop  # type: ignore[method-assign]
        sys.exit(cmd_worker(settings, argparse.Namespace()))
    app = create_faust_app(settings)
    importlib.import_module("agents").register(app)
    worker: Any = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False, override_logging=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
