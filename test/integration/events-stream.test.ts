import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { buildApp, rateAndEta } from '@vmrestore/api';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import * as core from '@vmrestore/core';
import { appendEvent } from '@vmrestore/core';
import { startWorker } from '@vmrestore/worker';
import { testConfig, waitFor } from '../support/env';
import { checkContract } from '../support/contract';
import { createTenantWithKey, testSecurity, type TestTenant } from '../support/auth';

// GET /v1/restores/{id}/events as Server-Sent Events, over a real socket:
// events are appended to the job's timeline directly (as a worker would), a
// client disconnects and reconnects with Last-Event-ID, and must see every
// event exactly once, in order; the stream ends after the job's last event.

const config = testConfig();
let app: FastifyInstance;
let base: string;
let tenant: TestTenant;

interface SseEvent {
  id: number;
  event: string;
  data: { id: number; type: string; step: string | null; data: Record<string, any> | null };
}

interface Stream {
  events: SseEvent[];
  comments: string[];
  status: number;
  contentType: string;
  /** Resolves when the server ends the stream (not when we abort). */
  ended: Promise<void>;
  close: () => void;
}

async function open(jobId: string, headers: Record<string, string> = {}, query = ''): Promise<Stream> {
  const ac = new AbortController();
  const res = await fetch(`${base}/v1/restores/${jobId}/events${query}`, { headers: { ...tenant.headers, accept: 'text/event-stream', ...headers }, signal: ac.signal });
  checkContract('GET', '/v1/restores/{id}/events', { statusCode: res.status, headers: Object.fromEntries(res.headers.entries()), body: '' });
  const s: Stream = { events: [], comments: [], status: res.status, contentType: res.headers.get('content-type') ?? '', ended: Promise.resolve(), close: () => ac.abort() };
  s.ended = (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let sep: number;
        while ((sep = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, sep);
          buf = buf.slice(sep + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) s.comments.push(line);
            const m = /^(id|event|data|retry): ?(.*)$/.exec(line);
            if (m) fields[m[1]!] = m[2]!;
          }
          if (fields.id && fields.data) s.events.push({ id: Number(fields.id), event: fields.event ?? 'message', data: JSON.parse(fields.data) });
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
  })();
  return s;
}

let vmSeq = Math.floor(Math.random() * 1e6) * 1000;
async function newJob(label?: string): Promise<string> {
  const res = await fetch(`${base}/v1/restores`, {
    method: 'POST',
    headers: { ...tenant.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'in_place', vcenter: 'vc1', source: { vm: 'web01', point: 'p1' }, target: { vm: `vm-${++vmSeq}` }, ...(label ? { label } : {}) }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}
const allEventIds = async (jobId: string) => (await app.db.jobEvent.findMany({ where: { jobId }, orderBy: { id: 'asc' }, select: { id: true } })).map((e) => Number(e.id));
async function finish(jobId: string) {
  await app.db.restoreJob.update({ where: { id: jobId }, data: { state: 'succeeded', finishedAt: new Date() } });
  await appendEvent(app.db, jobId, 'job.succeeded');
}

beforeAll(async () => {
  app = await buildApp({ config, logLevel: 'silent', security: testSecurity(), sse: { pollMs: 50, heartbeatMs: 300 } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  tenant = await createTenantWithKey(app.db, ['restores:read', 'restores:write']);
});
afterAll(async () => {
  await app.restoreQueue.obliterate({ force: true }).catch(() => undefined);
  await app.close();
});

it('a client that disconnects and reconnects with Last-Event-ID misses no event and sees none twice', async () => {
  const id = await newJob();
  await app.db.restoreJob.update({ where: { id }, data: { state: 'running', startedAt: new Date() } });
  const first = await open(id);
  expect(first.status).toBe(200);
  expect(first.contentType).toMatch(/^text\/event-stream/);
  for (const step of ['preflight', 'snapshot']) {
    await appendEvent(app.db, id, 'step.started', step);
    await appendEvent(app.db, id, 'step.succeeded', step);
  }
  await waitFor('four events', async () => first.events.length >= 4);
  first.close();
  await first.ended;
  const seen = first.events.map((e) => e.id);

  // While nobody listens.
  await appendEvent(app.db, id, 'step.started', 'write');
  for (let i = 1; i <= 3; i++) await appendEvent(app.db, id, 'progress', 'write', { bytesDone: i * 100, bytesTotal: 400, percent: i * 25 });

  const second = await open(id, { 'last-event-id': String(seen.at(-1)) });
  await appendEvent(app.db, id, 'step.succeeded', 'write');
  await finish(id);
  await second.ended; // the server ends the stream after job.succeeded
  const all = [...seen, ...second.events.map((e) => e.id)];
  expect(all).toEqual(await allEventIds(id));
  expect(second.events.at(-1)!.event).toBe('job.succeeded');
  expect(second.events.map((e) => e.event)).toEqual(expect.arrayContaining(['progress', 'step.succeeded']));
  for (const e of [...first.events, ...second.events]) {
    expect(e.data.id).toBe(e.id);
    expect(e.data.type).toBe(e.event);
  }
});

it('progress events carry bytes, percent, a rate and an ETA', async () => {
  const id = await newJob();
  await app.db.restoreJob.update({ where: { id }, data: { state: 'running', startedAt: new Date(Date.now() - 1000) } });
  await appendEvent(app.db, id, 'progress', 'write', { bytesDone: 1000, bytesTotal: 4000, percent: 25 });
  await new Promise((r) => setTimeout(r, 100));
  await appendEvent(app.db, id, 'progress', 'write', { bytesDone: 2000, bytesTotal: 4000, percent: 50 });
  await finish(id);
  const s = await open(id);
  await s.ended;
  const progress = s.events.filter((e) => e.event === 'progress').map((e) => e.data.data!);
  expect(progress).toHaveLength(2);
  for (const p of progress) expect(p).toMatchObject({ bytesDone: expect.any(Number), bytesTotal: 4000, percent: expect.any(Number) });
  expect(progress[0]!.rateBytesPerSec).toBeGreaterThan(0); // from the job's start
  expect(progress[1]!.rateBytesPerSec).toBeGreaterThan(progress[0]!.rateBytesPerSec);
  expect(progress[1]!.etaSeconds).toBeGreaterThan(0);
  expect(rateAndEta({ at: 0, bytes: 0 }, { at: 2000, bytes: 1000 }, 3000)).toEqual({ rateBytesPerSec: 500, etaSeconds: 4 });
  expect(rateAndEta(null, { at: 1, bytes: 1 }, 2)).toEqual({ rateBytesPerSec: null, etaSeconds: null });
});

it('resumes from ?after= too, sends heartbeats while idle, and ends for a job that has ended', async () => {
  const id = await newJob();
  const [queuedId] = await allEventIds(id);
  await appendEvent(app.db, id, 'step.started', 'a');
  const s = await open(id, {}, `?after=${queuedId}`);
  await waitFor('a heartbeat', async () => s.comments.includes(': ping'), 5_000);
  expect(s.events.map((e) => e.event)).toEqual(['step.started']);
  await finish(id);
  await s.ended;
  expect(s.events.map((e) => e.event)).toEqual(['step.started', 'job.succeeded']);
  // Already ended: everything at once, then the end.
  const again = await open(id);
  await again.ended;
  expect(again.events.map((e) => e.id)).toEqual(await allEventIds(id));
});

it('does not end at a cleanup step\'s job.cleanup_pending, only at the job\'s own end event', async () => {
  const id = await newJob();
  const s = await open(id);
  await appendEvent(app.db, id, 'job.cleanup_pending', 'remove_snapshot', { code: 'X', message: 'y' });
  await new Promise((r) => setTimeout(r, 300));
  await appendEvent(app.db, id, 'step.started', 'release_lock');
  await app.db.restoreJob.update({ where: { id }, data: { state: 'cleanup_pending', finishedAt: new Date() } });
  await appendEvent(app.db, id, 'job.cleanup_pending');
  await s.ended;
  expect(s.events.map((e) => `${e.event}:${e.data.step ?? ''}`)).toEqual(['job.queued:', 'job.cleanup_pending:remove_snapshot', 'step.started:release_lock', 'job.cleanup_pending:']);
});

it('follows a job run by a real worker (test plans) from queued to succeeded', async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { makeTestPlans } = require('../support/test-plans.cjs');
  // Only this test's job is for the worker: drop the queue entries of the jobs above.
  await app.restoreQueue.obliterate({ force: true });
  const worker = await startWorker({ config, plans: makeTestPlans(mkdtempSync(join(tmpdir(), 'vmrestore-sse-')), core), log: pino({ level: 'silent' }), scopeTenantId: tenant.tenantId });
  try {
    const id = await newJob('plan:steps=a,b,c;slow=b:300');
    const s = await open(id);
    await waitFor('the first step', async () => s.events.some((e) => e.event === 'step.started'), 10_000);
    s.close(); // drop mid-job, come back with Last-Event-ID
    await s.ended;
    const again = await open(id, { 'last-event-id': String(s.events.at(-1)!.id) });
    await again.ended;
    const ids = [...s.events, ...again.events].map((e) => e.id);
    expect(ids).toEqual(await allEventIds(id));
    expect(again.events.at(-1)!.event).toBe('job.succeeded');
    expect([...s.events, ...again.events].some((e) => e.event === 'progress')).toBe(true);
  } finally {
    await worker.close();
  }
});

it('keeps the JSON list without the Accept header', async () => {
  const id = await newJob();
  const res = await app.inject({ method: 'GET', url: `/v1/restores/${id}/events`, headers: tenant.headers });
  const body = checkContract('GET', '/v1/restores/{id}/events', res) as { items: Array<{ type: string }> };
  expect(body.items.map((e) => e.type)).toEqual(['job.queued']);
  const bad = await app.inject({ method: 'GET', url: `/v1/restores/${id}/events`, headers: { ...tenant.headers, accept: 'text/event-stream', 'last-event-id': 'abc' } });
  expect(checkContract('GET', '/v1/restores/{id}/events', bad)).toMatchObject({ code: 'VALIDATION_FAILED' });
});

it('ends open streams when the app closes, so shutdown does not wait for clients', async () => {
  const other = await buildApp({ config, logLevel: 'silent', security: testSecurity(), sse: { pollMs: 50, heartbeatMs: 10_000 } });
  await other.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(other.server.address() as AddressInfo).port}`;
  const id = await newJob();
  const res = await fetch(`${url}/v1/restores/${id}/events`, { headers: { ...tenant.headers, accept: 'text/event-stream' } });
  expect(res.status).toBe(200);
  const reading = res.text();
  const started = Date.now();
  await other.close();
  await reading;
  expect(Date.now() - started).toBeLessThan(5_000);
});
