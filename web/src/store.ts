// The screen's shared state: the token, the connection, and the live alert table, redrawn at
// most once per animation frame however fast transitions arrive. Each panel reads only its
// own refs, so a transition re-renders the list it lands in, and the counters when a count
// moved, not the whole wall.

import { nextTick, reactive, shallowRef } from "vue";
import { Api, ApiError } from "./lib/api";
import { AlertFeed, type Connection } from "./lib/feed";
import { type Alert, AlertTable, type Change, type Counts, countLive, emptyCounts } from "./lib/model";

export const session = reactive({
  token: null as string | null,
  connection: "connecting" as Connection,
  detail: "",
  muted: localStorage.getItem("yj-muted") === "1",
});

export const api = new Api("");
export const table = new AlertTable();
/** Open hazard alarms in board order, and device-health alarms apart (views of the table). */
export const hazardRows = shallowRef<Alert[]>([]);
export const healthRows = shallowRef<Alert[]>([]);
export const counts = shallowRef(emptyCounts());
export const healthCounts = shallowRef(emptyCounts());
/** Alert id → started_at of alerts raised recently, for the 24-hour trend. */
export const raisedAt = shallowRef(new Map<string, string>());

/** Browser-side figures the bench reads: delay from reading a transition off the stream to
 * the frame that shows it, overall and by kind (`hazard escalated`, `health raised`, …), so
 * the bench tells the transitions it drove from the others. */
export const perf = { delays: [] as number[], drawn: 0, byKind: {} as Record<string, number[]> };
(globalThis as unknown as { __yjPerf: typeof perf }).__yjPerf = perf;

let feed: AlertFeed | null = null;
let pending: [Change, number][] = [];
let scheduled = false;
const listeners = new Set<(c: Change) => void>();

export function onTransition(fn: (c: Change) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function sameCounts(a: Counts, b: Counts): boolean {
  return a.red === b.red && a.orange === b.orange && a.yellow === b.yellow && a.blue === b.blue;
}

function redraw(hazards = true, health = true): void {
  // New arrays (the table's lists change in place) so that the lists' watchers see a change.
  if (hazards) hazardRows.value = table.hazards.slice();
  if (health) healthRows.value = table.health.slice();
  const c = countLive(table.hazards, false);
  if (!sameCounts(c, counts.value)) counts.value = c;
  const h = countLive(table.health, true);
  if (!sameCounts(h, healthCounts.value)) healthCounts.value = h;
}

function afterPaint(fn: () => void): void {
  // rAF runs before the frame is painted; a message posted from it runs after.
  requestAnimationFrame(() => {
    const ch = new MessageChannel();
    ch.port1.onmessage = fn;
    ch.port2.postMessage(null);
  });
}

function flush(): void {
  scheduled = false;
  const batch = pending;
  pending = [];
  let raised = false;
  let hazards = false;
  let health = false;
  for (const [change] of batch) {
    if (table.apply(change)) {
      if (change.alert.health) health = true;
      else hazards = true;
      if (change.transition === "raised" || change.transition === "reopened") raised = true;
      for (const fn of listeners) fn(change);
    }
    if (change.transition === "raised" || change.transition === "reopened") {
      raisedAt.value.set(change.alert.id, change.at);
    }
  }
  if (raised) raisedAt.value = new Map(raisedAt.value);
  redraw(hazards, health);
  void nextTick(() =>
    afterPaint(() => {
      const now = performance.now();
      for (const [change, at] of batch) {
        perf.delays.push(now - at);
        const kind = `${change.alert.health ? "health" : "hazard"} ${change.transition}`;
        (perf.byKind[kind] ??= []).push(now - at);
      }
      perf.drawn += batch.length;
    }),
  );
}

export function start(token: string): void {
  stop();
  session.token = token;
  api.token = token;
  session.connection = "connecting";
  feed = new AlertFeed(api, {
    snapshot(items) {
      table.load(items);
      redraw();
    },
    change(change, at) {
      pending.push([change, at]);
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(flush);
      }
    },
    connection(state, detail) {
      session.connection = state;
      session.detail = detail ?? "";
    },
  });
  void feed.run();
}

export function stop(): void {
  feed?.stop();
  feed = null;
}

/** Checks a token against the API before using it: "rejected" and "unreachable" differ. */
export async function signIn(token: string): Promise<"ok" | "rejected" | "unreachable"> {
  const probe = new Api(token);
  try {
    await probe.get("/api/v1/alerts", { limit: 1 });
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      session.detail = e.detail || e.title;
      return "rejected";
    }
    session.detail = String(e instanceof Error ? e.message : e);
    return "unreachable";
  }
  localStorage.setItem("yj-token", token);
  start(token);
  return "ok";
}

export function signOut(): void {
  stop();
  localStorage.removeItem("yj-token");
  session.token = null;
}

/** The token from `#token=…` or the last one used. Read, and the fragment removed from the
 * address bar, when this module loads: before the router takes its first copy of the URL. */
const tokenInFragment = ((): string | null => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) history.replaceState(history.state, "", location.pathname + location.search);
  return fromHash;
})();

export function tokenFromPage(): string | null {
  return tokenInFragment ?? localStorage.getItem("yj-token");
}

export function setMuted(muted: boolean): void {
  session.muted = muted;
  localStorage.setItem("yj-muted", muted ? "1" : "0");
}
