import { describe, expect, it } from "vitest";
import { ApiError, NetworkError } from "../src/lib/api";
import { allowedActions, type Hazard, isOverdue, type Me } from "../src/lib/hazards";
import { refusal, refusalZh } from "../src/lib/refusals";

function hazard(over: Partial<Hazard> = {}): Hazard {
  return {
    id: "h-1", seq: 1, enterprise: "ent1", site: "face-1", device: null, point: null, installation: null,
    division: null, sector: "coal", source: "inspection", grade: "general", category: "coal.ventilation",
    description: "回风巷风量不足", state: "reported", reported_by: "op-wang", reported_at: "2026-12-01T08:00:00+00:00",
    confirmed_by: null, confirmed_at: null, responsible_unit: null, responsible_person: null, measures: null,
    deadline: null, rectifying_since: null, rectified_by: null, rectified_at: null, signed_off_by: null,
    signed_off_at: null, reason: null, sent_back: 0, listed_tier: null, listed_by: null, listed_at: null,
    listed_deadline: null, due: null, escalated_tier: "enterprise", overdue: false, alert_ids: [],
    changed_at: "2026-12-01T08:00:00+00:00", ...over,
  };
}

const operator: Me = { name: "op-wang", role: "operator", tier: null };
const supervisor: Me = { name: "sup-li", role: "supervisor", tier: "county" };
const viewer: Me = { name: "screen", role: "viewer", tier: null };
const admin: Me = { name: "admin", role: "admin", tier: null };

describe("the steps offered", () => {
  it("follow the loop for the operator: confirm, plan, evidence and rectified, never review", () => {
    expect(allowedActions(hazard(), operator)).toEqual(["confirm", "evidence"]);
    expect(allowedActions(hazard({ state: "confirmed" }), operator)).toEqual(["plan", "evidence"]);
    expect(allowedActions(hazard({ state: "rectifying" }), operator)).toEqual(["evidence", "rectified"]);
    expect(allowedActions(hazard({ state: "rectified", rectified_by: "op-zhao" }), operator)).toEqual(["evidence"]);
  });

  it("give the supervisor confirm and dismiss, then sign-off and send-back of someone else's work", () => {
    expect(allowedActions(hazard(), supervisor)).toEqual(["confirm", "evidence", "dismiss"]);
    expect(allowedActions(hazard({ state: "confirmed" }), supervisor)).toEqual(["evidence", "dismiss"]);
    expect(allowedActions(hazard({ state: "rectifying" }), supervisor)).toEqual(["evidence"]);
    const done = hazard({ state: "rectified", rectified_by: "op-wang" });
    expect(allowedActions(done, supervisor)).toEqual(["evidence", "sign-off", "send-back"]);
    expect(allowedActions(done, { ...supervisor, name: "op-wang" })).toEqual(["evidence"]);
  });

  it("offer nothing on a closed record, nor to a viewer or an admin", () => {
    for (const state of ["signed_off", "dismissed"] as const) {
      expect(allowedActions(hazard({ state }), supervisor)).toEqual([]);
      expect(allowedActions(hazard({ state }), operator)).toEqual([]);
    }
    for (const state of ["reported", "confirmed", "rectifying", "rectified"] as const) {
      expect(allowedActions(hazard({ state, rectified_by: "x" }), viewer)).toEqual([]);
      expect(allowedActions(hazard({ state, rectified_by: "x" }), admin)).toEqual([]);
    }
  });

  it("list a major hazard for supervision at the supervisor's level or above what it has", () => {
    const major = hazard({ grade: "major", state: "confirmed" });
    expect(allowedActions(major, supervisor)).toContain("list");
    expect(allowedActions(hazard({ state: "confirmed" }), supervisor)).not.toContain("list");
    expect(allowedActions({ ...major, listed_tier: "city" }, supervisor)).not.toContain("list");
    expect(allowedActions({ ...major, listed_tier: "city" }, { ...supervisor, tier: "province" })).toContain("list");
    expect(allowedActions(major, { ...supervisor, tier: null })).not.toContain("list");
  });

  it("leave review of a listed hazard to the listing level", () => {
    const listed = hazard({ grade: "major", state: "rectified", rectified_by: "op-wang", listed_tier: "city" });
    expect(allowedActions(listed, supervisor)).not.toContain("sign-off");
    expect(allowedActions(listed, { ...supervisor, tier: "city" })).toContain("sign-off");
  });

  it("take who may from the server's vocabulary when it says otherwise", () => {
    const who = { confirmed: ["supervisor"], evidence_added: [] };
    expect(allowedActions(hazard(), operator, who)).toEqual([]);
    expect(allowedActions(hazard(), supervisor, who)).toEqual(["confirm"]);
  });
});

describe("overdue", () => {
  const now = Date.parse("2026-12-05T00:00:00Z");
  it("is the server's flag, or an open record past its deadline in force", () => {
    expect(isOverdue(hazard({ overdue: true }), now)).toBe(true);
    expect(isOverdue(hazard({ state: "rectifying", due: "2026-12-04T00:00:00Z" }), now)).toBe(true);
    expect(isOverdue(hazard({ state: "rectifying", due: "2026-12-06T00:00:00Z" }), now)).toBe(false);
    expect(isOverdue(hazard({ state: "rectified", due: "2026-12-04T00:00:00Z" }), now)).toBe(false);
    expect(isOverdue(hazard({ state: "signed_off", due: "2026-12-04T00:00:00Z" }), now)).toBe(false);
  });
});

describe("refusals in Chinese", () => {
  it("say the state, the step and the role in Chinese", () => {
    expect(refusalZh(new ApiError(409, "Conflict", "hazard is rectified; rectifying needs it confirmed")))
      .toBe("状态不允许：隐患当前为“已整改待销号”，“制定整改方案”要求其为“已确认”");
    expect(refusalZh(new ApiError(409, "Conflict", "hazard is confirmed; dismissed needs it reported, confirmed")))
      .toBe("状态不允许：隐患当前为“已确认”，“驳回”要求其为“已上报或已确认”");
    expect(refusalZh(new ApiError(403, "Forbidden", "signed_off is a step for the supervisor role, not operator")))
      .toBe("无权办理：“销号”须由监管人员办理，当前身份为企业值班员");
    expect(refusalZh(new ApiError(403, "Forbidden", "confirmed is a step for the operator or supervisor role, not viewer")))
      .toBe("无权办理：“确认”须由企业值班员或监管人员办理，当前身份为查看者");
  });

  it("name the rules: own rectification, evidence first, listing level, deadlines", () => {
    expect(refusalZh(new ApiError(403, "Forbidden", "nobody reviews their own rectification")))
      .toBe("无权办理：不能对自己完成的整改销号或退回");
    expect(refusalZh(new ApiError(422, "Invalid request", "rectified needs evidence: upload a photo or PDF of the rectification first")))
      .toBe("填写不完整或有误：整改完成前须先上传整改照片或 PDF 材料");
    expect(refusalZh(new ApiError(403, "Forbidden",
      "this hazard is under listed supervision by the city level; only that level signs it off or sends it back")))
      .toBe("无权办理：该隐患由市级挂牌督办，只有该级可以销号或退回");
    expect(refusalZh(new ApiError(422, "Invalid request", "the rectification deadline must be in the future")))
      .toBe("填写不完整或有误：整改期限必须晚于当前时间");
    expect(refusalZh(new ApiError(404, "Not found", "no hazard h-01X"))).toBe("未找到：隐患不存在或不在本令牌的管辖范围内");
  });

  it("keep the server's words when they are not known, and say which fields are wrong", () => {
    expect(refusalZh(new ApiError(409, "Conflict", "something new"))).toBe("状态不允许：something new");
    expect(refusalZh(new ApiError(415, "Unsupported media type", "text/plain")))
      .toBe("文件类型不支持（仅限 JPEG、PNG、PDF）");
    const fields = JSON.stringify([{ loc: ["body", "deadline"], msg: "x" }, { loc: ["body", "measures"], msg: "y" }]);
    expect(refusalZh(new ApiError(422, "Invalid request", fields))).toBe("填写不完整或有误（deadline、measures）");
    expect(refusalZh(new NetworkError("TypeError: Failed to fetch"))).toBe("无法连接服务器：TypeError: Failed to fetch");
  });

  it("cover the alert console's refusals too, and stay in English when the screen is", () => {
    expect(refusalZh(new ApiError(409, "Conflict", "alert is acknowledged; it can be closed only after the condition has resolved")))
      .toBe("状态不允许：报警当前为“已确认”，须在恢复后才能关闭");
    expect(refusalZh(new ApiError(403, "Forbidden", "this needs the operator role"))).toBe("无权办理：须由企业值班员办理");
    const e = new ApiError(409, "Conflict", "alert is already closed (by admin)");
    expect(refusalZh(e)).toBe("状态不允许：报警已由 admin 关闭");
    expect(refusal(e, "en")).toBe("Refused (409 Conflict): alert is already closed (by admin)");
    expect(refusal(e, "zh-CN")).toBe("状态不允许：报警已由 admin 关闭");
  });
});
