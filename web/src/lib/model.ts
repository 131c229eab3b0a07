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
 * (highest first), then the newest change, then seq. Numbers only, computed once per
 * version of an alert. */
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

/** The first index in `list` (ordered by `keys`) whose key is not below `key`. */
function lowerBound(list: Alert[], keys: Map<string, number[]>, key: number[]): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const at = list[mid];
    if (at && compareKeys(keys.get(at.id) ?? [], key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The alerts the screen holds, by id, and in board order: hazard alarms and device-health
 * alarms in two lists, kept ordered as changes arrive (a change moves one alert: a binary
 * search and a splice, not a sort of 2,000 per frame). `apply` takes a change from the
 * stream and ignores one older than what is held (a replay after reconnecting may repeat
 * a change); a closed alert leaves the table.
 */
export class AlertTable {
  readonly byId = new Map<string, Alert>();
  /** Board order (`compareAlerts`) of the open hazard alarms, and of the device-health ones. */
  readonly hazards: Alert[] = [];
  readonly health: Alert[] = [];
  private readonly keys = new Map<string, number[]>();

  load(items: Alert[]): void {
    this.byId.clear();
    this.keys.clear();
    for (const a of items) if (a.state !== "closed") this.byId.set(a.id, a);
    const ordered = boardOrder(this.byId.values());
    this.hazards.length = 0;
    this.health.length = 0;
    for (const a of ordered) {
      this.keys.set(a.id, sortKey(a));
      this.listOf(a).push(a);
    }
  }

  /** Returns true when the change was new to the table. */
  apply(change: Change): boolean {
    const next = change.alert;
    const held = this.byId.get(next.id);
    if (held && held.seq >= next.seq) return false;
    if (held) this.remove(held);
    if (next.state === "closed") {
      this.byId.delete(next.id);
    } else {
      this.byId.set(next.id, next);
      this.insert(next);
    }
    return true;
  }

  private listOf(a: Alert): Alert[] {
    return a.health ? this.health : this.hazards;
  }

  private insert(a: Alert): void {
    const key = sortKey(a);
    this.keys.set(a.id, key);
    const list = this.listOf(a);
    list.splice(lowerBound(list, this.keys, key), 0, a);
  }

  private remove(a: Alert): void {
    const list = this.listOf(a);
    const key = this.keys.get(a.id);
    let i = key ? lowerBound(list, this.keys, key) : 0;
    while (i < list.length && list[i]?.id !== a.id) i++; // equal keys sit together
    if (i >= list.length) i = list.findIndex((x) => x.id === a.id);
    if (i >= 0) list.splice(i, 1);
    this.keys.delete(a.id);
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
