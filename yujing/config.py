"""One settings class for every stage, read from `YJ_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YJ_", extra="ignore")

    # Where the servers are; empty means "embedded" for `yujing up`.
    database_url: str = ""
    mqtt_url: str = ""
    kafka_bootstrap: str = ""

    data_dir: Path = Path("var")
    mqtt_port: int = 1883
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
