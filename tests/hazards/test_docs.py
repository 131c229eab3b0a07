"""The AsyncAPI document describes hazard steps as they are sent."""

from __future__ import annotations

import warnings

import asyncpg
import jsonschema

from yujing.alerts import asyncapi, cloudevents
from yujing.hazards import lifecycle
from yujing.hazards.jurisdiction import Actor
from yujing.hazards.model import Grade, Source, Step
from yujing.hazards.store import HazardStore
from yujing.testing.alerts import Clock


def test_the_document_names_every_step() -> None:
    assert [s.value for s in Step] == asyncapi.HAZARD_STEPS


async def test_real_hazard_events_validate_against_the_document(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    doc = asyncapi.document("localhost:1883", "localhost:9092")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the model package's own field names
        from asyncapi3 import AsyncAPI3
    AsyncAPI3.model_validate(doc)
    hazards = HazardStore(pool, clock)
    r = lifecycle.Report("ent1", Source.PUBLIC_REPORT, Grade.MAJOR, "general.other", "举报")
    change = await hazards.report(r, Actor("sup", "supervisor"))
    feed = doc["channels"]["alertFeed"]["messages"]["hazardStep"]["payload"]
    event = cloudevents.to_cloudevent(change)
    jsonschema.validate(event, {**feed, "components": doc["components"]})
    jsonschema.validate({**event, "tier": "county"}, {**feed, "components": doc["components"]})
    mqtt = doc["channels"]["hazardsMqtt"]["messages"]["hazardStep"]["payload"]
    body = {"seq": change.seq, "transition": change.transition, **change.alert}
    jsonschema.validate(body, {**mqtt, "components": doc["components"]})
