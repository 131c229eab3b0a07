"""Every topic on the bus in one table: its key, its value type and encoding, who writes
and who reads it; and the records of the two control topics (`yj.registry`, `yj.rules`)
as typed structs with their keys, so that no stage parses them by hand.

docs/contracts.md ("Kafka") and the AsyncAPI document (`yujing.alerts.asyncapi`) are
written from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from yujing.ingest.batch import DeadLetter, Event, Status
from yujing.rules.transition import Transition


class Topics:
    """Topic names (docs/contracts.md "Kafka", the internal ones included)."""

    READINGS = "yj.readings"
    EVENTS = "yj.events"
    STATUS = "yj.status"
    ALERTS = "yj.alerts"
    RULES = "yj.rules"
    DEADLETTER = "yj.deadletter"
    # Internal: level changes from the engine, keyed by alert key, consumed by `alerts`.
    TRANSITIONS = "yj.transitions"
    # Internal: registry changes (device records), so ingest caches stay fresh.
    REGISTRY = "yj.registry"
    # Internal: group rules' member changes from the engine, keyed by the group's alert key.
    GROUPS = "yj.groups"

    ALL = (READINGS, EVENTS, STATUS, ALERTS, RULES, DEADLETTER, TRANSITIONS, REGISTRY, GROUPS)
    COMPACTED: tuple[str, ...]  # from the table below


# -- the control topics' records ---------------------------------------------------------


class DeviceChange(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A device was registered, changed or had its derived tags changed (`PUT /devices`
    sends the whole public record, whose other fields decoders ignore), or was deleted."""

    enterprise: str = ""
    device: str = ""
    deleted: bool = False


class SiteState(msgspec.Struct):
    """A site's operating state (docs/registry.md): it gates the rules of its devices."""

    enterprise: str
    site: str
    state: str


class EnterpriseState(msgspec.Struct):
    """An enterprise's state: it gates all its sites."""

    enterprise: str
    state: str


class RuleChange(msgspec.Struct, kw_only=True):
    """A rule's new version (its body), or its deletion (`rule` null)."""

    id: str = ""
    version: int = 0
    deleted: bool = False
    rule: dict[str, Any] | None = None


RegistryKind = Literal["device", "site", "enterprise"]


@dataclass(frozen=True, slots=True)
class RegistryKey:
    """`device:{enterprise}/{device}`, `site:{enterprise}/{site}` or `enterprise:{enterprise}`."""

    kind: RegistryKind
    enterprise: str
    name: str = ""  # the device or the site; empty for an enterprise

    def encode(self) -> bytes:
        if self.kind == "enterprise":
            return f"enterprise:{self.enterprise}".encode()
        return f"{self.kind}:{self.enterprise}/{self.name}".encode()

    @classmethod
    def parse(cls, key: bytes) -> RegistryKey | None:
        """None for a key of no known shape (a newer writer's, or garbage)."""
        kind, _, rest = key.decode(errors="replace").partition(":")
        if kind == "enterprise" and rest:
            return cls("enterprise", rest)
        enterprise, _, name = rest.partition("/")
        if kind in ("device", "site") and enterprise and name:
            return cls(kind, enterprise, name)  # type: ignore[arg-type]
        return None


RegistryChange = DeviceChange | SiteState | EnterpriseState
_REGISTRY_TYPES: dict[str, type[RegistryChange]] = {
    "device": DeviceChange, "site": SiteState, "enterprise": EnterpriseState,
}  # fmt: skip


def device_change(
    enterprise: str, device: str, record: dict[str, Any] | None = None, *, deleted: bool = False
) -> tuple[bytes, bytes]:
    """The `yj.registry` record of a device change: `record` is the public device record
    when the writer has it."""
    key = RegistryKey("device", enterprise, device).encode()
    if record is not None:
        return key, msgspec.json.encode(record)
    return key, msgspec.json.encode(DeviceChange(enterprise=enterprise, device=device,
                                                 deleted=deleted))  # fmt: skip


def site_change(enterprise: str, site: str, state: str) -> tuple[bytes, bytes]:
    key = RegistryKey("site", enterprise, site).encode()
    return key, msgspec.json.encode(SiteState(enterprise, site, state))


def enterprise_change(enterprise: str, state: str) -> tuple[bytes, bytes]:
    key = RegistryKey("enterprise", enterprise).encode()
    return key, msgspec.json.encode(EnterpriseState(enterprise, state))


def registry_change(key: RegistryKey, value: bytes) -> RegistryChange:
    """The value of a `yj.registry` record; raises `msgspec.ValidationError` (a
    `ValueError`) or `msgspec.DecodeError` when it is not one. An empty object is a
    device change of the key's device."""
    change = msgspec.json.decode(value or b"{}", type=_REGISTRY_TYPES[key.kind])
    if isinstance(change, DeviceChange) and not change.device:
        return DeviceChange(enterprise=key.enterprise, device=key.name, deleted=change.deleted)
    return change


def rule_change(rule_id: str, version: int, body: dict[str, Any] | None) -> tuple[bytes, bytes]:
    change = RuleChange(id=rule_id, version=version, deleted=body is None, rule=body)
    return rule_id.encode(), msgspec.json.encode(change)


# -- the table ---------------------------------------------------------------------------

Encoding = Literal["application/msgpack", "application/json", "application/cloudevents+json"]


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    key: str  # the key's format
    value: str  # what a value is, in the contract's words
    encoding: Encoding
    # The types a value decodes into (msgspec structs), for the AsyncAPI schemas; empty
    # where the value's shape is documented elsewhere (the columnar batch, CloudEvents).
    types: tuple[type, ...] = ()
    writers: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()
    compacted: bool = False
    internal: bool = True


def _table() -> dict[str, Topic]:
    msgpack: Encoding = "application/msgpack"
    json: Encoding = "application/json"
    topics = [
        Topic(Topics.READINGS, "enterprise/device",
              "a columnar reading batch, one per MQTT message (docs/contracts.md)", msgpack,
              (), ("ingest",), ("engine", "sink")),
        Topic(Topics.EVENTS, "enterprise/device", "a validated device event", msgpack,
              (Event,), ("ingest",), ("engine", "sink")),
        Topic(Topics.STATUS, "enterprise/device", "a device's state", msgpack,
              (Status,), ("ingest",), ("engine", "sink")),
        Topic(Topics.DEADLETTER, "enterprise/device or -",
              "a message that could not be accepted, with its reason", msgpack,
              (DeadLetter,), ("ingest",), ("sink",)),
        Topic(Topics.TRANSITIONS, "alert key", "an engine level change", json,
              (Transition,), ("engine",), ("alerts",)),
        Topic(Topics.GROUPS, "group alert key",
              "a group rule's member change (`MemberChange` in yujing/rules/signals.py)",
              msgpack, (), ("engine",), ("engine (the group's owner)",)),
        Topic(Topics.REGISTRY, "device:{ent}/{dev}, site:{ent}/{site} or enterprise:{ent}",
              "a registry change: device, site state or enterprise state (by the key)", json,
              (DeviceChange, SiteState, EnterpriseState), ("api",), ("ingest", "engine"),
              compacted=True),
        Topic(Topics.RULES, "rule id", "a rule's current version", json,
              (RuleChange,), ("api",), ("engine",), compacted=True),
        Topic(Topics.ALERTS, "alert key (hazard id for hazard steps)",
              "every stored alert change, CloudEvents 1.0 structured JSON",
              "application/cloudevents+json", (), ("alerts",), (), internal=False),
    ]  # fmt: skip
    return {t.name: t for t in topics}


TABLE: dict[str, Topic] = _table()  # topic name → its entry, in docs/contracts.md's order
Topics.COMPACTED = tuple(t.name for t in TABLE.values() if t.compacted)
