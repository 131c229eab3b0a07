"""One settings class for every stage, read from `YJ_*` environment variables."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_UNIT_DAYS = {"d": 1, "w": 7, "y": 365}


def _retention(value: object) -> object:
    """`93d`, `26w`, `2y`, or `off` (never expire); anything else goes to pydantic's own
    timedelta parsing (seconds, ISO 8601)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("off", "none", "never", "0"):
            return None
        if text[:-1].isdigit() and text[-1:] in _UNIT_DAYS:
            return timedelta(days=int(text[:-1]) * _UNIT_DAYS[text[-1]])
    return value


Retention = Annotated[timedelta | None, BeforeValidator(_retention)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YJ_", extra="ignore")

    # Where the servers are; empty means "embedded" for `yujing up`.
    database_url: str = ""
    mqtt_url: str = ""
    kafka_bootstrap: str = ""

    data_dir: Path = Path("var")
    mqtt_port: int = 1883
    # The broker `yujing up` embeds without YJ_MQTT_URL: `auto` (Mosquitto when installed,
    # else amqtt) or `amqtt`.
    embedded_broker: str = "auto"
    http_host: str = "127.0.0.1"
    http_port: int = 8000

    # HTTP server limits: a larger request body is refused with 413 before it is read whole;
    # a client that has not sent its request headers within the timeout is disconnected.
    http_max_body_bytes: int = 1024 * 1024
    http_header_timeout_s: float = 10.0
    http_keepalive_timeout_s: float = 5.0

    admin_token: str = ""
    auto_register: bool = False

    # MQTT: the subscription is shared between ingest instances when the broker supports it.
    mqtt_shared_group: str = ""
    # Persistent MQTT session id; empty: `yujing-ingest-<hostname>`, stable across restarts.
    mqtt_client_id: str = ""
    max_payload_bytes: int = 256 * 1024
    max_future_skew_s: float = 300.0

    kafka_partitions: int = 6
    # How long ingest gathers MQTT messages before handing them to the bus as one batch.
    ingest_linger_ms: int = 5
    ingest_max_batch: int = 2000

    engine_group: str = "yj-engine"
    alerts_group: str = "yj-alerts"
    sink_group: str = "yj-sink"

    # Subscribers who fall this far behind on SSE get a "resync" event instead of a backlog.
    sse_queue_size: int = 1000
    sse_heartbeat_s: float = 15.0

    log_level: str = "INFO"
    kafka_topic_prefix: str = Field(default="", description="prefix for every Kafka topic name")

    # Storage (docs/storage.md). auto: TimescaleDB when it is really usable, else native
    # partitioning; plain: partitioning even where TimescaleDB is usable; timescaledb: refuse
    # to start without it.
    storage: Literal["auto", "plain", "timescaledb"] = "auto"
    # How long raw readings and their 1-minute/1-hour aggregates are kept (`off`: forever).
    # Alert, hazard and audit history never expires.
    retention_raw: Retention = timedelta(days=93)
    retention_agg: Retention = timedelta(days=730)
    # How often the sink stage keeps partitions ahead and applies retention.
    storage_upkeep_s: float = 3600.0
