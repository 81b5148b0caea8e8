import type { PointManifest } from '../backup';
import * as vsphere from '../vsphere';
import { alignAreas, type Area } from './write-plan';

// Quick rollback: an in-place restore that writes only what changed on the
// VM since the restore point. CBT on the live VM tells which areas changed
// since the point's changeId (QueryChangedDiskAreas); those areas, read from
// the point's view of the chain, are all that differs from the point. When
// CBT cannot answer for every disk, the restore writes everything instead
// and says why (the fallback codes below).

export const QUICK_ROLLBACK_FALLBACKS = {
  CBT_DISABLED: 'changed block tracking is off on the VM',
  CHANGE_ID_UNKNOWN: 'the restore point has no changeId for a disk',
  DISK_RESIZED: 'a disk was resized since the restore point (resizing resets CBT)',
  CHANGE_ID_INVALID: "vCenter no longer accepts the point's changeId (CBT was reset: the VM moved, a disk was resized, or CBT was turned off and on)",
  CBT_QUERY_REFUSED: 'vCenter refused QueryChangedDiskAreas',
  VM_POWERED_ON: 'the VM is powered on and has no snapshot to compare with: vCenter computes changed areas only for a powered-off VM or against a snapshot',
} as const;
export type QuickRollbackFallbackCode = keyof typeof QUICK_ROLLBACK_FALLBACKS;

export interface QuickRollbackDisk {
  key: number;
  /** The point's changeId the query compared with. */
  changeId: string;
  /** Changed areas (KiB-aligned, merged) and their bytes. */
  areas: number;
  bytes: number;
  /** QueryChangedDiskAreas calls (pages). */
  calls: number;
}

export interface QuickRollbackDecision {
  mode: 'quick_rollback' | 'full';
  fallback?: { code: QuickRollbackFallbackCode; message: string };
  disks: QuickRollbackDisk[];
  /** Per disk key, the areas to write as flat [start, length, start, length, ...] (not shown by the API). */
  changedAreas?: Record<string, number[]>;
}

export interface QuickRollbackInput {
  vm: vsphere.MoRef;
  /** The restore point: its disks' changeIds. */
  point: Pick<PointManifest, 'disks'>;
  /** The VM's disks as preflight saw them (capacities to compare). */
  disks: Array<{ key: number; capacityBytes: number; vmCapacityBytes: number }>;
  /** Compare against this snapshot (the temporary one); absent: the VM's current disks (it must be off). */
  snapshot?: vsphere.MoRef;
}

const fallback = (code: QuickRollbackFallbackCode, detail?: string): QuickRollbackDecision => ({
  mode: 'full',
  fallback: { code, message: detail ? `${QUICK_ROLLBACK_FALLBACKS[code]}: ${detail}` : QUICK_ROLLBACK_FALLBACKS[code] },
  disks: [],
});

/**
 * What a quick rollback would write, or why it falls back to a full
 * restore. Errors that a retry can fix (the network, a session) are thrown;
 * a vCenter fault is a refusal, answered with a fallback.
 */
export async function decideQuickRollback(client: vsphere.VimCaller, input: QuickRollbackInput): Promise<QuickRollbackDecision> {
  const props = await vsphere.getProperties(client, input.vm, ['config.changeTrackingEnabled', 'runtime.powerState']);
  if (props['config.changeTrackingEnabled'] !== true) return fallback('CBT_DISABLED');
  if (!input.snapshot && props['runtime.powerState'] !== 'poweredOff') return fallback('VM_POWERED_ON');
  const disks: QuickRollbackDisk[] = [];
  const changedAreas: Record<string, number[]> = {};
  for (const d of input.disks) {
    const saved = input.point.disks.find((p) => p.key === d.key);
    const changeId = saved?.changeId;
    if (!changeId || changeId === '*') return fallback('CHANGE_ID_UNKNOWN', `disk ${d.key}`);
    if (d.vmCapacityBytes !== d.capacityBytes) return fallback('DISK_RESIZED', `disk ${d.key} has ${d.vmCapacityBytes} bytes, the point ${d.capacityBytes}`);
    let found: vsphere.ChangedAreas;
    try {
      found = await vsphere.queryChangedDiskAreas(client, input.vm, { deviceKey: d.key, changeId, capacityBytes: d.capacityBytes, ...(input.snapshot ? { snapshot: input.snapshot } : {}) });
    } catch (err) {
      if (!(err instanceof vsphere.VSphereError) || !err.faultType || err.faultType === 'NotAuthenticated') throw err;
      return fallback(err.faultType === 'FileFault' ? 'CHANGE_ID_INVALID' : 'CBT_QUERY_REFUSED', `disk ${d.key}: ${err.code}: ${err.message}`);
    }
    const areas = alignAreas(found.areas, d.capacityBytes);
    changedAreas[String(d.key)] = areas.flatMap((a) => [a.start, a.length]);
    disks.push({ key: d.key, changeId, areas: areas.length, bytes: areas.reduce((s, a) => s + a.length, 0), calls: found.calls });
  }
  return { mode: 'quick_rollback', disks, changedAreas };
}

/** The areas of one disk from a decision's flat list. */
export function areasOf(decision: Pick<QuickRollbackDecision, 'changedAreas'>, key: number): Area[] | undefined {
  const flat = decision.changedAreas?.[String(key)];
  if (!flat) return undefined;
  const out: Area[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ start: flat[i]!, length: flat[i + 1]! });
  return out;
}
