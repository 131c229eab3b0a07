"""Identifiers on the wire: enterprise, site, device, point, rule (docs/contracts.md, "Names")."""

from __future__ import annotations

import re

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def is_identifier(text: str) -> bool:
    return IDENTIFIER.fullmatch(text) is not None


def device_key(enterprise: str, device: str) -> str:
    """The Kafka key that keeps one device's messages in order on one partition."""
    return f"{enterprise}/{device}"
