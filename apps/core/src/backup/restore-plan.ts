/**
 * Plans a restore from a repository: loads the chain, checks it, loads each
 * disk's block index for every point and runs the pure planner. No data is
 * read here; verifyChain() checks the data, and the copier checks every
 * block's SHA-256 again as it writes.
 */
import { loadChain } from './chain';
import { BackupError } from './errors';
import type { PointManifest } from './format';
import { planDiskCompact, toDiskPlan, type CompactDiskPlan, type DiskPlan, type PlanDirection, type PlanPointInput } from './planner';
import type { BackupRepository } from './repository';

export interface RestorePlanOf<D> {
  vmId: string;
  pointId: string;
  direction: PlanDirection;
  /** Point ids of the chain, oldest first. */
  chain: string[];
  /** The target point's manifest: its config and disk metadata are what R2/R3 recreate. */
  point: PointManifest;
  disks: D[];
  /** Sum of the disks' bytes. */
  bytes: number;
}

export type RestorePlan = RestorePlanOf<DiskPlan>;
/** Column-wise disks: for chains with millions of extents (see extentBatches). */
export type CompactRestorePlan = RestorePlanOf<CompactDiskPlan>;

export interface PlanRestoreOptions {
  direction?: PlanDirection;
  /** Only these disks (default: every disk of the point). */
  diskKeys?: number[];
}

export async function planRestoreCompact(repo: BackupRepository, vmId: string, pointId: string, options: PlanRestoreOptions = {}): Promise<CompactRestorePlan> {
  const direction = options.direction ?? 'backward';
  const chain = await loadChain(repo, vmId, pointId);
  const target = chain[chain.length - 1]!;
  const keys = options.diskKeys ?? target.disks.map((d) => d.key);
  const disks: CompactDiskPlan[] = [];
  for (const key of keys) {
    const disk = target.disks.find((d) => d.key === key);
    if (!disk) {
      // Let the repository produce the typed DISK_NOT_FOUND error.
      await repo.dataPath(vmId, pointId, key);
      continue;
    }
    const points: PlanPointInput[] = [];
    for (const p of chain) {
      points.push({ pointId: p.pointId, source: await repo.dataPath(vmId, p.pointId, key), records: await repo.readDiskIndex(vmId, p.pointId, key) });
    }
    try {
      disks.push(planDiskCompact({ diskKey: key, capacityBytes: disk.capacityBytes, points }, direction));
    } catch (err) {
      if (err instanceof BackupError && err.details.vmId === undefined) {
        throw new BackupError(err.code, `vm ${vmId} ${err.message}`, { ...err.details, vmId }, { cause: err });
      }
      throw err;
    }
  }
  return {
    vmId,
    pointId,
    direction,
    chain: chain.map((p) => p.pointId),
    point: target,
    disks,
    bytes: disks.reduce((s, d) => s + d.bytes, 0),
  };
}

/** Plans every disk of the point; extents as objects, the shape the copy addon consumes. */
export async function planRestore(repo: BackupRepository, vmId: string, pointId: string, options: PlanRestoreOptions = {}): Promise<RestorePlan> {
  const compact = await planRestoreCompact(repo, vmId, pointId, options);
  return { ...compact, disks: compact.disks.map(toDiskPlan) };
}
