"""Alert transitions as CAP 1.2 (OASIS Common Alerting Protocol) XML, one message each.

Two profiles that differ only in `severity`:
- `national` (default), the profile of China's national warning-release system: severity
  Red / Orange / Yellow / Blue;
- `international`: Extreme / Severe / Moderate / Minor, valid against the OASIS schema.

msgType: `raised` → Alert; a later change → Update, `references` pointing at the raised
message; `resolved` and `closed` → Cancel (the danger has passed, art. 70). identifier:
sender code + `_YYYYMMDDHHMISS` (the transition's time in `cap_utc_offset_h`), then
`_` + the transition's `seq`, because several transitions can share one second and a CAP
identifier must be unique per sender.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from yujing.alerts.settings import AlertSettings
from yujing.alerts.store import StoredChange
from yujing.levels import Level

NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/cap+xml"
ATOM_TYPE = "application/atom+xml"
FEED_PATH = "/api/v1/alerts/cap"
Profile = Literal["national", "international"]
PROFILES: tuple[Profile, ...] = ("national", "international")

SEVERITY: dict[Profile, dict[Level, str]] = {
    "national": {Level.RED: "Red", Level.ORANGE: "Orange", Level.YELLOW: "Yellow",
                 Level.BLUE: "Blue"},
    "international": {Level.RED: "Extreme", Level.ORANGE: "Severe", Level.YELLOW: "Moderate",
                      Level.BLUE: "Minor"},
}  # fmt: skip
ENDED = ("resolved", "closed")
# What people are asked to do, by colour (DOMAIN.md "The four colours"), and the CAP
# response type that says the same.
INSTRUCTION = {
    Level.RED: ("Evacuate", "立即按规程断电、撤出人员，并核查现场"),
    Level.ORANGE: ("Execute", "报警：立即核查现场并按预案处置"),
    Level.YELLOW: ("Monitor", "预警：加强监测，排查原因"),
    Level.BLUE: ("Monitor", "关注：检查设备与监测状态"),
}

# Prefixes in the Atom feed (its attributes are unqualified, which rules out a default
# namespace there); a lone message is written with CAP as the default namespace.
ET.register_namespace("cap", NS)
ET.register_namespace("atom", ATOM)


# Characters XML 1.0 cannot carry (C0 controls but tab and newlines, lone surrogates,
# U+FFFE/U+FFFF): one in a disposal note made the alert's CAP and the whole feed unparseable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: object) -> str:
    """`text` with every character XML 1.0 cannot carry replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", str(text))


def _tz(s: AlertSettings) -> timezone:
    return timezone(timedelta(hours=s.cap_utc_offset_h))


def cap_time(at: datetime, s: AlertSettings) -> str:
    """CAP's dateTime form: seconds and a numeric offset, never `Z` or fractions."""
    return at.astimezone(_tz(s)).replace(microsecond=0).isoformat()


def identifier(change: StoredChange, s: AlertSettings) -> str:
    stamp = change.at.astimezone(_tz(s)).strftime("%Y%m%d%H%M%S")
    return f"{s.cap_sender_code}_{stamp}_{change.seq}"


def _sub(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        el.text = xml_text(text)
    return el


def to_cap(
    change: StoredChange, original: StoredChange, profile: Profile, s: AlertSettings
) -> ET.Element:
    """The `<alert>` for one transition; `original` is the alert's `raised` transition."""
    a = change.alert
    root = ET.Element(f"{{{NS}}}alert")
    _sub(root, "identifier", identifier(change, s))
    _sub(root, "sender", s.cap_sender)
    _sub(root, "sent", cap_time(change.at, s))
    _sub(root, "status", "Actual")
    msg_type = "Alert" if change.seq == original.seq else "Update"
    _sub(root, "msgType", "Cancel" if change.transition in ENDED else msg_type)
    _sub(root, "scope", "Public")
    if change.note:
        _sub(root, "note", change.note)
    if change.seq != original.seq:
        ref = f"{s.cap_sender},{identifier(original, s)},{cap_time(original.at, s)}"
        _sub(root, "references", ref)
    _sub(root, "incidents", a["id"])
    _info(_sub(root, "info"), change, profile, s)
    return root


def _info(info: ET.Element, change: StoredChange, profile: Profile, s: AlertSettings) -> None:
    a = change.alert
    level = Level.parse(a["level"])
    ended = change.transition in ENDED
    response, instruction = ("AllClear", "险情已解除") if ended else INSTRUCTION[level]
    _sub(info, "language", "zh-CN")
    _sub(info, "category", "Infra" if a.get("health") else "Safety")
    _sub(info, "event", a["rule_id"])
    _sub(info, "responseType", response)
    _sub(info, "urgency", "Past" if ended else "Immediate")
    _sub(info, "severity", SEVERITY[profile][level])
    _sub(info, "certainty", "Possible" if a.get("unreliable") else "Observed")
    _sub(info, "eventCode").extend(_pair("valueName", "yujing:rule", a["rule_id"]))
    _sub(info, "onset", cap_time(datetime.fromisoformat(a["started_at"]), s))
    _sub(info, "senderName", s.cap_sender_name)
    _sub(info, "headline", a["message"][:160])
    _sub(info, "description", _description(change))
    _sub(info, "instruction", instruction)
    for name, value in _parameters(change):
        _sub(info, "parameter").extend(_pair("valueName", name, value))
    area = _sub(info, "area")
    where = [a["enterprise"], a.get("site"), a.get("device"), a.get("point")]
    _sub(area, "areaDesc", " / ".join(str(w) for w in where if w))
    for name in ("enterprise", "site", "device"):
        if a.get(name):
            _sub(area, "geocode").extend(_pair("valueName", f"yujing:{name}", a[name]))


def _pair(first: str, name: str, value: object) -> list[ET.Element]:
    n, v = ET.Element(f"{{{NS}}}{first}"), ET.Element(f"{{{NS}}}value")
    n.text, v.text = xml_text(name), xml_text(value)
    return [n, v]


def _description(change: StoredChange) -> str:
    a = change.alert
    return (
        f"{a['message']}。状态 {a['state']}，最高级别 {a['peak_level']}，"
        f"发生 {a['occurrences']} 次；变更 {change.transition}（{change.actor}）。"
    )


def _parameters(change: StoredChange) -> list[tuple[str, Any]]:
    a = change.alert
    out: list[tuple[str, Any]] = [
        ("yujing:key", a["key"]), ("yujing:seq", change.seq),
        ("yujing:transition", change.transition), ("yujing:level", a["level"]),
        ("yujing:peakLevel", a["peak_level"]), ("yujing:state", a["state"]),
        ("yujing:occurrences", a["occurrences"]),
    ]  # fmt: skip
    for name in ("value", "threshold", "unit"):
        if a.get(name) not in (None, ""):
            out.append((f"yujing:{name}", a[name]))
    out.extend(
        (f"yujing:{m}", "true") for m in ("suppressed", "chattering", "unreliable") if a.get(m)
    )
    return out


def document(
    change: StoredChange, original: StoredChange, profile: Profile, s: AlertSettings
) -> bytes:
    root = to_cap(change, original, profile, s)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=NS)
    return out


def feed(
    entries: list[tuple[StoredChange, StoredChange]],
    profile: Profile,
    s: AlertSettings,
    now: datetime,
    query: str = "",
) -> bytes:
    """An Atom feed, newest first, each entry carrying its CAP message inline. Its self
    link is `YJ_PUBLIC_URL` + the feed's path and `query`, never the request's `Host`."""

    def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", {k: xml_text(v) for k, v in attrs.items()})
        el.text = None if text is None else xml_text(text)
        return el

    self_url = s.public_url.rstrip("/") + FEED_PATH + (f"?{query}" if query else "")

    root = ET.Element(f"{{{ATOM}}}feed")
    add(root, "id", f"urn:yujing:cap:{s.cap_sender_code}:{profile}")
    add(root, "title", f"{s.cap_sender_name} CAP ({profile})")
    add(root, "updated", cap_time(now, s))
    add(root, "link", rel="self", href=self_url)
    add(add(root, "author"), "name", s.cap_sender)
    for change, original in entries:
        entry = add(root, "entry")
        add(entry, "id", f"urn:yujing:cap:{identifier(change, s)}")
        add(entry, "title", change.alert["message"])
        add(entry, "updated", cap_time(change.at, s))
        add(entry, "content", type=MEDIA_TYPE).append(to_cap(change, original, profile, s))
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out
