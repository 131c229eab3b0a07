// Times for people: 24-hour, with the date, in the centre's zone (Asia/Shanghai by default).

export const DEFAULT_ZONE = "Asia/Shanghai";

const formats = new Map<string, Intl.DateTimeFormat>();

function format(zone: string): Intl.DateTimeFormat {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    });
    formats.set(zone, f);
  }
  return f;
}

// The wall formats the same few hundred times on every redraw; Intl's formatToParts is the
// slow part, so each (zone, time) is formatted once (the cache is dropped when it grows).
const formatted = new Map<string, string>();

/** `2026-12-01 23:05:07` in `zone`; empty for a missing time. The same in both languages,
 * so a time read aloud over the radio is never ambiguous. */
export function formatTime(iso: string | number | null | undefined, zone = DEFAULT_ZONE): string {
  if (iso === null || iso === undefined || iso === "") return "";
  const key = `${zone} ${iso}`;
  const seen = formatted.get(key);
  if (seen !== undefined) return seen;
  const out = formatUncached(iso, zone);
  if (formatted.size >= 10_000) formatted.clear();
  formatted.set(key, out);
  return out;
}

function formatUncached(iso: string | number, zone: string): string {
  const t = typeof iso === "number" ? iso : Date.parse(iso);
  if (Number.isNaN(t)) return "";
  const p: Record<string, string> = {};
  for (const part of format(zone).formatToParts(t)) p[part.type] = part.value;
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** The hour label (`14:00`) of an epoch-millisecond time in `zone`. */
export function formatHour(t: number, zone = DEFAULT_ZONE): string {
  return formatTime(t, zone).slice(11, 16);
}
