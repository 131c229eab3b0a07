// The server's refusals (RFC 9457 problem+json, worded in English) for people: in Chinese
// when the screen is, by status and by the known wordings; the server's words otherwise.

import { ApiError } from "./api";

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

const ALERT_STATE_ZH: Record<string, string> = {
  active: "未确认", acknowledged: "已确认", resolved: "已恢复", closed: "已关闭",
};

/** The server's refusal details (yujing/hazards/lifecycle.py, yujing/alerts/lifecycle.py,
 * the routes) in Chinese. */
const PATTERNS: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^alert is (\w+); only an active alert is acknowledged$/, (m) =>
    `报警当前为“${ALERT_STATE_ZH[m[1] ?? ""] ?? m[1]}”，只有未确认的报警可以确认`],
  [/^alert is (\w+); it can be closed only after the condition has resolved$/, (m) =>
    `报警当前为“${ALERT_STATE_ZH[m[1] ?? ""] ?? m[1]}”，须在恢复后才能关闭`],
  [/^alert is already closed \(by (.+)\)$/, (m) => `报警已由 ${m[1]} 关闭`],
  [/^closing an alert needs a disposal note/, () => "关闭报警须填写处置记录"],
  [/^closing an orange or red alarm needs a follow-up record/, () => "关闭橙色、红色报警须填写超限报警追查（原因和措施）"],
  [/^this needs the (\w+) role$/, (m) => `须由${ROLE_ZH[m[1] ?? ""] ?? m[1]}办理`],
  [/^no alert /, () => "报警不存在或不在本令牌的管辖范围内"],
  [/^the window has already ended$/, () => "该维护时段已结束"],
  [/^ends_at must be after starts_at$/, () => "结束时间须晚于开始时间"],
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

/** A refusal in the screen's language: Chinese (above), or in English the server's words. */
export function refusal(e: unknown, locale: string): string {
  if (locale !== "en") return refusalZh(e);
  if (e instanceof ApiError) return `Refused (${e.status} ${e.title})${e.detail ? `: ${e.detail}` : ""}`;
  return `Cannot reach the server: ${e instanceof Error ? e.message : String(e)}`;
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
