"""`hub dev`: one command brings the hub up on embedded parts, and Ctrl-C leaves nothing."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from hub_stream.local.embedded import free_port
from hub_stream.local.lb_standin import start_fake_lb

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _processes_using(path: Path) -> list[psutil.Process]:
    """Processes whose command line names ``path`` (PostgreSQL runs detached from us)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _start_dev(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"HUB_DATA_DIR": str(tmp_path / ".hub"), "HUB_API_PORT": str(port)})
    return subprocess.Popen(
        [sys.executable, "-m", "hub_stream.cli", "dev"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "dev.err", "w"),
        text=True,
        start_new_session=True,
    )


def _read_until_ready(dev: subprocess.Popen[str], tmp_path: Path) -> list[str]:
    lines: list[str] = []
    assert dev.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = dev.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "Ctrl-C stops everything" in line:
            return lines
    raise AssertionError(f"hub dev never became ready: {lines}\n{(tmp_path / 'dev.err').read_text()[-3000:]}")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_hub_dev_runs_and_stops_cleanly(tmp_path: Path, stop_signal: int) -> None:
    port = free_port()
    dev = _start_dev(tmp_path, port)
    try:
        lines = _read_until_ready(dev, tmp_path)
        output = "\n".join(lines)
        assert f"http://127.0.0.1:{port}" in output
        # A fresh install prints a system key once.
        assert "system key" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
            assert r.status == 200
        children = _descendants(dev.pid)
        postgres = _processes_using(tmp_path / ".hub" / "postgres")
        assert children and postgres, "hub dev should have started children and PostgreSQL"

        started = time.monotonic()
        dev.send_signal(stop_signal)
        dev.wait(15)
        gone, alive = psutil.wait_procs(children + postgres, timeout=max(0.1, 15 - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
        assert not alive, f"left behind after stop: {[p.pid for p in alive]}"
        assert elapsed <= 15, f"stopping took {elapsed:.1f} s"
        assert dev.returncode == 0
        assert not _processes_using(tmp_path / ".hub")
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
        for proc in _processes_using(tmp_path / ".hub"):
            proc.kill()


def test_second_run_keeps_data_and_prints_no_new_key(tmp_path: Path) -> None:
    for run in range(2):
        port = free_port()
        dev = _start_dev(tmp_path, port)
        try:
            output = "\n".join(_read_until_ready(dev, tmp_path))
            assert ("system key" in output) == (run == 0)
        finally:
            dev.send_signal(signal.SIGINT)
            dev.wait(15)


def test_fake_lb_is_wired_to_new_programs(tmp_path: Path) -> None:
    import json

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"HUB_DATA_DIR": str(tmp_path / ".hub"), "HUB_API_PORT": str(port)})
    dev = subprocess.Popen(
        [sys.executable, "-m", "hub_stream.cli", "dev", "--fake-lb"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=open(tmp_path / "dev.err", "w"),
        text=True, start_new_session=True,
    )
    try:
        output = "\n".join(_read_until_ready(dev, tmp_path))
        fake = re.search(r"Fake LB: (http://127\.0\.0\.1:\d+)", output)
        key = re.search(r"^\s+(u_[0-9a-f]+:\S+)$", output, re.MULTILINE)
        assert fake and key, output
        auth = {"Authorization": "Basic " + base64.b64encode(key.group(1).encode()).decode(), "Content-Type": "application/json"}
        put = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/programs/SUB", data=json.dumps({"Name": "Subscriber"}).encode(), headers=auth, method="PUT"
        )
        with urllib.request.urlopen(put, timeout=10) as r:
            assert r.status == 201
        get = urllib.request.Request(f"http://127.0.0.1:{port}/api/programs/SUB", headers=auth)
        with urllib.request.urlopen(get, timeout=10) as r:
            program = json.loads(r.read())
        assert program["LbBaseUrl"] == fake.group(1) and program["LbApiKeySet"] is True
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(15)


def test_a_normal_start_is_short_json_and_serves_worker_metrics(tmp_path: Path) -> None:
    """Before "ready": a few JSON lines (no initdb output, no raw warnings, no line per partition); metrics printed and served."""
    import json
    import re

    port = free_port()
    dev = _start_dev(tmp_path, port)
    try:
        output = "\n".join(_read_until_ready(dev, tmp_path))
        logged = (tmp_path / "dev.err").read_text().splitlines()
        assert len(logged) <= 15, "\n".join(logged)
        for line in logged:
            doc = json.loads(line)  # raises on a raw line (a warning printed by Python, say)
            assert len(line) < 1000 and "initdb" not in line and not doc["message"].startswith("[^"), line
        metrics = re.search(r"Metrics: .*(http://127\.0\.0\.1:\d+/metrics) \(worker\)", output)
        assert metrics, output
        with urllib.request.urlopen(metrics.group(1), timeout=10) as r:
            assert "process_cpu_seconds_total" in r.read().decode()  # the worker's own registry answers
    finally:
        if dev.poll() is None:
            dev.send_signal(signal.SIGINT)
            try:
                dev.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
        for proc in _processes_using(tmp_path / ".hub"):
            proc.kill()


# --- Restart keeps everything (Apache Kafka's data in .hub/kafka) ------------------------------

LB_KEY = "lb-key-restart-test"
TEMPLATE = {"_default": {"action": "import", "importProcessId": 7, "batchRowTemplate": '{"n": {{json n}}}'}}


def _event(n: int) -> dict[str, object]:
    return {
        "PublisherProgramId": "PUB",
        "PublisherEventId": f"ev-{n}",
        "EventType": "COURSE_DONE",
        "PublisherParticipantId": f"p{n}@example.org",
        "PublisherEventData": {"n": n},
        "EventStartUtc": "2026-11-20T10:00:00Z",
    }


class _Hub:
    """HTTP calls to a running `hub dev` with its system key."""

    def __init__(self, http: aiohttp.ClientSession, port: int, key: str) -> None:
        self.http, self.url = http, f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        async with self.http.request(
            method, self.url + path, json=body, headers=self.headers, timeout=aiohttp.ClientTimeout(total=120)
        ) as r:
            return r.status, await r.json(content_type=None)

    async def publish(self, n: int) -> tuple[int, str]:
        status, body = await self.call("POST", "/api/events", _event(n))
        assert status in (200, 201), body
        return status, body["EventId"]  # type: ignore[index]

    async def sync(self) -> None:
        status, body = await self.call("POST", "/api/processEvents?programId=SUB")
        assert status == 200, body


def _kill_all(dev: subprocess.Popen[str], data_dir: Path) -> None:
    """kill -9 of `hub dev`, its children (worker, API, Kafka) and PostgreSQL: nothing shuts down cleanly."""
    victims = [psutil.Process(dev.pid), *_descendants(dev.pid), *_processes_using(data_dir)]
    for proc in victims:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=10)
    dev.wait(5)


@pytest.mark.parametrize("how", ["ctrl-c", "kill-9"])
async def test_restart_keeps_events_subscriptions_cursors_and_dedupe(tmp_path: Path, how: str) -> None:
    lb, runner = await start_fake_lb(api_keys={LB_KEY})
    port = free_port()
    dev = _start_dev(tmp_path, port)
    try:
        output = "\n".join(await asyncio.to_thread(_read_until_ready, dev, tmp_path))
        key = re.search(r"^\s+(u_[0-9a-f]+:\S+)$", output, re.MULTILINE)
        assert key, output
        async with aiohttp.ClientSession() as http:
            hub = _Hub(http, port, key.group(1))
            assert (await hub.call("PUT", "/api/programs/PUB", {"Name": "Publisher"}))[0] == 201
            sub = {"Name": "Subscriber", "LbBaseUrl": lb.base_url, "LbApiKey": LB_KEY}
            assert (await hub.call("PUT", "/api/programs/SUB", sub))[0] == 201
            status, body = await hub.call(
                "POST", "/api/programs/SUB/eventSubs",
                {"PublisherProgramId": "PUB", "SyncEnabled": True, "LbApiPayloadTemplate": TEMPLATE},
            )
            assert status == 201, body
            first_ids = [await hub.publish(n) for n in (1, 2, 3)]
            assert [s for s, _ in first_ids] == [201, 201, 201]
            await hub.sync()
            assert [row["n"] for row in lb.accepted_rows()] == [1, 2, 3]
            before = await hub.call("GET", "/api/programs/SUB/eventSubs/PUB")
            assert before[1]["LastSyncUtc"]  # type: ignore[index]

        if how == "ctrl-c":
            dev.send_signal(signal.SIGINT)
            dev.wait(15)
        else:
            _kill_all(dev, tmp_path / ".hub")
        assert not _processes_using(tmp_path / ".hub")

        lb.reset()
        dev = _start_dev(tmp_path, port)
        output = "\n".join(await asyncio.to_thread(_read_until_ready, dev, tmp_path))
        assert "system key" not in output  # PostgreSQL kept its keys too
        async with aiohttp.ClientSession() as http:
            hub = _Hub(http, port, key.group(1))
            assert await hub.call("GET", "/api/programs/SUB/eventSubs/PUB") == before
            assert await hub.publish(1) == (200, first_ids[0][1])  # dedupe survived: the old EventId
            assert [s for s, _ in [await hub.publish(n) for n in (4, 5)]] == [201, 201]
            await hub.sync()
            assert [row["n"] for row in lb.accepted_rows()] == [4, 5]  # exactly the new rows
            status, listed = await hub.call("GET", "/api/events/PUB")
            assert status == 200 and len(listed["Events"]) == 5, listed
    finally:
        await runner.cleanup()
        if dev.poll() is None:
            dev.send_signal(signal.SIGINT)
            dev.wait(15)
        for proc in _processes_using(tmp_path / ".hub"):
            proc.kill()


def test_second_hub_dev_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    port = free_port()
    first = _start_dev(tmp_path, port)
    try:
        _read_until_ready(first, tmp_path)
        second = subprocess.run(
            [sys.executable, "-m", "hub_stream.cli", "dev"],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
                 "HUB_DATA_DIR": str(tmp_path / ".hub"), "HUB_API_PORT": str(free_port())},
            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )
        assert second.returncode == 1
        assert f"another hub dev (pid {first.pid}) is running on {tmp_path / '.hub'}" in second.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
            assert r.status == 200  # the first one is untouched
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(15)


def test_staff_cli_finds_the_running_hub_dev(tmp_path: Path) -> None:
    port = free_port()
    dev = _start_dev(tmp_path, port)
    try:
        output = "\n".join(_read_until_ready(dev, tmp_path))
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        listed = subprocess.run(
            [sys.executable, "-m", "hub_stream.cli", "keys", "list"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )
        assert listed.returncode == 0, listed.stderr
        user_id = output.split("u_", 1)[1].split(":", 1)[0]
        assert f"u_{user_id}" in listed.stdout
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(15)


def _child(dev: subprocess.Popen[str], command: str) -> psutil.Process:
    """The `hub <command>` child of `hub dev`."""
    for proc in _descendants(dev.pid):
        try:
            if proc.cmdline()[-2:] == ["hub_stream.cli", command]:
                return proc
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no `hub {command}` child of hub dev")


def _ready_again(port: int, timeout_s: float) -> float:
    """Seconds until /readyz answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                if r.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"/readyz not 200 within {timeout_s} s")


def test_a_killed_child_is_started_again(tmp_path: Path) -> None:
    """SIGKILL the API, then the worker: `hub dev` starts each again and the hub is ready again."""
    port = free_port()
    dev = _start_dev(tmp_path, port)
    try:
        _read_until_ready(dev, tmp_path)
        for command in ("api", "worker"):
            victim = _child(dev, command)
            victim.kill()
            back_s = _ready_again(port, 120)
            assert _child(dev, command).pid != victim.pid
            print(f"\n`hub {command}` SIGKILLed: hub dev started it again; /readyz 200 after {back_s:.1f} s")
        said = (tmp_path / "dev.err").read_text()
        assert "hub dev: the api exited (killed by SIGKILL" in said, said[-2000:]
        assert "hub dev: the worker exited (killed by SIGKILL" in said, said[-2000:]
        assert dev.poll() is None
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(15)
        for proc in _processes_using(tmp_path / ".hub"):
            proc.kill()
