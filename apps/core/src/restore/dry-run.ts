import type { BackupRepository } from '../backup';
import { planRestore, planZeroExtents } from '../backup';
import type { Config } from '../config';
import type { Db } from '../db';
import { AppError, JobError } from '../errors';
import { redactResult } from '../jobs/view';
import type { Keyring } from '../secrets';
import { findVcenterByName, vcenterClientOptions, vcenterCredentials } from '../vcenters';
import * as vsphere from '../vsphere';
import { assertVddkThumbprint, backupJobError, checkInPlace, checkNewVm, inPlaceRequest, newVmRequest } from './preflight';
import { decideQuickRollback, type QuickRollbackDisk, type QuickRollbackFallbackCode } from './quick-rollback';

// A dry run: the checks a restore makes before it touches anything, and what
// it would do (the exact ConfigSpec of a new VM, the bytes per disk, the
// target and transports, the warnings), without touching anything: no job,
// no lock, no snapshot, no power operation. What would fail is refused with
// the code the restore would fail with.

export interface DryRunResult {
  dryRun: true;
  kind: 'in_place' | 'new_vm';
  target: 'file' | 'vddk';
  transports: string[];
  needsSnapshot: boolean;
  chain: string[];
  disks: Array<{ key: number; capacityBytes: number; writeBytes: number; dataBytes: number; zeroBytes: number; transports?: string[]; transportReason?: string }>;
  bytes: number;
  warnings: Array<{ code: string; message: string }>;
  vm?: { moref: string; name: string; powerState: string; snapshots: number };
  quickRollback?: { mode: 'quick_rollback' | 'full' | 'unknown'; fallback?: { code: QuickRollbackFallbackCode; message: string }; bytes: number; fullBytes: number; disks: QuickRollbackDisk[] };
  newVm?: { name: string; datastore: string; folder: string; resourcePool: string; host: string | null; spec: Record<string, unknown> };
}

export async function dryRunRestore(deps: { db: Db; keyring: Keyring | null; config: Config; repo: BackupRepository | null }, tenantId: string, body: Record<string, any>): Promise<DryRunResult> {
  try {
    if (!deps.keyring) throw new JobError('SECRET_KEYRING_MISSING', 'this server has no VMRESTORE_SECRET_KEYS: it cannot read vCenter passwords', true);
    const vc = await findVcenterByName(deps.db, tenantId, body.vcenter);
    if (!vc) throw new JobError('VCENTER_NOT_FOUND', `no vCenter connection named "${body.vcenter}" (register it first)`, true);
    const creds = vcenterCredentials(deps.keyring, vc);
    const client = await vsphere.VSphereClient.connect({ ...vcenterClientOptions(creds), keepAliveMs: 0 });
    try {
      const c = body.kind === 'in_place' ? await checkInPlace(client, deps.repo, deps.config, inPlaceRequest(body), null) : await checkNewVm(client, deps.repo, deps.config, newVmRequest(body), null);
      assertVddkThumbprint(c.target, creds);
      // What each disk would get: its data, and for an in-place restore zeros where the point holds none.
      const plan = await planRestore(deps.repo!, body.source.vm, body.source.point).catch((e) => Promise.reject(backupJobError(e)));
      const disks = plan.disks.map((d) => {
        const zeroBytes = body.kind === 'in_place' ? planZeroExtents(d).reduce((s, z) => s + z.length, 0) : 0;
        const choice = c.diskTransports.find((x) => x.key === d.diskKey);
        return {
          key: d.diskKey,
          ...(choice ? { transports: choice.transports, transportReason: choice.reason } : {}),
          capacityBytes: d.capacityBytes,
          writeBytes: d.bytes + zeroBytes,
          dataBytes: d.bytes,
          zeroBytes,
        };
      });
      const bytes = disks.reduce((s, d) => s + d.writeBytes, 0);
      const common = {
        dryRun: true as const,
        target: c.target,
        transports: c.target === 'file' ? ['file'] : c.vddkTransports,
        needsSnapshot: c.needsSnapshot,
        chain: c.chain,
        disks,
        bytes,
      };
      if ('vmInstanceUuid' in c) {
        const snaps = c.snapshotsBefore;
        let quickRollback: DryRunResult['quickRollback'];
        if (inPlaceRequest(body).options.mode === 'quick_rollback') {
          // The same decision the job makes, without its snapshot: a powered-on VM cannot be compared (VM_POWERED_ON).
          const q = await decideQuickRollback(client, { vm: { type: 'VirtualMachine', value: c.vm }, point: plan.point, disks: c.disks });
          quickRollback = {
            // A powered-on VM: the restore compares after its power off; the dry run cannot tell.
            mode: q.fallback?.code === 'VM_POWERED_ON' ? 'unknown' : q.mode,
            ...(q.fallback ? { fallback: q.fallback } : {}),
            bytes: q.mode === 'quick_rollback' ? q.disks.reduce((s, d) => s + d.bytes, 0) : bytes,
            fullBytes: bytes,
            disks: q.disks,
          };
        }
        return {
          ...common,
          ...(quickRollback ? { quickRollback } : {}),
          kind: 'in_place',
          warnings: snaps && c.vddkTransports.includes('san') ? [{ code: 'SNAPSHOTS_REMOVED', message: `${snaps} existing snapshot(s) would be removed (removeExistingSnapshots)` }] : [],
          vm: { moref: c.vm, name: c.vmName, powerState: c.powerStateBefore, snapshots: snaps },
        };
      }
      return {
        ...common,
        kind: 'new_vm',
        warnings: c.warnings,
        newVm: {
          name: c.name,
          datastore: c.datastore,
          folder: c.folder,
          resourcePool: c.pool,
          host: c.host,
          spec: (redactResult({ spec: c.spec })!.spec as Record<string, unknown>) ?? c.spec,
        },
      };
    } finally {
      await client.close();
    }
  } catch (err) {
    const e = backupJobError(err);
    if (e instanceof JobError) {
      throw new AppError('DRY_RUN_REFUSED', `${e.code}: ${e.message}`, [{ in: 'body', field: 'dryRun', message: `the restore would fail: ${e.code}` }]);
    }
    throw e;
  }
}
