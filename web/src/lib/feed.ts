// The live alert table: a snapshot from `GET /alerts`, then every transition from the SSE
// stream. EventSource cannot send a bearer token, so the stream is read with fetch; a dropped
// stream reconnects with `Last-Event-ID` and the server replays what was missed.

import { createParser } from "eventsource-parser";
import { Api, ApiError, NetworkError, problemOf } from "./api";
import type { Alert, Change } from "./model";

export type Connection = "connecting" | "live" | "reconnecting" | "rejected";

export interface FeedEvents {
  /** The whole table was (re)loaded. */
  snapshot(items: Alert[]): void;
  /** One transition, with the time it was read off the stream (performance.now()). */
  change(change: Change, receivedAt: number): void;
  connection(state: Connection, detail?: string): void;
}

const OPEN_STATES = ["active", "acknowledged", "resolved"];

export async function loadOpen(api: Api, query: Record<string, string> = {}): Promise<Alert[]> {
  const items: Alert[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: Alert[]; next_cursor: string | null } = await api.get(
      "/api/v1/alerts",
      { ...query, state: OPEN_STATES, limit: 1000, cursor },
    );
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export class AlertFeed {
  lastEventId: string | null = null;
  private stopped = false;
  private controller: AbortController | null = null;

  constructor(
    private readonly api: Api,
    private readonly on: FeedEvents,
    private readonly retryMs = 1000,
  ) {}

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
  }

  /** Runs until stopped or the token is refused. */
  async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      try {
        await this.connectOnce();
        attempt = 0; // the server ended the stream (resync or restart): reconnect at once
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          this.on.connection("rejected", e.detail || e.title);
          return;
        }
        attempt += 1;
      }
      if (this.stopped) return;
      this.on.connection("reconnecting");
      await new Promise((r) => setTimeout(r, Math.min(this.retryMs * attempt, 5000)));
    }
  }

  private async connectOnce(): Promise<void> {
    this.controller = new AbortController();
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    const resuming = this.lastEventId !== null;
    if (resuming) headers["Last-Event-ID"] = this.lastEventId as string;
    const r = await this.api.raw("/api/v1/alerts/stream", {
      headers,
      signal: this.controller.signal,
    });
    if (!r.ok || !r.body) throw await problemOf(r);
    // Until the snapshot is in, transitions wait here; the table drops any the snapshot
    // already holds (by the alert's seq).
    let held: [Change, number][] | null = resuming ? null : [];
    let resync = false;
    const parser = createParser({
      onEvent: (ev) => {
        if (ev.event === "resync") {
          resync = true;
          return;
        }
        if (!ev.event || !ev.data) return;
        const change = JSON.parse(ev.data) as Change;
        if (ev.id) this.lastEventId = ev.id;
        if (held) held.push([change, performance.now()]);
        else this.on.change(change, performance.now());
      },
    });
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let first = true;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
        if (first) {
          // The server's first frame comes once it has subscribed us: a snapshot taken now
          // misses nothing.
          first = false;
          if (held) {
            this.on.snapshot(await loadOpen(this.api));
            for (const [c, t] of held) this.on.change(c, t);
            held = null;
          }
          this.on.connection("live");
        }
        if (resync) {
          this.lastEventId = null; // fell behind: start over with a fresh snapshot
          return;
        }
      }
    } catch (e) {
      if (e instanceof ApiError || e instanceof NetworkError) throw e;
      throw new NetworkError(String(e));
    } finally {
      reader.cancel().catch(() => undefined);
    }
    throw new NetworkError("stream ended");
  }
}

/** Alerts started since `since`, any state (for the 24-hour trend); at most `pages` pages. */
export async function loadRecent(api: Api, since: string, pages = 10): Promise<Alert[]> {
  const items: Alert[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < pages; i++) {
    const page: { items: Alert[]; next_cursor: string | null } = await api.get(
      "/api/v1/alerts",
      { since, limit: 1000, cursor },
    );
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return items;
}
