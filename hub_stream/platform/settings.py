"""Every knob of the hub, read from HUB_-prefixed environment variables.

One frozen pydantic-settings class. Nothing else in the project reads the
environment for configuration, and Faust is handed an empty environment so a
stray ``BROKER_URL`` cannot silently win (see ``faust_app.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
TableStore = Literal["memory", "rocksdb"]
EmbeddedBroker = Literal["kafka", "tansu"]


class HubSettings(BaseSettings):
    """The effective configuration of one hub process."""

    model_config = SettingsConfigDict(env_prefix="HUB_", frozen=True, extra="ignore")

    # --- Kafka ---------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        None, description="host:port[,host:port]; unset under `hub dev` starts the embedded broker"
    )
    app_id: str = Field("hub-stream", description="Faust app id: the consumer group of the workers")
    topic_prefix: str = Field("hub", description="prefix of every topic name")
    replication_factor: int = Field(
        1, ge=1, description="replicas of every hub topic, set when it is created; 3 on a production cluster"
    )
    min_insync_replicas: int = Field(
        None,  # type: ignore[assignment]  # filled in below: one less than the replication factor, at least 1
        ge=1,
        validate_default=True,
        description="replicas that must have a record before it counts as written (acks=all); default RF-1, at least 1",
    )
    unclean_leader_election: bool = Field(
        False, description="let an out-of-sync replica lead (loses acknowledged records); keep false"
    )
    events_partitions: int = Field(8, ge=1, description="hub.events, hub.events.incoming")
    subscriber_partitions: int = Field(
        8, ge=1, description="subscriber-keyed topics: subscription commands, sync requests"
    )
    rejected_partitions: int = Field(1, ge=1)
    replies_partitions: int = Field(1, ge=1)
    table_store: TableStore = Field("memory", description="Faust table store")
    broker_session_timeout_s: float = Field(6.0, gt=0)
    broker_heartbeat_interval_s: float = Field(1.0, gt=0)
    broker_rebalance_timeout_s: float = Field(6.0, gt=0)
    broker_request_timeout_s: float = Field(20.0, gt=0)
    fetch_max_wait_ms: int = Field(
        10, ge=0, description="consumer long-poll wait; Tansu waits it out on every fetch"
    )
    prefetch_backoff_ms: float = Field(
        5.0, gt=0, le=1000, description="how soon a consumer fetches a partition again after its records are taken (aiokafka: 100)"
    )

    # --- PostgreSQL ----------------------------------------------------------
    database_url: SecretStr | None = Field(
        None, description="postgresql://...; unset under `hub dev` starts embedded PostgreSQL"
    )
    database_pool_max: int = Field(10, ge=1)

    # --- HTTP API ------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    request_timeout_s: float = Field(10.0, gt=0, description="API → worker request/reply timeout")
    sync_timeout_s: float = Field(300.0, gt=0, description="processEvents answer deadline")
    cli_api_url: str | None = Field(None, description="the API `hub subs` / `hub syncs` call; default http://{api_host}:{api_port}")
    cli_credentials: SecretStr | None = Field(None, description="userId:apiKey for `hub subs` / `hub syncs`")

    # --- LearningBuilder client ----------------------------------------------
    lb_connect_timeout_s: float = Field(5.0, gt=0)
    lb_total_timeout_s: float = Field(60.0, gt=0)
    lb_max_retries: int = Field(3, ge=0)
    lb_batch_row_cap: int = Field(5000, ge=1)

    dev_lb_base_url: str | None = Field(
        None, description="set by `hub dev --fake-lb`: programs registered through the API without an LB connection get this one"
    )
    dev_lb_api_key: SecretStr | None = None

    # --- Process -------------------------------------------------------------
    data_dir: Path = Field(Path(".hub"), description="embedded Kafka and PostgreSQL data, worker state")
    embedded_broker: EmbeddedBroker = Field(
        "kafka", description="`hub dev` without HUB_KAFKA_BOOTSTRAP: Apache Kafka (kept) or Tansu (memory only)"
    )
    log_level: LogLevel = "INFO"
    worker_metrics_port: int = Field(
        0, ge=0, le=65535, description="a worker serves GET /metrics here (0: off; `hub dev` and compose: 9100)"
    )

    @field_validator("min_insync_replicas", mode="before")
    @classmethod
    def _min_insync_default(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return max(1, int(info.data.get("replication_factor", 1)) - 1)
        return value

    @model_validator(mode="after")
    def _min_insync_fits(self) -> HubSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"HUB_MIN_INSYNC_REPLICAS={self.min_insync_replicas} is more than HUB_REPLICATION_FACTOR="
                f"{self.replication_factor}: no write could ever succeed; lower it or raise the replication factor"
            )
        return self

    def topic(self, name: str) -> str:
        """Full topic name for a short name such as ``events``."""
        return f"{self.topic_prefix}.{name}"

    def masked(self) -> dict[str, Any]:
        """The settings as plain values, secrets replaced by ``**********``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "**********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out

    @classmethod
    def env_names(cls) -> set[str]:
        """Every environment variable name this class reads."""
        return {f"HUB_{name.upper()}" for name in cls.model_fields}
