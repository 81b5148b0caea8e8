import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { snapshotNeedsRevert } from './plans/in-place';
import { ACTIVE_STATES, JOB_MARKER, loadKeyring, metrics, vcenterClientOptions, vcenterCredentials, vsphere, type Config, type Db, type Keyring } from '@vmrestore/core';

// The orphan sweeper (docs/orphans.md): finds what jobs that died left
// behind, cleans what it safely can and records the rest.
//
//   - temporary snapshots named `vmrestore-<job id>` on any VM of a vCenter;
//   - VMs carrying our marker (extraConfig vmrestore.job = job id) whose job
//     failed, was cancelled, or whose row is gone: half-made new VMs;
//   - vm_locks rows whose job ended.
//
// The job row decides. A job still queued, running or in cleanup_pending owns
// its things (its own cleanup, or the cleanup sweeper, deals with them). A
// succeeded job's VM is the restore's result and is never touched. Each
// sweep is one row in orphan_sweeps with one orphan_items row per thing.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TEMP_SNAPSHOT = /^vmrestore-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;
const ACTIVE = new Set<string>(ACTIVE_STATES);

export type OrphanKind = 'snapshot' | 'vm' | 'lock' | 'vcenter';
export type OrphanAction = 'removed' | 'reverted_removed' | 'consolidated' | 'destroyed' | 'deleted' | 'none';
export type OrphanOutcome = 'cleaned' | 'left' | 'kept';
export type SweepTrigger = 'start' | 'interval' | 'request';

export interface OrphanItem {
  tenantId: string | null;
  kind: OrphanKind;
  vcenter: string | null;
  vmRef: string | null;
  vmName: string | null;
  snapshot: string | null;
  snapshotName: string | null;
  jobId: string | null;
  /** The job's state, or null when its row is gone. */
  jobState: string | null;
  action: OrphanAction;
  outcome: OrphanOutcome;
  errorCode: string | null;
  errorMessage: string | null;
}

// ---------------------------------------------------------------- decisions (pure)

/** The job id a temporary snapshot's name carries, or null when it is not one of ours. */
export function tempSnapshotJobId(name: string): string | null {
  return TEMP_SNAPSHOT.exec(name)?.[1]?.toLowerCase() ?? null;
}

/** A temporary snapshot: its job's own cleanup owns it while the job is active; otherwise it goes. */
export function decideSnapshot(jobState: string | null): 'keep' | 'remove' {
  return jobState && ACTIVE.has(jobState) ? 'keep' : 'remove';
}

/**
 * A VM with our marker. Succeeded: the restored VM, never touched (not an
 * orphan at all). Active: its job owns it. Failed, cancelled, or the job row
 * gone: a half-made VM, destroyed. A marker that names no job id is not ours
 * to judge: reported, left.
 */
export function decideVm(marker: string, jobState: string | null): 'ignore' | 'keep' | 'destroy' | 'refuse' {
  if (!UUID.test(marker)) return 'refuse';
  if (jobState === 'succeeded') return 'ignore';
  if (jobState && ACTIVE.has(jobState)) return 'keep';
  return 'destroy';
}

/**
 * A vm_locks row. The job's state decides; an ended job's lock stays while
 * its temporary snapshot could not be removed, or its vCenter was not
 * reachable (the lock keeps other restores off a VM with a leftover snapshot).
 */
export function decideLock(jobState: string, snapshotStillThere: boolean): 'ignore' | 'keep' | 'delete' {
  if (ACTIVE.has(jobState)) return 'ignore';
  return snapshotStillThere ? 'keep' : 'delete';
}

/** Backoff before retry `attempt` (1-based) of a removal: base, 2×base, 4×base, ... */
export const retryDelayMs = (attempt: number, baseMs: number) => baseMs * 2 ** (attempt - 1);

export function summarize(items: OrphanItem[]): { found: number; cleaned: number; left: number; kept: number } {
  const cleaned = items.filter((i) => i.outcome === 'cleaned').length;
  const left = items.filter((i) => i.outcome === 'left').length;
  return { found: cleaned + left, cleaned, left, kept: items.filter((i) => i.outcome === 'kept').length };
}

// ---------------------------------------------------------------- lease

/** The lease's key: one sweeper per scope at a time. */
export const leaseScope = (tenantId: string | null) => (tenantId ? `tenant:${tenantId}` : 'all');

/**
 * Takes the scope's lease for ttlMs unless another holder has it unexpired.
 * Times are Postgres's (no clock skew between hosts).
 */
export async function acquireLease(db: Db, scope: string, holder: string, ttlMs: number): Promise<boolean> {
  const rows = await db.$queryRaw<Array<{ holder: string }>>`
    INSERT INTO orphan_sweep_leases (scope, holder, expires_at) VALUES (${scope}, ${holder}, now() + ${ttlMs} * interval '1 millisecond')
    ON CONFLICT (scope) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
    WHERE orphan_sweep_leases.expires_at < now() OR orphan_sweep_leases.holder = EXCLUDED.holder
    RETURNING holder`;
  return rows.length === 1;
}

export async function renewLease(db: Db, scope: string, holder: string, ttlMs: number): Promise<boolean> {
  const n = await db.$executeRaw`UPDATE orphan_sweep_leases SET expires_at = now() + ${ttlMs} * interval '1 millisecond' WHERE scope = ${scope} AND holder = ${holder}`;
  return n === 1;
}

export async function releaseLease(db: Db, scope: string, holder: string): Promise<void> {
  await db.$executeRaw`DELETE FROM orphan_sweep_leases WHERE scope = ${scope} AND holder = ${holder}`;
}

// ---------------------------------------------------------------- one sweep

export interface SweepOptions {
  /** RemoveSnapshot attempts before escalating to ConsolidateVMDisks. */
  removeAttempts: number;
  /** First retry delay; doubles each time. */
  backoffBaseMs: number;
  /** Lease lifetime; renewed every third of it while the sweep runs. */
  leaseTtlMs: number;
  /** Timeout of one vCenter task. */
  taskTimeoutMs: number;
}

export const DEFAULT_SWEEP_OPTIONS: SweepOptions = { removeAttempts: 3, backoffBaseMs: 1_000, leaseTtlMs: 60_000, taskTimeoutMs: 10 * 60_000 };

export interface SweepDeps {
  db: Db;
  log: Logger;
  keyring: Keyring | null;
  /** Only this tenant's vCenters, jobs and locks; null = every tenant. */
  tenantId: string | null;
  /** This worker's name in the lease and the sweep row. */
  holder: string;
  options: SweepOptions;
  /** Scheduled sweeps are skipped when another worker swept the scope within this long. */
  minGapMs: number;
  signal?: AbortSignal;
}

export type SweepResult =
  | { ran: true; sweepId: string; status: 'done' | 'failed'; items: OrphanItem[] }
  | { ran: false; reason: 'lease_held' | 'recent' | 'nothing_requested' };

const errCode = (e: unknown) => {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'string' && /^[A-Z][A-Z0-9_]*$/.test(c) ? c : 'ERROR';
};
const errText = (e: unknown) => String((e as Error).message ?? e).slice(0, 500);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

class Interrupted extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/**
 * One sweep under the lease. `trigger` request: only when a request of the
 * scope is pending (it becomes the sweep's row); start/interval: skipped when
 * the scope was swept less than minGapMs ago (by any worker).
 */
export async function sweepOrphans(deps: SweepDeps, trigger: SweepTrigger): Promise<SweepResult> {
  const { db, log, tenantId, holder, options } = deps;
  const scope = leaseScope(tenantId);
  if (!(await acquireLease(db, scope, holder, options.leaseTtlMs))) return { ran: false, reason: 'lease_held' };
  let lost = false;
  const renew = setInterval(() => {
    renewLease(db, scope, holder, options.leaseTtlMs)
      .then((ok) => {
        if (!ok) lost = true;
      })
      .catch(() => undefined); // a blip: the next renewal tries again, the TTL covers it
  }, Math.max(100, Math.floor(options.leaseTtlMs / 3)));
  renew.unref();
  try {
    // Holding the lease, nobody else sweeps this scope: a sweep still "running" lost its worker.
    await db.$executeRaw`
      UPDATE orphan_sweeps SET status = 'failed', error_code = 'WORKER_LOST', error_message = 'the worker running this sweep stopped before it ended', finished_at = now()
      WHERE status = 'running' AND scope_tenant_id IS NOT DISTINCT FROM ${tenantId}::uuid`;
    const requests = await db.orphanSweep.findMany({
      where: { status: 'requested', ...(tenantId ? { requestedBy: tenantId } : {}) },
      orderBy: { requestedAt: 'asc' },
      select: { id: true },
    });
    if (trigger === 'request' && !requests.length) return { ran: false, reason: 'nothing_requested' };
    if (trigger !== 'request' && !requests.length && deps.minGapMs > 0) {
      const recent = await db.$queryRaw<Array<{ n: bigint }>>`
        SELECT count(*) AS n FROM orphan_sweeps
        WHERE status IN ('done', 'failed') AND merged_into IS NULL AND scope_tenant_id IS NOT DISTINCT FROM ${tenantId}::uuid
          AND finished_at > now() - ${deps.minGapMs} * interval '1 millisecond'`;
      if (Number(recent[0]?.n ?? 0) > 0) return { ran: false, reason: 'recent' };
    }
    // A pending request becomes this sweep's row; others pending with it are served by it too.
    const claimed: string[] = [];
    for (const r of requests) {
      const n = await db.orphanSweep.updateMany({ where: { id: r.id, status: 'requested' }, data: { status: 'running', startedAt: new Date(), worker: holder, scopeTenantId: tenantId } });
      if (n.count) claimed.push(r.id);
    }
    const main = claimed.length
      ? await db.orphanSweep.findUniqueOrThrow({ where: { id: claimed[0]! } })
      : await db.orphanSweep.create({ data: { trigger, status: 'running', scopeTenantId: tenantId, worker: holder, startedAt: new Date() } });
    if (claimed.length > 1) await db.orphanSweep.updateMany({ where: { id: { in: claimed.slice(1) } }, data: { mergedInto: main.id } });
    log.info({ sweepId: main.id, trigger: main.trigger, scope }, 'orphan sweep started');

    const items: OrphanItem[] = [];
    let failure: { code: string; message: string } | null = null;
    const checkpoint = () => {
      if (lost) throw new Interrupted('LEASE_LOST', 'the sweep lease expired (another worker may sweep now)');
      if (deps.signal?.aborted) throw new Interrupted('SWEEP_INTERRUPTED', 'the worker is shutting down');
    };
    try {
      await sweepAll({ ...deps, checkpoint }, items);
    } catch (err) {
      failure = { code: err instanceof Interrupted ? err.code : 'SWEEP_FAILED', message: errText(err) };
      log.error({ sweepId: main.id, err: failure.message, code: failure.code }, 'orphan sweep failed');
    }
    const counts = summarize(items);
    await db.orphanItem.createMany({ data: items.map((i) => ({ ...i, sweepId: main.id })) });
    const status = failure ? 'failed' : 'done';
    const finishedAt = new Date();
    await db.orphanSweep.update({
      where: { id: main.id },
      data: { ...counts, status, finishedAt, ...(failure ? { errorCode: failure.code, errorMessage: failure.message } : {}) },
    });
    if (claimed.length > 1) await db.orphanSweep.updateMany({ where: { mergedInto: main.id }, data: { status, finishedAt } });
    for (const i of items) if (i.outcome !== 'kept') metrics.orphans.inc({ kind: i.kind, action: i.outcome === 'left' ? 'left' : i.action });
    log.info({ sweepId: main.id, ...counts }, 'orphan sweep done');
    // Keep a month of history.
    await db.$executeRaw`DELETE FROM orphan_sweeps WHERE status IN ('done', 'failed') AND finished_at < now() - interval '30 days'`;
    return { ran: true, sweepId: main.id, status, items };
  } finally {
    clearInterval(renew);
    await releaseLease(db, scope, holder).catch(() => undefined);
  }
}

type Ctx = SweepDeps & { checkpoint: () => void };
type Connection = Awaited<ReturnType<Db['vCenterConnection']['findMany']>>[number];
type JobRow = { id: string; state: string; tenantId: string };

async function sweepAll(ctx: Ctx, items: OrphanItem[]): Promise<void> {
  const { db, tenantId } = ctx;
  const connections = await db.vCenterConnection.findMany({ where: tenantId ? { tenantId } : {}, orderBy: { createdAt: 'asc' } });
  // One pass per vCenter, whichever tenants registered it.
  const byUrl = new Map<string, Connection[]>();
  for (const c of connections) {
    const key = c.url.toLowerCase();
    byUrl.set(key, [...(byUrl.get(key) ?? []), c]);
  }
  const unswept = new Set<string>(); // connection ids whose vCenter could not be swept
  const jobsWithSnapshot = new Set<string>(); // jobs whose temporary snapshot is still there
  for (const group of byUrl.values()) {
    ctx.checkpoint();
    const ok = await sweepVcenter(ctx, group[0]!, items, jobsWithSnapshot);
    if (!ok) for (const c of group) unswept.add(c.id);
  }
  await sweepLocks(ctx, items, unswept, jobsWithSnapshot);
}

const item = (partial: Partial<OrphanItem> & Pick<OrphanItem, 'kind' | 'action' | 'outcome'>): OrphanItem => ({
  tenantId: null,
  vcenter: null,
  vmRef: null,
  vmName: null,
  snapshot: null,
  snapshotName: null,
  jobId: null,
  jobState: null,
  errorCode: null,
  errorMessage: null,
  ...partial,
});

function record(ctx: Ctx, items: OrphanItem[], i: OrphanItem): void {
  items.push(i);
  const fields = { kind: i.kind, vcenter: i.vcenter, vm: i.vmRef, snapshot: i.snapshotName, jobId: i.jobId, jobState: i.jobState, action: i.action, outcome: i.outcome, code: i.errorCode };
  if (i.outcome === 'left') ctx.log.warn({ ...fields, err: i.errorMessage }, 'orphan left');
  else ctx.log.info(fields, i.outcome === 'kept' ? 'orphan sweep: owned by an active job, kept' : 'orphan cleaned');
}

interface VmSeen {
  ref: vsphere.MoRef;
  name: string;
  marker: string | null;
  temps: Array<{ ref: vsphere.MoRef; name: string; jobId: string }>;
}

/** Every VM of the vCenter with its snapshot tree and marker, in one property collector pass. */
async function inventory(client: vsphere.VSphereClient): Promise<VmSeen[]> {
  const all = await vsphere.findAll(client, 'VirtualMachine', ['name', 'snapshot', 'config.extraConfig']);
  return all.map((oc) => {
    const temps: VmSeen['temps'] = [];
    const walk = (t: vsphere.VirtualMachineSnapshotTree) => {
      const jobId = tempSnapshotJobId(t.name);
      if (jobId) temps.push({ ref: t.snapshot, name: t.name, jobId });
      for (const c of t.childSnapshotList ?? []) walk(c);
    };
    for (const t of vsphere.propValue<vsphere.VirtualMachineSnapshotInfo>(oc, 'snapshot')?.rootSnapshotList ?? []) walk(t);
    const extra = vsphere.propValue<Array<{ key: string; value: unknown }>>(oc, 'config.extraConfig') ?? [];
    const marker = extra.find((o) => o.key === JOB_MARKER);
    return { ref: oc.obj, name: vsphere.propValue<string>(oc, 'name') ?? oc.obj.value, marker: marker ? String(marker.value) : null, temps };
  });
}

/** Sweeps one vCenter; false when it could not be reached or read (reported as a `vcenter` item). */
async function sweepVcenter(ctx: Ctx, vc: Connection, items: OrphanItem[], jobsWithSnapshot: Set<string>): Promise<boolean> {
  const { db, log, options } = ctx;
  const base = { vcenter: vc.name };
  let client: vsphere.VSphereClient;
  try {
    if (!ctx.keyring) throw Object.assign(new Error('this worker has no VMRESTORE_SECRET_KEYS: it cannot read vCenter passwords'), { code: 'SECRET_KEYRING_MISSING' });
    client = await vsphere.VSphereClient.connect({ ...vcenterClientOptions(vcenterCredentials(ctx.keyring, vc)), keepAliveMs: 0, logger: log });
  } catch (err) {
    record(ctx, items, item({ ...base, tenantId: vc.tenantId, kind: 'vcenter', action: 'none', outcome: 'left', errorCode: errCode(err), errorMessage: errText(err) }));
    return false;
  }
  try {
    let vms: VmSeen[];
    try {
      vms = await inventory(client);
    } catch (err) {
      record(ctx, items, item({ ...base, tenantId: vc.tenantId, kind: 'vcenter', action: 'none', outcome: 'left', errorCode: errCode(err), errorMessage: errText(err) }));
      return false;
    }
    const ids = new Set<string>();
    for (const vm of vms) {
      for (const t of vm.temps) ids.add(t.jobId);
      if (vm.marker && UUID.test(vm.marker)) ids.add(vm.marker.toLowerCase());
    }
    const jobs = new Map<string, JobRow>(
      (await db.restoreJob.findMany({ where: { id: { in: [...ids] } }, select: { id: true, state: true, tenantId: true } })).map((j) => [j.id, j]),
    );
    const taskOpts: vsphere.TaskOptions = { timeoutMs: options.taskTimeoutMs };
    const destroyed = new Set<string>();

    // Half-made VMs first: their temporary snapshots go with them.
    for (const vm of vms) {
      if (!vm.marker) continue;
      ctx.checkpoint();
      const job = jobs.get(vm.marker.toLowerCase()) ?? null;
      const decision = decideVm(vm.marker, job?.state ?? null);
      if (decision === 'ignore') continue;
      const it = { ...base, tenantId: job?.tenantId ?? vc.tenantId, kind: 'vm' as const, vmRef: vm.ref.value, vmName: vm.name, jobId: UUID.test(vm.marker) ? vm.marker.toLowerCase() : null, jobState: job?.state ?? null };
      if (decision === 'keep') {
        record(ctx, items, item({ ...it, action: 'none', outcome: 'kept' }));
        continue;
      }
      if (decision === 'refuse') {
        record(ctx, items, item({ ...it, action: 'none', outcome: 'left', errorCode: 'MARKER_NOT_A_JOB_ID', errorMessage: `${JOB_MARKER} is "${vm.marker.slice(0, 80)}", not a job id: not removed` }));
        continue;
      }
      const err = await withRetries(ctx, async () => {
        await vsphere.powerOff(client, vm.ref, { ...taskOpts, guestShutdown: false });
        await vsphere.destroyVm(client, vm.ref, taskOpts);
      });
      if (!err) {
        destroyed.add(vm.ref.value);
        record(ctx, items, item({ ...it, action: 'destroyed', outcome: 'cleaned' }));
      } else record(ctx, items, item({ ...it, action: 'none', outcome: 'left', errorCode: errCode(err), errorMessage: errText(err) }));
    }

    for (const vm of vms) {
      if (destroyed.has(vm.ref.value)) continue;
      for (const snap of vm.temps) {
        ctx.checkpoint();
        const job = jobs.get(snap.jobId) ?? null;
        const it = { ...base, tenantId: job?.tenantId ?? vc.tenantId, kind: 'snapshot' as const, vmRef: vm.ref.value, vmName: vm.name, snapshot: snap.ref.value, snapshotName: snap.name, jobId: snap.jobId, jobState: job?.state ?? null };
        if (decideSnapshot(job?.state ?? null) === 'keep') {
          jobsWithSnapshot.add(snap.jobId);
          record(ctx, items, item({ ...it, action: 'none', outcome: 'kept' }));
          continue;
        }
        const revert = job ? await snapshotNeedsRevert(db, job.id) : false;
        const r = await removeTempSnapshot(ctx, client, vm.ref, snap.ref, revert, taskOpts);
        if (r.outcome === 'left') jobsWithSnapshot.add(snap.jobId);
        record(ctx, items, item({ ...it, ...r }));
      }
    }
    return true;
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Runs fn up to options.removeAttempts times with doubling delays; the last error, or null. */
async function withRetries(ctx: Ctx, fn: () => Promise<void>, stop?: () => Promise<boolean>): Promise<unknown> {
  let last: unknown = null;
  for (let attempt = 1; attempt <= ctx.options.removeAttempts; attempt++) {
    try {
      await fn();
      return null;
    } catch (err) {
      last = err;
      ctx.log.warn({ attempt, code: errCode(err), err: errText(err) }, 'orphan sweep: attempt failed');
      if (stop && (await stop().catch(() => false))) return last;
      if (attempt < ctx.options.removeAttempts) await sleep(retryDelayMs(attempt, ctx.options.backoffBaseMs), ctx.signal);
      if (ctx.signal?.aborted) return last;
    }
  }
  return last;
}

/**
 * Removes a temporary snapshot as VMware's guidance escalates: retry the
 * removal with backoff; when it keeps failing (or died half-way, leaving
 * delta disks: runtime.consolidationNeeded), ConsolidateVMDisks, then one
 * more removal if the snapshot is still in the tree. Clean means: the
 * snapshot is gone and no consolidation is needed.
 */
async function removeTempSnapshot(
  ctx: Ctx,
  client: vsphere.VSphereClient,
  vm: vsphere.MoRef,
  snap: vsphere.MoRef,
  revert: boolean,
  taskOpts: vsphere.TaskOptions,
): Promise<Pick<OrphanItem, 'action' | 'outcome' | 'errorCode' | 'errorMessage'>> {
  const exists = async () => (await vsphere.listSnapshots(client, vm)).all.some((s) => s.ref.value === snap.value);
  const consolidationNeeded = async () => Boolean(await vsphere.getProperty<boolean>(client, vm, 'runtime.consolidationNeeded'));
  let reverted = false;
  const remove = async () => {
    if (revert && !reverted) {
      await vsphere.revertToSnapshot(client, snap, { ...taskOpts, suppressPowerOn: true });
      reverted = true;
    }
    await vsphere.removeSnapshot(client, snap, taskOpts);
  };
  // A removal that died half-way took the snapshot out of the tree: retrying it is pointless.
  let err = await withRetries(ctx, remove, async () => !(await exists()));
  if (!err && !(await consolidationNeeded().catch(() => false))) return { action: revert ? 'reverted_removed' : 'removed', outcome: 'cleaned', errorCode: null, errorMessage: null };

  ctx.log.warn({ vm: vm.value, snapshot: snap.value }, 'orphan sweep: removal keeps failing, consolidating the disks');
  try {
    await vsphere.consolidateVmDisks(client, vm, taskOpts);
  } catch (e) {
    err = e;
    ctx.log.warn({ vm: vm.value, code: errCode(e), err: errText(e) }, 'orphan sweep: ConsolidateVMDisks failed');
  }
  if (await exists().catch(() => true)) {
    try {
      await remove();
    } catch (e) {
      err = e;
    }
  }
  const still = await exists().catch(() => true);
  const needed = await consolidationNeeded().catch(() => true);
  if (!still && !needed) return { action: 'consolidated', outcome: 'cleaned', errorCode: null, errorMessage: null };
  if (still) return { action: 'none', outcome: 'left', errorCode: errCode(err), errorMessage: `the snapshot could not be removed, even after consolidating: ${errText(err)}` };
  return { action: 'none', outcome: 'left', errorCode: 'CONSOLIDATION_NEEDED', errorMessage: `the snapshot is gone but its delta disks remain (runtime.consolidationNeeded): ${err ? errText(err) : 'consolidate the VM'}` };
}

async function sweepLocks(ctx: Ctx, items: OrphanItem[], unswept: Set<string>, jobsWithSnapshot: Set<string>): Promise<void> {
  const { db, tenantId } = ctx;
  const locks = await db.vmLock.findMany({ where: tenantId ? { job: { tenantId } } : {}, include: { job: { select: { state: true, tenantId: true } } } });
  const names = new Map((await db.vCenterConnection.findMany({ where: { id: { in: locks.map((l) => l.vcenter) } }, select: { id: true, name: true } })).map((c) => [c.id, c.name]));
  for (const l of locks) {
    ctx.checkpoint();
    const snapshotStillThere = jobsWithSnapshot.has(l.jobId) || unswept.has(l.vcenter);
    const decision = decideLock(l.job.state, snapshotStillThere);
    if (decision === 'ignore') continue;
    const it = { tenantId: l.job.tenantId, kind: 'lock' as const, vcenter: names.get(l.vcenter) ?? l.vcenter, vmRef: l.vmRef, jobId: l.jobId, jobState: l.job.state };
    if (decision === 'keep') {
      const why = jobsWithSnapshot.has(l.jobId) ? 'its temporary snapshot is still there' : 'its vCenter could not be swept';
      record(ctx, items, item({ ...it, action: 'none', outcome: 'left', errorCode: 'TEMP_SNAPSHOT_LEFT', errorMessage: `the VM stays locked: ${why}` }));
      continue;
    }
    // Only this job's lock: a new restore may have taken a stale lock over meanwhile.
    const r = await db.vmLock.deleteMany({ where: { vcenter: l.vcenter, vmRef: l.vmRef, jobId: l.jobId } });
    if (r.count) record(ctx, items, item({ ...it, action: 'deleted', outcome: 'cleaned' }));
  }
}

// ---------------------------------------------------------------- in the worker

export interface OrphanSweeper {
  /** Runs one sweep now (tests; a pending request runs through the poll). */
  sweep(trigger: SweepTrigger): Promise<SweepResult | null>;
  close(): Promise<void>;
}

/**
 * The worker's sweeper: one sweep at start and every interval (when the
 * interval is not 0), and requested sweeps (POST /v1/orphans/sweep), polled.
 * Interval 0 turns all of it off.
 */
export function startOrphanSweeper(opts: { config: Config; db: Db; log: Logger; tenantId: string | null; options?: Partial<SweepOptions> }): OrphanSweeper {
  const { config, db } = opts;
  const log = opts.log.child({ component: 'orphans' });
  const interval = config.worker.orphanSweepIntervalMs;
  let keyring: Keyring | null = null;
  try {
    keyring = loadKeyring();
  } catch {
    keyring = null; // vCenters are reported as SECRET_KEYRING_MISSING; locks are still swept
  }
  const abort = new AbortController();
  const deps: SweepDeps = {
    db,
    log,
    keyring,
    tenantId: opts.tenantId,
    holder: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    options: { ...DEFAULT_SWEEP_OPTIONS, taskTimeoutMs: config.restore.vsphereTaskTimeoutMs, ...opts.options },
    minGapMs: Math.floor(interval / 2),
    signal: abort.signal,
  };
  let running: Promise<SweepResult | null> | null = null;
  const sweep = (trigger: SweepTrigger): Promise<SweepResult | null> => {
    if (running || abort.signal.aborted) return Promise.resolve(null);
    running = sweepOrphans(deps, trigger)
      .then((r) => {
        if (!r.ran && r.reason === 'lease_held') log.info({ trigger }, 'orphan sweep skipped: another worker holds the lease');
        if (!r.ran && r.reason === 'recent') log.info({ trigger }, 'orphan sweep skipped: swept recently');
        return r;
      })
      .catch((err) => {
        log.warn({ err: errText(err) }, 'orphan sweep could not run');
        return null;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timers: NodeJS.Timeout[] = [];
  if (interval > 0) {
    void sweep('start');
    timers.push(setInterval(() => void sweep('interval'), interval));
    timers.push(
      setInterval(() => {
        if (running) return;
        db.orphanSweep
          .count({ where: { status: 'requested', ...(opts.tenantId ? { requestedBy: opts.tenantId } : {}) } })
          .then((n) => (n ? sweep('request') : null))
          .catch(() => undefined);
      }, config.worker.orphanRequestPollMs),
    );
    for (const t of timers) t.unref();
    log.info({ intervalMs: interval, tenant: opts.tenantId ?? 'all' }, 'orphan sweeper on');
  }
  return {
    sweep,
    async close() {
      for (const t of timers) clearInterval(t);
      abort.abort();
      await running;
    },
  };
}
