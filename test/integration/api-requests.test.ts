import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { buildApp } from '@vmrestore/api';
import { testConfig } from '../support/env';
import { checkContract } from '../support/contract';
import { createTenantWithKey, testSecurity, type TestTenant } from '../support/auth';

// The HTTP contract for restores against real Postgres and Redis: every
// response is checked against openapi.yaml.

const config = testConfig();
let app: FastifyInstance;
let tenant: TestTenant;
const logLines: string[] = [];

// Each request restores its own VM: one active in-place restore per VM.
let vmSeq = Math.floor(Math.random() * 1e6) * 1000;
const valid = (over: Record<string, unknown> = {}) => ({
  kind: 'in_place',
  vcenter: 'vc1',
  source: { vm: 'web01', point: 'p-2026-11-01' },
  target: { vm: `vm-${++vmSeq}` },
  ...over,
});

async function call(method: 'GET' | 'POST', url: string, template: string, opts: { body?: unknown; headers?: Record<string, string>; raw?: string } = {}) {
  const res: LightMyRequestResponse = await app.inject({
    method,
    url,
    headers: { ...tenant.headers, ...(opts.body !== undefined || opts.raw !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    payload: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
  });
  const body = checkContract(method, template, res) as Record<string, any>;
  return { res, body };
}

const queued = async () => {
  const c = await app.restoreQueue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
  return Object.values(c).reduce((a, b) => a + b, 0);
};

beforeAll(async () => {
  const logStream = new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } });
  app = await buildApp({ config, logStream, logLevel: 'info', security: testSecurity() });
  await app.ready();
  tenant = await createTenantWithKey(app.db, ['restores:read', 'restores:write']);
});
afterAll(async () => {
  await app.restoreQueue.obliterate({ force: true }).catch(() => undefined);
  await app.close();
});

describe('POST /v1/restores', () => {
  it('accepts a restore: 202, Location, queued, enqueued once', async () => {
    const before = await queued();
    const { res, body } = await call('POST', '/v1/restores', '/v1/restores', { body: valid() });
    expect(res.statusCode).toBe(202);
    expect(res.headers.location).toBe(`/v1/restores/${body.id}`);
    expect(body.state).toBe('queued');
    expect(body.request.options).toBeUndefined();
    expect(await queued()).toBe(before + 1);
    const job = await app.restoreQueue.getJob(body.id);
    expect(job?.data).toEqual({ jobId: body.id });
  });

  it('fills documented defaults into the stored request', async () => {
    const { body } = await call('POST', '/v1/restores', '/v1/restores', { body: valid({ options: {} }) });
    expect(body.request.options).toEqual({ transports: ['nbdssl', 'nbd'], gracefulShutdownSeconds: 0, removeExistingSnapshots: false, incrementalOrder: 'backward', mode: 'full' });
  });

  it('replays the same job for the same Idempotency-Key and body, and refuses another body', async () => {
    const key = `k-${randomUUID()}`;
    const body = valid();
    const first = await call('POST', '/v1/restores', '/v1/restores', { body, headers: { 'idempotency-key': key } });
    expect(first.res.statusCode).toBe(202);
    const before = await queued();
    // Same body, keys in another order: still the same request.
    const again = await call('POST', '/v1/restores', '/v1/restores', {
      raw: JSON.stringify({ target: body.target, source: { point: 'p-2026-11-01', vm: 'web01' }, vcenter: 'vc1', kind: 'in_place' }),
      headers: { 'idempotency-key': key },
    });
    expect(again.res.statusCode).toBe(200);
    expect(again.res.headers['idempotent-replayed']).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    expect(await queued()).toBe(before);
    const other = await call('POST', '/v1/restores', '/v1/restores', { body: { ...body, label: 'different' }, headers: { 'idempotency-key': key } });
    expect(other.res.statusCode).toBe(422);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(other.body.errors[0].field).toBe('Idempotency-Key');
  });

  it('gives concurrent requests with one key one job', async () => {
    const key = `k-${randomUUID()}`;
    const body = valid();
    const results = await Promise.all(Array.from({ length: 5 }, () => call('POST', '/v1/restores', '/v1/restores', { body, headers: { 'idempotency-key': key } })));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(results.filter((r) => r.res.statusCode === 202)).toHaveLength(1);
  });

  describe('refuses bad input with problem+json naming the field, and enqueues nothing', () => {
    const cases: Array<[string, { body?: unknown; raw?: string; headers?: Record<string, string> }, number, string, string | null]> = [
      ['malformed JSON', { raw: '{"kind": "in_place",' }, 400, 'MALFORMED_JSON', null],
      ['an empty body', { raw: '' }, 400, 'MALFORMED_JSON', null],
      ['a wrong type', { body: valid({ vcenter: 42 }) }, 400, 'VALIDATION_FAILED', 'vcenter'],
      ['a string for a boolean', { body: valid({ options: { powerOn: 'true' } }) }, 400, 'VALIDATION_FAILED', 'options.powerOn'],
      ['a string for a number', { body: valid({ options: { gracefulShutdownSeconds: '5' } }) }, 400, 'VALIDATION_FAILED', 'options.gracefulShutdownSeconds'],
      ['an unknown field', { body: valid({ colour: 'blue' }) }, 400, 'VALIDATION_FAILED', 'colour'],
      ['an unknown nested field', { body: valid({ source: { vm: 'a', point: 'b', extra: 1 } }) }, 400, 'VALIDATION_FAILED', 'source.extra'],
      ['a missing field', { body: { kind: 'in_place', vcenter: 'vc1', target: { vm: 'vm-1' } } }, 400, 'VALIDATION_FAILED', 'source'],
      ['a missing nested field', { body: valid({ source: { vm: 'a' } }) }, 400, 'VALIDATION_FAILED', 'source.point'],
      ['an unknown enum value', { body: valid({ kind: 'sideways' }) }, 400, 'VALIDATION_FAILED', 'kind'],
      ['an unknown transport', { body: valid({ options: { transports: ['carrier-pigeon'] } }) }, 400, 'VALIDATION_FAILED', 'options.transports.0'],
      ['in_place without target.vm', { body: valid({ target: undefined }) }, 400, 'VALIDATION_FAILED', 'target.vm'],
      ['a path-like restore point', { body: valid({ source: { vm: 'web01', point: '../../etc' } }) }, 400, 'VALIDATION_FAILED', 'source.point'],
      // Found by the fuzzer (test/integration/fuzz.test.ts): valid JSON that Postgres cannot store was a 500.
      ['a NUL character in free text', { body: valid({ label: 'a\u0000b' }) }, 400, 'VALIDATION_FAILED', 'label'],
      ['an unpaired surrogate in free text', { raw: JSON.stringify(valid()).replace(/}$/, ',"label":"x\\ud800y"}') }, 400, 'VALIDATION_FAILED', 'label'],
      ['a JSON array', { raw: '[]' }, 400, 'VALIDATION_FAILED', null],
      ['an over-long Idempotency-Key', { body: valid(), headers: { 'idempotency-key': 'x'.repeat(300) } }, 400, 'VALIDATION_FAILED', 'idempotency-key'],
      ['a 2 MB body', { raw: JSON.stringify({ ...valid(), label: 'x'.repeat(2 * 1024 * 1024) }) }, 413, 'BODY_TOO_LARGE', null],
      ['a non-JSON content type', { raw: 'kind=in_place', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'UNSUPPORTED_MEDIA_TYPE', null],
    ];
    it.each(cases)('%s', async (_name, input, status, code, field) => {
      const before = await queued();
      const { res, body } = await call('POST', '/v1/restores', '/v1/restores', input);
      expect(res.statusCode).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(body.code).toBe(code);
      expect(body.status).toBe(status);
      expect(body.detail).toEqual(expect.any(String));
      if (field) expect(body.errors.map((e: { field: string }) => e.field)).toContain(field);
      expect(await queued()).toBe(before);
    });
  });
});

describe('GET /v1/restores/{id}', () => {
  it('returns the job', async () => {
    const created = await call('POST', '/v1/restores', '/v1/restores', { body: valid() });
    const { res, body } = await call('GET', `/v1/restores/${created.body.id}`, '/v1/restores/{id}');
    expect(res.statusCode).toBe(200);
    expect(body.id).toBe(created.body.id);
    expect(body.steps).toEqual([]);
  });
  it('404s an unknown id', async () => {
    const { res, body } = await call('GET', `/v1/restores/${randomUUID()}`, '/v1/restores/{id}');
    expect(res.statusCode).toBe(404);
    expect(body.code).toBe('RESTORE_NOT_FOUND');
  });
  it('400s a non-UUID id, naming it', async () => {
    const { res, body } = await call('GET', '/v1/restores/not-a-uuid', '/v1/restores/{id}');
    expect(res.statusCode).toBe(400);
    expect(body.errors).toEqual([expect.objectContaining({ in: 'path', field: 'id' })]);
  });
  it('lists the timeline', async () => {
    const created = await call('POST', '/v1/restores', '/v1/restores', { body: valid() });
    const { body } = await call('GET', `/v1/restores/${created.body.id}/events`, '/v1/restores/{id}/events');
    expect(body.items.map((e: { type: string }) => e.type)).toEqual(['job.queued']);
  });
  it('400s an event id past the largest one (found by the fuzzer: it was a 500)', async () => {
    const created = await call('POST', '/v1/restores', '/v1/restores', { body: valid() });
    const { res, body } = await call('GET', `/v1/restores/${created.body.id}/events?after=99999999999999999999`, '/v1/restores/{id}/events');
    expect(res.statusCode).toBe(400);
    expect(body.errors).toEqual([expect.objectContaining({ in: 'query', field: 'after' })]);
  });
});

describe('GET /v1/restores', () => {
  it('pages newest first with a cursor, filtered by VM and state', async () => {
    const source = { vm: `src-${randomUUID()}`, point: 'p1' };
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call('POST', '/v1/restores', '/v1/restores', { body: valid({ source }) })).body.id);
    const vm = source.vm; // the vm filter matches the target or the source VM
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/v1/restores?vm=${vm}&state=queued&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const { body } = await call('GET', q, '/v1/restores');
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((j: { id: string }) => j.id));
      cursor = body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const none = await call('GET', `/v1/restores?vm=${vm}&state=running`, '/v1/restores');
    expect(none.body.items).toEqual([]);
  });
  it.each([
    ['limit=0', 'limit'],
    ['limit=abc', 'limit'],
    ['state=sideways', 'state'],
    ['cursor=bogus', 'cursor'],
    ['colour=blue', 'colour'],
    ['vm=a%00b', 'vm'], // found by the fuzzer: a NUL reached the SQL query, a 500
  ])('refuses %s', async (qs, field) => {
    const { res, body } = await call('GET', `/v1/restores?${qs}`, '/v1/restores');
    expect(res.statusCode).toBe(400);
    expect(body.errors.map((e: { field: string }) => e.field)).toContain(field);
  });
});

it('refuses a second in-place restore of a VM while one is active (409), and allows it after', async () => {
  const body = valid();
  const first = await call('POST', '/v1/restores', '/v1/restores', { body });
  const before = await queued();
  const second = await call('POST', '/v1/restores', '/v1/restores', { body: { ...body, label: 'again' } });
  expect(second.res.statusCode).toBe(409);
  expect(second.body.code).toBe('RESTORE_CONFLICT');
  expect(second.body.detail).toContain(first.body.id);
  expect(await queued()).toBe(before);
  await call('POST', `/v1/restores/${first.body.id}/cancel`, '/v1/restores/{id}/cancel');
  const third = await call('POST', '/v1/restores', '/v1/restores', { body: { ...body, label: 'after cancel' } });
  expect(third.res.statusCode).toBe(202);
});

describe('POST /v1/restores/{id}/cancel', () => {
  it('cancels a queued job at once and drops it from the queue', async () => {
    const created = await call('POST', '/v1/restores', '/v1/restores', { body: valid() });
    const { res, body } = await call('POST', `/v1/restores/${created.body.id}/cancel`, '/v1/restores/{id}/cancel');
    expect(res.statusCode).toBe(202);
    expect(body.state).toBe('cancelled');
    expect(body.cancelRequested).toBe(true);
    expect(body.error).toEqual({ code: 'CANCELLED', message: expect.any(String) });
    expect(await app.restoreQueue.getJob(created.body.id)).toBeUndefined();
    const again = await call('POST', `/v1/restores/${created.body.id}/cancel`, '/v1/restores/{id}/cancel');
    expect(again.res.statusCode).toBe(409);
    expect(again.body.code).toBe('JOB_ALREADY_FINISHED');
  });
  it('404s an unknown job', async () => {
    const { res } = await call('POST', `/v1/restores/${randomUUID()}/cancel`, '/v1/restores/{id}/cancel');
    expect(res.statusCode).toBe(404);
  });
});

describe('health, docs, logs', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await call('GET', '/healthz', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await call('GET', '/readyz', '/readyz')).body).toEqual({ status: 'ok', checks: { postgres: 'ok', redis: 'ok' } });
  });
  it('serves the contract at /docs', async () => {
    const ui = await app.inject({ method: 'GET', url: '/docs' });
    expect([200, 302]).toContain(ui.statusCode);
    const json = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(json.statusCode).toBe(200);
    expect(JSON.parse(json.body).paths['/v1/restores']).toBeDefined();
  });
  it('404s unknown routes as problem+json', async () => {
    const res = await app.inject({ method: 'GET', url: '/v2/nothing' });
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body).code).toBe('ROUTE_NOT_FOUND');
  });
  it('logs JSON with a request id and redacts credentials', async () => {
    await app.inject({ method: 'GET', url: '/healthz', headers: { authorization: 'Bearer s3cr3t-token-value', 'x-request-id': 'req-abc' } });
    const joined = logLines.join('');
    expect(joined).not.toContain('s3cr3t-token-value');
    const line = logLines.map((l) => JSON.parse(l)).find((l) => l.requestId === 'req-abc');
    expect(line).toBeDefined();
  });
});
