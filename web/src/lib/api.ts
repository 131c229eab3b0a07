// Talking to the yujing API with a bearer token; failures say whether the server refused
// (ApiError, with the RFC 9457 problem's title and detail) or could not be reached.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(`${status} ${title}: ${detail}`);
  }
}

export class NetworkError extends Error {}

export type Query = Record<string, string | number | string[] | null | undefined>;

export function queryString(q: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q ?? {})) {
    if (v === null || v === undefined || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

export async function problemOf(r: Response): Promise<ApiError> {
  let title = r.statusText;
  let detail = "";
  try {
    const body = (await r.json()) as { title?: string; detail?: unknown };
    title = body.title ?? title;
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? "");
  } catch {
    // not problem+json (a proxy's page): keep the status line
  }
  return new ApiError(r.status, title, detail);
}

export class Api {
  constructor(
    public token: string,
    private readonly base = "",
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  async raw(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(this.base + path, {
        ...init,
        headers: { ...this.headers(), ...((init.headers as Record<string, string>) ?? {}) },
      });
    } catch (e) {
      throw new NetworkError(String(e));
    }
  }

  async get<T>(path: string, q?: Query): Promise<T> {
    const r = await this.raw(path + queryString(q));
    if (!r.ok) throw await problemOf(r);
    return (await r.json()) as T;
  }

  /** GET that answers null for 404 (an endpoint not on this server yet). */
  async optional<T>(path: string, q?: Query): Promise<T | null> {
    const r = await this.raw(path + queryString(q));
    if (r.status === 404 || r.status === 405) return null;
    if (!r.ok) throw await problemOf(r);
    return (await r.json()) as T;
  }

  /** A file as multipart `file` (the hazards' evidence upload). */
  async upload<T>(path: string, file: Blob, filename: string): Promise<T> {
    const form = new FormData();
    form.append("file", file, filename);
    const r = await this.raw(path, { method: "POST", body: form });
    if (!r.ok) throw await problemOf(r);
    return (await r.json()) as T;
  }

  async send<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.raw(path, {
      method,
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!r.ok) throw await problemOf(r);
    return (r.status === 204 ? null : await r.json()) as T;
  }
}
