/**
 * Restore chains: a full point followed by incrementals, each naming its
 * parent. Loading walks parent links through the repository; the checks
 * themselves are pure.
 */
import { BackupError, BackupErrorCode } from './errors';
import type { PointManifest } from './format';
import type { BackupRepository } from './repository';

/**
 * Loads the chain ending at `pointId`, oldest (the full) first. Throws
 * CHAIN_BROKEN for a missing parent, a parent of another VM, a cycle, or a
 * chain that does not start with a full; with `check` (default) also the
 * consistency problems of chainProblems().
 */
export async function loadChain(
  repo: BackupRepository,
  vmId: string,
  pointId: string,
  options: { check?: boolean } = {},
): Promise<PointManifest[]> {
  const chain: PointManifest[] = [];
  const seen = new Set<string>();
  let current: string | null = pointId;
  let child: PointManifest | null = null;
  while (current !== null) {
    if (seen.has(current)) {
      throw new BackupError(BackupErrorCode.CHAIN_BROKEN, `vm ${vmId} point ${pointId}: the chain has a cycle through point ${current}`, {
        vmId,
        pointId: current,
        target: pointId,
      });
    }
    seen.add(current);
    let p: PointManifest;
    try {
      p = await repo.getPoint(vmId, current);
    } catch (err) {
      if (child !== null && err instanceof BackupError && err.code === BackupErrorCode.POINT_NOT_FOUND) {
        throw new BackupError(
          BackupErrorCode.CHAIN_BROKEN,
          `vm ${vmId} point ${child.pointId}: parent point ${current} is missing (chain of ${pointId})`,
          { vmId, pointId: child.pointId, parent: current, target: pointId },
          { cause: err },
        );
      }
      throw err;
    }
    chain.push(p);
    child = p;
    current = p.parent;
  }
  chain.reverse();
  if (options.check !== false) checkChain(chain);
  return chain;
}

/** Problems of a chain (oldest first) as errors, in order found; [] when consistent. Pure. */
export function chainProblems(chain: readonly PointManifest[]): BackupError[] {
  const problems: BackupError[] = [];
  const first = chain[0];
  if (!first) return [new BackupError(BackupErrorCode.CHAIN_BROKEN, 'empty chain')];
  const vmId = first.vmId;
  if (first.kind !== 'full' || first.parent !== null) {
    problems.push(
      new BackupError(BackupErrorCode.CHAIN_BROKEN, `vm ${vmId} point ${first.pointId}: the chain does not start with a full backup`, {
        vmId,
        pointId: first.pointId,
      }),
    );
  }
  for (let i = 1; i < chain.length; i++) {
    const p = chain[i]!;
    const parent = chain[i - 1]!;
    if (p.vmId !== vmId) {
      problems.push(
        new BackupError(BackupErrorCode.CHAIN_BROKEN, `vm ${vmId} point ${p.pointId}: belongs to vm ${p.vmId}, not to the chain's vm`, {
          vmId,
          pointId: p.pointId,
        }),
      );
    }
    if (p.kind !== 'incremental' || p.parent !== parent.pointId) {
      problems.push(
        new BackupError(BackupErrorCode.CHAIN_BROKEN, `vm ${vmId} point ${p.pointId}: expected an incremental with parent ${parent.pointId}`, {
          vmId,
          pointId: p.pointId,
        }),
      );
    }
    const keys = new Set(p.disks.map((d) => d.key));
    const parentKeys = new Set(parent.disks.map((d) => d.key));
    if (keys.size !== parentKeys.size || [...keys].some((k) => !parentKeys.has(k))) {
      problems.push(
        new BackupError(
          BackupErrorCode.DISK_SET_CHANGED,
          `vm ${vmId} point ${p.pointId}: disks [${[...keys].join(',')}] differ from parent ${parent.pointId} [${[...parentKeys].join(',')}]`,
          { vmId, pointId: p.pointId },
        ),
      );
    }
    for (const d of p.disks) {
      const pd = parent.disks.find((x) => x.key === d.key);
      if (pd && pd.capacityBytes !== d.capacityBytes) {
        problems.push(
          new BackupError(
            BackupErrorCode.CAPACITY_CHANGED,
            `vm ${vmId} point ${p.pointId} disk ${d.key}: capacity ${d.capacityBytes} differs from ${pd.capacityBytes} in parent ${parent.pointId}`,
            { vmId, pointId: p.pointId, diskKey: d.key, capacityBytes: d.capacityBytes, parentCapacityBytes: pd.capacityBytes },
          ),
        );
      }
    }
  }
  return problems;
}

/** Throws the first chain problem. */
export function checkChain(chain: readonly PointManifest[]): void {
  const first = chainProblems(chain)[0];
  if (first) throw first;
}
