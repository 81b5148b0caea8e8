import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Capacity, createRedis, loadConfig, sentinelOptions } from '@vmrestore/core';
import { freePort, serviceEnv, waitFor } from '../support/env';

// REDIS_URL=redis-sentinel://...: the service reaches Redis through a real
// Sentinel (Debian's redis-server in sentinel mode): queues and capacity leases work.

let dir: string;
const procs: ChildProcess[] = [];
let url: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmr-sentinel-'));
  const [port, sport] = [await freePort(), await freePort()];
  procs.push(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }));
  writeFileSync(join(dir, 'sentinel.conf'), `port ${sport}\nbind 127.0.0.1\nsentinel monitor vmr 127.0.0.1 ${port} 1\ndir ${dir}\n`);
  procs.push(spawn('redis-server', [join(dir, 'sentinel.conf'), '--sentinel'], { stdio: 'ignore' }));
  url = `redis-sentinel://127.0.0.1:${sport}/vmr`;
  // One probe connection (ioredis keeps retrying the sentinels until the master is known), closed once it answers.
  const probe = createRedis(url, 'worker');
  try {
    await waitFor('sentinel up', async () => (await probe.ping()) === 'PONG', 20_000);
  } finally {
    await probe.quit().catch(() => probe.disconnect());
  }
});
afterAll(async () => {
  await Promise.all(procs.map((p) => new Promise((resolve) => (p.exitCode !== null ? resolve(null) : (p.once('exit', resolve), p.kill('SIGKILL'))))));
  rmSync(dir, { recursive: true, force: true });
});

it('parses sentinel URLs, and the config accepts them', () => {
  expect(sentinelOptions('redis-sentinel://u:p%40ss@a:26379,b:26380/mymaster?sentinelPassword=s')).toEqual({
    sentinels: [{ host: 'a', port: 26379 }, { host: 'b', port: 26380 }],
    name: 'mymaster',
    username: 'u',
    password: 'p@ss',
    sentinelPassword: 's',
  });
  expect(sentinelOptions('redis://127.0.0.1:6379')).toBeNull();
  expect(loadConfig({ ...serviceEnv(), REDIS_URL: 'redis-sentinel://a:1,b:2/m' }).redisUrl).toBe('redis-sentinel://a:1,b:2/m');
});

it('runs a BullMQ queue and capacity leases through the sentinel\u2019s master', async () => {
  const producer = createRedis(url, 'producer');
  const consumer = createRedis(url, 'worker');
  await waitFor('producer ready', async () => producer.status === 'ready', 10_000);
  const queue = new Queue('restore', { connection: producer, prefix: 'sent' });
  const seen: string[] = [];
  const worker = new Worker('restore', async (job) => void seen.push(job.data.id), { connection: consumer, prefix: 'sent' });
  await queue.add('restore', { id: 'j1' });
  await waitFor('job processed', async () => seen.includes('j1'), 10_000);
  const cap = new Capacity(consumer, { prefix: 'sent', leaseMs: 5000 });
  expect(await cap.tryAcquire('h', [{ key: 'ds:x', units: 1, limit: 1, label: 'ds' }])).toBeNull();
  expect((await cap.tryAcquire('h2', [{ key: 'ds:x', units: 1, limit: 1, label: 'ds' }]))?.key).toBe('ds:x');
  await worker.close();
  await queue.close();
  await producer.quit();
  await consumer.quit();
});
