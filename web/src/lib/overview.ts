// The enterprise picture (一张图、一张表): `GET /overview` when the server has the enterprise
// register, else one row per site built from the device registry and the open alerts.

import { type Alert, emptyCounts, isLive, LEVELS, type Level, rank } from "./model";

export interface OverviewItem {
  enterprise: string;
  name: string;
  division?: string | null;
  division_name?: string | null;
  sectors?: string[];
  colour: Level | null;
  active: Record<Level, number>;
  health_active?: number;
  devices: number;
  online?: number | null;
  online_rate?: number | null;
  lon?: number | null;
  lat?: number | null;
  site?: string;
}

export interface Device {
  enterprise: string;
  device: string;
  site: string;
}

// Devices per (enterprise, site), counted once per device list: the wall redraws the table
// as alarms move, while the device list changes every 15 s at most.
const perSite = new WeakMap<Device[], Map<string, [string, string, number]>>();

function devicesPerSite(devices: Device[]): Map<string, [string, string, number]> {
  let m = perSite.get(devices);
  if (!m) {
    m = new Map();
    for (const d of devices) {
      const k = `${d.enterprise}/${d.site}`;
      const got = m.get(k);
      if (got) got[2] += 1;
      else m.set(k, [d.enterprise, d.site, 1]);
    }
    perSite.set(devices, m);
  }
  return m;
}

/** One row per (enterprise, site): its devices and its live hazard alarms. */
export function bySite(devices: Device[], alerts: Iterable<Alert>): OverviewItem[] {
  const rows = new Map<string, OverviewItem>();
  const row = (enterprise: string, site: string, k = `${enterprise}/${site}`): OverviewItem => {
    let r = rows.get(k);
    if (!r) {
      r = { enterprise, name: site, site, colour: null, active: emptyCounts(), devices: 0 };
      rows.set(k, r);
    }
    return r;
  };
  for (const [k, [enterprise, site, n]] of devicesPerSite(devices)) row(enterprise, site, k).devices = n;
  for (const a of alerts) {
    if (!isLive(a) || a.health) continue;
    const r = row(a.enterprise, a.site ?? "-");
    r.active[a.level] += 1;
    if (rank(a.level) > rank(r.colour)) r.colour = a.level;
  }
  return sortByRisk([...rows.values()]);
}

export function sortByRisk(items: OverviewItem[]): OverviewItem[] {
  const weight = (i: OverviewItem): number[] =>
    [rank(i.colour), ...LEVELS.map((l) => i.active[l] ?? 0)];
  return [...items].sort((a, b) => {
    const wa = weight(a);
    const wb = weight(b);
    for (let i = 0; i < wa.length; i++) {
      const d = (wb[i] ?? 0) - (wa[i] ?? 0);
      if (d) return d;
    }
    return a.enterprise.localeCompare(b.enterprise) || a.name.localeCompare(b.name);
  });
}

/** Devices online over devices known, from the register's figures; null when none says. */
export function onlineRate(items: OverviewItem[]): number | null {
  let online = 0;
  let devices = 0;
  for (const i of items) {
    if (i.online === null || i.online === undefined) continue;
    online += i.online;
    devices += i.devices;
  }
  return devices ? online / devices : null;
}
