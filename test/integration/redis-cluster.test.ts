import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import * as core from '@vmrestore/core';
import {
  Capacity,
  clusterOptions,
  createDb,
  createRedis,
  createRestoreJob,
  createWebhook,
  keyPrefix,
  loadConfig,
  parseKeyring,
  sentinelOptions,
  startWebhookWorker,
  type Config,
  type Db,
  type RedisClient,
  type RunningWebhookWorker,
} from '@vmrestore/core';
import { buildApp } from '@vmrestore/api';
import { startWorker, type PlanRegistry, type RunningWorker } from '@vmrestore/worker';
import { freePort, serviceEnv, testConfig, waitFor } from '../support/env';
import { createKey, createTenantWithKey, testSecurity, type TestTenant } from '../support/auth';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { makeTestPlans } = require('../support/test-plans.cjs');

// REDIS_URL=redis-cluster://...: the whole service against a real three-node
// Redis Cluster (Debian's redis-server in cluster mode, no replicas): the
// API, the real worker with the test plans, the reconciler, the webhook
// worker, capacity leases and the rate limiter. Every key of ours must live
// in the one hash slot of the prefix's tag; without the tag the cluster
// refuses the multi-key scripts (CROSSSLOT), which the last test shows.

const run = promisify(execFile);
const cli = async (port: number, ...args: string[]) => (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();

let dir: string;
const procs: ChildProcess[] = [];
let ports: number[] = [];
let url: string;
let config: Config;
/** The prefix as given (VMRESTORE_QUEUE_PREFIX), without the braces the cluster adds. */
let raw: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmr-cluster-'));
  // Client ports and cluster bus ports (the default bus port, port + 10000, may be taken or past 65535).
  const taken = new Set<number>();
  while (taken.size < 6) taken.add(await freePort());
  const all = [...taken];
  ports = all.slice(0, 3);
  ports.forEach((port, i) => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(all[3 + i]), '--cluster-config-file', join(dir, `nodes-${port}.conf`)];
    procs.push(spawn('redis-server', [...args, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }));
  });
  for (const p of ports) await waitFor(`redis ${p}`, async () => (await cli(p, 'ping')) === 'PONG', 20_000, 100);
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
  for (const p of ports) await waitFor(`cluster state ok on ${p}`, async () => (await cli(p, 'cluster', 'info')).includes('cluster_state:ok'), 30_000, 100);
  url = `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
  config = testConfig({ REDIS_URL: url, VMRESTORE_REQUEUE_INTERVAL_MS: '1000', VMRESTORE_SWEEP_INTERVAL_MS: '1000' });
  raw = config.queue.prefix.slice(1, -1);
});
afterAll(async () => {
  await Promise.all(procs.map((p) => new Promise((resolve) => (p.exitCode !== null ? resolve(null) : (p.once('exit', resolve), p.kill('SIGKILL'))))));
  rmSync(dir, { recursive: true, force: true });
});

const slot = async (client: RedisClient, key: string) => Number(await client.cluster('KEYSLOT', key));

/** The port of the master that serves a slot (CLUSTER SLOTS: [start, end, [host, port, id], ...replicas]). */
async function ownerOf(client: RedisClient, s: number): Promise<number> {
  const range = (await client.cluster('SLOTS')).find(([start, end]) => s >= start && s <= end);
  if (!range?.[2]) throw new Error(`slot ${s} has no owner`);
  return Number(range[2][1]);
}

it('parses cluster URLs; the config accepts them and makes the key prefix a hash tag; each role\u2019s options reach the nodes', () => {
  expect(clusterOptions('rediss-cluster://u:p%40ss@a:7000,b:7001,c')).toEqual({
    nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }, { host: 'c', port: 6379 }],
    redisOptions: { username: 'u', password: 'p@ss', tls: {} },
  });
  expect(clusterOptions('redis-cluster://a:7000/')).toEqual({ nodes: [{ host: 'a', port: 7000 }], redisOptions: {} });
  expect(clusterOptions('redis-cluster://a:port')).toBeNull();
  // IPv6 nodes in brackets, with or without a port; a bare IPv6 address is a host without a port.
  expect(clusterOptions('redis-cluster://[fd00::1]:7000,[fd00::2],::1')!.nodes).toEqual([
    { host: 'fd00::1', port: 7000 },
    { host: 'fd00::2', port: 6379 },
    { host: '::1', port: 6379 },
  ]);
  expect(clusterOptions('redis-cluster://[fd00::1]:99999')).toBeNull();
  expect(clusterOptions('redis-cluster://a:1,')).toBeNull();
  expect(sentinelOptions('redis-sentinel://[fd00::1]:26380,b/mymaster')).toMatchObject({ sentinels: [{ host: 'fd00::1', port: 26380 }, { host: 'b', port: 26379 }], name: 'mymaster' });
  expect(sentinelOptions('redis-sentinel://a:x/mymaster')).toBeNull();
  expect(clusterOptions('redis://127.0.0.1:6379')).toBeNull();
  expect(clusterOptions('redis-sentinel://a:1,b:2/m')).toBeNull();
  expect(sentinelOptions('redis-cluster://a:1,b:2')).toBeNull();

  // The prefix: braced in a cluster only, and a braced one is kept (it goes back into the environment of child processes as is).
  const load = (env: Record<string, string>) => loadConfig({ ...serviceEnv(), ...env });
  expect(load({ REDIS_URL: 'redis-cluster://a:1,b:2' })).toMatchObject({ redisUrl: 'redis-cluster://a:1,b:2', queue: { prefix: '{vmrestore}' } });
  expect(load({ REDIS_URL: 'rediss-cluster://a:1', VMRESTORE_QUEUE_PREFIX: 'acme' }).queue.prefix).toBe('{acme}');
  expect(load({ REDIS_URL: 'redis-cluster://a:1', VMRESTORE_QUEUE_PREFIX: '{acme}' }).queue.prefix).toBe('{acme}');
  expect(load({ REDIS_URL: 'redis://127.0.0.1:6379' }).queue.prefix).toBe('vmrestore');
  expect(load({ REDIS_URL: 'redis-sentinel://a:1/m' }).queue.prefix).toBe('vmrestore');
  expect(keyPrefix('vmrestore', 'rediss://h:6380')).toBe('vmrestore');
  expect(() => load({ REDIS_URL: 'redis-cluster://a:1,b:x' })).toThrow(/REDIS_URL/);
  expect(() => load({ REDIS_URL: 'redis-cluster://a:1', VMRESTORE_QUEUE_PREFIX: 'a{b}' })).toThrow(/VMRESTORE_QUEUE_PREFIX/);
  expect(config.queue.prefix).toMatch(/^\{t[0-9a-f]{8}\}$/); // testConfig's own prefix, braced

  // Not connected (lazyConnect): only the options are looked at.
  const producer = createRedis('rediss-cluster://u:pw@a:7000,b:7001', 'producer', { lazyConnect: true });
  const worker = createRedis('redis-cluster://a:7000', 'worker', { lazyConnect: true });
  try {
    expect(producer).toBeInstanceOf(Cluster);
    expect((producer as Cluster).options).toMatchObject({ enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1, commandTimeout: 5_000, username: 'u', password: 'pw', tls: {} } });
    expect((worker as Cluster).options).toMatchObject({ enableOfflineQueue: true, redisOptions: { maxRetriesPerRequest: null } });
    expect((worker as Cluster).options.redisOptions).not.toHaveProperty('commandTimeout');
  } finally {
    producer.disconnect();
    worker.disconnect();
  }
});

describe('the service on the cluster', () => {
  const plansDir = mkdtempSync(join(tmpdir(), 'vmr-cluster-plans-'));
  const plans: PlanRegistry = makeTestPlans(plansDir, core);
  const keyring = parseKeyring(`t${randomBytes(4).toString('hex')}:${randomBytes(32).toString('base64')}`);
  const received: Array<{ type: string; data: { job?: { id: string } } }> = [];
  let app: FastifyInstance;
  let db: Db;
  let owner: TestTenant;
  let worker: RunningWorker;
  let webhooks: RunningWebhookWorker;
  let server: Server;

  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    // The API with a low rate limit: its buckets are Redis keys too.
    app = await buildApp({ config, logLevel: 'silent', security: testSecurity({ rateLimitPerMin: 3 }), keyring: null });
    await app.ready();
    db = createDb(config.databaseUrl);
    owner = await createTenantWithKey(db, ['restores:read', 'restores:write']);
    await createWebhook(db, keyring, owner.tenantId, { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, events: ['job.succeeded'] }, { allowPrivate: true, allowHttp: true });
    worker = await startWorker({ config, plans, log: pino({ level: 'silent' }), scopeTenantId: owner.tenantId });
    webhooks = await startWebhookWorker({ config, db, keyring, log: pino({ level: 'silent' }), allowPrivate: true, backoffBaseMs: 50 });
  });
  afterAll(async () => {
    await worker?.close();
    await webhooks?.close();
    await app?.restoreQueue.obliterate({ force: true }).catch(() => undefined);
    await app?.webhookQueue.obliterate({ force: true }).catch(() => undefined);
    await app?.close();
    await db?.$disconnect();
    await new Promise((resolve) => server?.close(resolve));
    rmSync(plansDir, { recursive: true, force: true });
  });

  const newVm = () => `vm-${Math.floor(Math.random() * 1e9)}`;
  const ended = (id: string) =>
    waitFor(`job ${id} to end`, async () => {
      const j = await db.restoreJob.findUnique({ where: { id } });
      return j && ['succeeded', 'failed', 'cancelled', 'cleanup_pending'].includes(j.state) ? j : null;
    }, 30_000);
  const runs = (id: string) => {
    const f = join(plansDir, `${id}.log`);
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').map((l) => l.split(' ').slice(1, 3).join(' ')) : [];
  };

  it('runs a restore from the API through the real worker, announces it by webhook, and reconciles a job the queue never got', async () => {
    expect(app.redis).toBeInstanceOf(Cluster);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect([ready.statusCode, JSON.parse(ready.body).checks.redis]).toEqual([200, 'ok']);

    const res = await app.inject({
      method: 'POST',
      url: '/v1/restores',
      headers: { ...owner.headers, 'content-type': 'application/json' },
      payload: JSON.stringify({ kind: 'in_place', vcenter: 'vc1', source: { vm: 'web01', point: 'p1' }, target: { vm: newVm() }, label: 'plan:steps=a,b;cleanup=z' }),
    });
    expect(res.statusCode).toBe(202);
    const id = JSON.parse(res.body).id as string;
    expect((await ended(id)).state).toBe('succeeded');
    expect(runs(id)).toEqual(['main a', 'main b', 'cleanup z']);
    // The worker's event went through the webhooks queue to the webhook worker, then here.
    await waitFor('the job.succeeded webhook', async () => received.some((e) => e.type === 'job.succeeded' && e.data.job?.id === id), 20_000);

    // A job recorded but never enqueued (Redis was down at that moment): the worker's reconciler queues it.
    const { job } = await createRestoreJob(db, owner.tenantId, { kind: 'in_place', vcenter: 'vc1', source: { vm: 'web01', point: 'p1' }, target: { vm: newVm() }, label: 'plan:steps=c' });
    await db.restoreJob.update({ where: { id: job.id }, data: { updatedAt: new Date(Date.now() - 60_000) } });
    expect((await ended(job.id)).state).toBe('succeeded');
    expect(runs(job.id)).toEqual(['main c']);
  });

  it('rate-limits API keys with buckets in the cluster', async () => {
    const other = await createKey(db, owner.tenantId, ['restores:read']);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await app.inject({ method: 'GET', url: '/v1/restores', headers: other.headers })).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('writes every key of its prefix into the one slot of the tag', async () => {
    const ours: string[] = [];
    for (const node of (app.redis as Cluster).nodes('master')) {
      const keys = await node.keys(`*${raw}*`);
      // All on the master that owns the tag's slot, none anywhere else.
      if (keys.length) expect(Number(node.options.port)).toBe(await ownerOf(app.redis, await slot(app.redis, raw)));
      ours.push(...keys);
    }
    for (const k of ours) expect(k.startsWith(`${config.queue.prefix}:`)).toBe(true);
    // The queues (restore, webhooks) and the rate limiter's buckets are there.
    expect(ours.some((k) => k.startsWith(`${config.queue.prefix}:restore:`))).toBe(true);
    expect(ours.some((k) => k.startsWith(`${config.queue.prefix}:webhooks:`))).toBe(true);
    expect(ours.some((k) => k.startsWith(`${config.queue.prefix}:ratelimit:`))).toBe(true);
  });
});

it('holds capacity over keys that, untagged, live on different nodes; without the tag the cluster refuses them (CROSSSLOT)', async () => {
  // One seed is enough: the client reads the slot map from it and finds the other nodes.
  const client = createRedis(`redis-cluster://127.0.0.1:${ports[1]}`, 'worker');
  const producer = createRedis(url, 'producer');
  try {
    // Two resources whose untagged keys are served by different masters.
    const owners = new Map<number, string>();
    for (let i = 0; owners.size < 2; i++) owners.set(await ownerOf(client, await slot(client, `${raw}:cap:ds:${i}`)), `ds:${i}`);
    const [k1, k2] = [...owners.values()] as [string, string];
    const tagged = await slot(client, raw);
    expect(await slot(client, `${config.queue.prefix}:cap:${k1}`)).toBe(tagged);
    expect(await slot(client, `${config.queue.prefix}:cap:${k2}`)).toBe(tagged);

    const cap = new Capacity(client, { prefix: config.queue.prefix, leaseMs: 5_000 });
    const requests = [
      { key: k1, units: 1, limit: 1, label: 'one' },
      { key: k2, units: 2, limit: 2, label: 'two' },
    ];
    expect(await cap.tryAcquire('h1', requests)).toBeNull();
    expect(await cap.tryAcquire('h2', [requests[1]!])).toEqual(requests[1]);
    expect(await cap.renew({ holder: 'h1', requests })).toBe(true);
    expect([await cap.inUse(k1), await cap.inUse(k2)]).toEqual([1, 2]);
    await cap.release({ holder: 'h1', requests });
    expect([await cap.inUse(k1), await cap.inUse(k2)]).toEqual([0, 0]);
    expect(await cap.tryAcquire('h2', requests)).toBeNull();
    await cap.release({ holder: 'h2', requests });

    // Untagged, the same calls are refused: the prefix's braces are what make them work.
    await expect(new Capacity(client, { prefix: raw, leaseMs: 5_000 }).tryAcquire('h3', requests)).rejects.toThrow(/CROSSSLOT/);
    const untagged = new Queue('restore', { connection: producer, prefix: raw });
    untagged.on('error', () => undefined);
    try {
      await expect(untagged.add('restore.run', { jobId: 'x' })).rejects.toThrow(/CROSSSLOT/);
    } finally {
      await untagged.close();
    }
  } finally {
    client.disconnect();
    producer.disconnect();
  }
});
