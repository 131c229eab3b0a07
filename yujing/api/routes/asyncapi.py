"""`/asyncapi.json`: the AsyncAPI 3.0 document of yujing's MQTT and Kafka channels."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter

from yujing.alerts import asyncapi
from yujing.api.deps import SettingsDep
from yujing.api.schemas import AsyncApiDocument

router = APIRouter(tags=["asyncapi"])


@router.get("/asyncapi.json", response_model=AsyncApiDocument)
async def asyncapi_document(settings: SettingsDep) -> dict[str, Any]:
    """Public, like an OpenAPI document: it describes channels, not data."""
    mqtt = urlsplit(settings.mqtt_url) if settings.mqtt_url else None
    mqtt_host = (
        f"{mqtt.hostname}:{mqtt.port or 1883}" if mqtt else f"localhost:{settings.mqtt_port}"
    )
    kafka_host = settings.kafka_bootstrap.split(",")[0] or "localhost:9092"
    return asyncapi.document(mqtt_host, kafka_host)
