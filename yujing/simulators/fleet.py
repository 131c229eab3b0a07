"""Fleets: which devices exist, of which kind, at which enterprise and site (docs/vocabulary.md).

A fleet definition is a small mapping (usually the `fleet:` part of a scenario YAML); it
expands deterministically into `DeviceRegistration`s, one per device, whose `record()` is
the body of `PUT /api/v1/devices/{enterprise}/{device}`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from yujing.names import is_identifier
from yujing.testing.registry import credit_code

KINDS = (
    "gas_detector",
    "dust_collector",
    "electronic_seal",
    "tailings_monitor",
    "power_meter",
    "tank_monitor",
    "casting_monitor",
    "workshop_monitor",
    "anemometer",
)
SITE_STATES = ("operating", "halted", "closed")

UNITS: dict[str, str] = {
    "ch4": "%CH4",
    "co": "ppm",
    "o2": "%vol",
    "co2": "%vol",
    "h2s": "ppm",
    "lel": "%LEL",
    "nh3": "ppm",
    "cl2": "ppm",
    "no2": "ppm",
    "so2": "ppm",
    "dp": "Pa",
    "hopper_temp": "°C",
    "inlet_temp": "°C",
    "air_speed": "m/s",
    "water_level": "m",
    "flow": "m³/h",
    "displacement": "mm",
    "phreatic": "m",
    "pond_level": "m",
    "beach_length": "m",
    "rainfall": "mm/h",
    "beach_slope": "%",
    "p_active": "kW",
    "level": "m",
    "temp": "°C",
    "pressure": "kPa",
    "cw_pressure": "MPa",
    "cw_flow": "m³/h",
    "cw_temp": "°C",
    "melt_level": "mm",
    "people": "persons",
    "explosive_kg": "kg",
    "humidity": "%RH",
}

KIND_POINTS: dict[str, tuple[str, ...]] = {
    "gas_detector": ("ch4", "co", "o2", "co2", "h2s", "lel", "nh3", "cl2", "no2", "so2"),
    "dust_collector": ("dp", "hopper_temp", "inlet_temp", "air_speed", "water_level", "flow"),
    "electronic_seal": (),
    "tailings_monitor": (
        "displacement",
        "phreatic",
        "pond_level",
        "beach_length",
        "rainfall",
        "beach_slope",
    ),
    "power_meter": ("p_active",),
    "tank_monitor": ("level", "temp", "pressure"),
    "casting_monitor": ("cw_pressure", "cw_flow", "cw_temp", "melt_level"),
    "workshop_monitor": ("people", "explosive_kg", "temp", "humidity"),
    "anemometer": ("air_speed",),
}

KIND_EVENTS: dict[str, tuple[str, ...]] = {
    "gas_detector": (),
    "dust_collector": ("airlock_fault", "spark_detected", "spark_extinguished", "vent_open"),
    "electronic_seal": (
        "person_in",
        "person_out",
        "vehicle_in",
        "vehicle_out",
        "belt_running",
        "camera_blocked",
        "camera_moved",
        "camera_offline",
        "dispatcher_absent",
    ),
    "tailings_monitor": (),
    "power_meter": (),
    "tank_monitor": (),
    "casting_monitor": ("emergency_drain", "quick_cutoff", "interlock_trip", "interlock_bypassed"),
    "workshop_monitor": (),
    "anemometer": (),
}

# Reporting intervals typical of each kind (DOMAIN.md): coal-mine polling ≤ 25 s, tailings
# online polling every 10 min to 24 h; meters usually every minute. A seal has no telemetry;
# its interval is how often it is checked for events. Tank farms and fireworks workshops
# are typically polled every few seconds by their DCS/PLC; a deep-well casting machine's
# cooling water every second (its interlocks act within seconds); anemometers as the coal
# and non-coal mine monitoring systems poll (≤ 25 s).
DEFAULT_INTERVAL_S: dict[str, int] = {
    "gas_detector": 15,
    "dust_collector": 10,
    "electronic_seal": 60,
    "tailings_monitor": 600,
    "power_meter": 60,
    "tank_monitor": 10,
    "casting_monitor": 1,
    "workshop_monitor": 5,
    "anemometer": 15,
}

DEFAULT_POINTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("gas_detector", "coal"): ("ch4",),
    ("gas_detector", "chemical"): ("lel",),
    ("gas_detector", "metallurgy"): ("co",),
    ("gas_detector", "metal_mine"): ("co", "o2", "no2"),
    ("dust_collector", "dry"): ("dp", "hopper_temp", "inlet_temp", "air_speed"),
    ("dust_collector", "wet"): ("dp", "water_level", "flow", "air_speed"),
    ("power_meter", ""): ("p_active",),
    ("tank_monitor", ""): ("level", "temp", "pressure"),
    ("casting_monitor", ""): ("cw_pressure", "cw_flow", "cw_temp", "melt_level"),
    ("workshop_monitor", ""): ("people", "explosive_kg", "temp", "humidity"),
    ("anemometer", ""): ("air_speed",),
}

_ABBREV = {
    "gas_detector": "gd",
    "dust_collector": "dc",
    "electronic_seal": "es",
    "tailings_monitor": "tm",
    "power_meter": "pm",
    "tank_monitor": "tk",
    "casting_monitor": "cm",
    "workshop_monitor": "ws",
    "anemometer": "an",
}


class FleetError(ValueError):
    """A fleet or scenario definition that does not make sense; the message says where."""


@dataclass(frozen=True)
class DeviceRegistration:
    """One device as the registry knows it, plus where the simulator places it."""

    enterprise: str
    device: str
    kind: str
    site: str
    tags: dict[str, str]
    points: dict[str, dict[str, Any]]  # {"ch4": {"unit": "%CH4", "interval_s": 15}}

    def record(self) -> dict[str, Any]:
        """The body of `PUT /api/v1/devices/{enterprise}/{device}`."""
        return {
            "kind": self.kind,
            "site": self.site,
            "tags": dict(self.tags),
            "points": {p: dict(spec) for p, spec in self.points.items()},
        }

    @property
    def key(self) -> str:
        return f"{self.enterprise}/{self.device}"

    @property
    def interval_s(self) -> float:
        intervals = [float(spec["interval_s"]) for spec in self.points.values()]
        return min(intervals) if intervals else float(DEFAULT_INTERVAL_S[self.kind])

    def topic(self, kind: str = "telemetry") -> str:
        return f"yj/{self.enterprise}/{self.device}/{kind}"


@dataclass(frozen=True)
class EnterpriseRegistration:
    """An enterprise as the register knows it: `record` is the body of
    `PUT /api/v1/enterprises/{enterprise}` (a fleet's `register:` mapping, with a valid
    credit code made up from the division and the enterprise id)."""

    enterprise: str
    record: dict[str, Any]

    @property
    def division(self) -> str:
        return str(self.record["division"])

    @property
    def sectors(self) -> list[str]:
        return list(self.record["sectors"])


@dataclass(frozen=True)
class Site:
    enterprise: str
    site: str
    state: str = "operating"


@dataclass(frozen=True)
class Fleet:
    seed: int
    devices: tuple[DeviceRegistration, ...]
    sites: tuple[Site, ...]
    by_key: dict[str, DeviceRegistration] = field(compare=False, repr=False)
    namespace: str = ""  # prefix of every enterprise id (see `scenario.load_scenario`)
    registrations: tuple[EnterpriseRegistration, ...] = ()

    def seed_of(self, reg: DeviceRegistration, what: str) -> str:
        """The seed string of one random stream of a device. Built from the enterprise id
        without the namespace, so a namespaced run reads exactly what the plain one does."""
        enterprise = reg.enterprise
        if self.namespace:
            enterprise = enterprise.removeprefix(f"{self.namespace}-")
        return f"{self.seed}/{enterprise}/{reg.device}/{what}"

    @property
    def enterprises(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.enterprise for d in self.devices))

    def device(self, enterprise: str, device: str) -> DeviceRegistration:
        try:
            return self.by_key[f"{enterprise}/{device}"]
        except KeyError:
            raise FleetError(f"no device {enterprise}/{device} in the fleet") from None

    def site_state(self, enterprise: str, site: str) -> str:
        for s in self.sites:
            if s.enterprise == enterprise and s.site == site:
                return s.state
        return "operating"


def make_fleet(
    seed: int,
    devices: list[DeviceRegistration],
    sites: list[Site],
    namespace: str = "",
    registrations: list[EnterpriseRegistration] | None = None,
) -> Fleet:
    by_key: dict[str, DeviceRegistration] = {}
    for d in devices:
        if d.key in by_key:
            raise FleetError(f"device {d.key} is defined twice")
        by_key[d.key] = d
    return Fleet(seed, tuple(devices), tuple(sites), by_key, namespace, tuple(registrations or ()))


def parse_fleet(spec: dict[str, Any], *, seed: int | None = None) -> Fleet:
    """Expand a fleet mapping: `{seed, enterprises: [{id, sites: [{id, state, devices}]}]}`."""
    devices: list[DeviceRegistration] = []
    sites: list[Site] = []
    registrations: list[EnterpriseRegistration] = []
    for ent in _list(spec, "enterprises", "fleet"):
        enterprise = _ident(ent.get("id"), "enterprise id")
        if ent.get("register") is not None:
            registrations.append(_registration(enterprise, ent["register"]))
        for site_spec in _list(ent, "sites", f"enterprise {enterprise}"):
            site = _ident(site_spec.get("id"), f"site id in {enterprise}")
            state = str(site_spec.get("state", "operating"))
            if state not in SITE_STATES:
                raise FleetError(f"site {enterprise}/{site}: state {state!r} not in {SITE_STATES}")
            sites.append(Site(enterprise, site, state))
            for group in _list(site_spec, "devices", f"site {enterprise}/{site}"):
                devices.extend(_expand_group(enterprise, site, group))
    seed = int(spec.get("seed", 0) if seed is None else seed)
    return make_fleet(seed, devices, sites, str(spec.get("namespace", "")), registrations)


def _registration(enterprise: str, spec: Any) -> EnterpriseRegistration:
    """`register: {name, division, sectors, class, location: [lon, lat], park, state,
    state_since, state_document}`; the credit code is derived from the division and the
    (namespaced) id, so repeated runs register distinct codes."""
    if not isinstance(spec, dict) or "division" not in spec or "sectors" not in spec:
        raise FleetError(f"enterprise {enterprise}: register needs division and sectors")
    division = str(spec["division"])
    record: dict[str, Any] = {
        "name": str(spec.get("name", enterprise)),
        "uscc": credit_code(division, zlib.crc32(enterprise.encode()) % 1_000_000_000),
        "division": division,
        "sectors": [str(x) for x in spec["sectors"]],
        "supervision_class": str(spec.get("class", "B")),
    }
    if "location" in spec:
        lon, lat = spec["location"]
        record["location"] = {"lon": float(lon), "lat": float(lat)}
    for name in ("park", "state", "state_since", "state_document"):
        if name in spec:
            record[name] = str(spec[name])
    return EnterpriseRegistration(enterprise, record)


def _expand_group(enterprise: str, site: str, group: dict[str, Any]) -> list[DeviceRegistration]:
    """One device-group entry: `kind`, `count`, fixed `tags`, cycled tag values in `vary`."""
    where = f"{enterprise}/{site}"
    kind = str(group.get("kind"))
    if kind not in KINDS:
        raise FleetError(f"{where}: device kind {kind!r} not in {KINDS}")
    vary: dict[str, list[Any]] = dict(group.get("vary") or {})
    ids = group.get("ids")
    implied = len(ids) if ids is not None else max((len(v) for v in vary.values()), default=1)
    count = int(group.get("count", implied))
    tags = {str(k): str(v) for k, v in (group.get("tags") or {}).items()}
    interval = int(group.get("interval_s", DEFAULT_INTERVAL_S[kind]))
    prefix = str(group.get("prefix", f"{_ABBREV[kind]}-{site}"))
    if ids is not None and len(ids) != count:
        raise FleetError(f"{where}: {len(ids)} ids for {count} devices")
    width = max(2, len(str(count)))
    out = []
    for i in range(count):
        dev_tags = {**tags, **{str(k): str(v[i % len(v)]) for k, v in vary.items()}}
        points = _points_of(kind, dev_tags, group.get("points"), where)
        device = str(ids[i]) if ids is not None else f"{prefix}-{i + 1:0{width}d}"
        if kind == "gas_detector" and "ch4" in points:
            dev_tags.setdefault("critical", "true")
        out.append(
            DeviceRegistration(
                enterprise=enterprise,
                device=_ident(device, f"device id in {where}"),
                kind=kind,
                site=site,
                tags=dev_tags,
                points={p: {"unit": UNITS[p], "interval_s": interval} for p in points},
            )
        )
    return out


def _points_of(kind: str, tags: dict[str, str], given: Any, where: str) -> tuple[str, ...]:
    if given is not None:
        points = tuple(str(p) for p in given)
    elif kind == "tailings_monitor":
        # One tailings monitoring point measures one item; a rain gauge has no item.
        points = (tags["item"],) if "item" in tags else ("rainfall",)
    elif kind == "gas_detector":
        points = DEFAULT_POINTS[(kind, tags.get("sector", "coal"))]
    elif kind == "dust_collector":
        points = DEFAULT_POINTS[(kind, tags.get("collector", "dry"))]
    else:
        points = DEFAULT_POINTS.get((kind, ""), ())
    for p in points:
        if p not in KIND_POINTS[kind]:
            raise FleetError(f"{where}: point {p!r} is not a point of {kind}")
    return points


def _list(spec: dict[str, Any], name: str, where: str) -> list[dict[str, Any]]:
    value = spec.get(name)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise FleetError(f"{where}: {name!r} must be a list of mappings")
    return value


def _ident(value: Any, what: str) -> str:
    text = str(value)
    if not is_identifier(text):
        raise FleetError(f"{what} {value!r} is not an identifier")
    return text
