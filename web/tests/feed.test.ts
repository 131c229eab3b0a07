// The feed against a real HTTP server on loopback that speaks the API's SSE.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Api } from "../src/lib/api";
import { AlertFeed, type Connection } from "../src/lib/feed";
import type { Alert, Change } from "../src/lib/model";
import { alert, change } from "./fixtures";

let server: Server | null = null;

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((ok) => server!.listen(0, "127.0.0.1", ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((ok) => server?.close(ok));
});

function frame(c: Change): string {
  return `id: ${c.seq}\nevent: ${c.transition}\ndata: ${JSON.stringify(c)}\n\n`;
}

describe("the live feed", () => {
  it("loads the table, resumes a dropped stream with Last-Event-ID, and misses nothing", async () => {
    const first = alert({ seq: 10 });
    const second = alert({ seq: 11, level: "red" });
    const third = alert({ seq: 12, level: "red" });
    const asked: (string | undefined)[] = [];
    const base = await serve((req, res) => {
      if (req.url?.startsWith("/api/v1/alerts/stream")) {
        asked.push(req.headers["last-event-id"] as string | undefined);
        res.writeHead(200, { "Content-Type": "text/event-stream" });
        res.write("retry: 2000\n\n");
        if (asked.length === 1) {
          res.write(frame(change(second)));
          setTimeout(() => res.destroy(), 50); // the stream drops
        } else {
          res.write(frame(change(third)));
        }
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ items: [first], next_cursor: null }));
    });
    const states: Connection[] = [];
    const seen: string[] = [];
    let snapshot: Alert[] = [];
    const feed = new AlertFeed(new Api("t", base), {
      snapshot: (items) => (snapshot = items),
      change: (c) => seen.push(c.alert.id),
      connection: (s) => states.push(s),
    }, 10);
    const running = feed.run();
    await expect.poll(() => seen.length, { timeout: 5000 }).toBe(2);
    feed.stop();
    await running;
    expect(snapshot.map((a) => a.id)).toEqual([first.id]);
    expect(seen).toEqual([second.id, third.id]);
    expect(asked).toEqual([undefined, "11"]);
    expect(states).toEqual(["live", "reconnecting", "live"]);
  });

  it("tells a refused token apart and stops", async () => {
    const base = await serve((_req, res) => {
      res.writeHead(401, { "Content-Type": "application/problem+json" });
      res.end(JSON.stringify({ title: "Unauthorized", detail: "unknown or revoked token" }));
    });
    const states: [Connection, string | undefined][] = [];
    const feed = new AlertFeed(new Api("bad", base), {
      snapshot: () => undefined, change: () => undefined,
      connection: (s, d) => states.push([s, d]),
    });
    await feed.run();
    expect(states).toEqual([["rejected", "unknown or revoked token"]]);
  });
});
