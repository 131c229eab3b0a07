"""Evidence uploads may be as large as `YJ_HAZARD_EVIDENCE_MAX_BYTES` although the API's
request body limit (`YJ_HTTP_MAX_BODY_BYTES`, 1 MiB by default) is smaller; every other
path keeps the general limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.hazards.conftest import PDF, bearer
from yujing.alerts.store import AlertStore
from yujing.api.app import create_app
from yujing.api.auth import Role
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.bus import MemoryBus

pytestmark = pytest.mark.integration

H = "/api/v1/hazards"
MiB = 1024 * 1024
REPORT = {
    "enterprise": "ent1", "source": "self_check", "grade": "general",
    "category": "general.other", "description": "验收单扫描件", "site": "ws-1",
}  # fmt: skip


def pdf_of(size: int) -> bytes:
    return PDF + b"%" * (size - len(PDF))


def too_large(r: httpx.Response) -> str:
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    detail: str = r.json()["detail"]
    return detail


async def report(api: httpx.AsyncClient, who: dict[str, str]) -> str:
    r = await api.post(H, json=REPORT, headers=who)
    assert r.status_code == 201, r.text
    hid: str = r.json()["id"]
    return hid


async def test_a_2_mib_pdf_is_accepted_as_evidence_and_2_mib_elsewhere_is_413(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    assert Settings().http_max_body_bytes < 2 * MiB  # the general limit is below the file
    op = await bearer(pool, "op-wang", Role.OPERATOR, "ent1")
    hid = await report(api, op)
    body = pdf_of(2 * MiB)
    files = {"file": ("验收单.pdf", body, "application/pdf")}
    r = await api.post(f"{H}/{hid}/evidence", files=files, headers=op)
    assert r.status_code == 201, r.text
    assert (r.json()["size"], r.json()["content_type"]) == (2 * MiB, "application/pdf")
    download = await api.get(r.json()["href"], headers=op)
    assert download.status_code == 200 and download.content == body

    # The same 2 MiB anywhere else: the general limit.
    big_json = json.dumps({**REPORT, "description": "x" * (2 * MiB)})
    json_headers = {**op, "content-type": "application/json"}
    for path in (H, f"{H}/{hid}/confirm", f"{H}/{hid}/evidence/extra", "/api/v1/tokens"):
        r = await api.post(path, content=big_json, headers=json_headers)
        assert str(Settings().http_max_body_bytes) in too_large(r), path
    r = await api.post(f"{H}/{hid}/plan", files=files, headers=op)  # a file, but not evidence
    too_large(r)
    one = (await api.get(f"{H}/{hid}", headers=op)).json()
    assert [e["size"] for e in one["evidence"]] == [2 * MiB]


@pytest.fixture
async def small_evidence_api(
    pool: asyncpg.Pool, store: AlertStore, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("YJ_HAZARD_EVIDENCE_MAX_BYTES", str(3 * MiB))
    app = create_app(Settings(), pool, MemoryBus(), store, ChangeHub(pool, store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_the_evidence_path_is_held_to_the_evidence_limit(
    small_evidence_api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    api = small_evidence_api
    op = await bearer(pool, "op-wang", Role.OPERATOR, "ent1")
    hid = await report(api, op)
    files = {"file": ("big.pdf", pdf_of(4 * MiB), "application/pdf")}
    detail = too_large(await api.post(f"{H}/{hid}/evidence", files=files, headers=op))
    assert "request body" in detail  # refused before the route, not read whole
    # Just over the evidence limit but within its multipart room: the route's own 413.
    files = {"file": ("big.pdf", pdf_of(3 * MiB + 1), "application/pdf")}
    detail = too_large(await api.post(f"{H}/{hid}/evidence", files=files, headers=op))
    assert "file is larger than" in detail
    files = {"file": ("ok.pdf", pdf_of(3 * MiB), "application/pdf")}
    assert (await api.post(f"{H}/{hid}/evidence", files=files, headers=op)).status_code == 201
