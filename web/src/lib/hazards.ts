// Hidden hazards (隐患) for the console: wire types, which steps the token may take on a
// record in its state, and the server's refusals put into Chinese. Pure: Vitest checks it.

import { ApiError } from "./api";

export const HAZARD_STATES = ["reported", "confirmed", "rectifying", "rectified", "signed_off", "dismissed"] as const;
export type HazardState = (typeof HAZARD_STATES)[number];
export const OPEN_STATES: readonly HazardState[] = ["reported", "confirmed", "rectifying", "rectified"];
export const GRADES = ["general", "major"] as const;
export type Grade = (typeof GRADES)[number];
export type Tier = "county" | "city" | "province";
const TIER_RANK: Record<Tier, number> = { county: 1, city: 2, province: 3 };

export interface Hazard {
  id: string;
  seq: number;
  enterprise: string;
  site: string | null;
  device: string | null;
  point: string | null;
  installation: string | null;
  division: string | null;
  sector: string | null;
  source: string;
  grade: Grade;
  category: string;
  description: string;
  state: HazardState;
  reported_by: string;
  reported_at: string;
  confirmed_by: string | null;
  confirmed_at: string | null;
  responsible_unit: string | null;
  responsible_person: string | null;
  measures: string | null;
  deadline: string | null;
  rectifying_since: string | null;
  rectified_by: string | null;
  rectified_at: string | null;
  signed_off_by: string | null;
  signed_off_at: string | null;
  reason: string | null;
  sent_back: number;
  listed_tier: Tier | null;
  listed_by: string | null;
  listed_at: string | null;
  listed_deadline: string | null;
  due: string | null;
  escalated_tier: string | null;
  overdue: boolean;
  alert_ids: string[];
  changed_at: string;
}

export interface HazardStep {
  seq: number;
  transition: string;
  at: string;
  actor: string;
  note: string | null;
}

export interface Evidence {
  id: string;
  filename: string;
  content_type: string;
  size: number;
  sha256: string;
  uploaded_by: string;
  uploaded_at?: string;
  href?: string;
}

export interface HazardDetail extends Hazard {
  history: HazardStep[];
  evidence: Evidence[];
}

/** Who the token is (`GET /api/v1/tokens/me`). */
export interface Me {
  name: string;
  role: string;
  tier: Tier | null;
}

/** The steps a person takes from the console (the API's paths after `/hazards/{id}/`). */
export const ACTIONS = ["confirm", "plan", "evidence", "rectified", "sign-off", "send-back", "dismiss", "list"] as const;
export type Action = (typeof ACTIONS)[number];

/** The vocabulary's step word for each action: `GET /hazards/vocabulary` `steps` says who may. */
const STEP_OF: Record<Action, string> = {
  confirm: "confirmed", plan: "rectifying", evidence: "evidence_added", rectified: "rectified",
  "sign-off": "signed_off", "send-back": "sent_back", dismiss: "dismissed", list: "listed",
};

/** Roles per step as yujing/hazards/lifecycle.py has them, until the vocabulary is read. */
export const DEFAULT_WHO: Record<string, string[]> = {
  reported: ["operator", "supervisor"], confirmed: ["operator", "supervisor"], rectifying: ["operator"],
  evidence_added: ["operator", "supervisor"], rectified: ["operator"],
  signed_off: ["supervisor"], sent_back: ["supervisor"], dismissed: ["supervisor"],
  listed: ["supervisor"],
};

function stateAllows(action: Action, h: Hazard, me: Me): boolean {
  const open = OPEN_STATES.includes(h.state);
  switch (action) {
    case "confirm": return h.state === "reported";
    case "plan": return h.state === "confirmed";
    case "evidence": return open;
    case "rectified": return h.state === "rectifying";
    case "sign-off":
    case "send-back":
      // Nobody reviews their own rectification; under listed supervision, only that level.
      return h.state === "rectified" && h.rectified_by !== me.name
        && (h.listed_tier === null || h.listed_tier === me.tier);
    case "dismiss": return h.state === "reported" || h.state === "confirmed";
    case "list":
      return open && h.grade === "major" && me.tier !== null
        && (h.listed_tier === null || TIER_RANK[me.tier] >= TIER_RANK[h.listed_tier]);
  }
}

/** The actions the console offers on `h` to `me`: the role may take the step and the
 * record's state (and the reviewing rules) allow it. The server decides in the end. */
export function allowedActions(h: Hazard, me: Me, who: Record<string, string[]> = DEFAULT_WHO): Action[] {
  return ACTIONS.filter((a) => (who[STEP_OF[a]] ?? []).includes(me.role) && stateAllows(a, h, me));
}

/** Past its deadline in force and still open (the server's `overdue` flag says the same
 * once its watch has run). */
export function isOverdue(h: Hazard, now: number): boolean {
  return h.overdue || (OPEN_STATES.includes(h.state) && h.state !== "rectified" && h.due !== null && Date.parse(h.due) < now);
}

// --- refusals in Chinese ------------------------------------------------------------------

const STATE_ZH: Record<string, string> = {
  reported: "已上报", confirmed: "已确认", rectifying: "整改中", rectified: "已整改待销号",
  signed_off: "已销号", dismissed: "已驳回",
};
const STEP_ZH: Record<string, string> = {
  reported: "上报", confirmed: "确认", dismissed: "驳回", rectifying: "制定整改方案",
  evidence_added: "上传整改材料", rectified: "整改完成", sent_back: "退回整改", signed_off: "销号",
  listed: "挂牌督办", linked: "关联报警",
};
const ROLE_ZH: Record<string, string> = {
  operator: "企业值班员", supervisor: "监管人员", viewer: "查看者", admin: "管理员", system: "系统",
};
const TIER_ZH: Record<string, string> = { county: "县级", city: "市级", province: "省级" };

const zhList = (words: string, dict: Record<string, string>): string =>
  words.split(/,\s*| or /).map((w) => dict[w.trim()] ?? w.trim()).join("或");

/** The server's refusal details (yujing/hazards/lifecycle.py, routes/hazards.py) in Chinese. */
const PATTERNS: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^hazard is (\w+); (\w+) needs it (.+)$/, (m) =>
    `隐患当前为“${STATE_ZH[m[1] ?? ""] ?? m[1]}”，“${STEP_ZH[m[2] ?? ""] ?? m[2]}”要求其为“${zhList(m[3] ?? "", STATE_ZH)}”`],
  [/^(\w+) is a step for the (.+) role, not (\w+)$/, (m) =>
    `“${STEP_ZH[m[1] ?? ""] ?? m[1]}”须由${zhList(m[2] ?? "", ROLE_ZH)}办理，当前身份为${ROLE_ZH[m[3] ?? ""] ?? m[3]}`],
  [/^nobody reviews their own rectification$/, () => "不能对自己完成的整改销号或退回"],
  [/^this hazard is under listed supervision by the (\w+) level/, (m) =>
    `该隐患由${TIER_ZH[m[1] ?? ""] ?? m[1]}挂牌督办，只有该级可以销号或退回`],
  [/^rectified needs evidence/, () => "整改完成前须先上传整改照片或 PDF 材料"],
  [/^this step needs a note: describe what was done$/, () => "请填写整改情况说明"],
  [/^this step needs a note/, () => "请填写原因"],
  [/^the rectification deadline must be in the future$/, () => "整改期限必须晚于当前时间"],
  [/^the listed-supervision deadline must be in the future$/, () => "督办期限必须晚于当前时间"],
  [/^only a major hazard/, () => "只有重大事故隐患可以挂牌督办"],
  [/^listed supervision is by a county, city or province supervisor$/, () => "挂牌督办须由县级、市级或省级监管人员办理"],
  [/^already listed by the (\w+) level$/, (m) => `已由${TIER_ZH[m[1] ?? ""] ?? m[1]}挂牌督办`],
  [/^no hazard /, () => "隐患不存在或不在本令牌的管辖范围内"],
  [/^enterprise (\S+) is outside your scope$/, (m) => `企业 ${m[1]} 不在本令牌的管辖范围内`],
  [/^unknown category/, () => "隐患类别不在目录中"],
  [/^a hazard from alarms names the alerts/, () => "来源为报警的隐患须关联报警"],
  [/^alert_ids must be alerts of enterprise/, () => "关联的报警须属于同一企业"],
  [/^unknown or revoked token|^send Authorization/, () => "令牌无效或已吊销"],
];

const STATUS_ZH: Record<number, string> = {
  400: "请求有误", 401: "未登录或令牌无效", 403: "无权办理", 404: "未找到", 409: "状态不允许",
  413: "文件过大", 415: "文件类型不支持（仅限 JPEG、PNG、PDF）", 422: "填写不完整或有误",
};

/** A refusal for people: the status in Chinese, then the reason in Chinese when the server's
 * wording is known (else the server's own words, so nothing is hidden). */
export function refusalZh(e: unknown): string {
  if (!(e instanceof ApiError)) return `无法连接服务器：${e instanceof Error ? e.message : String(e)}`;
  const head = STATUS_ZH[e.status] ?? `操作失败（${e.status}）`;
  const detail = e.detail.trim();
  for (const [re, say] of PATTERNS) {
    const m = detail.match(re);
    if (m) return `${head}：${say(m)}`;
  }
  if (e.status === 413) return head;
  if (e.status === 415) return head;
  if (e.status === 422 && detail.startsWith("[")) return `${head}（${fieldsOf(detail)}）`;
  return detail ? `${head}：${detail}` : head;
}

/** FastAPI's validation detail (a JSON list of `{loc, msg}`) as the field names. */
function fieldsOf(detail: string): string {
  try {
    const items = JSON.parse(detail) as { loc?: unknown[] }[];
    return items.map((i) => String(i.loc?.at(-1) ?? "")).filter(Boolean).join("、");
  } catch {
    return detail;
  }
}
