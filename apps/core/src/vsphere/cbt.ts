// Changed block tracking: which areas of a disk changed since a changeId
// (QueryChangedDiskAreas), read page by page as vCenter answers it.
import type { MoRef } from './codec';
import { VSphereError } from './errors';
import type { VimCaller } from './properties';

/** One changed area (DiskChangeExtent), in bytes. */
export interface ChangedArea {
  start: number;
  length: number;
}

interface DiskChangeInfo {
  startOffset: number;
  length: number;
  changedArea?: ChangedArea[];
}

export interface ChangedAreasQuery {
  /**
   * The state to compare with: a snapshot of the VM. Without one vCenter
   * compares the VM's current disks, which it allows only for a VM that is
   * powered off.
   */
  snapshot?: MoRef;
  deviceKey: number;
  /** The disk's changeId at the earlier point in time ("uuid/sequence"). */
  changeId: string;
  /** The disk's capacity: the pages must cover it. */
  capacityBytes: number;
}

export interface ChangedAreas {
  /** Sorted, disjoint, adjacent areas merged. */
  areas: ChangedArea[];
  bytes: number;
  /** QueryChangedDiskAreas calls made (one per page). */
  calls: number;
}

/**
 * Every area of the disk that changed since `changeId`. vCenter answers a
 * part of the disk per call (DiskChangeInfo.startOffset/length); the next
 * call starts where the last one ended, until the whole disk is covered.
 */
export async function queryChangedDiskAreas(client: VimCaller, vm: MoRef, q: ChangedAreasQuery): Promise<ChangedAreas> {
  const raw: ChangedArea[] = [];
  let offset = 0;
  let calls = 0;
  while (offset < q.capacityBytes) {
    const info = await client.call<DiskChangeInfo | undefined>('QueryChangedDiskAreas', vm, {
      snapshot: q.snapshot,
      deviceKey: q.deviceKey,
      startOffset: offset,
      changeId: q.changeId,
    });
    calls++;
    if (!info || !(Number(info.length) > 0) || Number(info.startOffset) > offset) {
      throw VSphereError.client('PROTOCOL', `QueryChangedDiskAreas for disk ${q.deviceKey} at offset ${offset} answered no progress`);
    }
    for (const a of info.changedArea ?? []) raw.push({ start: Number(a.start), length: Number(a.length) });
    offset = Number(info.startOffset) + Number(info.length);
  }
  const areas = mergeAreas(raw, q.capacityBytes);
  return { areas, bytes: areas.reduce((s, a) => s + a.length, 0), calls };
}

/** Sorted, clipped to [0, limit), overlapping and adjacent areas merged, empty ones dropped. */
export function mergeAreas(input: ChangedArea[], limit = Number.MAX_SAFE_INTEGER): ChangedArea[] {
  const sorted = input
    .map((a) => ({ start: Math.max(0, a.start), end: Math.min(limit, a.start + a.length) }))
    .filter((a) => a.end > a.start)
    .sort((x, y) => x.start - y.start);
  const out: ChangedArea[] = [];
  let cur: { start: number; end: number } | null = null;
  for (const a of sorted) {
    if (cur && a.start <= cur.end) cur.end = Math.max(cur.end, a.end);
    else {
      if (cur) out.push({ start: cur.start, length: cur.end - cur.start });
      cur = { ...a };
    }
  }
  if (cur) out.push({ start: cur.start, length: cur.end - cur.start });
  return out;
}
