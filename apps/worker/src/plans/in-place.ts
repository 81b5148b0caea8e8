import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { VddkError, type Target, type Transport } from '@vmrestore/native-vddk';
import {
  backupJobError,
  buildDiskWrites,
  assertSameVm,
  assertVddkThumbprint,
  checkInPlace,
  areasOf,
  decideQuickRollback,
  inPlaceRequest,
  type Area,
  type QuickRollbackDecision,
  parseDatastorePath,
  type InPlaceChecks,
  findVcenterByName,
  JobError,
  permanent,
  planRestore,
  Prisma,
  transient,
  vcenterClientOptions,
  vcenterCredentials,
  vsphere,
  type Capacity,
  type BackupRepository,
  type Config,
  type Db,
  type Keyring,
  type RestoreJob,
  type VcenterCredentials,
  type DiskWrites,
} from '@vmrestore/core';
import type { PlanFactory, StepContext, StepDef } from '../plan';
import { verifyChainInStep } from './verify';
import { reportStep } from './report';
import { datastoresOf, withWriteCapacity, type WriteFootprint, type WriteSlot } from './capacity';
import { watchedCopy } from '../watchdog';
import { bytesWritten, contiguousNext, disjoint, fileWriteMode, flatExtentPath, prefixBytes, savedRanges, splitRange, type WriteRange } from './streams';

// In-place restore (MISSION R1): preflight → power off → [san: remove old
// snapshots, when allowed] → temporary snapshot (advanced transports) →
// resolve current disk files → write disks (checkpointed) → [san: revert]
// delete the temporary snapshot → power on. Cleanup (always): remove a
// temporary snapshot left behind, release the VM lock. Each step is
// idempotent: it looks before it acts, so a resumed job adopts what an
// earlier attempt did.

export interface RestoreDeps {
  config: Config;
  keyring: Keyring | null;
  repo: BackupRepository | null;
  pool: vsphere.VSpherePool;
  /** Limits shared by every worker (Redis); null: no limits (tests of single plans). */
  capacity?: Capacity | null;
}

/** The capacity a write or read-back of these disk files takes (docs/scheduling.md). */
export async function writeFootprint(
  deps: RestoreDeps,
  ctx: StepContext,
  vm: string,
  pre: Pick<PreflightResult, 'target' | 'vddkTransports'>,
  files: string[],
  jobMBps: number,
): Promise<WriteFootprint> {
  const { vcenter, host } = await withVcenter(deps, ctx, async (c, creds) => ({
    vcenter: new URL(creds.url).host.toLowerCase(),
    host: (await vsphere.getProperty<vsphere.MoRef>(c, vmRef(vm), 'runtime.host'))?.value ?? null,
  }));
  const nfc = pre.target === 'vddk' && pre.vddkTransports.some((t) => t === 'nbd' || t === 'nbdssl') ? Math.min(deps.config.restore.diskParallelism, files.length) : 0;
  return { vcenter, host, datastores: datastoresOf(files), nfc, tenantId: ctx.job.tenantId, jobMBps };
}


/** The temporary snapshot's name: deterministic, so a resumed job finds its own. */
export const tempSnapshotName = (jobId: string) => `vmrestore-${jobId}`;
/** A write's durable checkpoint at least every this many bytes (and every VMRESTORE_WRITE_BATCH_EXTENTS extents). */
const CHECKPOINT_BYTES = 256 * 1024 * 1024;

/**
 * `file` write copies running in this worker process, every job's: a disk
 * is written with O_DIRECT (VMRESTORE_FILE_DIRECT_IO=auto) only if its copy
 * would run alone, so several jobs of one worker writing a disk each go
 * through the page cache like one job writing several.
 */
let fileCopiesRunning = 0;

/** Read-backs (verify_disks, readBack while writing) read what the storage holds, not the page cache's copy, unless VMRESTORE_FILE_DIRECT_IO=off. */
const directReads = (deps: RestoreDeps) => deps.config.restore.fileDirectIo !== 'off';

export type PreflightResult = InPlaceChecks & { vcenterId: string };

/** The job's vCenter credentials, password decrypted (never logged). */
export async function credentialsFor(deps: RestoreDeps, db: Db, job: RestoreJob): Promise<VcenterCredentials> {
  if (!deps.keyring) throw permanent('SECRET_KEYRING_MISSING', 'this worker has no VMRESTORE_SECRET_KEYS: it cannot read vCenter passwords');
  const vcenter = (job.request as { vcenter: string }).vcenter;
  const vc = await findVcenterByName(db, job.tenantId, vcenter);
  if (!vc) throw permanent('VCENTER_NOT_FOUND', `no vCenter connection named "${vcenter}" (register it first)`);
  return vcenterCredentials(deps.keyring, vc);
}

/**
 * Runs `fn` with a pooled session on the job's vCenter. `check` runs first
 * on the session (the in-place plan verifies it still faces the same VM).
 */
export async function withVcenter<T>(
  deps: RestoreDeps,
  ctx: StepContext,
  fn: (c: vsphere.VSphereClient, creds: VcenterCredentials) => Promise<T>,
  check?: (c: vsphere.VSphereClient) => Promise<void>,
): Promise<T> {
  const creds = await credentialsFor(deps, ctx.db, ctx.job);
  return deps.pool.withClient({ ...vcenterClientOptions(creds), logger: ctx.log }, async (c) => {
    if (check) await check(c);
    return fn(c, creds);
  });
}

/** The job's temporary snapshot: adopted when an earlier attempt made it, never a second one. */
export async function ensureTempSnapshot(client: vsphere.VSphereClient, vm: string, jobId: string, opts: vsphere.TaskOptions): Promise<Record<string, unknown>> {
  const name = tempSnapshotName(jobId);
  const ref = vmRef(vm);
  const existing = (await vsphere.listSnapshots(client, ref)).all.filter((s) => s.name === name);
  if (existing.length > 1) throw permanent('TEMP_SNAPSHOT_DUPLICATED', `${existing.length} snapshots named ${name} exist on ${vm}`);
  if (existing[0]) return { snapshot: existing[0].ref.value, name, adopted: true };
  const snap = await vsphere.createSnapshot(client, ref, { name, description: `vmrestore job ${jobId}: temporary, removed when the restore ends` }, opts);
  return { snapshot: snap.value, name, adopted: false };
}

export const vmRef = (moref: string): vsphere.MoRef => ({ type: 'VirtualMachine', value: moref });

export const fromBackup = backupJobError;
export { parseDatastorePath };

// Errors that a retry cannot fix: bad data, a wrong request, a missing disk or library.
const PERMANENT_VDDK = new Set([
  'CHECKSUM_MISMATCH',
  'VERIFY_MISMATCH',
  'CAPACITY_MISMATCH',
  'UNALIGNED_EXTENT',
  'INVALID_ARG',
  'FILE_NOT_FOUND',
  'INVALID_DESCRIPTOR',
  'LIBRARY_NOT_FOUND',
  'LIBRARY_MISMATCH',
  'VIX_E_FILE_NOT_FOUND',
  'VIX_E_NOT_SUPPORTED',
  'VIX_E_FILE_ACCESS_ERROR',
]);
export function fromVddk(err: unknown, prefix = ''): unknown {
  if (!(err instanceof VddkError)) return err;
  const code = err.code.startsWith('VIX_') || err.code === 'CANCELLED' || err.code === 'VERIFY_MISMATCH' ? err.code : `VDDK_${err.code}`;
  return new JobError(code, prefix + err.message, PERMANENT_VDDK.has(err.code), { cause: err });
}

export function inPlacePlan(deps: RestoreDeps): PlanFactory {
  return (job) => {
    const req = inPlaceRequest(job.request);
    const withVc = <T>(ctx: StepContext, fn: (c: vsphere.VSphereClient, creds: VcenterCredentials) => Promise<T>): Promise<T> =>
      withVcenter(deps, ctx, fn, async (c) => {
        // After preflight, every step first checks it still faces the same vCenter and VM.
        const p = ctx.results.preflight as unknown as PreflightResult | undefined;
        if (p) await assertSameVm(c, req.target.vm, p);
      });
    const taskOpts = { timeoutMs: deps.config.restore.vsphereTaskTimeoutMs };
    // Every vCenter task a step starts is recorded in the job's timeline.
    const tracked = (ctx: StepContext): vsphere.TaskOptions => ({ ...taskOpts, onTask: (t: vsphere.MoRef, method: string) => ctx.recordTask(t.value, method) });
    const pre = (ctx: StepContext) => ctx.results.preflight as unknown as PreflightResult;

    const preflight: StepDef = {
      name: 'preflight',
      async run(ctx) {
        const vc = await findVcenterByName(ctx.db, job.tenantId, req.vcenter);
        if (!vc) throw permanent('VCENTER_NOT_FOUND', `no vCenter connection named "${req.vcenter}" (register it first)`);
        return withVc(ctx, async (client, creds) => {
          const checks = await checkInPlace(client, deps.repo, deps.config, req, tempSnapshotName(job.id));
          assertVddkThumbprint(checks.target, creds);
          // Nothing is touched before this lock: one restore per VM, surviving worker crashes.
          await lockVm(ctx.db, vc.id, req.target.vm, job.id);
          const result: PreflightResult = { ...checks, vcenterId: vc.id };
          return result as unknown as Record<string, unknown>;
        });
      },
    };

    const powerOff: StepDef = {
      name: 'power_off',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          const secs = req.options.gracefulShutdownSeconds;
          const how = await vsphere.powerOff(client, vmRef(req.target.vm), { ...tracked(ctx), guestShutdown: secs > 0, guestTimeoutMs: secs * 1000 });
          return { result: how };
        }),
    };

    const removeSnapshots: StepDef = {
      name: 'remove_existing_snapshots',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          const p = pre(ctx);
          if (!(p.target === 'vddk' && p.vddkTransports.includes('san') && req.options.removeExistingSnapshots)) return { skipped: true };
          const snaps = (await vsphere.listSnapshots(client, vmRef(req.target.vm))).all.filter((s) => s.name !== tempSnapshotName(job.id));
          if (!snaps.length) return { removed: 0 };
          await vsphere.removeAllSnapshots(client, vmRef(req.target.vm), tracked(ctx));
          return { removed: snaps.length };
        }),
    };

    const tempSnapshot: StepDef = {
      name: 'temp_snapshot',
      run: (ctx) =>
        withVc(ctx, async (client) => (pre(ctx).needsSnapshot ? ensureTempSnapshot(client, req.target.vm, job.id, tracked(ctx)) : { skipped: true })),
    };

    // Quick rollback: which areas changed since the point, per disk (CBT), or why everything is written.
    const changedAreas: StepDef = {
      name: 'changed_areas',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          const point = await deps.repo!.getPoint(req.source.vm, req.source.point).catch((e) => Promise.reject(fromBackup(e)));
          const snapshot = (ctx.results.temp_snapshot as { snapshot?: string } | undefined)?.snapshot;
          const decision = await decideQuickRollback(client, {
            vm: vmRef(req.target.vm),
            point,
            disks: pre(ctx).disks,
            ...(snapshot ? { snapshot: { type: 'VirtualMachineSnapshot', value: snapshot } } : {}),
          });
          if (decision.fallback) {
            const seen = await ctx.db.jobEvent.findFirst({ where: { jobId: job.id, type: 'restore.warning', step: 'changed_areas' } });
            if (!seen) {
              await ctx.db.jobEvent.create({
                data: { jobId: job.id, type: 'restore.warning', step: 'changed_areas', data: { code: 'QUICK_ROLLBACK_FALLBACK', reason: decision.fallback.code, message: `writing every disk in full: ${decision.fallback.message}` } },
              });
            }
            ctx.log.warn({ reason: decision.fallback.code }, 'quick rollback falls back to a full restore');
          }
          return decision as unknown as Record<string, unknown>;
        }),
    };

    const resolveDisks: StepDef = {
      name: 'resolve_disks',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          const info = await vsphere.getVmInfo(client, vmRef(req.target.vm));
          // R1.4: the disk's current file, delta sequence number included.
          const disks = pre(ctx).disks.map((d) => {
            const v = info.disks.find((x) => x.key === d.key);
            if (!v) throw permanent('DISK_MISMATCH', `disk ${d.key} disappeared from ${req.target.vm}`);
            return { key: d.key, fileName: v.fileName, chain: v.chain };
          });
          return { disks };
        }),
    };

    // Quick rollback: the only areas to write (and to read back), per disk.
    const quickAreas = (ctx: StepContext) => {
      const quick = ctx.results.changed_areas as unknown as QuickRollbackDecision | undefined;
      return quick?.mode === 'quick_rollback' ? new Map(pre(ctx).disks.map((d) => [d.key, areasOf(quick, d.key) ?? []])) : undefined;
    };
    const resolved = (ctx: StepContext) => (ctx.results.resolve_disks as { disks: Array<{ key: number; fileName: string }> }).disks.map((d) => ({ savedKey: d.key, fileName: d.fileName }));

    // Every block of the chain checked before the VM is powered off: a corrupt backup leaves the VM untouched.
    const verifyBackup: StepDef = {
      name: 'verify_backup',
      async run(ctx) {
        const report = await verifyChainInStep(ctx, deps.repo!, req.source.vm, req.source.point, { mode: 'first' });
        const first = report.errors[0];
        if (!report.ok && first) throw permanent(first.code, `${first.message}; the restore stopped before touching ${req.target.vm}`);
        return { ok: true, chain: report.chain, bytesVerified: report.bytesVerified };
      },
    };

    const writeDisks: StepDef = {
      name: 'write_disks',
      run: async (ctx) => {
        // A VM powered on again since power_off (HA, an operator) must not be written under its guest.
        const state = await withVc(ctx, (client) => vsphere.getPowerState(client, vmRef(req.target.vm)));
        if (state !== 'poweredOff') throw permanent('VM_POWERED_ON', `${req.target.vm} is ${state} again: its disks are not written under a running guest`);
        const within = quickAreas(ctx);
        const fp = await writeFootprint(deps, ctx, req.target.vm, pre(ctx), resolved(ctx).map((d) => d.fileName), req.options.maxMBps ?? 0);
        return withWriteCapacity(deps.capacity ?? null, deps.config.limits, ctx, 'write_disks', fp, (slot) => writeAllDisks(deps, ctx, {
          slot,
          ...(within ? { within } : {}),
          pre: pre(ctx),
          vm: req.target.vm,
          source: req.source,
          order: req.options.incrementalOrder,
          // The target holds old data: what the point does not hold is written as zeros.
          zeroFill: true,
          fresh: false,
          disks: resolved(ctx),
          readBack: Boolean(req.options.verify),
        }));
      },
    };

    // A verified restore: what was written, read back through the same target (before the snapshot goes).
    const verifyDisks: StepDef = {
      name: 'verify_disks',
      run: async (ctx) => {
        const within = quickAreas(ctx);
        const fp = await writeFootprint(deps, ctx, req.target.vm, pre(ctx), resolved(ctx).map((d) => d.fileName), req.options.maxMBps ?? 0);
        return withWriteCapacity(deps.capacity ?? null, deps.config.limits, ctx, 'verify_disks', fp, (slot) =>
          verifyAllDisks(deps, ctx, { slot, pre: pre(ctx), vm: req.target.vm, source: req.source, zeroFill: true, disks: resolved(ctx), ...(within ? { within } : {}) }),
        );
      },
    };

    const finalizeSnapshot: StepDef = {
      name: 'remove_temp_snapshot',
      run: (ctx) => withVc(ctx, (client) => dropTempSnapshot(client, job, ctx, tracked(ctx), req.target.vm)),
    };

    const powerOn: StepDef = {
      name: 'power_on',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          const want = req.options.powerOn ?? pre(ctx).powerStateBefore === 'poweredOn';
          if (!want) return { poweredOn: false };
          await vsphere.powerOn(client, vmRef(req.target.vm), tracked(ctx));
          return { poweredOn: true };
        }),
    };

    // Cleanup: runs after success, failure and cancel.
    const cleanupSnapshot: StepDef = {
      name: 'cleanup_temp_snapshot',
      async run(ctx) {
        if (!ctx.results.preflight) return { skipped: 'preflight did not finish: nothing was touched' };
        return withVc(ctx, (client) => dropTempSnapshot(client, job, ctx, tracked(ctx), req.target.vm));
      },
    };
    const releaseLock: StepDef = {
      name: 'release_vm_lock',
      async run(ctx) {
        // While the temporary snapshot may still be there, the VM stays locked: no other restore may start on it.
        const snap = await ctx.db.jobStep.findFirst({ where: { jobId: job.id, phase: 'cleanup', name: 'cleanup_temp_snapshot' } });
        if (snap && snap.state !== 'succeeded') throw transient('VM_LOCK_KEPT', 'the VM stays locked until its temporary snapshot is removed');
        const r = await ctx.db.vmLock.deleteMany({ where: { jobId: job.id } });
        await rm(join(deps.config.restore.workDir, job.id), { recursive: true, force: true });
        return { released: r.count };
      },
    };

    return {
      steps: [
        preflight,
        ...(req.options.verifyBackup ? [verifyBackup] : []),
        powerOff,
        removeSnapshots,
        tempSnapshot,
        ...(req.options.mode === 'quick_rollback' ? [changedAreas] : []),
        resolveDisks,
        writeDisks,
        ...(req.options.verify ? [verifyDisks] : []),
        finalizeSnapshot,
        powerOn,
        reportStep(deps, job),
      ],
      cleanup: [cleanupSnapshot, releaseLock],
    };
  };
}

export function diskTarget(deps: RestoreDeps, p: PreflightResult, creds: VcenterCredentials | null, vm: string, snapshot: string | undefined, file: string): Target {
  if (p.target === 'file') {
    if (file.startsWith('/')) return { kind: 'file', path: file }; // a local VMDK (exports)
    const { datastore, path } = parseDatastorePath(file);
    // The directory preflight resolved (by vCenter, then name); jobs recorded before it: by name.
    const dir = (p as { datastoreDirs?: Record<string, string> }).datastoreDirs?.[datastore] ?? deps.config.restore.datastorePaths[datastore];
    if (!dir) throw permanent('TRANSPORT_UNAVAILABLE', `datastore ${datastore} has no local directory on this worker (VMRESTORE_DATASTORE_PATHS)`);
    return { kind: 'file', path: join(dir, path) };
  }
  if (!creds) throw new Error('vddk target without credentials');
  return {
    kind: 'vddk',
    libDir: deps.config.restore.vddkLibDir!,
    server: new URL(creds.url).hostname,
    thumbprint: creds.thumbprint ?? '',
    username: creds.username,
    password: creds.password,
    vmMoref: vm,
    ...(snapshot ? { snapshotMoref: snapshot } : {}),
    transports: p.vddkTransports,
    diskPath: file,
    ...(deps.config.restore.vddkConfigFile ? { configFile: deps.config.restore.vddkConfigFile } : {}),
  };
}

/**
 * Removes this job's temporary snapshot if it exists. After a SAN write the
 * base disk changed behind the snapshot: revert first, or the delete fails on
 * a CID mismatch (MISSION R1.5).
 */
export async function dropTempSnapshot(
  client: vsphere.VSphereClient,
  job: RestoreJob,
  ctx: StepContext,
  taskOpts: vsphere.TaskOptions,
  vm: string,
): Promise<Record<string, unknown>> {
  const name = tempSnapshotName(job.id);
  const ref = vmRef(vm);
  const snaps = (await vsphere.listSnapshots(client, ref)).all.filter((s) => s.name === name);
  if (!snaps.length) return { removed: 0 };
  const san = await snapshotNeedsRevert(ctx.db, job.id);
  for (const s of snaps) {
    if (san) await vsphere.revertToSnapshot(client, s.ref, { ...taskOpts, suppressPowerOn: true });
    await vsphere.removeSnapshot(client, s.ref, taskOpts);
  }
  return { removed: snaps.length, reverted: san };
}

/**
 * Whether a revert must come before removing the temporary snapshot: after a
 * SAN write the base disk changed behind it, and the delete would fail on a
 * CID mismatch (MISSION R1.5). What was recorded wins: the transports the
 * disks' writes used; when none was recorded, whether SAN was allowed and a
 * write had begun.
 */
export function needsRevert(transportsUsed: string[], sanAllowed: boolean, writeAttempts: number): boolean {
  if (transportsUsed.length) return transportsUsed.includes('san');
  return sanAllowed && writeAttempts > 0;
}

/** needsRevert from what the job recorded (its checkpoints, preflight and write step): cleanup and the orphan sweeper decide alike. */
export async function snapshotNeedsRevert(db: Db, jobId: string): Promise<boolean> {
  const [checkpoints, preflight, write] = await Promise.all([
    db.diskCheckpoint.findMany({ where: { jobId }, select: { state: true } }),
    db.jobStep.findFirst({ where: { jobId, phase: 'main', name: 'preflight' }, select: { result: true } }),
    db.jobStep.findFirst({ where: { jobId, phase: 'main', name: 'write_disks' }, select: { attempt: true } }),
  ]);
  const used = recordedTransports(checkpoints);
  const sanAllowed = ((preflight?.result as { vddkTransports?: string[] } | null)?.vddkTransports ?? []).includes('san');
  return needsRevert(used, sanAllowed, write?.attempt ?? 0);
}

/** One restore per VM: a row that outlives a crashed worker, released by cleanup. */
export async function lockVm(db: Db, vcenterId: string, vm: string, jobId: string): Promise<void> {
  try {
    await db.vmLock.create({ data: { vcenter: vcenterId, vmRef: vm, jobId } });
  } catch (err) {
    if (!(err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002')) throw err;
    const held = await db.vmLock.findUnique({ where: { vcenter_vmRef: { vcenter: vcenterId, vmRef: vm } }, include: { job: true } });
    if (!held || held.jobId === jobId) return;
    if (['succeeded', 'failed', 'cancelled'].includes(held.job.state)) {
      // A stale lock of an ended job (its cleanup never ran): take it over.
      await db.vmLock.update({ where: { vcenter_vmRef: { vcenter: vcenterId, vmRef: vm } }, data: { jobId, acquiredAt: new Date() } });
      return;
    }
    throw transient('VM_LOCKED', `restore job ${held.jobId} (${held.job.state}) holds ${vm}`);
  }
}

export interface WriteAllOptions {
  pre: Pick<PreflightResult, 'target' | 'vddkTransports'> & { diskTransports?: PreflightResult['diskTransports'] };
  vm: string;
  source: { vm: string; point: string };
  order: 'backward' | 'forward';
  zeroFill: boolean;
  /** The disks are new (all zeros): the file target may skip writing zero buffers. */
  fresh: boolean;
  /** Saved disk key → the file to write (the disk's current file name). */
  disks: Array<{ savedKey: number; fileName: string }>;
  /** Quick rollback: per saved disk key, the only areas to write (KiB-aligned); absent: whole disks. */
  within?: Map<number, Area[]>;
  /** The capacity slot the step holds: its signal (lease lost) and bandwidth caps. */
  slot?: WriteSlot;
  /** Metadata to write per saved disk key (R2: VixDiskLib_WriteMetadata), VDDK keys without "ddb.". */
  metadata?: Map<number, Record<string, string>>;
  /**
   * A verified restore: a `file` target whose writes do not overlap is read
   * back while it is written (the addon's readBack), and a disk written
   * whole in this step is then not read again by verify_disks.
   */
  readBack?: boolean;
}

/**
 * Writes every disk of a restore point, batch by batch, with a checkpoint
 * after each batch: a resumed job continues from the last one, never from
 * zero. Shared by the in-place and new-VM plans.
 */
/** Each disk's copy list (planned from the repository), in a job's own scratch directory. */
async function planDiskWrites(
  deps: RestoreDeps,
  ctx: StepContext,
  o: Pick<WriteAllOptions, 'source' | 'order' | 'zeroFill' | 'within'>,
): Promise<{ work: string; perDisk: Array<{ key: number; writes: DiskWrites }> }> {
  const repo = deps.repo!;
  const work = join(deps.config.restore.workDir, ctx.jobId);
  await mkdir(work, { recursive: true });
  const backward = await planRestore(repo, o.source.vm, o.source.point, { direction: 'backward' }).catch((e) => Promise.reject(fromBackup(e)));
  const order = o.order === 'forward' ? await planRestore(repo, o.source.vm, o.source.point, { direction: 'forward' }).catch((e) => Promise.reject(fromBackup(e))) : backward;
  const perDisk: Array<{ key: number; writes: DiskWrites }> = [];
  for (const d of backward.disks) {
    const within = o.within?.get(d.diskKey);
    const writes = await buildDiskWrites({ backward: d, order: order.disks.find((x) => x.diskKey === d.diskKey)!, zeroFill: o.zeroFill, workDir: work, ...(within ? { within } : {}) }).catch((e) =>
      Promise.reject(fromBackup(e)),
    );
    perDisk.push({ key: d.diskKey, writes });
  }
  return { work, perDisk };
}

/** A disk's transports by the rule of preflight (older jobs: the job's list). */
function transportsFor(pre: WriteAllOptions['pre'], key: number): Transport[] {
  return (pre.diskTransports?.find((c) => c.key === key)?.transports ?? pre.vddkTransports) as Transport[];
}

/** The transport already used (by this disk, else by the job) when the disk may use it: attempts never switch. */
function pinFor(allowed: Transport[], used: string | null | undefined): Transport[] {
  return used && allowed.includes(used as Transport) ? [used as Transport] : allowed;
}

/** The transport this job's writes used (recorded with the checkpoints), so reads go the same way. */
async function pinnedTransport(ctx: StepContext): Promise<string | null> {
  return recordedTransports(await ctx.db.diskCheckpoint.findMany({ where: { jobId: ctx.jobId }, select: { state: true } }))[0] ?? null;
}

/** The transports the job's disk checkpoints recorded (in their order). */
function recordedTransports(checkpoints: Array<{ state: unknown }>): string[] {
  return checkpoints.map((c) => (c.state as { transport?: string | null } | null)?.transport).filter((t): t is string => Boolean(t));
}

/** The distinct backup blocks a copy list reads, and a digest of their SHA-256s (the restore report's checksums). */
function blockDigest(w: DiskWrites): { blocks: number; blockSha256Digest: string } {
  const shas = [...new Set(w.extents.filter((e) => e.check && e.source < w.sources.length).map((e) => `${e.source}:${e.check!.offset}:${e.check!.sha256}`))].sort();
  return { blocks: shas.length, blockSha256Digest: createHash('sha256').update(shas.map((s) => s.split(':')[2]).join('\n')).digest('hex') };
}

export async function writeAllDisks(deps: RestoreDeps, ctx: StepContext, o: WriteAllOptions): Promise<Record<string, unknown>> {
  const snapshot = (ctx.results.temp_snapshot as { snapshot?: string } | undefined)?.snapshot;
  const planStart = performance.now();
  const { work, perDisk } = await planDiskWrites(deps, ctx, o);
  const planMs = Math.round(performance.now() - planStart);
  const bytesOf = (w: DiskWrites) => w.extents.reduce((s, e) => s + e.length, 0);
  const total = perDisk.reduce((s, d) => s + bytesOf(d.writes), 0);
  // Progress of the whole step: each disk's committed bytes plus its copy in flight.
  const committed = new Map<number, number>();
  const inFlight = new Map<number, number>();
  const doneNow = () => [...committed.values(), ...inFlight.values()].reduce((a, b) => a + b, 0);
  const creds = o.pre.target === 'vddk' ? await credentialsFor(deps, ctx.db, ctx.job) : null;
  // The transport the job's writes began with, preferred by every disk that
  // may use it; a disk's own retries keep the transport it started with.
  let pinned = await pinnedTransport(ctx);
  const batch = deps.config.restore.writeBatchExtents;

  const writeDisk = async ({ key, writes }: { key: number; writes: DiskWrites }): Promise<Record<string, unknown>> => {
    const disk = o.disks.find((r) => r.savedKey === key);
    if (!disk) throw permanent('DISK_MISMATCH', `disk ${key} of the backup has no disk to write to`);
    const file = disk.fileName;
    const target = diskTarget(deps, o.pre as PreflightResult, creds, o.vm, snapshot, file);
    if (target.kind === 'file' && o.fresh) target.fresh = true;
    const allowed = transportsFor(o.pre, key);
    // The checkpoint is an index into this exact list: resume only if the list is the same.
    const planDigest = digestWrites(writes, work);
    const cp = await ctx.checkpoint.load(key);
    let next = cp?.nextExtent ?? 0;
    if (cp && cp.state?.planDigest !== planDigest && next > 0) {
      ctx.log.warn({ disk: key }, 'the write plan changed since the checkpoint: writing this disk from the start');
      next = 0;
    }
    const resumedFrom = next;
    const diskTotal = bytesOf(writes);
    let transport = (cp?.state?.transport as string | undefined) ?? null;
    const metadata = o.metadata?.get(key);
    let metadataWritten = Boolean(cp?.state?.metadataWritten);
    let copyMs = 0;
    let directBytes = 0;
    let readBackBytes = 0;
    const n = writes.extents.length;
    const at = prefixBytes(writes.extents);
    // The rest of the disk in one copy, or in ranges each written by a copy
    // of its own (range streams, docs/scheduling.md) where the target allows:
    // a file target, and a write list whose extents do not overlap (their
    // order does not matter). Resumed as saved, else split now.
    let ranges: WriteRange[] = (cp?.state?.planDigest === planDigest && savedRanges(cp?.state, n)) || (next < n ? [{ from: next, to: n, next }] : []);
    const streams = target.kind === 'file' && deps.config.restore.diskStreams > 1 && ranges.length === 1 && disjoint(writes.extents) ? deps.config.restore.diskStreams : 1;
    if (streams > 1) ranges = splitRange(at, ranges[0]!.next, n, streams, deps.config.restore.streamMinBytes);
    const multi = ranges.length > 1;
    if (target.kind === 'file') Object.assign(target, fileWriteMode(deps.config.restore.fileDirectIo, Math.min(perDisk.length, deps.config.restore.diskParallelism) * ranges.length + fileCopiesRunning));
    const resumedBytes = ranges.length ? bytesWritten(at, ranges) : at[next]!;
    // Read back while writing: later writes never change a range read back (disjoint extents), so
    // what is compared is the disk's final content; it verifies the whole disk only if this step
    // writes all of it (metadata included).
    const readBack = Boolean(o.readBack) && target.kind === 'file' && disjoint(writes.extents);
    const verifiesWhole = readBack && resumedBytes === 0 && !(metadata && metadataWritten);
    committed.set(key, resumedBytes);
    let prepared = Boolean(cp?.state?.prepared);
    // Checkpoints are saved one after another; a save that fails (Postgres
    // gone) stops every copy of the disk and becomes the step's error.
    let saving: Promise<void> = Promise.resolve();
    let failure: { err: unknown; from: 'save' | 'copy' } | null = null;
    const stopAll = new AbortController();
    const fail = (err: unknown, from: 'save' | 'copy') => {
      failure ??= { err, from };
      stopAll.abort(err);
    };
    const save = () => {
      saving = saving.then(async () => {
        if (failure) return;
        try {
          const state = { transport, metadataWritten: true, planDigest, ...(multi ? { ranges, prepared } : {}) };
          await ctx.checkpoint.save(key, { bytesDone: bytesWritten(at, ranges), bytesTotal: diskTotal, nextExtent: contiguousNext(ranges, n), state });
        } catch (err) {
          fail(err, 'save');
        }
      });
    };
    // Bytes each running copy wrote past its last checkpoint (recorded ones count in `committed`).
    const copyFlight = new Map<WriteRange, number>();
    const setInFlight = () => inFlight.set(key, [...copyFlight.values()].reduce((a, b) => a + b, 0));
    /** Writes extents [r.next, r.to) (or [r.next, limit)) in one copy, advancing r.next at each durable checkpoint. */
    const runRange = async (r: WriteRange, t: typeof target, opts: { withMetadata: boolean; limit?: number }) => {
      const start = r.next;
      let checkpointed = 0;
      if (t.kind === 'file') fileCopiesRunning++;
      const res = await watchedCopy(
        {
          sources: writes.sources,
          extents: writes.extents.slice(start, opts.limit ?? r.to),
          target: t,
          signal: AbortSignal.any([o.slot?.signal ?? ctx.signal, stopAll.signal]),
          ...(o.slot?.rateLimiters.length ? { rateLimiter: o.slot.rateLimiters } : {}),
          ...(opts.withMetadata ? { writeMetadata: metadata! } : {}),
          ...(readBack ? { readBack: { direct: directReads(deps) } } : {}),
          checkpoint: { everyExtents: batch, everyBytes: CHECKPOINT_BYTES },
          onProgress: (pr) => {
            if (pr.checkpoint) {
              r.next = start + pr.checkpoint.extentsDone;
              checkpointed = pr.checkpoint.bytesDone;
              transport = pr.checkpoint.transport;
              committed.set(key, bytesWritten(at, ranges));
              save();
            }
            copyFlight.set(r, pr.bytesDone - checkpointed);
            setInFlight();
            void ctx.progress(doneNow(), total).catch(() => undefined);
          },
        },
        { stallMs: deps.config.restore.vddkStallTimeoutMs, label: `disk ${key}` },
      ).finally(() => {
        if (t.kind === 'file') fileCopiesRunning--;
      });
      r.next = opts.limit ?? r.to;
      copyFlight.delete(r);
      committed.set(key, bytesWritten(at, ranges));
      setInFlight();
      transport = res.transport;
      pinned = pinned ?? res.transport;
      copyMs += res.durationMs;
      directBytes += res.bytesDirect;
      readBackBytes += res.bytesVerified;
    };
    if (target.kind === 'vddk') target.transports = pinFor(allowed, transport ?? pinned);
    try {
      if (!multi) {
        // One copy (metadata with it); a copy of no extents still writes metadata.
        const r = ranges[0] ?? { from: n, to: n, next: n };
        if (r.next < r.to || (metadata && !metadataWritten)) await runRange(r, target, { withMetadata: Boolean(metadata && !metadataWritten) });
      } else {
        // The first extent through the descriptor (its new CID, and the
        // metadata), then every range at once into the flat extent: two
        // copies never rewrite one descriptor.
        if (!prepared) {
          const r0 = ranges[0]!;
          await runRange(r0, target, { withMetadata: Boolean(metadata && !metadataWritten), limit: r0.next + 1 });
          prepared = true;
          save();
        }
        const { direct = true, flushBehind } = target as { direct?: boolean; flushBehind?: number };
        const flat = { kind: 'file' as const, path: flatExtentPath((target as { path: string }).path), direct, ...(flushBehind !== undefined ? { flushBehind } : {}), ...(o.fresh ? { fresh: true } : {}) };
        await Promise.all(ranges.filter((r) => r.next < r.to).map((r) => runRange(r, flat, { withMetadata: false }).catch((err) => fail(err, 'copy'))));
      }
    } catch (err) {
      fail(err, 'copy');
    }
    await saving;
    if (failure) {
      const { err, from } = failure as { err: unknown; from: 'save' | 'copy' };
      // A failed checkpoint save is the error as it is (Postgres gone); a copy's is mapped to its VDDK code.
      throw from === 'save' ? err : fromVddk(err, perDisk.length > 1 ? `disk ${key}: ` : '');
    }
    metadataWritten = metadataWritten || Boolean(metadata);
    inFlight.delete(key);
    committed.set(key, diskTotal);
    // The disk's end: every copy flushed by the addon before it resolved.
    await ctx.checkpoint.save(key, { bytesDone: diskTotal, bytesTotal: diskTotal, nextExtent: n, state: { transport, metadataWritten, planDigest, ...(multi ? { ranges, prepared } : {}) } });
    await ctx.progress(doneNow(), total);
    return {
      key,
      file,
      transport,
      bytes: diskTotal,
      dataBytes: writes.dataBytes,
      zeroBytes: writes.zeroBytes,
      patchUnits: writes.patchUnits,
      extents: writes.extents.length,
      planDigest,
      ...blockDigest(writes),
      resumedFrom,
      resumedBytes,
      streams: Math.max(1, ranges.length),
      copyMs: Math.round(copyMs),
      ...(target.kind === 'file' ? { directBytes } : {}),
      ...(readBack ? { readBackBytes, verified: verifiesWhole } : {}),
      ...(metadata ? { metadataKeys: Object.keys(metadata).length } : {}),
    };
  };

  // Disks in parallel, up to VMRESTORE_DISK_PARALLELISM at a time (each its own copy threads and checkpoint).
  const out = await mapLimited(perDisk, deps.config.restore.diskParallelism, writeDisk);
  await rm(work, { recursive: true, force: true });
  const transports = [...new Set(out.map((x) => x.transport))];
  return { disks: out, bytes: total, transport: transports.join(','), mode: o.within ? 'quick_rollback' : 'full', parallelDisks: Math.min(perDisk.length, deps.config.restore.diskParallelism), planMs };
}

/**
 * fn over items, at most `limit` at a time, results in the items' order. On
 * the first failure no new item starts; the ones running finish (a copy is
 * never abandoned mid-batch), then the failure is thrown.
 */
export async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { err: unknown } | null = null;
  const lane = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (err) {
        failed = failed ?? { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failed) throw (failed as { err: unknown }).err;
  return results;
}

/**
 * A verified restore: reads every written area of every disk back through
 * the same target (transport and snapshot as the writes) and compares it
 * with the backup, block checksums checked as it reads. Read-only; a
 * resumed job verifies again from the start. A disk write_disks already
 * read back whole while writing it (`verified` in its result) is not read
 * again.
 */
export async function verifyAllDisks(
  deps: RestoreDeps,
  ctx: StepContext,
  o: Pick<WriteAllOptions, 'pre' | 'vm' | 'source' | 'zeroFill' | 'disks' | 'metadata' | 'within' | 'slot'>,
): Promise<Record<string, unknown>> {
  const snapshot = (ctx.results.temp_snapshot as { snapshot?: string } | undefined)?.snapshot;
  const readBack = ((ctx.results.write_disks as { disks?: Array<Record<string, unknown>> } | undefined)?.disks ?? []).filter((d) => d.verified === true);
  const whileWriting = new Map(readBack.map((d) => [d.key as number, { key: d.key, file: d.file, transport: d.transport, bytesVerified: d.readBackBytes, whileWriting: true }]));
  const result = (disks: Array<Record<string, unknown>>) => ({ verified: true, disks, bytes: disks.reduce((s, d) => s + (d.bytesVerified as number), 0) });
  if (o.disks.every((d) => whileWriting.has(d.savedKey))) return result([...whileWriting.values()]);
  // Backward order: the disk's final content, each sector once (forward writes overlap).
  const planned = await planDiskWrites(deps, ctx, { ...o, order: 'backward' });
  const work = planned.work;
  const perDisk = planned.perDisk.filter((d) => !whileWriting.has(d.key));
  const creds = o.pre.target === 'vddk' ? await credentialsFor(deps, ctx.db, ctx.job) : null;
  const pinned = await pinnedTransport(ctx);
  const verifyDisk = async ({ key, writes }: { key: number; writes: DiskWrites }): Promise<Record<string, unknown>> => {
    const disk = o.disks.find((r) => r.savedKey === key);
    if (!disk) throw permanent('DISK_MISMATCH', `disk ${key} of the backup has no disk to verify`);
    const target = diskTarget(deps, o.pre as PreflightResult, creds, o.vm, snapshot, disk.fileName);
    if (target.kind === 'file') target.direct = directReads(deps);
    const written = (await ctx.checkpoint.load(key))?.state?.transport as string | undefined;
    if (target.kind === 'vddk') target.transports = pinFor(transportsFor(o.pre, key), written ?? pinned);
    const metadata = o.metadata?.get(key);
    // One read-back copy for the whole disk (nothing to checkpoint: a resumed job verifies again from the start).
    const res = await watchedCopy(
      {
        sources: writes.sources,
        extents: writes.extents,
        target,
        signal: o.slot?.signal ?? ctx.signal,
        ...(o.slot?.rateLimiters.length ? { rateLimiter: o.slot.rateLimiters } : {}),
        verify: true,
        ...(metadata ? { writeMetadata: metadata } : {}),
      },
      { stallMs: deps.config.restore.vddkStallTimeoutMs, label: `disk ${key}` },
    ).catch((e) => Promise.reject(fromVddk(e, `disk ${key} (${disk.fileName}): `)));
    return { key, file: disk.fileName, transport: res.transport, bytesVerified: res.bytesVerified, extents: writes.extents.length, durationMs: Math.round(res.durationMs), ...(metadata ? { metadataKeys: Object.keys(metadata).length } : {}) };
  };
  const read = await mapLimited(perDisk, deps.config.restore.diskParallelism, verifyDisk);
  await rm(work, { recursive: true, force: true });
  const byKey = new Map(read.map((d) => [d.key, d]));
  return result(planned.perDisk.map((d) => byKey.get(d.key) ?? whileWriting.get(d.key)!));
}

/** A digest of a disk's copy list (sources and extents), to tell whether a checkpoint's index still means the same writes. */
export function digestWrites(w: DiskWrites, workDir: string): string {
  const h = createHash('sha256');
  // The job's own scratch files (zeros, patches) are named apart from where they live: another worker may resume.
  h.update(w.sources.map((src) => (src.startsWith(workDir) ? basename(src) : src)).join('\n'));
  for (const e of w.extents) h.update(`${e.source}:${e.sourceOffset}:${e.targetOffset}:${e.length}:${e.check?.sha256 ?? ''};`);
  return h.digest('hex');
}
