// The alert table the screen keeps: wire types, ordering, counters and marks. Pure: no DOM,
// no fetch, so Vitest checks it directly.

export const LEVELS = ["red", "orange", "yellow", "blue"] as const;
export type Level = (typeof LEVELS)[number];
export const STATES = ["active", "acknowledged", "resolved", "closed"] as const;
export type State = (typeof STATES)[number];

const RANK: Record<Level, number> = { red: 4, orange: 3, yellow: 2, blue: 1 };

export function rank(level: string | null | undefined): number {
  return level && level in RANK ? RANK[level as Level] : 0;
}

export interface Alert {
  id: string;
  key: string;
  seq: number;
  enterprise: string;
  site: string | null;
  device: string | null;
  point: string | null;
  rule_id: string;
  kind: string;
  level: Level;
  peak_level: Level;
  state: State;
  value: number | null;
  threshold: number | null;
  unit: string | null;
  occurrences: number;
  started_at: string;
  changed_at: string;
  resolved_at: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  closed_at: string | null;
  disposal: string | null;
  message: string;
  health: boolean;
  suppressed: boolean;
  chattering: boolean;
  unreliable: boolean;
  division?: string | null;
  sector?: string | null;
}

export interface Change {
  seq: number;
  transition: string;
  at: string;
  actor: string;
  note: string | null;
  notify: boolean;
  alert: Alert;
}

export type Mark = "suppressed" | "unreliable" | "chattering";

export function marks(a: Alert): Mark[] {
  const out: Mark[] = [];
  if (a.suppressed) out.push("suppressed");
  if (a.unreliable) out.push("unreliable");
  if (a.chattering) out.push("chattering");
  return out;
}

/** Open = still on the board: not closed. */
export function isOpen(a: Alert): boolean {
  return a.state !== "closed";
}

/** A live alarm: the condition holds, and neither maintenance nor a faulty sensor explains it. */
export function isLive(a: Alert): boolean {
  return (a.state === "active" || a.state === "acknowledged") && !a.suppressed && !a.unreliable;
}

/** The level a row shows: a resolved alert shows the worst it reached. */
export function shownLevel(a: Alert): Level {
  return a.state === "resolved" || a.state === "closed" ? a.peak_level : a.level;
}

const STATE_ORDER: Record<State, number> = { active: 0, acknowledged: 1, resolved: 2, closed: 3 };

/** The board's sort key, smallest first: state, then live before marked, then level
 * (highest first), then the newest change, then seq. Numbers only, so sorting 2,000 alerts
 * every frame stays well under a millisecond. */
function sortKey(a: Alert): [number, number, number, number, number] {
  const marked = Number(!isLive(a) && a.state !== "resolved");
  return [STATE_ORDER[a.state], marked, -rank(shownLevel(a)), -Date.parse(a.changed_at), -a.seq];
}

function compareKeys(x: number[], y: number[]): number {
  for (let i = 0; i < x.length; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** Board order: active before acknowledged before resolved, live before marked, then by
 * level, then newest change first. */
export function compareAlerts(a: Alert, b: Alert): number {
  return compareKeys(sortKey(a), sortKey(b));
}

/** `alerts` in board order; each alert's key is computed once. */
export function boardOrder(alerts: Iterable<Alert>): Alert[] {
  const keyed: [number[], Alert][] = [];
  for (const a of alerts) keyed.push([sortKey(a), a]);
  keyed.sort((x, y) => compareKeys(x[0], y[0]));
  return keyed.map(([, a]) => a);
}

export type Counts = Record<Level, number>;

export function emptyCounts(): Counts {
  return { red: 0, orange: 0, yellow: 0, blue: 0 };
}

/** Counters by level: live alarms only, so a suppressed red is not counted as a red. */
export function countLive(alerts: Iterable<Alert>, health = false): Counts {
  const c = emptyCounts();
  for (const a of alerts) if (isLive(a) && a.health === health) c[a.level] += 1;
  return c;
}

/** A new red draws the eye until someone acknowledges it. */
export function needsAttention(a: Alert): boolean {
  return a.state === "active" && a.level === "red" && !a.suppressed && !a.unreliable;
}

/**
 * The alerts the screen holds, by id. `apply` takes a change from the stream and ignores one
 * older than what is held (a replay after reconnecting may repeat a change).
 */
export class AlertTable {
  readonly byId = new Map<string, Alert>();

  load(items: Alert[]): void {
    this.byId.clear();
    for (const a of items) this.byId.set(a.id, a);
  }

  /** Returns true when the change was new to the table. */
  apply(change: Change): boolean {
    const held = this.byId.get(change.alert.id);
    if (held && held.seq >= change.alert.seq) return false;
    if (change.alert.state === "closed") this.byId.delete(change.alert.id);
    else this.byId.set(change.alert.id, change.alert);
    return true;
  }

  sorted(filter: (a: Alert) => boolean = () => true): Alert[] {
    return boardOrder([...this.byId.values()].filter(filter));
  }
}

/** Alerts raised per hour over the 24 h ending at `now` (24 buckets, oldest first). */
export function hourlyTrend(startedAt: Iterable<string>, now: number): number[] {
  const hour = 3_600_000;
  const end = Math.floor(now / hour) * hour + hour;
  const out = new Array<number>(24).fill(0);
  for (const iso of startedAt) {
    const i = 23 - Math.floor((end - 1 - Date.parse(iso)) / hour);
    if (i >= 0 && i < 24) out[i] = (out[i] ?? 0) + 1;
  }
  return out;
}
