"""Which bus a process uses: Kafka when `YJ_KAFKA_BOOTSTRAP` names one, else the in-process
bus with its log on disk in `YJ_DATA_DIR/bus`."""

from __future__ import annotations

from yujing.config import Settings
from yujing.ingest.bus import Bus, MemoryBus
from yujing.ingest.kafka import KafkaBus
from yujing.ingest.wal import Wal

LOG_DIR = "bus"


def make_bus(settings: Settings) -> Bus:
    if settings.kafka_bootstrap:
        return KafkaBus(
            settings.kafka_bootstrap,
            partitions=settings.kafka_partitions,
            prefix=settings.kafka_topic_prefix,
        )
    return MemoryBus(wal=Wal(settings.data_dir / LOG_DIR))
