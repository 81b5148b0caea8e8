// A small HTTP client for the vmrestore API, used by the CLI.

export class ApiError extends Error {
  constructor(readonly status: number, readonly problem: { code?: string; detail?: string; errors?: Array<{ field: string; message: string }> }) {
    super(`${problem.code ?? `HTTP ${status}`}: ${problem.detail ?? ''}${problem.errors?.length ? ` (${problem.errors.map((e) => `${e.field} ${e.message}`).join('; ')})` : ''}`);
  }
}

export class UnreachableError extends Error {}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    /** Sent as `Authorization: Bearer`; never printed. */
    private readonly apiKey?: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T; headers: Headers }> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          accept: 'application/json',
          ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new UnreachableError(`cannot reach the vmrestore API at ${this.baseUrl}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = { detail: text.slice(0, 200) };
    }
    if (res.status >= 400) throw new ApiError(res.status, (parsed ?? {}) as ApiError['problem']);
    return { status: res.status, body: parsed as T, headers: res.headers };
  }
}
