import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// prng: the fixtures' seeded PRNG (mulberry32), so a schedule can be replayed.
import { prng, vsphere, type FixtureChain } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { startPrivateServices, type PrivateServices } from '../support/private-services';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// The chaos test (issue #11, docs/resilience.md): a batch of in-place
// restores (file target and the VDDK simulator, several VMs) through the API
// and two worker processes, while a seeded schedule SIGKILLs and restarts a
// worker, Redis and Postgres at random moments (bounded: DISRUPTIONS of
// them, loopback only, on this file's own Postgres and Redis). At the end
// every job has ended succeeded or failed with a clear code, every
// succeeded disk is byte-identical to its point, no temporary snapshot and
// no VM lock of an ended job is left. Reproduce a run with its seed:
//   VMRESTORE_CHAOS_SEED=1234 npx jest --selectProjects e2e --testPathPatterns test/e2e/chaos

const SEED = Number(process.env.VMRESTORE_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const DISRUPTIONS = 6;
const JOBS = 12;

let svc: PrivateServices;
let renv: RestoreEnv;
let api: Proc & { url: string };
const workers: Proc[] = [];
// Every worker process started (killed ones too): their logs are written to
// test-results/chaos/ at the end, to diagnose a job that did not end.
const allWorkers: Proc[] = [];
const { http } = apiCalls(() => api.url, () => renv.headers);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const WORKER_ENV = {
  VMRESTORE_WORKER_CONCURRENCY: '2',
  VMRESTORE_LOCK_DURATION_MS: '8000',
  VMRESTORE_STALLED_INTERVAL_MS: '2000',
  VMRESTORE_REQUEUE_INTERVAL_MS: '1000',
  // The sweeper retries cleanup_pending jobs (a cleanup that met an outage).
  VMRESTORE_SWEEP_INTERVAL_MS: '2000',
  VMRESTORE_DB_WAIT_MS: '60000',
  VMRESTORE_STEP_ABORT_GRACE_MS: '5000',
  VMRESTORE_WRITE_BATCH_EXTENTS: '4',
};

beforeAll(async () => {
  svc = await startPrivateServices();
  renv = await startRestoreEnv(['-vms', '6', '-disk-mb', '8'], WORKER_ENV, svc);
  api = await startApi(renv.env);
}, 180_000);
afterAll(async () => {
  await Promise.all(workers.map((w) => stop(w, 'SIGKILL')));
  const dir = join(__dirname, '../../test-results/chaos');
  mkdirSync(dir, { recursive: true });
  allWorkers.forEach((w, i) => writeFileSync(join(dir, `worker-${i}.log`), w.output()));
  if (api) writeFileSync(join(dir, 'api.log'), api.output());
  await stop(api);
  await renv?.close();
  await svc?.close();
});

it(`a batch of restores survives workers, Redis and Postgres killed at random (seed ${SEED})`, async () => {
  process.stdout.write(`chaos seed: ${SEED} (VMRESTORE_CHAOS_SEED=${SEED} replays this schedule)\n`);
  const rnd = prng(SEED);
  // One job per VM (one active restore per VM): 6 on the standalone host, 6 in the cluster.
  const names = Array.from({ length: JOBS / 2 }, (_, i) => [`DC0_H0_VM${i}`, `DC0_C0_RP0_VM${i}`]).flat();
  const c = await renv.client();
  const vms: vsphere.MoRef[] = [];
  for (const name of names) vms.push(await vsphere.findVm(c, { inventoryPath: `DC0/vm/${name}` }));
  await c.close();
  const chains = new Map<string, FixtureChain>();
  for (const [i, vm] of vms.entries()) chains.set(vm.value, await renv.backupFor(vm.value, `chaos-${i}`, { incrementals: 2, seed: SEED + i }));

  for (let i = 0; i < 2; i++) workers.push(await startWorkerProcess(renv.env));
  allWorkers.push(...workers);
  renv.setVddk({ writeDelayMs: 4 });
  const jobs: Array<{ id: string; vm: vsphere.MoRef; vmId: string; point: string }> = [];
  for (const [i, vm] of vms.entries()) {
    const point = `p${i % 3}`;
    const created = await http('POST', '/v1/restores', '/v1/restores', {
      kind: 'in_place',
      vcenter: renv.vcenterName,
      source: { vm: `chaos-${i}`, point },
      target: { vm: vm.value },
      options: { transports: [i % 2 ? 'nbdssl' : 'file'] },
    });
    expect(created.status).toBe(202);
    jobs.push({ id: created.body.id, vm, vmId: `chaos-${i}`, point });
  }

  // The schedule: DISRUPTIONS kills at random moments, each followed by a restart.
  const log: string[] = [];
  for (let n = 0; n < DISRUPTIONS; n++) {
    await sleep(500 + rnd() * 3000);
    const what = (['worker', 'redis', 'postgres'] as const)[Math.floor(rnd() * 3)]!;
    const down = 300 + rnd() * 2000;
    if (what === 'worker') {
      const i = Math.floor(rnd() * workers.length);
      await stop(workers[i], 'SIGKILL');
      await sleep(down);
      workers[i] = await startWorkerProcess(renv.env, { readyTimeoutMs: 60_000 });
      allWorkers.push(workers[i]!);
    } else if (what === 'redis') {
      await svc.killRedis();
      await sleep(down);
      await svc.startRedis();
    } else {
      await svc.killPostgres();
      await sleep(down);
      await svc.startPostgres();
    }
    log.push(`${what} ${Math.round(down)}ms`);
    process.stdout.write(`chaos: ${log.at(-1)}\n`);
  }
  renv.setVddk({ writeDelayMs: 0 });

  // Every job ends, within a bound: succeeded or failed (cleanup_pending is
  // not an end here: the sweeper must finish its cleanup).
  const ids = jobs.map((j) => j.id);
  const deadline = Date.now() + 150_000;
  let rows = await renv.db.restoreJob.findMany({ where: { id: { in: ids } } });
  while (rows.some((r) => !['succeeded', 'failed', 'cancelled'].includes(r.state)) && Date.now() < deadline) {
    await sleep(500);
    rows = await renv.db.restoreJob.findMany({ where: { id: { in: ids } } }).catch(() => rows);
  }
  const states = rows.map((r) => `${r.id.slice(0, 8)} ${r.state} ${r.errorCode ?? ''}`);
  for (const r of rows.filter((x) => !['succeeded', 'failed'].includes(x.state))) {
    // A job that did not end: its row and timeline, to tell why.
    const events = await renv.db.jobEvent.findMany({ where: { jobId: r.id }, orderBy: { id: 'asc' } }).catch(() => []);
    process.stdout.write(`not ended: ${JSON.stringify({ id: r.id, state: r.state, attempt: r.attempt, step: r.currentStep, events: events.map((e) => `${e.type} ${e.step ?? ''}`) })}\n`);
  }
  expect({ log, states, notEnded: rows.filter((r) => !['succeeded', 'failed'].includes(r.state)).length }).toEqual({ log, states, notEnded: 0 });

  const succeeded = rows.filter((r) => r.state === 'succeeded');
  const failed = rows.filter((r) => r.state === 'failed');
  // A failure names its cause with a stable code, never the catch-all.
  for (const f of failed) expect(f.errorCode).toMatch(/^[A-Z][A-Z0-9_]+$/);
  for (const f of failed) expect(f.errorCode).not.toBe('STEP_FAILED');
  for (const r of rows) {
    const job = await http('GET', `/v1/restores/${r.id}`, '/v1/restores/{id}');
    expect(job.body.state).toBe(r.state);
  }

  // Succeeded: the disks hold the point, byte for byte.
  const client = await renv.client();
  try {
    for (const r of succeeded) {
      const j = jobs.find((x) => x.id === r.id)!;
      const info = await vsphere.getVmInfo(client, j.vm);
      const point = chains.get(j.vm.value)!.points.find((p) => p.pointId === j.point)!;
      for (const d of info.disks) {
        const flat = readFileSync(renv.sim.flatPath(d.fileName));
        const expected = point.images.get(d.key)!;
        expect({ job: r.id, disk: d.key, identical: flat.subarray(0, expected.length).equals(expected) }).toEqual({ job: r.id, disk: d.key, identical: true });
      }
    }
    // Leftovers: temporary snapshots on any VM, VM locks of ended jobs.
    let snapshots = 0;
    for (const vm of vms) {
      const left = (await vsphere.listSnapshots(client, vm)).all.filter((s) => s.name.startsWith('vmrestore-'));
      if (left.length) process.stdout.write(`leftover snapshots on ${vm.value}: ${left.map((s) => s.name).join(', ')}\n`);
      snapshots += left.length;
    }
    const lockRows = await renv.db.vmLock.findMany({ where: { job: { state: { in: ['succeeded', 'failed', 'cancelled'] } } } });
    for (const l of lockRows) process.stdout.write(`leftover lock: ${JSON.stringify(l)}\n`);
    const locks = lockRows.length;
    const leftovers = snapshots + locks;
    process.stdout.write(`chaos disruptions: ${log.join(', ')}\n`);
    process.stdout.write(`jobs: ${rows.length}, succeeded: ${succeeded.length}, failed: ${failed.length}, leftovers: ${leftovers}\n`);
    expect({ snapshots, locks }).toEqual({ snapshots: 0, locks: 0 });
  } finally {
    await client.close();
  }
}, 420_000);
