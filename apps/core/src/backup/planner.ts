/**
 * The restore planner: for one disk and a chain of restore points, the list
 * of copies (extents) that rebuilds the disk as it was at the newest point.
 * Pure: no I/O; input is the block records of each point, already loaded.
 *
 * - backward (default): the newest point wins each sector; each point
 *   contributes only the parts of its blocks that no newer point wrote, so
 *   every sector is written exactly once (MISSION R3.6 "never overwrite with
 *   older data"). Extents come sorted by target offset.
 * - forward: the chain replayed oldest first, every block whole, in chain
 *   order; sectors changed in several points are written several times.
 *
 * Both produce the same bytes on a disk that reads as zeros where the full
 * holds no data (a new disk, R2/R3). In place, also zero planZeroExtents().
 *
 * Plans are computed column-wise (CompactDiskPlan, 24 bytes per extent);
 * Extent objects are made on demand (planDisk, extentBatches) because a
 * million of them cost hundreds of megabytes.
 */
import { BackupError, BackupErrorCode } from './errors';
import { complement, fromRanges, fromSorted, type IntervalList } from './extents';
import { findRecordProblem, sectorCeil, type RecordTable } from './format';

export type PlanDirection = 'backward' | 'forward';

/** The stored block containing an extent's source range; the copier verifies it whole. */
export interface ExtentCheck {
  /** Offset of the block in the source data file. */
  offset: number;
  length: number;
  /** SHA-256 of the block, lowercase hex. */
  sha256: string;
}

/** One copy: `length` bytes from sources[source] at sourceOffset to the disk at targetOffset. */
export interface Extent {
  source: number;
  sourceOffset: number;
  targetOffset: number;
  length: number;
  check?: ExtentCheck;
}

export interface DiskPlan {
  diskKey: number;
  capacityBytes: number;
  direction: PlanDirection;
  /** Data file of each chain point, oldest first; Extent.source indexes this. */
  sources: string[];
  extents: Extent[];
  /** Sum of extent lengths: bytes the restore writes. */
  bytes: number;
}

export interface PlanPointInput {
  pointId: string;
  /** Path of this point's data file for the disk. */
  source: string;
  records: RecordTable;
}

export interface PlanDiskInput {
  diskKey: number;
  capacityBytes: number;
  /** The chain, oldest (the full) first. */
  points: readonly PlanPointInput[];
}

/** A plan as columns: extent i copies record[i] of point source[i], the part at targetOffset[i]. */
export interface CompactDiskPlan {
  diskKey: number;
  capacityBytes: number;
  direction: PlanDirection;
  sources: string[];
  count: number;
  bytes: number;
  source: Uint32Array;
  record: Uint32Array;
  targetOffset: Float64Array;
  length: Float64Array;
  /** Record tables of the points (for source offsets and checks). */
  tables: RecordTable[];
}

/**
 * Throws FORMAT_INVALID when a point's records are unsorted, overlapping,
 * unaligned, too long or past the capacity: the planner relies on all of it.
 */
export function assertPlannable(input: PlanDiskInput): void {
  for (const p of input.points) {
    const bad = findRecordProblem(p.records, input.capacityBytes);
    if (bad) {
      throw new BackupError(
        BackupErrorCode.FORMAT_INVALID,
        `point ${p.pointId} disk ${input.diskKey} block ${bad.block} (disk offset ${bad.diskOffset}): ${bad.problem}`,
        { pointId: p.pointId, diskKey: input.diskKey, block: bad.block, diskOffset: bad.diskOffset },
      );
    }
  }
}

class Columns {
  count = 0;
  source: Uint32Array;
  record: Uint32Array;
  target: Float64Array;
  length: Float64Array;
  constructor(capacity: number) {
    const c = Math.max(16, capacity);
    this.source = new Uint32Array(c);
    this.record = new Uint32Array(c);
    this.target = new Float64Array(c);
    this.length = new Float64Array(c);
  }
  push(source: number, record: number, target: number, length: number): void {
    if (this.count === this.source.length) {
      const c = this.count * 2;
      const grow = <T extends Uint32Array | Float64Array>(a: T, b: T): T => (b.set(a), b);
      this.source = grow(this.source, new Uint32Array(c));
      this.record = grow(this.record, new Uint32Array(c));
      this.target = grow(this.target, new Float64Array(c));
      this.length = grow(this.length, new Float64Array(c));
    }
    const i = this.count++;
    this.source[i] = source;
    this.record[i] = record;
    this.target[i] = target;
    this.length[i] = length;
  }
}

/**
 * Backward planning as one sweep over the disk: every point's records form a
 * sorted stream of start/end events; a heap merges the k streams, a bit set
 * holds which points cover the current position, and the newest of them owns
 * the bytes up to the next event. O(N log k) for N records in k points.
 */
function sweepBackward(input: PlanDiskInput): Columns {
  const pts = input.points;
  const k = pts.length;
  let total = 0;
  for (const p of pts) total += p.records.count;
  const out = new Columns(total + 16);
  // Hoisted per-point columns (monomorphic array loads in the hot loop).
  const offs = pts.map((p) => p.records.diskOffset);
  const lens = pts.map((p) => p.records.length);
  const events = new Float64Array(k); // 2 × record count of each point
  // Per point: next event number e (record e>>1; even = its start, odd = its end).
  const next = new Uint32Array(k);
  const words = Math.ceil(k / 32) || 1;
  const active = new Int32Array(words); // bit p set: point p covers the sweep position
  // Min-heap of points keyed by the position of their next event (key stored beside).
  const heap = new Int32Array(k);
  const key = new Float64Array(k);
  let hn = 0;
  const siftDown = (i: number): void => {
    const p = heap[i]!;
    const kp = key[i]!;
    for (;;) {
      let m = 2 * i + 1;
      if (m >= hn) break;
      if (m + 1 < hn && key[m + 1]! < key[m]!) m++;
      if (key[m]! >= kp) break;
      heap[i] = heap[m]!;
      key[i] = key[m]!;
      i = m;
    }
    heap[i] = p;
    key[i] = kp;
  };
  for (let p = 0; p < k; p++) {
    events[p] = 2 * pts[p]!.records.count;
    if (events[p]! > 0) {
      heap[hn] = p;
      key[hn] = offs[p]![0]!;
      hn++;
    }
  }
  for (let i = (hn >> 1) - 1; i >= 0; i--) siftDown(i);

  let prev = 0;
  let lastSource = -1;
  let lastRecord = -1;
  while (hn > 0) {
    const at = key[0]!;
    // Bytes [prev, at) belong to the newest active point, if any.
    if (at > prev) {
      let owner = -1;
      for (let w = words - 1; w >= 0; w--) {
        const bits = active[w]!;
        if (bits !== 0) {
          owner = w * 32 + 31 - Math.clz32(bits);
          break;
        }
      }
      if (owner >= 0) {
        const rec = (next[owner]! - 1) >>> 1; // its start was consumed, its end is pending
        const i = out.count - 1;
        if (owner === lastSource && rec === lastRecord && out.target[i]! + out.length[i]! === prev) out.length[i] = out.length[i]! + (at - prev);
        else {
          out.push(owner, rec, prev, at - prev);
          lastSource = owner;
          lastRecord = rec;
        }
      }
      prev = at;
    }
    // Consume every event at `at`; order among them does not matter.
    while (hn > 0 && key[0] === at) {
      const p = heap[0]!;
      const e = next[p]!;
      const w = p >>> 5;
      if (e & 1) active[w] = active[w]! & ~(1 << (p & 31));
      else active[w] = active[w]! | (1 << (p & 31));
      const n = e + 1;
      next[p] = n;
      if (n < events[p]!) {
        const r = n >>> 1;
        key[0] = n & 1 ? offs[p]![r]! + lens[p]![r]! : offs[p]![r]!;
      } else {
        hn--;
        heap[0] = heap[hn]!;
        key[0] = key[hn]!;
      }
      siftDown(0);
    }
  }
  return out;
}

function forwardColumns(input: PlanDiskInput): Columns {
  let total = 0;
  for (const p of input.points) total += p.records.count;
  const out = new Columns(total);
  input.points.forEach((point, p) => {
    const t = point.records;
    for (let i = 0; i < t.count; i++) out.push(p, i, t.diskOffset[i]!, t.length[i]!);
  });
  return out;
}

/** Validates the input (assertPlannable) and plans one disk, column-wise. */
export function planDiskCompact(input: PlanDiskInput, direction: PlanDirection = 'backward'): CompactDiskPlan {
  assertPlannable(input);
  const c = direction === 'forward' ? forwardColumns(input) : sweepBackward(input);
  let bytes = 0;
  for (let i = 0; i < c.count; i++) bytes += c.length[i]!;
  return {
    diskKey: input.diskKey,
    capacityBytes: input.capacityBytes,
    direction,
    sources: input.points.map((p) => p.source),
    count: c.count,
    bytes,
    source: c.source.subarray(0, c.count),
    record: c.record.subarray(0, c.count),
    targetOffset: c.target.subarray(0, c.count),
    length: c.length.subarray(0, c.count),
    tables: input.points.map((p) => p.records),
  };
}

/**
 * Makes Extent objects [from, to) of a compact plan. Extents cut from one
 * block share one check object.
 */
export function materializeExtents(plan: CompactDiskPlan, from = 0, to = plan.count): Extent[] {
  // One Buffer view per table; each hash is converted on its own (no per-record Buffer).
  const views: Array<Buffer | undefined> = new Array(plan.tables.length);
  const hexOf = (p: number, r: number): string => {
    let v = views[p];
    if (v === undefined) {
      const t = plan.tables[p]!;
      v = Buffer.from(t.sha256.buffer, t.sha256.byteOffset, t.count * 32);
      views[p] = v;
    }
    return v.toString('hex', r * 32, r * 32 + 32);
  };
  const out: Extent[] = new Array(Math.max(0, to - from));
  // Pieces of one record are consecutive among the extents of their point.
  const lastRecord = new Int32Array(plan.tables.length).fill(-1);
  const lastCheck: ExtentCheck[] = new Array(plan.tables.length);
  for (let i = from; i < to; i++) {
    const p = plan.source[i]!;
    const r = plan.record[i]!;
    const t = plan.tables[p]!;
    if (lastRecord[p] !== r) {
      lastRecord[p] = r;
      lastCheck[p] = { offset: t.dataOffset[r]!, length: t.length[r]!, sha256: hexOf(p, r) };
    }
    const target = plan.targetOffset[i]!;
    out[i - from] = {
      source: p,
      sourceOffset: t.dataOffset[r]! + (target - t.diskOffset[r]!),
      targetOffset: target,
      length: plan.length[i]!,
      check: lastCheck[p]!,
    };
  }
  return out;
}

/** Extent objects in batches of `size`: bounded memory for plans of millions of extents. */
export function* extentBatches(plan: CompactDiskPlan, size = 65536): Generator<Extent[]> {
  for (let i = 0; i < plan.count; i += size) yield materializeExtents(plan, i, Math.min(plan.count, i + size));
}

export function toDiskPlan(plan: CompactDiskPlan): DiskPlan {
  return {
    diskKey: plan.diskKey,
    capacityBytes: plan.capacityBytes,
    direction: plan.direction,
    sources: plan.sources,
    extents: materializeExtents(plan),
    bytes: plan.bytes,
  };
}

/** Validates the input and plans one disk: the copy list the addon consumes. */
export function planDisk(input: PlanDiskInput, direction: PlanDirection = 'backward'): DiskPlan {
  return toDiskPlan(planDiskCompact(input, direction));
}

/**
 * Ranges of the disk (rounded up to a whole sector) that no point holds data
 * for, i.e. that read as zeros at the target point. A new disk already reads
 * as zeros; an in-place restore must also write these.
 */
export function planZeroExtents(plan: DiskPlan | CompactDiskPlan): Array<{ targetOffset: number; length: number }> {
  let covered: IntervalList;
  if ('extents' in plan) {
    covered = fromRanges(plan.extents.map((e) => ({ start: e.targetOffset, end: e.targetOffset + e.length })));
  } else if (plan.direction === 'backward') {
    const ends = new Float64Array(plan.count);
    for (let i = 0; i < plan.count; i++) ends[i] = plan.targetOffset[i]! + plan.length[i]!;
    covered = fromSorted({ count: plan.count, starts: plan.targetOffset, ends });
  } else {
    const ranges = new Array<{ start: number; end: number }>(plan.count);
    for (let i = 0; i < plan.count; i++) ranges[i] = { start: plan.targetOffset[i]!, end: plan.targetOffset[i]! + plan.length[i]! };
    covered = fromRanges(ranges);
  }
  const gaps = complement(covered, 0, sectorCeil(plan.capacityBytes));
  const out: Array<{ targetOffset: number; length: number }> = [];
  for (let i = 0; i < gaps.count; i++) out.push({ targetOffset: gaps.starts[i]!, length: gaps.ends[i]! - gaps.starts[i]! });
  return out;
}
