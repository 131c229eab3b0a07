// zh-CN first, English as a switch. Every word the screen shows comes from here.

import { createI18n } from "vue-i18n";

const zh = {
  title: "监测预警中心",
  wall: "大屏", console: "值班台", docs: "接口文档",
  level: { red: "红", orange: "橙", yellow: "黄", blue: "蓝" },
  levelFull: { red: "红色预警", orange: "橙色预警", yellow: "黄色预警", blue: "蓝色预警" },
  state: { active: "未确认", acknowledged: "已确认", resolved: "已恢复", closed: "已关闭" },
  mark: { suppressed: "维护中", unreliable: "不可靠", chattering: "频繁" },
  transition: {
    raised: "产生", escalated: "升级", deescalated: "降级", acknowledged: "确认",
    resolved: "恢复", reopened: "复发", closed: "关闭",
  },
  connection: {
    connecting: "正在连接…", live: "实时", reconnecting: "连接中断，正在重连…",
    rejected: "令牌无效或已吊销，请重新登录",
  },
  signin: {
    heading: "登录", token: "访问令牌", hint: "令牌由 yujing up 启动时打印，或由管理员签发。",
    submit: "进入", rejected: "令牌被拒绝：{detail}", unreachable: "无法连接服务器：{detail}",
  },
  col: {
    level: "级别", state: "状态", enterprise: "企业", site: "场所", device: "设备",
    point: "测点", message: "内容", started: "发生时间", changed: "更新时间", marks: "标记",
    value: "数值", actions: "操作", division: "行政区划", sector: "行业", risk: "风险",
    active: "在报", online: "在线率", devices: "设备数", name: "名称",
  },
  panel: {
    counters: "在报预警", hazard: "安全隐患预警", health: "设备状态告警",
    list: "实时报警", map: "企业风险分布", table: "企业一览", online: "设备在线率",
    trend: "近24小时报警趋势", more: "另有 {n} 条未显示", none: "暂无报警",
    noMap: "企业坐标待企业档案接入后显示", noOnline: "在线率待企业档案接入后显示",
    bySite: "按场所（企业档案接入前）",
  },
  sound: { on: "声音：开", off: "声音：关" },
  followUp: {
    cause: "超限原因", choose: "请选择", measures: "采取的措施（超限报警追查）",
    causes: {
      real_emission: "真实超限（泄漏、涌出）", sensor_fault: "传感器故障", ventilation: "通风异常",
      calibration: "标校、调试", test: "测试", other: "其他",
    },
  },
  lang: "English",
  action: {
    ack: "确认", close: "关闭", note: "确认备注", disposal: "处置记录",
    submit: "提交", cancel: "取消", search: "查询", reset: "重置", prev: "上一页",
    next: "下一页", save: "保存", backtest: "回测", end: "结束", create: "新建",
    signout: "退出",
  },
  filter: {
    division: "行政区划", sector: "行业", enterprise: "企业", level: "最低级别",
    state: "状态", since: "起", until: "止", any: "全部",
  },
  detail: {
    heading: "预警详情", history: "处置过程", readings: "测点读数（前后各一小时，每分钟）",
    actor: "操作人", at: "时间", note: "说明", thresholds: "阈值", avg: "均值",
    min: "最小", max: "最大", noReadings: "该时段无读数",
  },
  tabs: {
    alerts: "报警查询", maintenance: "维护时段", rules: "规则阈值", deadletters: "异常报文",
    hazards: "隐患排查",
  },
  maint: {
    scope: "范围", starts: "开始", ends: "结束", reason: "原因", by: "登记人",
    ended: "已结束",
  },
  rules: {
    id: "规则", kind: "类型", version: "版本", changed: "修改时间", levels: "阈值",
    proposed: "拟修改", current: "现行", readings: "读数", transitions: "条状态变化",
    period: "回测时段（小时）", saved: "已保存为第 {v} 版",
  },
  dead: { received: "接收时间", topic: "主题", reason: "原因", detail: "说明" },
  hz: {
    report: "上报隐患", reported: "已上报", list: "隐患列表", overdue: "逾期", onlyOverdue: "仅逾期",
    grade: { general: "一般隐患", major: "重大事故隐患" },
    state: { reported: "已上报", confirmed: "已确认", rectifying: "整改中", rectified: "已整改待销号", signed_off: "已销号", dismissed: "已驳回" },
    source: { alarm: "报警", inspection: "检查", self_check: "自查", public_report: "举报" },
    step: {
      reported: "上报", proposed: "系统提出", confirmed: "确认", dismissed: "驳回", rectifying: "制定整改方案",
      evidence_added: "上传整改材料", rectified: "整改完成", sent_back: "退回整改", signed_off: "销号",
      listed: "挂牌督办", linked: "关联报警", overdue: "逾期", escalated: "逐级上报",
    },
    tier: { county: "县级", city: "市级", province: "省级", enterprise: "企业" },
    action: {
      confirm: "确认隐患", plan: "制定整改方案", evidence: "上传整改材料", rectified: "整改完成",
      "sign-off": "销号", "send-back": "退回整改", dismiss: "驳回", list: "挂牌督办",
    },
    col: {
      id: "编号", grade: "等级", category: "类别", description: "隐患描述", state: "状态", source: "来源",
      reportedAt: "上报时间", reportedBy: "上报人", due: "整改期限", unit: "责任单位", person: "责任人",
      measures: "整改措施", reason: "原因", sentBack: "退回次数", listed: "挂牌督办", alerts: "关联报警",
      evidence: "整改材料", steps: "办理过程", rectifiedBy: "整改人", signedOffBy: "销号人", confirmedBy: "确认人",
      escalated: "已上报至",
    },
    field: {
      note: "说明（可选）", rectifiedNote: "整改情况说明", reason: "原因", deadline: "期限",
      regrade: "等级（可改）", file: "照片或 PDF", upload: "上传", site: "场所（可选）",
    },
    you: "当前身份：{name}（{role}{tier}）", role: { operator: "企业值班员", supervisor: "监管人员", viewer: "查看者", admin: "管理员" },
    noActions: "当前身份在此状态下无可办理的步骤", none: "暂无隐患", done: "已办理：{step}", uploaded: "已上传：{name}",
    download: "下载",
  },
};

type Messages = typeof zh;

const en: Messages = {
  title: "Monitoring centre",
  wall: "Wall", console: "Console", docs: "API docs",
  level: { red: "Red", orange: "Orange", yellow: "Yellow", blue: "Blue" },
  levelFull: { red: "Red alert", orange: "Orange alert", yellow: "Yellow alert", blue: "Blue alert" },
  state: { active: "Unacknowledged", acknowledged: "Acknowledged", resolved: "Resolved", closed: "Closed" },
  mark: { suppressed: "Maintenance", unreliable: "Unreliable", chattering: "Chattering" },
  transition: {
    raised: "raised", escalated: "escalated", deescalated: "de-escalated",
    acknowledged: "acknowledged", resolved: "resolved", reopened: "reopened", closed: "closed",
  },
  connection: {
    connecting: "Connecting…", live: "Live", reconnecting: "Connection lost, reconnecting…",
    rejected: "Token rejected or revoked: sign in again",
  },
  signin: {
    heading: "Sign in", token: "Access token", hint: "yujing up prints a token on first start; an admin can issue one.",
    submit: "Open", rejected: "Token rejected: {detail}", unreachable: "Cannot reach the server: {detail}",
  },
  col: {
    level: "Level", state: "State", enterprise: "Enterprise", site: "Site", device: "Device",
    point: "Point", message: "Message", started: "Started", changed: "Changed", marks: "Marks",
    value: "Value", actions: "Actions", division: "Division", sector: "Sector", risk: "Risk",
    active: "Open", online: "Online", devices: "Devices", name: "Name",
  },
  panel: {
    counters: "Open alarms", hazard: "Hazard alarms", health: "Device health",
    list: "Live alarms", map: "Enterprise risk map", table: "Enterprises", online: "Devices online",
    trend: "Alarms, last 24 h", more: "{n} more not shown", none: "No alarms",
    noMap: "The map needs the enterprise register's coordinates", noOnline: "Online rate needs the enterprise register",
    bySite: "By site (until the enterprise register is in)",
  },
  sound: { on: "Sound on", off: "Sound off" },
  followUp: {
    cause: "Cause", choose: "Choose", measures: "Measures taken (follow-up record)",
    causes: {
      real_emission: "Real emission (leak, outburst)", sensor_fault: "Sensor fault",
      ventilation: "Ventilation", calibration: "Calibration", test: "Test", other: "Other",
    },
  },
  lang: "中文",
  action: {
    ack: "Acknowledge", close: "Close", note: "Note", disposal: "Disposal",
    submit: "Submit", cancel: "Cancel", search: "Search", reset: "Reset", prev: "Previous",
    next: "Next", save: "Save", backtest: "Backtest", end: "End", create: "New",
    signout: "Sign out",
  },
  filter: {
    division: "Division", sector: "Sector", enterprise: "Enterprise", level: "Min level",
    state: "State", since: "From", until: "To", any: "Any",
  },
  detail: {
    heading: "Alert", history: "History", readings: "Readings (an hour either side, per minute)",
    actor: "By", at: "At", note: "Note", thresholds: "Thresholds", avg: "avg",
    min: "min", max: "max", noReadings: "No readings in this period",
  },
  tabs: {
    alerts: "Alerts", maintenance: "Maintenance", rules: "Rules", deadletters: "Dead letters",
    hazards: "Hazards",
  },
  maint: {
    scope: "Scope", starts: "Starts", ends: "Ends", reason: "Reason", by: "By", ended: "ended",
  },
  rules: {
    id: "Rule", kind: "Kind", version: "Version", changed: "Changed", levels: "Levels",
    proposed: "Proposed", current: "Current", readings: "readings", transitions: "transitions",
    period: "Backtest period (hours)", saved: "Saved as version {v}",
  },
  dead: { received: "Received", topic: "Topic", reason: "Reason", detail: "Detail" },
  hz: {
    report: "Report a hazard", reported: "Reported", list: "Hazards", overdue: "Overdue", onlyOverdue: "Overdue only",
    grade: { general: "General", major: "Major" },
    state: { reported: "Reported", confirmed: "Confirmed", rectifying: "Rectifying", rectified: "Rectified, awaiting sign-off", signed_off: "Signed off", dismissed: "Dismissed" },
    source: { alarm: "Alarm", inspection: "Inspection", self_check: "Self-check", public_report: "Public report" },
    step: {
      reported: "reported", proposed: "proposed by yujing", confirmed: "confirmed", dismissed: "dismissed",
      rectifying: "rectification planned", evidence_added: "evidence added", rectified: "rectified",
      sent_back: "sent back", signed_off: "signed off", listed: "listed for supervision", linked: "alerts linked",
      overdue: "overdue", escalated: "escalated",
    },
    tier: { county: "county", city: "city", province: "province", enterprise: "enterprise" },
    action: {
      confirm: "Confirm", plan: "Plan rectification", evidence: "Upload evidence", rectified: "Mark rectified",
      "sign-off": "Sign off", "send-back": "Send back", dismiss: "Dismiss", list: "List for supervision",
    },
    col: {
      id: "Id", grade: "Grade", category: "Category", description: "Description", state: "State", source: "Source",
      reportedAt: "Reported", reportedBy: "Reported by", due: "Deadline", unit: "Responsible unit", person: "Responsible person",
      measures: "Measures", reason: "Reason", sentBack: "Sent back", listed: "Listed", alerts: "Linked alerts",
      evidence: "Evidence", steps: "Steps", rectifiedBy: "Rectified by", signedOffBy: "Signed off by", confirmedBy: "Confirmed by",
      escalated: "Escalated to",
    },
    field: {
      note: "Note (optional)", rectifiedNote: "What was done", reason: "Reason", deadline: "Deadline",
      regrade: "Grade (may change)", file: "Photo or PDF", upload: "Upload", site: "Site (optional)",
    },
    you: "Signed in as {name} ({role}{tier})", role: { operator: "operator", supervisor: "supervisor", viewer: "viewer", admin: "admin" },
    noActions: "Nothing you may do in this state", none: "No hazards", done: "Done: {step}", uploaded: "Uploaded: {name}",
    download: "Download",
  },
};

export const messages = { "zh-CN": zh, en };
export type Locale = keyof typeof messages;

export function initialLocale(): Locale {
  const saved = globalThis.localStorage?.getItem("yj-lang");
  return saved === "en" ? "en" : "zh-CN";
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: "zh-CN",
  messages,
});
