// Alerts as the API sends them, for the tests.
import type { Alert, Change } from "../src/lib/model";

let seq = 0;

export function alert(over: Partial<Alert> = {}): Alert {
  seq += 1;
  return {
    id: `a-${seq}`, key: `ent1/dev-${seq}/ch4/r`, seq, enterprise: "ent1", site: "face-1",
    device: `dev-${seq}`, point: "ch4", rule_id: "r", kind: "threshold", level: "orange",
    peak_level: "orange", state: "active", value: 1.1, threshold: 1.0, unit: "%CH4",
    occurrences: 1, started_at: "2026-12-01T10:00:00+00:00", changed_at: "2026-12-01T10:00:00+00:00",
    resolved_at: null, acknowledged_at: null, acknowledged_by: null, closed_at: null, disposal: null,
    message: "采煤工作面甲烷 1.1 %CH4 ≥ 1（橙色）", health: false, suppressed: false,
    chattering: false, unreliable: false, ...over,
  };
}

export function change(a: Alert, transition = "raised"): Change {
  return { seq: a.seq, transition, at: a.changed_at, actor: "engine", note: null, notify: true, alert: a };
}
