// Hidden hazards (隐患) for the console: wire types, and which steps the token may take on a
// record in its state. Pure: Vitest checks it.

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
