import { describe, expect, it } from "vitest";
import { bySite, onlineRate, type OverviewItem } from "../src/lib/overview";
import { alert } from "./fixtures";

describe("the enterprise table before the register lands", () => {
  it("has one row per site, coloured by its worst live hazard alarm, riskiest first", () => {
    const devices = [
      { enterprise: "ent1", device: "d1", site: "face-1" },
      { enterprise: "ent1", device: "d2", site: "face-1" },
      { enterprise: "ent2", device: "d3", site: "plant" },
    ];
    const rows = bySite(devices, [
      alert({ enterprise: "ent2", site: "plant", level: "red" }),
      alert({ enterprise: "ent2", site: "plant", level: "yellow" }),
      alert({ enterprise: "ent1", site: "face-1", level: "red", suppressed: true }),
      alert({ enterprise: "ent1", site: "face-1", level: "orange", health: true }),
    ]);
    expect(rows.map((r) => [r.enterprise, r.name, r.colour, r.devices])).toEqual([
      ["ent2", "plant", "red", 1],
      ["ent1", "face-1", null, 2],
    ]);
    expect(rows[0]!.active).toEqual({ red: 1, orange: 0, yellow: 1, blue: 0 });
  });

  it("gives no online rate without the register's figures", () => {
    const item = (online: number | null, devices: number): OverviewItem => ({
      enterprise: "e", name: "e", colour: null, active: { red: 0, orange: 0, yellow: 0, blue: 0 },
      devices, online,
    });
    expect(onlineRate([item(null, 3)])).toBeNull();
    expect(onlineRate([item(3, 4), item(1, 4), item(null, 9)])).toBe(0.5);
  });
});
