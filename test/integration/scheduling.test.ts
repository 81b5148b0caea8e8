import type { FastifyInstance } from 'fastify';
import { Worker } from 'bullmq';
import { buildApp } from '@vmrestore/api';
import { createRedis } from '@vmrestore/core';
import { testConfig } from '../support/env';
import { checkContract } from '../support/contract';
import { createTenantWithKey, testSecurity, type TestTenant } from '../support/auth';

// Issue #9: the queue's order. DR restores before normal ones before tests;
// within a class tenants take turns, so one tenant's many jobs do not starve
// another's one. Checked with a real BullMQ worker taking the real queue.

const config = testConfig();
let app: FastifyInstance;
let a: TestTenant;
let b: TestTenant;
let vm = Math.floor(Math.random() * 1e6) * 100;

async function post(t: TestTenant, body: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: '/v1/restores', headers: { ...t.headers, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  const job = checkContract('POST', '/v1/restores', res) as { id: string; priority: string; label: string };
  expect(res.statusCode).toBe(202);
  return job;
}
const restore = (t: TestTenant, label: string, priority?: string) =>
  post(t, { kind: 'in_place', vcenter: 'vc1', source: { vm: 'web01', point: 'p1' }, target: { vm: `vm-${++vm}` }, label, ...(priority ? { priority } : {}) });

beforeAll(async () => {
  app = await buildApp({ config, security: testSecurity(), logLevel: 'silent' });
  await app.ready();
  a = await createTenantWithKey(app.db, ['restores:read', 'restores:write']);
  b = await createTenantWithKey(app.db, ['restores:read', 'restores:write']);
});
afterAll(async () => {
  await app.restoreQueue.obliterate({ force: true }).catch(() => undefined);
  await app.close();
});

it('runs DR first, then lets tenants take turns: one tenant\u2019s many jobs do not starve another\u2019s one', async () => {
  const labels = new Map<string, string>();
  for (let i = 1; i <= 6; i++) labels.set((await restore(a, `A${i}`)).id, `A${i}`);
  labels.set((await restore(b, 'B1')).id, 'B1');
  const dr = await restore(a, 'A-dr', 'dr');
  labels.set(dr.id, 'A-dr');
  expect(dr.priority).toBe('dr');
  const t = await restore(b, 'B-test', 'test');
  labels.set(t.id, 'B-test');
  expect(t.priority).toBe('test');

  const order: string[] = [];
  const connection = createRedis(config.redisUrl, 'worker');
  const done = new Promise<void>((resolve) => {
    const w = new Worker(
      'restore',
      async (job) => {
        order.push(labels.get(job.data.jobId) ?? job.data.jobId);
        if (order.length === labels.size) setImmediate(() => void w.close().then(resolve));
      },
      { connection, prefix: config.queue.prefix, concurrency: 1 },
    );
  });
  await done;
  await connection.quit();
  expect(order).toEqual(['A-dr', 'A1', 'B1', 'A2', 'A3', 'A4', 'A5', 'A6', 'B-test']);
});
