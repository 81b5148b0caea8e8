import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Capacity, createRedis, createVcenterConnection, loadKeyring, vsphere, type FixtureChain, type Redis } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { serviceEnv, waitFor } from '../support/env';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';
import { startVcsim, type Vcsim } from '../support/vcsim';

// Issue #9 acceptance: 3 worker processes, 30 restores across 2 vCenter
// harnesses and 3 datastores each, under small limits. Sampled throughout,
// no limit is ever exceeded; jobs wait (waiting_for_capacity, with the
// reason) instead; a worker killed mid-run loses nothing; every job ends
// succeeded with its disks byte-identical to the point.

const LIMITS = { vcenterJobs: 3, datastoreJobs: 1, hostJobs: 2 };

let renv: RestoreEnv;
let sim2: Vcsim;
let api: Proc & { url: string };
const workers: Proc[] = [];
let chain: FixtureChain;
let redis: Redis;
const vcName2 = `vc2-${Math.random().toString(36).slice(2, 8)}`;
const { http, ended } = apiCalls(() => api.url, () => renv.headers);
const hostOf = (s: Vcsim) => new URL(s.url).host.toLowerCase();

beforeAll(async () => {
  const flags = ['-datastores', '3', '-disk-mb', '16'];
  sim2 = await startVcsim(flags);
  // Datastore names repeat across vCenters: the file target maps them per vCenter.
  const qualified = (s: Vcsim) => Object.entries(s.datastores).map(([k, v]) => `${hostOf(s)}/${k}=${v}`);
  renv = await startRestoreEnv(flags, {
    VMRESTORE_LIMIT_VCENTER_JOBS: String(LIMITS.vcenterJobs),
    VMRESTORE_LIMIT_DATASTORE_JOBS: String(LIMITS.datastoreJobs),
    VMRESTORE_LIMIT_HOST_JOBS: String(LIMITS.hostJobs),
    VMRESTORE_CAPACITY_RETRY_MS: '200',
    VMRESTORE_CAPACITY_LEASE_MS: '3000',
    VMRESTORE_WORKER_CONCURRENCY: '4',
  });
  renv.env.VMRESTORE_DATASTORE_PATHS = [...qualified(renv.sim), ...qualified(sim2)].join(';');
  await createVcenterConnection(renv.db, loadKeyring(serviceEnv()), renv.tenantId, { name: vcName2, url: sim2.url, username: sim2.username, password: sim2.password, thumbprint: sim2.thumbprintSha256 });
  const c = await renv.client();
  const src = await vsphere.findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
  await c.close();
  chain = await renv.backupFor(src.value, 'sched-src', { incrementals: 2, seed: 23 });
  redis = createRedis(serviceEnv().REDIS_URL!, 'worker');
  api = await startApi(renv.env);
  for (let i = 0; i < 3; i++) workers.push(await startWorkerProcess(renv.env));
}, 180_000);
afterAll(async () => {
  for (const w of workers) await stop(w, 'SIGKILL');
  await stop(api);
  await redis?.quit();
  await sim2?.stop();
  await renv?.close();
});

async function vmByName(sim: Vcsim, name: string) {
  const c = await vsphere.VSphereClient.connect({ url: sim.url, username: sim.username, password: sim.password, thumbprint: sim.thumbprintSha256, keepAliveMs: 0 });
  try {
    const all = await vsphere.findAll(c, 'VirtualMachine', ['name']);
    const hit = all.find((o) => vsphere.propValue<string>(o, 'name') === name);
    return hit ? await vsphere.getVmInfo(c, hit.obj) : null;
  } finally {
    await c.close();
  }
}

it('30 restores on 3 workers and 2 vCenters: limits never exceeded (sampled), waits reported, a killed worker loses nothing, every disk exact', async () => {
  const capacity = new Capacity(redis, { prefix: renv.env.VMRESTORE_QUEUE_PREFIX!, leaseMs: 3000 });
  const sims = [renv.sim, sim2];
  const keys = sims.flatMap((s) => [
    { key: `vc:${hostOf(s)}:jobs`, limit: LIMITS.vcenterJobs },
    ...Object.keys(s.datastores).map((ds) => ({ key: `ds:${hostOf(s)}:${ds}:jobs`, limit: LIMITS.datastoreJobs })),
  ]);
  const peak = new Map<string, number>(keys.map((k) => [k.key, 0]));
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const k of keys) peak.set(k.key, Math.max(peak.get(k.key)!, await capacity.inUse(k.key)));
      samples++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  // 30 new VMs, 15 per vCenter, over 3 datastores each, slowed by a per-job bandwidth cap so writes overlap.
  const jobs: Array<{ id: string; sim: Vcsim; name: string }> = [];
  for (let i = 0; i < 30; i++) {
    const sim = sims[i % 2]!;
    const name = `sched-${i}`;
    const r = await http('POST', '/v1/restores', '/v1/restores', {
      kind: 'new_vm',
      vcenter: sim === renv.sim ? renv.vcenterName : vcName2,
      source: { vm: 'sched-src', point: 'p2' },
      target: { name, datastore: `LocalDS_${Math.floor(i / 2) % 3}` },
      options: { transports: ['file'], powerOn: false, maxMBps: 16 },
      ...(i % 7 === 0 ? { priority: 'dr' } : {}),
    });
    expect(r.status).toBe(202);
    jobs.push({ id: r.body.id, sim, name });
  }

  // Jobs wait for capacity, and say for what.
  let waitingSeen: any = null;
  await waitFor('a job waiting for capacity', async () => {
    const list = await http('GET', '/v1/restores?state=waiting_for_capacity&limit=5', '/v1/restores');
    waitingSeen = list.body.items[0] ?? null;
    return waitingSeen !== null;
  }, 60_000);
  expect(waitingSeen.waitingFor).toMatch(/^waiting for (vCenter|datastore|ESXi host) /);

  // Kill one worker while jobs run: the others take its jobs over.
  await waitFor('some jobs done', async () => {
    const done = await renv.db.restoreJob.count({ where: { id: { in: jobs.map((j) => j.id) }, state: 'succeeded' } });
    return done >= 6;
  }, 120_000);
  await stop(workers[0], 'SIGKILL');

  const results = [];
  for (const j of jobs) results.push(await ended(j.id, 240_000));
  sampling = false;
  await sampler;

  const states = results.map((r) => r.state);
  console.log(`scheduling: jobs: ${results.length}, succeeded: ${states.filter((s) => s === 'succeeded').length}, samples: ${samples}, peaks: ${JSON.stringify(Object.fromEntries(peak))}`);
  expect(results.map((r) => [r.state, r.error])).toEqual(results.map(() => ['succeeded', null]));
  for (const k of keys) expect(peak.get(k.key)!).toBeLessThanOrEqual(k.limit);
  // The limits were reached, so the sampling could have seen a breach.
  expect(Math.max(...keys.filter((k) => k.key.startsWith('ds:')).map((k) => peak.get(k.key)!))).toBe(LIMITS.datastoreJobs);
  const waits = await renv.db.jobEvent.findMany({ where: { jobId: { in: jobs.map((j) => j.id) }, type: 'capacity.wait' } });
  expect(waits.length).toBeGreaterThan(0);
  // Coming back from a wait is not a new start: no second job.started (only a worker's death may add one).
  for (const id of new Set(waits.map((w) => w.jobId))) {
    expect(await renv.db.jobEvent.count({ where: { jobId: id, type: 'job.started' } })).toBeLessThanOrEqual(2);
  }

  // Every disk of every new VM is the point, on the vCenter and datastore it was asked for.
  const point = chain.points.find((p) => p.pointId === 'p2')!;
  for (const [i, j] of jobs.entries()) {
    const info = (await vmByName(j.sim, j.name))!;
    for (const [d, disk] of info.disks.entries()) {
      expect(disk.fileName.startsWith(`[LocalDS_${Math.floor(i / 2) % 3}]`)).toBe(true);
      const flat = readFileSync(j.sim.flatPath(disk.fileName));
      const want = point.images.get(point.manifest.disks[d]!.key)!;
      expect(flat.subarray(0, want.length).equals(want)).toBe(true);
    }
  }
});
