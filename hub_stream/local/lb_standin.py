"""A LearningBuilder stand-in: CreateBatch as the vendor spec describes it.

Used by the tests (a real HTTP server, not a mock) and by `hub dev --fake-lb`
so a newcomer can watch a whole sync locally. It checks what LB checks
(``Authorization: apikey KEY``, the query parameter rules, a JSON Lines
body), records every batch it accepted or refused, and can be told to fail,
hang or answer slowly — in process (``FakeLB`` methods) or over HTTP
(``POST /_fake/behaviour``, ``GET /_fake/batches``, ``POST /_fake/reset``).

Slow answers model the ambiguous case of the sync: the stand-in records a
batch as soon as it decides (as LB queues the rows), then waits before
answering, so a client that dies or gives up meanwhile never learns that
its batch was accepted. Two behaviours script that case for the next N
accepted batches: ``timeout_after_store`` (recorded, then the answer is held
for ``hold_s``, past any sane client timeout) and ``drop_after_store``
(recorded, then the connection is closed without an answer). ``hang`` holds
a request without reading it: such a batch is never recorded.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

CREATE_BATCH_PATH = "/API/WorkflowImportQueue/CreateBatch"
CREATION_PATH_RE = re.compile(r"^[A-Z0-9_]{1,15}$")


@dataclass
class ReceivedBatch:
    """One CreateBatch call as the stand-in saw it."""

    batch_id: str | None
    status: int
    file_name: str | None
    import_process_id: int | None
    creation_path: str | None
    success_email: str | None
    failure_email: str | None
    lines: list[str]  # the body's rows as they arrived, each checked to be one JSON object
    error: str | None = None

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows as objects, parsed again on each access.

        The stand-in keeps the text it checked, not the parsed objects: a big
        sync sends it 100k rows, and keeping them all as objects made it
        slower with each batch (fresh memory for each, the garbage collector
        walking all of them), a cost no real LB puts on the hub's clock.
        """
        return [json.loads(line) for line in self.lines]

    def as_json(self) -> dict[str, Any]:
        doc = {k: v for k, v in asdict(self).items() if k != "lines"}
        doc["rows"] = self.rows
        return doc


@dataclass
class Behaviour:
    """How the stand-in answers the next calls."""

    fail_status: int | None = None  # answer this status ...
    fail_times: int = 0  # ... this many times (-1: always)
    fail_message: str = "The stand-in was told to fail."
    reject_import_process_ids: set[int] = field(default_factory=set)  # always 400 for these
    delay_s: float = 0.0  # answer slowly: the batch is recorded first, the answer follows after this
    hang: bool = False  # hold requests unread and unrecorded until reset (the client gives up first)
    timeout_after_store: int = 0  # the next N accepted batches: recorded, then no answer for hold_s
    drop_after_store: int = 0  # the next N accepted batches: recorded, then the connection is closed
    hold_s: float = 30.0  # how long ``timeout_after_store`` holds the answer


class FakeLB:
    """The stand-in's state and its aiohttp application."""

    def __init__(self, *, api_keys: set[str] | None = None, base_url: str = "") -> None:
        self.api_keys = set(api_keys or {"fake-lb-key"})
        self.behaviour = Behaviour()
        self.batches: list[ReceivedBatch] = []
        self.base_url = base_url
        self.in_flight = 0  # requests received and not answered yet
        self.hanging = 0  # of which held by ``hang``
        self._release = asyncio.Event()

    # --- control ---------------------------------------------------------
    def fail(self, status: int, *, times: int = 1, message: str | None = None) -> None:
        self.behaviour.fail_status = status
        self.behaviour.fail_times = times
        if message:
            self.behaviour.fail_message = message

    def store_then_time_out(self, times: int = 1, *, hold_s: float = 30.0) -> None:
        """Record the next ``times`` accepted batches, then hold each answer for ``hold_s``."""
        self.behaviour.timeout_after_store = times
        self.behaviour.hold_s = hold_s

    def store_then_drop(self, times: int = 1) -> None:
        """Record the next ``times`` accepted batches, then close each connection without an answer."""
        self.behaviour.drop_after_store = times

    def reject_process(self, import_process_id: int) -> None:
        self.behaviour.reject_import_process_ids.add(import_process_id)

    def reset(self) -> None:
        """Normal behaviour, nothing recorded; requests held by ``hang`` are answered 503, unrecorded."""
        self.behaviour = Behaviour()
        self.batches.clear()
        self.release_held()

    def release_held(self) -> None:
        """Stop hanging: requests held so far are answered 503, unrecorded (what was recorded stays)."""
        self.behaviour.hang = False
        self._release.set()
        self._release = asyncio.Event()

    @property
    def accepted(self) -> list[ReceivedBatch]:
        return [b for b in self.batches if 200 <= b.status < 300]

    def accepted_rows(self) -> list[dict[str, Any]]:
        return [row for b in self.accepted for row in b.rows]

    # --- HTTP ------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post(CREATE_BATCH_PATH, self._create_batch)
        app.router.add_get("/_fake/batches", self._list_batches)
        app.router.add_post("/_fake/behaviour", self._set_behaviour)
        app.router.add_post("/_fake/reset", self._reset)
        return app

    async def _create_batch(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            if self.behaviour.hang:
                return await self._hang()
            q = request.query
            batch = ReceivedBatch(
                batch_id=None,
                status=0,
                file_name=q.get("fileName"),
                import_process_id=None,
                creation_path=q.get("creationPath"),
                success_email=q.get("sendSuccessEmailTo"),
                failure_email=q.get("sendFailureEmailTo"),
                lines=[],
            )
            b = self.behaviour
            delay = b.delay_s
            response = await self._answer(request, batch)
            batch.status = response.status
            # Recorded as soon as it is decided, like LB queueing the rows: an answer
            # delayed below may never reach a client that dies or gives up meanwhile.
            self.batches.append(batch)
            if response.status == 200 and b.drop_after_store > 0:
                b.drop_after_store -= 1
                assert request.transport is not None
                request.transport.close()  # the client sees the connection drop, no status line
                return response
            if response.status == 200 and b.timeout_after_store > 0:
                b.timeout_after_store -= 1
                delay = max(delay, b.hold_s)
            if delay:
                await asyncio.sleep(delay)
            return response
        finally:
            self.in_flight -= 1

    async def _hang(self) -> web.Response:
        """Hold the request without looking at it until ``reset``; it is never recorded."""
        self.hanging += 1
        try:
            await self._release.wait()
        finally:
            self.hanging -= 1
        return web.json_response({"Message": "The stand-in was reset while holding this request."}, status=503)

    async def _answer(self, request: web.Request, batch: ReceivedBatch) -> web.Response:
        b = self.behaviour
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme != "apikey" or key not in self.api_keys:
            return self._error(batch, 401, "Invalid or missing API key (Authorization: apikey KEY).")
        if b.fail_status is not None and b.fail_times != 0:
            if b.fail_times > 0:
                b.fail_times -= 1
            return self._error(batch, b.fail_status, b.fail_message)
        problems = self._query_problems(request, batch)
        if problems:
            return self._error(batch, 400, " ".join(problems))
        body = await request.text()
        for n, line in enumerate(body.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return self._error(batch, 400, f"Line {n} of the body is not JSON (JSON Lines required).")
            if not isinstance(row, dict):
                return self._error(batch, 400, f"Line {n} of the body is not a JSON object.")
            batch.lines.append(line)
        if not batch.lines:
            return self._error(batch, 400, "The body holds no rows.")
        if batch.import_process_id in b.reject_import_process_ids:
            batch.lines = []
            return self._error(batch, 400, f"Import process {batch.import_process_id} refused the batch.")
        batch.batch_id = uuid.uuid4().hex[:12]
        return web.json_response(
            {
                "queueBatchId": batch.batch_id,
                "queueBatchDetails": f"{self.base_url}/Admin/ImportQueue?batchId={batch.batch_id}",
            }
        )

    @staticmethod
    def _query_problems(request: web.Request, batch: ReceivedBatch) -> list[str]:
        q = request.query
        problems = []
        if not q.get("fileName"):
            problems.append("fileName is required.")
        try:
            batch.import_process_id = int(q.get("importProcessId", ""))
            if batch.import_process_id <= 0:
                raise ValueError
        except ValueError:
            problems.append("importProcessId must be a positive integer.")
        if not CREATION_PATH_RE.match(q.get("creationPath", "")):
            problems.append("creationPath must be 1-15 characters of A-Z, 0-9 and _.")
        return problems

    @staticmethod
    def _error(batch: ReceivedBatch, status: int, message: str) -> web.Response:
        batch.error = message
        return web.json_response({"Message": message}, status=status)

    async def _list_batches(self, request: web.Request) -> web.Response:
        return web.json_response([b.as_json() for b in self.batches])

    async def _set_behaviour(self, request: web.Request) -> web.Response:
        doc = await request.json()
        rejected = set(doc.pop("reject_import_process_ids", []))
        self.behaviour = Behaviour(**doc, reject_import_process_ids=rejected)
        return web.json_response({"ok": True})

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


async def start_fake_lb(
    *, host: str = "127.0.0.1", port: int = 0, api_keys: set[str] | None = None
) -> tuple[FakeLB, web.AppRunner]:
    """Serve a FakeLB on ``host:port`` (0: any free port); returns it and its runner."""
    fake = FakeLB(api_keys=api_keys)
    runner = web.AppRunner(fake.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # type: ignore[union-attr,attr-defined]
    bound = sockets[0].getsockname()[1] if sockets else port
    fake.base_url = f"http://{host}:{bound}"
    return fake, runner


def main() -> None:
    """Run the stand-in on its own (used by `hub dev --fake-lb`)."""
    import argparse

    parser = argparse.ArgumentParser(description="LearningBuilder CreateBatch stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args()
    fake = FakeLB(api_keys={args.api_key}, base_url=f"http://{args.host}:{args.port}")
    web.run_app(fake.app(), host=args.host, port=args.port, print=None, access_log=None, shutdown_timeout=1.0)


if __name__ == "__main__":
    main()
