"""The embedded Kafka's jar fetch: pinned, checked, and a clear sentence when it cannot fetch.

A real HTTP server on loopback stands in for Maven Central (HUB_KAFKA_MAVEN_URL).
"""

from __future__ import annotations

import fcntl
import hashlib
import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from hub_stream.local import dev_state, kafka
from hub_stream.local.kafka import KafkaError

JAR_BYTES = b"PK\x03\x04 not really a jar"


def test_lock_pins_every_jar_of_the_broker_with_a_sha256() -> None:
    jars = kafka.read_lock()
    assert kafka.kafka_version(jars) == "4.3.1"
    names = {f"{j.group}:{j.artifact}" for j in jars}
    assert {"org.apache.kafka:kafka_2.13", "org.apache.kafka:kafka-server", "org.apache.logging.log4j:log4j-slf4j-impl"} <= names
    assert all(len(j.sha256) == 64 and int(j.sha256, 16) >= 0 and j.size > 0 for j in jars)
    assert len(names) == len(jars)
    broker = next(j for j in jars if j.artifact == "kafka_2.13")
    assert broker.url == "https://repo1.maven.org/maven2/org/apache/kafka/kafka_2.13/4.3.1/kafka_2.13-4.3.1.jar"


class _Repo(http.server.BaseHTTPRequestHandler):
    served: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.served.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, bytes]]:
    """A Maven-layout HTTP server with one jar, and a lock file naming it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Repo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Repo.served = {
        "/org/apache/kafka/kafka_2.13/9.9/kafka_2.13-9.9.jar": JAR_BYTES,
        "/org/example/thing/1.0/thing-1.0.jar": JAR_BYTES,
    }
    sha = hashlib.sha256(JAR_BYTES).hexdigest()
    lock = tmp_path / "kafka-jars.lock"
    lock.write_text(f"# test\norg.apache.kafka:kafka_2.13:9.9 {sha} {len(JAR_BYTES)}\norg.example:thing:1.0 {sha} {len(JAR_BYTES)}\n")
    monkeypatch.setattr(kafka, "LOCK_FILE", lock)
    monkeypatch.setenv("HUB_KAFKA_MAVEN_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HUB_KAFKA_JAR_CACHE", str(tmp_path / "cache"))
    try:
        yield _Repo.served
    finally:
        server.shutdown()


def test_first_run_fetches_each_jar_once_with_a_progress_line(repo: dict[str, bytes], tmp_path: Path) -> None:
    lines: list[str] = []
    cache = kafka.ensure_jars(lines.append)
    assert cache == tmp_path / "cache"
    assert sorted(p.name for p in cache.glob("*.jar")) == ["kafka_2.13-9.9.jar", "thing-1.0.jar"]
    assert (cache / "thing-1.0.jar").read_bytes() == JAR_BYTES
    assert len(lines) == 3 and "fetching 2 Apache Kafka 9.9 jars" in lines[0] and "[2/2]" in lines[2]
    again: list[str] = []
    kafka.ensure_jars(again.append)
    assert again == []  # cached: nothing fetched, nothing said


def test_a_jar_with_another_checksum_is_refused_and_not_kept(repo: dict[str, bytes], tmp_path: Path) -> None:
    repo["/org/example/thing/1.0/thing-1.0.jar"] = JAR_BYTES[:-1] + b"!"  # same size, other bytes
    with pytest.raises(KafkaError, match="has SHA-256 .* the lock file says"):
        kafka.ensure_jars(lambda line: None)
    assert not list((tmp_path / "cache").glob("thing-1.0.jar*"))


def test_offline_with_no_cache_says_what_to_fetch_and_how(repo: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_KAFKA_MAVEN_URL", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(KafkaError) as caught:
        kafka.ensure_jars(lambda line: None)
    message = str(caught.value)
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert "kafka_2.13-9.9.jar" in message and "with internet access" in message
    assert "HUB_KAFKA_JAR_CACHE" in message and "kafka-jars.lock" in message


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {kafka._cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") and set(i) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for i in ids)


def test_a_held_kafka_lock_is_seen_and_a_released_one_is_not(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    assert not kafka._lock_holder(lock)  # no file: nobody
    lock.touch()
    assert not kafka._lock_holder(lock)
    # fcntl locks are per process: hold it from a child, as Kafka's JVM would.
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX);"
                                " print('held', flush=True); time.sleep(60)"), str(lock)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert kafka._lock_holder(lock)
    finally:
        holder.kill()
        holder.wait()
    assert not kafka._lock_holder(lock)  # gone with the process, as after kill -9


def test_one_hub_dev_per_data_dir_and_its_env_only_while_it_runs(tmp_path: Path) -> None:
    claim = dev_state.claim(tmp_path)
    try:
        dev_state.write_env(tmp_path, {"HUB_DATABASE_URL": "postgresql://u:p w@/db?host=/tmp/x y"})
        assert dev_state.running_env(tmp_path) == {"HUB_DATABASE_URL": "postgresql://u:p w@/db?host=/tmp/x y"}
        assert (tmp_path / "env").stat().st_mode & 0o077 == 0
        other = subprocess.run(
            [sys.executable, "-c", ("import sys; from pathlib import Path; from hub_stream.local import dev_state;"
                                    " dev_state.claim(Path(sys.argv[1]))"), str(tmp_path)],
            capture_output=True, text=True, check=False,
        )
        assert other.returncode != 0 and "another hub dev" in other.stderr
    finally:
        claim.close()
    assert dev_state.running_env(tmp_path) == {}  # a left-over env file of a dead hub dev is ignored
    with (tmp_path / "dev.lock").open() as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again



def test_a_cluster_node_names_every_voter_and_replicates_kafkas_own_topics(tmp_path: Path) -> None:
    seat = kafka.QuorumSeat(2, {1: 9101, 2: 9102, 3: 9103}, "abc", replication=3)
    props = dict(line.split("=", 1) for line in kafka._server_properties(tmp_path, 9002, 9102, seat).splitlines()
                 if "=" in line and not line.startswith("#"))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["unclean.leader.election.enable"] == "false"
    single = kafka._server_properties(tmp_path, 9002, 9102)
    assert "controller.quorum.voters=1@127.0.0.1:9102\n" in single and "offsets.topic.replication.factor=1\n" in single
