import { randomUUID } from 'node:crypto';
import { Capacity, createRedis, type CapacityRequest, type Redis } from '@vmrestore/core';
import { serviceEnv } from '../support/env';

// Capacity shared by workers: counting semaphores with leases in the real Redis.

let redis: Redis[];
let prefix: string;
const cap = (i = 0, leaseMs = 3000) => new Capacity(redis[i]!, { prefix, leaseMs });

beforeAll(() => {
  redis = [0, 1, 2].map(() => createRedis(serviceEnv().REDIS_URL!, 'worker'));
});
beforeEach(() => {
  prefix = `captest-${randomUUID().slice(0, 8)}`;
});
afterAll(async () => {
  await Promise.all(redis.map((r) => r.quit()));
});

const req = (key: string, units: number, limit: number): CapacityRequest => ({ key, units, limit, label: key });

it('never gives more units than the limit, whatever the interleaving of acquirers on three connections', async () => {
  const limit = 3;
  let holding = 0;
  let peak = 0;
  let waited = 0;
  const worker = async (i: number) => {
    for (let n = 0; n < 15; n++) {
      const c = cap(i % 3);
      const r = await c.withHold(`h${i}-${n}`, [req('ds:1', 1, limit)], async () => {
        holding++;
        peak = Math.max(peak, holding);
        expect(await c.inUse('ds:1')).toBeLessThanOrEqual(limit);
        await new Promise((res) => setTimeout(res, Math.random() * 5));
        holding--;
      }, () => undefined);
      if ('full' in r) waited++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, i) => worker(i)));
  expect(peak).toBeLessThanOrEqual(limit);
  expect(peak).toBeGreaterThan(1);
  expect(waited).toBeGreaterThan(0);
  expect(await cap().inUse('ds:1')).toBe(0);
});

it('takes every resource or none, and says which one is full', async () => {
  const c = cap();
  expect(await c.tryAcquire('a', [req('host:1', 2, 2)])).toBeNull();
  const full = await c.tryAcquire('b', [req('vc:1', 1, 10), req('host:1', 1, 2), req('ds:1', 1, 5)]);
  expect(full?.key).toBe('host:1');
  expect(await c.inUse('vc:1')).toBe(0); // nothing taken
  expect(await c.inUse('ds:1')).toBe(0);
  // A request larger than its limit can never fit.
  expect((await c.tryAcquire('c', [req('nfc:1', 5, 4)]))?.key).toBe('nfc:1');
  // The same holder again (a retry after a lost reply) keeps its units, counted once.
  expect(await c.tryAcquire('a', [req('host:1', 2, 2)])).toBeNull();
  expect(await c.inUse('host:1')).toBe(2);
});

it('gives a crashed holder\u2019s units back when its lease expires; a renewed lease lives on', async () => {
  const c = cap(0, 300);
  expect(await c.tryAcquire('crashed', [req('vc:9', 1, 1)])).toBeNull();
  expect(await c.tryAcquire('alive', [req('vc:8', 1, 1)])).toBeNull();
  expect((await c.tryAcquire('other', [req('vc:9', 1, 1)]))?.key).toBe('vc:9');
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 120));
    expect(await c.renew({ holder: 'alive', requests: [req('vc:8', 1, 1)] })).toBe(true);
  }
  expect(await c.tryAcquire('other', [req('vc:9', 1, 1)])).toBeNull(); // expired
  expect((await c.tryAcquire('other', [req('vc:8', 1, 1)]))?.key).toBe('vc:8'); // still held
  expect(await c.renew({ holder: 'crashed', requests: [req('vc:9', 1, 1)] })).toBe(false);
});
