// A small HTTP client for the vmrestore API, used by the CLI.

export class ApiError extends Error {
  constructor(readonly status: number, readonly problem: { code?: string; detail?: string; errors?: Array<{ field: string; message: string }> }) {
    super(`${problem.code ?? `HTTP ${status}`}: ${problem.detail ?? ''}${problem.errors?.length ? ` (${problem.errors.map((e) => `${e.field} ${e.message}`).join('; ')})` : ''}`);
  }

  /** A server or proxy in trouble (5xx), or rate limiting: worth retrying. */
  get transient(): boolean {
    return this.status >= 500 || this.status === 429;
  }
}

export class UnreachableError extends Error {}

/** "fetch failed (ECONNREFUSED)": fetch hides the useful part in `cause`. */
function reason(err: unknown): string {
  const e = err as { message?: string; name?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  const detail = e.cause?.code ?? e.cause?.message;
  return `${e.message ?? String(err)}${detail ? ` (${detail})` : ''}`;
}

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
      throw new UnreachableError(`cannot reach the vmrestore API at ${this.baseUrl}: ${reason(err)}`);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new UnreachableError(`the vmrestore API at ${this.baseUrl} closed the connection: ${reason(err)}`);
    }
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = { detail: text.slice(0, 200) };
    }
    if (res.status >= 400) throw new ApiError(res.status, (parsed ?? {}) as ApiError['problem']);
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  /**
   * Opens a long-lived GET (an event stream). Only the wait for the response
   * headers is bounded; the body is read by the caller until `signal` aborts.
   */
  async stream(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const connect = new AbortController();
    const timer = setTimeout(() => connect.abort(), this.timeoutMs);
    const onAbort = () => connect.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        headers: { ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}), ...headers },
        signal: connect.signal,
      });
    } catch (err) {
      signal.removeEventListener('abort', onAbort);
      throw new UnreachableError(`cannot reach the vmrestore API at ${this.baseUrl}: ${reason(err)}`);
    } finally {
      clearTimeout(timer);
    }
    if (res.status >= 400) {
      signal.removeEventListener('abort', onAbort);
      const text = await res.text().catch(() => '');
      let problem: ApiError['problem'] = {};
      try {
        problem = text ? JSON.parse(text) : {};
      } catch {
        problem = { detail: text.slice(0, 200) };
      }
      throw new ApiError(res.status, problem);
    }
    return res;
  }
}
