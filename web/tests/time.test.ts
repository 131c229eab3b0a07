import { describe, expect, it } from "vitest";
import { formatHour, formatTime } from "../src/lib/time";

describe("times for people", () => {
  it("are 24-hour with the date, in Asia/Shanghai by default", () => {
    expect(formatTime("2026-12-01T16:05:07Z")).toBe("2026-12-02 00:05:07");
    expect(formatTime("2026-12-01T05:00:00+00:00")).toBe("2026-12-01 13:00:00");
    expect(formatTime("2026-12-01T05:00:00Z", "UTC")).toBe("2026-12-01 05:00:00");
    expect(formatHour(Date.parse("2026-12-01T14:00:00Z"))).toBe("22:00");
  });

  it("leave a missing or bad time empty", () => {
    expect(formatTime(null)).toBe("");
    expect(formatTime("not a time")).toBe("");
  });
});
