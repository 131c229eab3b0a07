import { describe, expect, it } from "vitest";
import {
  type Alert, AlertTable, boardOrder, compareAlerts, countLive, hourlyTrend, isLive, marks, needsAttention, shownLevel,
} from "../src/lib/model";
import { alert, change } from "./fixtures";

describe("counters", () => {
  it("count live alarms by level, hazards apart from device health", () => {
    const items = [
      alert({ level: "red" }), alert({ level: "red", state: "acknowledged" }),
      alert({ level: "orange" }), alert({ level: "red", health: true }),
    ];
    expect(countLive(items)).toEqual({ red: 2, orange: 1, yellow: 0, blue: 0 });
    expect(countLive(items, true)).toEqual({ red: 1, orange: 0, yellow: 0, blue: 0 });
  });

  it("do not count a suppressed or unreliable red, nor a resolved one", () => {
    const items = [
      alert({ level: "red", suppressed: true }), alert({ level: "red", unreliable: true }),
      alert({ level: "red", state: "resolved" }),
    ];
    expect(countLive(items).red).toBe(0);
    expect(marks(items[0]!)).toEqual(["suppressed"]);
    expect(isLive(items[1]!)).toBe(false);
  });
});

describe("board order", () => {
  it("puts active first, then by level, then newest; resolved rows show their peak", () => {
    const resolved = alert({ level: "blue", peak_level: "red", state: "resolved" });
    const ackRed = alert({ level: "red", state: "acknowledged" });
    const oldOrange = alert({ level: "orange", changed_at: "2026-12-01T09:00:00Z" });
    const newOrange = alert({ level: "orange", changed_at: "2026-12-01T11:00:00Z" });
    const red = alert({ level: "red" });
    const quietRed = alert({ level: "red", suppressed: true });
    const sorted = [resolved, ackRed, oldOrange, newOrange, quietRed, red].sort(compareAlerts);
    expect(sorted.map((a) => a.id)).toEqual(
      [red, newOrange, oldOrange, quietRed, ackRed, resolved].map((a) => a.id),
    );
    expect(shownLevel(resolved)).toBe("red");
  });

  it("flashes a red until it is acknowledged, not a suppressed one", () => {
    expect(needsAttention(alert({ level: "red" }))).toBe(true);
    expect(needsAttention(alert({ level: "red", state: "acknowledged" }))).toBe(false);
    expect(needsAttention(alert({ level: "red", suppressed: true }))).toBe(false);
  });
});

describe("the table", () => {
  it("applies each change once, ignores an older replay, and drops closed alerts", () => {
    const t = new AlertTable();
    const a = alert();
    t.load([a]);
    const acked = { ...a, seq: a.seq + 100, state: "acknowledged" as const };
    expect(t.apply(change(acked, "acknowledged"))).toBe(true);
    expect(t.apply(change(a, "raised"))).toBe(false); // a replay after reconnecting
    expect(t.byId.get(a.id)?.state).toBe("acknowledged");
    expect(t.apply(change({ ...acked, seq: acked.seq + 1, state: "closed" }, "closed"))).toBe(true);
    expect(t.byId.size).toBe(0);
    expect(t.hazards).toEqual([]);
  });

  it("keeps both lists in board order as changes arrive, as a full sort would", () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    const start = Array.from({ length: 300 }, (_, i) =>
      alert({ health: i % 5 === 0, level: pick(["red", "orange", "yellow", "blue"] as const),
        changed_at: new Date(Date.UTC(2026, 11, 1, 10, i % 60)).toISOString() }));
    const t = new AlertTable();
    t.load(start);
    let seq = 10_000;
    for (let n = 0; n < 2000; n++) {
      const held = pick([...t.byId.values()]);
      if (!held) break;
      const level = pick(["red", "orange", "yellow", "blue"] as const);
      const state = pick(["active", "active", "acknowledged", "resolved", "closed"] as const);
      const next: Alert = { ...held, seq: ++seq, level, state, suppressed: random() < 0.1,
        // equal times happen (one reading moves several rules): ties are broken by seq
        changed_at: new Date(Date.UTC(2026, 11, 1, 11, n % 7)).toISOString() };
      t.apply(change(next, "escalated"));
      if (state === "closed") t.apply(change(alert({ health: random() < 0.2, level }), "raised"));
    }
    const all = [...t.byId.values()];
    expect(t.hazards.map((a) => a.id)).toEqual(boardOrder(all.filter((a) => !a.health)).map((a) => a.id));
    expect(t.health.map((a) => a.id)).toEqual(boardOrder(all.filter((a) => a.health)).map((a) => a.id));
    expect(t.hazards.length + t.health.length).toBe(t.byId.size);
  });
});

describe("24-hour trend", () => {
  it("buckets raises by hour, the current hour last, and ignores older ones", () => {
    const now = Date.parse("2026-12-01T10:30:00Z");
    const trend = hourlyTrend(
      ["2026-12-01T10:05:00Z", "2026-12-01T10:29:00Z", "2026-12-01T09:59:59Z",
       "2026-11-30T11:00:00Z", "2026-11-30T10:59:00Z"], now,
    );
    expect(trend).toHaveLength(24);
    expect(trend[23]).toBe(2);
    expect(trend[22]).toBe(1);
    expect(trend[0]).toBe(1);
    expect(trend.reduce((x, y) => x + y, 0)).toBe(4);
  });
});
