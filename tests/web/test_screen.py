"""The wall display and the console in a real browser, against a real yujing: a leak turns a
row red and moves the counter; acknowledge and close from the console reach the API; a
suppressed red shows its mark and is not counted; a refused token says so; /docs works
offline; screenshots at 1080p and 4K go to var/artefacts/screen/."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.web.conftest import CuttableLink
from yujing.testing.flow import Flow, eventually
from yujing.testing.registry import enterprise_record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "test-admin-token"  # settings_for_test's admin token


def detector(site: str = "face-1") -> dict[str, Any]:
    return {
        "kind": "gas_detector", "site": site,
        "tags": {"sector": "coal", "location": "coal_face", "critical": "true"},
        "points": {"ch4": {"unit": "%CH4", "interval_s": 5}},
    }  # fmt: skip


async def open_screen(context: BrowserContext, flow: Flow, path: str = "/") -> Page:
    page = await context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(flow.base_url) else outside.append(r.url))
    page.outside = outside  # type: ignore[attr-defined]
    await page.goto(f"{flow.base_url}{path}#token={TOKEN}")
    await expect(page.get_by_test_id("connection")).to_have_text("实时", timeout=15_000)
    return page


async def leak(flow: Flow, device: str, values: list[float]) -> None:
    t0 = int(time.time() * 1000) - 60_000
    for seq, ch4 in enumerate(values, start=1):
        body = {"ts": t0 + seq * 5000, "seq": seq, "values": {"ch4": ch4}}
        await flow.publish(f"yj/ent1/{device}/telemetry", body)


async def red_of(flow: Flow, device: str) -> dict[str, Any] | None:
    r = await flow.http.get("/api/v1/alerts", params={"device": device, "min_level": "red"})
    items = r.json()["items"]
    return dict(items[0]) if items else None


async def test_a_leak_turns_a_row_red_and_moves_the_counter(
    context: BrowserContext, stack: Flow, artefacts: Path
) -> None:
    assert (await stack.http.put("/api/v1/devices/ent1/gd-1", json=detector())).status_code == 200
    page = await open_screen(context, stack)
    red_counter = page.get_by_test_id("count-red")
    await expect(red_counter).to_have_text("0")

    await leak(stack, "gd-1", [0.3, 1.6])
    published = time.monotonic()
    row = page.locator('[data-testid="alarms"] tr[data-level="red"]')
    await expect(row).to_have_count(1, timeout=2000)  # the brief: red on screen within 2 s
    seen_after = time.monotonic() - published
    await expect(red_counter).to_have_text("1")
    await expect(row).to_contain_text("红")
    await expect(row).to_contain_text("未确认")
    await expect(row).to_contain_text("（红色）")  # the server's message, in Chinese
    assert "attention" in (await row.get_attribute("class") or "")
    print(f"red row drawn {seen_after * 1000:.0f} ms after the leak was published")

    await page.screenshot(path=str(artefacts / "wall-1920x1080.png"))
    await page.set_viewport_size({"width": 3840, "height": 2160})
    await expect(row).to_have_count(1)
    await page.screenshot(path=str(artefacts / "wall-3840x2160.png"))
    assert (artefacts / "wall-3840x2160.png").stat().st_size > 0
    assert page.outside == []  # type: ignore[attr-defined]  # nothing fetched off this host


async def test_acknowledge_and_close_from_the_console_reach_the_api(
    context: BrowserContext, stack: Flow, artefacts: Path
) -> None:
    assert (await stack.http.put("/api/v1/devices/ent1/gd-1", json=detector())).status_code == 200
    await leak(stack, "gd-1", [0.3, 1.6])
    red = await eventually(lambda: red_of(stack, "gd-1"))
    page = await open_screen(context, stack, "/console")
    row = page.locator(f'[data-testid="console-alerts"] tr[data-id="{red["id"]}"]')
    await row.click()
    detail = page.get_by_test_id("detail")
    await expect(detail).to_contain_text("红色预警")
    await detail.locator('input[name="note"]').fill("已通知井下撤人")
    await page.get_by_test_id("ack").click()
    await expect(detail).to_contain_text("已确认")

    got = (await stack.http.get(f"/api/v1/alerts/{red['id']}")).json()
    assert got["state"] == "acknowledged" and got["acknowledged_by"] == "admin"
    assert got["transitions"][-1]["note"] == "已通知井下撤人"

    await leak(stack, "gd-1", [0.3, 1.6, 0.4, 0.3, 0.2, 0.2])  # seq 1-2 are redeliveries

    async def resolved() -> bool:
        body = (await stack.http.get(f"/api/v1/alerts/{red['id']}")).json()
        return bool(body["state"] == "resolved")

    await eventually(resolved)
    await detail.get_by_role("button", name="×").click()
    await row.click()
    # a red hazard alarm closes only with its follow-up record (超限报警追查)
    await detail.locator('select[name="cause"]').select_option("real_emission")
    await detail.locator('textarea[name="measures"]').fill("停电撤人，加强局部通风")
    await detail.locator('textarea[name="disposal"]').fill("局部通风恢复，瓦斯浓度正常后复电")
    await page.screenshot(path=str(artefacts / "console-1920x1080.png"))
    await page.get_by_test_id("close").click()
    await expect(detail).to_contain_text("已关闭")
    got = (await stack.http.get(f"/api/v1/alerts/{red['id']}")).json()
    assert got["state"] == "closed" and got["disposal"] == "局部通风恢复，瓦斯浓度正常后复电"
    follow_up = (await stack.http.get(f"/api/v1/alerts/{red['id']}/follow-up")).json()
    assert follow_up["cause"] == "real_emission"
    assert follow_up["measures"] == "停电撤人，加强局部通风"


async def test_a_suppressed_red_shows_its_mark_and_is_not_counted(
    context: BrowserContext, stack: Flow
) -> None:
    for device in ("gd-1", "gd-2"):
        r = await stack.http.put(f"/api/v1/devices/ent1/{device}", json=detector())
        assert r.status_code == 200
    now = datetime.now(UTC)  # the window covers the readings' event times (a minute ago)
    window = {"enterprise": "ent1", "device": "gd-2", "reason": "传感器标校",
              "starts_at": (now - timedelta(hours=1)).isoformat(),
              "ends_at": (now + timedelta(hours=1)).isoformat()}  # fmt: skip
    assert (await stack.http.post("/api/v1/maintenance", json=window)).status_code == 201
    page = await open_screen(context, stack)

    await leak(stack, "gd-2", [0.3, 1.6])
    quiet = await eventually(lambda: red_of(stack, "gd-2"))
    assert quiet["suppressed"] is True
    row = page.locator(f'[data-testid="alarms"] tr[data-id="{quiet["id"]}"]')
    await expect(row).to_contain_text("维护中")
    await expect(page.get_by_test_id("count-red")).to_have_text("0")
    assert "attention" not in (await row.get_attribute("class") or "")

    await leak(stack, "gd-1", [0.3, 1.6])  # a real red beside it is counted
    await expect(page.get_by_test_id("count-red")).to_have_text("1")
    live = await eventually(lambda: red_of(stack, "gd-1"))
    rows = page.locator('[data-testid="alarms"] tbody tr')
    await expect(rows.first).to_have_attribute("data-id", live["id"])  # live before marked


async def test_a_refused_token_says_so(context: BrowserContext, stack: Flow) -> None:
    page = await context.new_page()
    await page.goto(f"{stack.base_url}/#token=not-a-token")
    error = page.get_by_test_id("signin-error")
    await expect(error).to_contain_text("令牌被拒绝")
    assert "#token" not in page.url  # the token does not stay in the address bar
    await page.locator('input[name="token"]').fill(TOKEN)
    await page.get_by_role("button", name="进入").click()
    await expect(page.get_by_test_id("connection")).to_have_text("实时")
    await page.get_by_test_id("lang").click()
    await expect(page.get_by_test_id("connection")).to_have_text("Live")
    await expect(page.get_by_test_id("counters")).to_contain_text("Red")


async def test_api_docs_work_offline(context: BrowserContext, stack: Flow) -> None:
    page = await context.new_page()
    outside: list[str] = []
    page.on(
        "request", lambda r: None if r.url.startswith(stack.base_url) else outside.append(r.url)
    )
    await page.goto(f"{stack.base_url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("yujing")
    await expect(page.locator(".opblock-tag-section").first).to_be_visible()
    assert outside == []


async def test_the_register_fills_the_enterprise_table_and_map(
    context: BrowserContext, stack: Flow
) -> None:
    record = enterprise_record("320506", 1, location={"lon": 120.63, "lat": 31.26})
    assert (await stack.http.put("/api/v1/enterprises/ent1", json=record)).status_code == 200
    assert (await stack.http.put("/api/v1/devices/ent1/gd-1", json=detector())).status_code == 200
    await leak(stack, "gd-1", [0.3, 1.6])
    await eventually(lambda: red_of(stack, "gd-1"))
    page = await open_screen(context, stack)
    table = page.get_by_test_id("enterprises")
    await expect(table).to_contain_text(record["name"])
    await expect(table.locator("tbody tr").first).to_contain_text("红1")
    await expect(page.locator(".map canvas")).to_have_count(1)


# A 1×1 PNG: the evidence upload checks the bytes, not the name.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


async def token_for(flow: Flow, name: str, role: str) -> str:
    body = {"name": name, "role": role, "enterprises": ["*"]}
    r = await flow.http.post("/api/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def open_hazards(context: BrowserContext, flow: Flow, token: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{flow.base_url}/console#token={token}")
    await page.get_by_test_id("tab-hazards").click()
    await expect(page.get_by_test_id("me")).to_be_visible()
    return page


async def test_a_hazard_walks_from_report_to_sign_off_through_the_console(
    browser: Browser, stack: Flow, artefacts: Path
) -> None:
    """The enterprise's operator reports, confirms, plans, uploads evidence and marks it
    rectified; a supervisor (not the rectifier) signs it off. Each sees only their steps."""
    operator = await token_for(stack, "op-wang", "operator")
    supervisor = await token_for(stack, "sup-li", "supervisor")
    op_ctx = await browser.new_context(viewport={"width": 1920, "height": 1080})
    sup_ctx = await browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        page = await open_hazards(op_ctx, stack, operator)
        await expect(page.get_by_test_id("me")).to_contain_text("企业值班员")
        await page.get_by_test_id("hazard-new").click()
        form = page.get_by_test_id("hazard-report")
        await form.locator('input[name="enterprise"]').fill("ent1")
        await form.locator('input[name="site"]').fill("face-1")
        await form.locator('select[name="category"]').select_option("coal.ventilation")
        description = form.locator('textarea[name="description"]')
        await description.fill("回风巷风量不足，局部通风机运转异常")
        await page.get_by_test_id("hazard-submit").click()
        detail = page.get_by_test_id("hazard-detail")
        state = page.get_by_test_id("hazard-state")
        await expect(state).to_have_text("已上报")
        actions = page.get_by_test_id("hazard-actions")
        await expect(actions.locator("button")).to_have_text(["确认隐患", "上传整改材料"])
        hazard_id = await page.locator('[data-testid="hazards"] tr.sel').get_attribute("data-id")
        assert hazard_id

        async def step(action: str) -> None:
            await actions.locator(f'button[data-action="{action}"]').click()

        await step("confirm")
        await page.get_by_test_id("hazard-act").click()
        await expect(state).to_have_text("已确认")

        await step("plan")
        plan = detail.locator('form[data-form="plan"]')
        await plan.locator('input[name="unit"]').fill("通风科")
        await plan.locator('input[name="person"]').fill("张工")
        await plan.locator('textarea[name="measures"]').fill("更换局部通风机，调整风门")
        # the browser's local time; three days either way of any zone is still ahead
        deadline = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
        await plan.locator('input[name="deadline"]').fill(deadline)
        await page.get_by_test_id("hazard-act").click()
        await expect(state).to_have_text("整改中")

        # Marking it rectified before any evidence: the API's 422, shown in Chinese.
        await step("rectified")
        await detail.locator('textarea[name="note"]').fill("已更换局部通风机")
        await page.get_by_test_id("hazard-act").click()
        await expect(page.get_by_test_id("hazard-error")).to_have_text(
            "填写不完整或有误：整改完成前须先上传整改照片或 PDF 材料"
        )
        await expect(state).to_have_text("整改中")

        await step("evidence")
        await detail.locator('input[name="file"]').set_input_files(
            {"name": "通风机更换.png", "mimeType": "image/png", "buffer": PNG}
        )
        await page.get_by_test_id("hazard-act").click()
        await expect(page.get_by_test_id("hazard-done")).to_contain_text("通风机更换.png")
        evidence = page.get_by_test_id("hazard-steps").locator('li[data-step="evidence_added"] a')
        await expect(evidence).to_have_text("通风机更换.png")

        await step("rectified")
        await detail.locator('textarea[name="note"]').fill("已更换局部通风机，风量恢复")
        await page.get_by_test_id("hazard-act").click()
        await expect(state).to_have_text("已整改待销号")
        # The operator cannot review, so sign-off is not offered to them.
        await expect(actions.locator('button[data-action="sign-off"]')).to_have_count(0)
        await page.screenshot(path=str(artefacts / "console-hazard-operator.png"))

        page = await open_hazards(sup_ctx, stack, supervisor)
        await expect(page.get_by_test_id("me")).to_contain_text("监管人员")
        await page.locator(f'[data-testid="hazards"] tr[data-id="{hazard_id}"]').click()
        state = page.get_by_test_id("hazard-state")
        await expect(state).to_have_text("已整改待销号")
        actions = page.get_by_test_id("hazard-actions")
        await expect(actions.locator('button[data-action="send-back"]')).to_have_count(1)
        await actions.locator('button[data-action="sign-off"]').click()
        await page.get_by_test_id("hazard-act").click()
        await expect(state).to_have_text("已销号")
        await expect(actions).to_contain_text("无可办理")
        steps = page.get_by_test_id("hazard-steps").locator("li")
        await expect(steps).to_have_count(6)
        await expect(steps.last).to_contain_text("销号")
        await expect(steps.last).to_contain_text("sup-li")
        await page.screenshot(path=str(artefacts / "console-hazard-signed-off.png"))
    finally:
        await op_ctx.close()
        await sup_ctx.close()

    got = (await stack.http.get(f"/api/v1/hazards/{hazard_id}")).json()
    assert got["state"] == "signed_off"
    assert (got["rectified_by"], got["signed_off_by"]) == ("op-wang", "sup-li")
    assert [s["transition"] for s in got["history"]] == [
        "reported", "confirmed", "rectifying", "evidence_added", "rectified", "signed_off",
    ]  # fmt: skip
    assert got["evidence"][0]["filename"] == "通风机更换.png"


async def test_a_dropped_stream_reconnects_and_misses_no_transition(
    context: BrowserContext, stack: Flow, cuttable: CuttableLink
) -> None:
    """The network between the wall and the API is cut; a red is raised meanwhile; once the
    link is back the screen resumes with Last-Event-ID and the replayed red is drawn."""
    for device in ("gd-1", "gd-2"):
        r = await stack.http.put(f"/api/v1/devices/ent1/{device}", json=detector())
        assert r.status_code == 200
    page = await context.new_page()
    await page.goto(f"http://127.0.0.1:{cuttable.port}/#token={TOKEN}")
    connection = page.get_by_test_id("connection")
    await expect(connection).to_have_text("实时", timeout=15_000)
    await leak(stack, "gd-2", [0.3, 1.2])  # an orange off the stream: the screen has an id
    await expect(page.get_by_test_id("count-orange")).to_have_text("1", timeout=10_000)

    cuttable.cut()
    await expect(connection).to_have_text("连接中断，正在重连…")
    before = len(cuttable.sent)
    await leak(stack, "gd-1", [0.3, 1.6])
    await eventually(lambda: red_of(stack, "gd-1"))  # raised while the screen was cut off
    await expect(page.get_by_test_id("count-red")).to_have_text("0")

    cuttable.up = True  # the screen retries after 1, 2, … at most 5 s
    await expect(connection).to_have_text("实时", timeout=20_000)
    row = page.locator('[data-testid="alarms"] tr[data-level="red"]')
    await expect(row).to_have_count(1, timeout=10_000)
    await expect(page.get_by_test_id("count-red")).to_have_text("1")
    resumed = [b for b in cuttable.sent[before:] if b.startswith(b"GET /api/v1/alerts/stream")]
    assert resumed and all(b"last-event-id: " in b.lower() for b in resumed)
