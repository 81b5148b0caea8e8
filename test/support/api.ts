import { checkContract } from './contract';
import { waitFor } from './env';

// Calls to the API server of an end-to-end test, every response checked
// against openapi.yaml, and waiting for a job to end. The base URL and the
// key's headers are read at call time (the server starts in beforeAll).

export const ENDED = ['succeeded', 'failed', 'cancelled', 'cleanup_pending'];

export function apiCalls(baseUrl: () => string, authHeaders: () => Record<string, string>) {
  async function http(method: 'GET' | 'POST', path: string, template: string, body?: unknown) {
    const res = await fetch(baseUrl() + path, {
      method,
      headers: { ...authHeaders(), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    const headers = Object.fromEntries(res.headers.entries());
    return { status: res.status, body: checkContract(method, template, { statusCode: res.status, headers, body: text }) as Record<string, any> };
  }
  const ended = (id: string, ms = 60_000) =>
    waitFor(`job ${id} to end`, async () => {
      const r = await http('GET', `/v1/restores/${id}`, '/v1/restores/{id}');
      return ENDED.includes(r.body.state) ? r.body : null;
    }, ms, 200);
  return { http, ended };
}
