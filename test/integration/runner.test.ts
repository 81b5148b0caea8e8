import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import * as core from '@vmrestore/core';
import { createDb, createRedis, createRestoreQueue, createRestoreJob, enqueueRestore, requestCancel, type Db } from '@vmrestore/core';
import { MAX_REQUEUES, reconcileQueue, startWorker, type RunningWorker, type PlanRegistry } from '@vmrestore/worker';
import { testConfig, waitFor } from '../support/env';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { makeTestPlans } = require('../support/test-plans.cjs');

// The step runner against real Postgres and Redis, with the test-only plans
// (test/support/test-plans.cjs) standing in for restore steps.

const config = testConfig({ VMRESTORE_REQUEUE_INTERVAL_MS: '1000', VMRESTORE_SWEEP_INTERVAL_MS: '1000' });
const dir = mkdtempSync(join(tmpdir(), 'vmrestore-runner-'));
const plans: PlanRegistry = makeTestPlans(dir, core);
let db: Db;
let tenantId: string;
let worker: RunningWorker;
const redis = createRedis(config.redisUrl, 'producer');
const queue = createRestoreQueue(redis, config);

const runs = (jobId: string) => (existsSync(join(dir, `${jobId}.log`)) ? readFileSync(join(dir, `${jobId}.log`), 'utf8').trim().split('\n').filter((l) => l.startsWith('run ')) : []);

let vmSeq = Math.floor(Math.random() * 1e6) * 1000;
async function submit(label: string) {
  const { job } = await createRestoreJob(db, tenantId, { kind: 'in_place', vcenter: 'vc1', source: { vm: 'a', point: 'p1' }, target: { vm: `vm-${++vmSeq}` }, label });
  await enqueueRestore(queue, job.id);
  return job.id;
}
const settled = (id: string) =>
  waitFor(`job ${id} to end`, async () => {
    const j = await db.restoreJob.findUnique({ where: { id } });
    return j && ['succeeded', 'failed', 'cancelled', 'cleanup_pending'].includes(j.state) ? j : null;
  });
const steps = (id: string) => db.jobStep.findMany({ where: { jobId: id }, orderBy: [{ phase: 'desc' }, { seq: 'asc' }] });
const events = async (id: string) => (await db.jobEvent.findMany({ where: { jobId: id }, orderBy: { id: 'asc' } })).map((e) => (e.step ? `${e.type}:${e.step}` : e.type));

beforeAll(async () => {
  db = createDb(config.databaseUrl);
  // A tenant of its own, so this worker's requeue and sweep see only this file's jobs.
  tenantId = (await db.tenant.create({ data: { name: `runner-test-${Date.now()}-${Math.random().toString(36).slice(2, 6)}` } })).id;
  worker = await startWorker({ config, plans, log: pino({ level: 'silent' }), scopeTenantId: tenantId });
});
afterAll(async () => {
  await worker.close();
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  redis.disconnect();
  await db.$disconnect();
});

it('runs each step once, in order, recording each before the next', async () => {
  const id = await submit('plan:steps=a,b,c;cleanup=z');
  const job = await settled(id);
  expect(job.state).toBe('succeeded');
  expect(job.attempt).toBe(1);
  expect(job.currentStep).toBeNull();
  expect(runs(id).map((l) => l.split(' ').slice(1, 3).join(' '))).toEqual(['main a', 'main b', 'main c', 'cleanup z']);
  expect((await steps(id)).map((s) => [s.phase, s.name, s.state, s.attempt])).toEqual([
    ['main', 'a', 'succeeded', 1],
    ['main', 'b', 'succeeded', 1],
    ['main', 'c', 'succeeded', 1],
    ['cleanup', 'z', 'succeeded', 1],
  ]);
  expect(await events(id)).toEqual([
    'job.queued', 'job.started',
    'step.started:a', 'progress:a', 'step.succeeded:a',
    'step.started:b', 'progress:b', 'step.succeeded:b',
    'step.started:c', 'progress:c', 'step.succeeded:c',
    'step.started:z', 'step.succeeded:z',
    'job.succeeded',
  ]);
});

it('retries a transient failure with backoff, resuming at the failed step', async () => {
  const id = await submit('plan:steps=a,b;transient=b:2');
  const job = await settled(id);
  expect(job.state).toBe('succeeded');
  expect(job.attempt).toBe(3);
  expect(runs(id).map((l) => l.split(' ')[2])).toEqual(['a', 'b', 'b', 'b']);
  const ev = await events(id);
  expect(ev.filter((e) => e === 'job.retry_scheduled:b')).toHaveLength(2);
});

it('fails at once on a permanent error, then runs cleanup', async () => {
  const id = await submit('plan:steps=a,b,c;permanent=b;cleanup=z');
  const job = await settled(id);
  expect(job.state).toBe('failed');
  expect(job.errorCode).toBe('TEST_PERMANENT');
  expect(job.attempt).toBe(1);
  expect(runs(id).map((l) => l.split(' ')[2])).toEqual(['a', 'b', 'z']);
  expect((await steps(id)).find((s) => s.name === 'c')?.state).toBe('pending');
});

it('gives up when the attempts run out', async () => {
  const id = await submit('plan:steps=a;transient=a:99;cleanup=z');
  const job = await settled(id);
  expect(job.state).toBe('failed');
  expect(job.errorCode).toBe('TEST_TRANSIENT');
  expect(job.errorMessage).toMatch(/gave up after 5 attempts/);
  expect(runs(id).filter((l) => l.includes('main a'))).toHaveLength(5);
  expect(runs(id).at(-1)).toMatch(/cleanup z/);
});

it('cancels a running job at the step boundary, then runs cleanup', async () => {
  const id = await submit('plan:steps=a,b,c;block=b;cleanup=z');
  await waitFor('step b to block', async () => existsSync(join(dir, `${id}.log`)) && readFileSync(join(dir, `${id}.log`), 'utf8').includes('blocked b'));
  await requestCancel(db, tenantId, id);
  const job = await settled(id);
  expect(job.state).toBe('cancelled');
  expect(job.errorCode).toBe('CANCELLED');
  expect(runs(id).map((l) => l.split(' ')[2])).toEqual(['a', 'b', 'z']);
  const byName = Object.fromEntries((await steps(id)).map((s) => [s.name, s.state]));
  expect(byName).toEqual({ a: 'succeeded', b: 'pending', c: 'pending', z: 'succeeded' });
  expect(await events(id)).toEqual(expect.arrayContaining(['job.cancel_requested', 'step.interrupted:b', 'job.cancelled']));
});

it('ends a job whose cleanup keeps failing cleanup_pending, and the next run retries only the cleanup', async () => {
  const id = await submit('plan:steps=a;cleanup=y,z;failcleanup=y');
  const job = await settled(id);
  expect(job.state).toBe('cleanup_pending');
  expect(job.errorCode).toBe('CLEANUP_FAILED');
  expect(runs(id).filter((l) => l.includes('cleanup y'))).toHaveLength(3);
  expect(runs(id).at(-1)).toMatch(/cleanup z/); // later cleanup still runs
  expect(await events(id)).toContain('job.cleanup_pending:y');
});

it('the sweeper retries a cleanup_pending job until its cleanup passes; the job then gets the state its steps earned', async () => {
  const id = await submit('plan:steps=a;cleanup=y;failcleanup=y:3');
  await waitFor('cleanup_pending', async () => (await db.restoreJob.findUnique({ where: { id } }))?.state === 'cleanup_pending');
  const job = await waitFor('the sweeper', async () => {
    const j = await db.restoreJob.findUnique({ where: { id } });
    return j?.state === 'succeeded' ? j : null;
  }, 30_000);
  expect(job.errorCode).toBeNull();
  expect(runs(id).filter((l) => l.includes('cleanup y'))).toHaveLength(4);
  expect(runs(id).filter((l) => l.includes('main a'))).toHaveLength(1);
  expect(await events(id)).toContain('job.cleanup_retry');
});

it('leaves a job resumable when the worker shuts down mid-step, and another worker finishes it', async () => {
  const id = await submit('plan:steps=a,b,c;block=b');
  await waitFor('step b to block', async () => existsSync(join(dir, `${id}.log`)) && readFileSync(join(dir, `${id}.log`), 'utf8').includes('blocked b'));
  await worker.close();
  const mid = await db.restoreJob.findUniqueOrThrow({ where: { id } });
  expect(mid.state).toBe('queued');
  expect((await steps(id)).map((s) => s.state)).toEqual(['succeeded', 'pending', 'pending']);
  writeFileSync(join(dir, `${id}.b.release`), '');
  worker = await startWorker({ config, plans, log: pino({ level: 'silent' }), scopeTenantId: tenantId });
  const job = await settled(id);
  expect(job.state).toBe('succeeded');
  expect(runs(id).map((l) => l.split(' ')[2])).toEqual(['a', 'b', 'b', 'c']); // a never again
  expect(await events(id)).toContain('worker.shutdown');
});

it('a cancel of a job waiting for a retry is not taken as never started: its worker runs the cleanup', async () => {
  const id = await submit('plan:steps=a,b;block=b;cleanup=z');
  await waitFor('step b to block', async () => existsSync(join(dir, `${id}.log`)) && readFileSync(join(dir, `${id}.log`), 'utf8').includes('blocked b'));
  await worker.close(); // shutdown: the job is queued again, having run step a
  expect((await db.restoreJob.findUniqueOrThrow({ where: { id } })).state).toBe('queued');
  const { job: afterCancel, wasQueued } = await requestCancel(db, tenantId, id);
  expect([afterCancel.state, wasQueued]).toEqual(['queued', false]);
  writeFileSync(join(dir, `${id}.b.release`), '');
  worker = await startWorker({ config, plans, log: pino({ level: 'silent' }), scopeTenantId: tenantId });
  const job = await settled(id);
  expect(job.state).toBe('cancelled');
  expect(runs(id).at(-1)).toMatch(/cleanup z/); // the cleanup ran
});

it('a cancel that comes once every step is done leaves the job succeeded', async () => {
  const id = await submit('plan:steps=a,b;slow=b:400;cleanup=z');
  await waitFor('step b to start', async () => existsSync(join(dir, `${id}.log`)) && readFileSync(join(dir, `${id}.log`), 'utf8').includes('run main b'));
  await new Promise((r) => setTimeout(r, 450)); // b has finished; the cancel poll may still fire
  await requestCancel(db, tenantId, id).catch(() => undefined);
  const job = await settled(id);
  expect(job.state).toBe('succeeded');
});

describe('the reconciler: the queue and the job table agree again after a crash', () => {
  const old = () => new Date(Date.now() - 60_000); // past the reconciler's minimum age
  const requeued = async (id: string) => (await db.jobEvent.findMany({ where: { jobId: id, type: 'job.requeued' }, orderBy: { id: 'asc' } })).map((e) => e.data as Record<string, unknown>);

  it('a job whose end was lost (Postgres crashed before flushing it) runs again and ends, without redoing recorded steps', async () => {
    const id = await submit('plan:steps=a,b;cleanup=z');
    expect((await settled(id)).state).toBe('succeeded');
    // The lost commit: the row is back to running; the queue entry is completed.
    await db.restoreJob.update({ where: { id }, data: { state: 'running', finishedAt: null, updatedAt: old() } });
    await db.jobEvent.deleteMany({ where: { jobId: id, type: 'job.succeeded' } });
    expect(await (await queue.getJob(id))!.getState()).toBe('completed');
    const job = await waitFor('the job to end again', async () => {
      const j = await db.restoreJob.findUnique({ where: { id } });
      return j?.state === 'succeeded' ? j : null;
    });
    expect(job.attempt).toBe(2);
    expect(await requeued(id)).toEqual([expect.objectContaining({ reason: 'end_not_recorded', queueState: 'completed', requeues: 1, abandon: false })]);
    expect(runs(id).map((l) => l.split(' ').slice(1, 3).join(' '))).toEqual(['main a', 'main b', 'cleanup z']); // nothing ran twice
    expect((await events(id)).filter((e) => e === 'job.succeeded')).toHaveLength(1);
  });

  it('a running job whose queue entry is gone (Redis lost it) is queued again and finishes', async () => {
    const { job: created } = await createRestoreJob(db, tenantId, { kind: 'in_place', vcenter: 'vc1', source: { vm: 'a', point: 'p1' }, target: { vm: `vm-${++vmSeq}` }, label: 'plan:steps=a,b;cleanup=z' });
    const id = created.id;
    await db.restoreJob.update({ where: { id }, data: { state: 'running', attempt: 1, startedAt: new Date(), updatedAt: old() } });
    const job = await settled(id);
    expect([job.state, job.attempt]).toEqual(['succeeded', 2]);
    expect(await requeued(id)).toEqual([expect.objectContaining({ reason: 'queue_entry_missing', queueState: 'missing', requeues: 1 })]);
  });

  it('a job that lost its run too often is abandoned: its cleanup runs and it ends failed with WORKER_LOST', async () => {
    const { job: created } = await createRestoreJob(db, tenantId, { kind: 'in_place', vcenter: 'vc1', source: { vm: 'a', point: 'p1' }, target: { vm: `vm-${++vmSeq}` }, label: 'plan:steps=a,b;cleanup=z' });
    const id = created.id;
    for (let n = 1; n <= MAX_REQUEUES; n++) await core.appendEvent(db, id, 'job.requeued', null, { reason: 'queue_entry_failed', requeues: n });
    await db.restoreJob.update({ where: { id }, data: { state: 'running', attempt: 3, startedAt: new Date(), updatedAt: old() } });
    const job = await settled(id);
    expect([job.state, job.errorCode]).toEqual(['failed', 'WORKER_LOST']);
    expect(runs(id).map((l) => l.split(' ').slice(1, 3).join(' '))).toEqual(['cleanup z']); // no step ran; the cleanup did
    expect((await requeued(id)).at(-1)).toEqual(expect.objectContaining({ abandon: true, requeues: MAX_REQUEUES + 1 }));
    expect(await events(id)).not.toContain('job.started');
  });

  it('leaves alone a job a worker is running, and a young row whose enqueue may be on its way', async () => {
    const id = await submit('plan:steps=a,b;block=a');
    await waitFor('step a to block', async () => existsSync(join(dir, `${id}.log`)) && readFileSync(join(dir, `${id}.log`), 'utf8').includes('blocked a'));
    await db.restoreJob.update({ where: { id }, data: { updatedAt: old() } });
    const { job: young } = await createRestoreJob(db, tenantId, { kind: 'in_place', vcenter: 'vc1', source: { vm: 'a', point: 'p1' }, target: { vm: `vm-${++vmSeq}` }, label: 'plan:steps=a' });
    const result = await reconcileQueue({ db, queue, log: pino({ level: 'silent' }), tenantId });
    expect(result.requeued).not.toContain(id);
    expect(result.requeued).not.toContain(young.id);
    expect(await requeued(id)).toEqual([]);
    writeFileSync(join(dir, `${id}.a.release`), '');
    expect((await settled(id)).state).toBe('succeeded');
    await enqueueRestore(queue, young.id);
    await settled(young.id);
  });
});
