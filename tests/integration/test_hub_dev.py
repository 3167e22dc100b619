"""`hub dev`: one command brings the hub up on embedded parts, and Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from hub_stream.local.embedded import free_port

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
        gone, alive = psutil.wait_procs(children + postgres, timeout=max(0.1, 10 - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
        assert not alive, f"left behind after stop: {[p.pid for p in alive]}"
        assert elapsed <= 10, f"stopping took {elapsed:.1f} s"
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
    import base64
    import json
    import re

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
        key = re.search(r"^\s+(u_[0-9a-f]+:\S+)$", output, re.M)
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
