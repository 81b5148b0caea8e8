import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { BackupError, BackupErrorCode, planZeroExtents, type DiskPlan, type Extent } from '../backup';

// The writes of one disk as the copy addon takes them, every one a whole
// number of KiB at a KiB-aligned offset (MISSION R1.4: whole sectors, and an
// even count of them). The planner works in 512-byte sectors, so where a
// newer point's area starts or ends on an odd sector, one KiB of the disk
// holds bytes from two places. Those KiB units are rebuilt here, byte exact,
// as 1 KiB "patches" written last; every other write is trimmed to its
// aligned interior.

export const UNIT = 1024;

/** A piece of the final disk: bytes of a source (or zeros, source -1) at a target offset. */
export interface Piece {
  source: number;
  sourceOffset: number;
  targetOffset: number;
  length: number;
  check?: Extent['check'];
}

export interface AlignedWrites {
  /** Trimmed to whole units; in the order given. */
  extents: Piece[];
  /** Unit index → the pieces (in final-content order) that overlap it. */
  patchUnits: Map<number, Piece[]>;
}

const floorU = (x: number) => Math.floor(x / UNIT) * UNIT;
const ceilU = (x: number) => Math.ceil(x / UNIT) * UNIT;

/**
 * Splits disjoint pieces that together give the final content into aligned
 * interiors and the units that need a patch. Pure.
 */
export function alignPieces(finalPieces: Piece[]): AlignedWrites {
  const extents: Piece[] = [];
  const patchUnits = new Map<number, Piece[]>();
  const flag = (unit: number, p: Piece) => {
    const list = patchUnits.get(unit);
    if (list) {
      if (!list.includes(p)) list.push(p);
    } else patchUnits.set(unit, [p]);
  };
  for (const p of finalPieces) {
    const s = p.targetOffset;
    const e = s + p.length;
    const a = ceilU(s);
    const b = floorU(e);
    if (a < b) extents.push(trim(p, a, b));
    if (s % UNIT !== 0) flag(floorU(s) / UNIT, p);
    if (e % UNIT !== 0) flag(floorU(e) / UNIT, p);
    if (a >= b && s % UNIT === 0 && e % UNIT === 0) {
      /* empty piece: nothing */
    }
  }
  return { extents, patchUnits };
}

/** The part [from, to) of a piece (target coordinates). */
export function trim(p: Piece, from: number, to: number): Piece {
  const out: Piece = { source: p.source, sourceOffset: p.sourceOffset + (from - p.targetOffset), targetOffset: from, length: to - from };
  if (p.check) out.check = p.check;
  return out;
}

/** An area of a disk, in bytes (a changed area as QueryChangedDiskAreas reports it). */
export interface Area {
  start: number;
  length: number;
}

/** Areas widened to whole KiB units (the unit of every write), clipped to the disk, sorted and merged. */
export function alignAreas(areas: Area[], capacityBytes: number): Area[] {
  const units = areas
    .map((a) => ({ start: floorU(Math.max(0, a.start)), end: Math.min(ceilU(a.start + a.length), ceilU(capacityBytes)) }))
    .filter((a) => a.end > a.start)
    .sort((x, y) => x.start - y.start);
  const out: Area[] = [];
  for (const a of units) {
    const last = out[out.length - 1];
    if (last && a.start <= last.start + last.length) last.length = Math.max(last.length, a.end - last.start);
    else out.push({ start: a.start, length: a.end - a.start });
  }
  return out;
}

/** The parts of each piece that lie inside the areas (sorted and disjoint), in the pieces' order. Pure. */
export function piecesWithin(pieces: Piece[], areas: Area[]): Piece[] {
  const out: Piece[] = [];
  for (const p of pieces) {
    const s = p.targetOffset;
    const e = s + p.length;
    // The first area that ends after the piece starts.
    let lo = 0;
    let hi = areas.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (areas[mid]!.start + areas[mid]!.length <= s) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < areas.length && areas[i]!.start < e; i++) {
      const from = Math.max(s, areas[i]!.start);
      const to = Math.min(e, areas[i]!.start + areas[i]!.length);
      if (to > from) out.push(from === s && to === e ? p : trim(p, from, to));
    }
  }
  return out;
}

/** Reads source bytes for patches, verifying each stored block's SHA-256 once before trusting it. */
export class SourceReader {
  private readonly verified = new Set<string>();
  private readonly handles = new Map<number, fsp.FileHandle>();
  constructor(private readonly sources: string[]) {}

  private async handle(i: number): Promise<fsp.FileHandle> {
    let h = this.handles.get(i);
    if (!h) {
      h = await fsp.open(this.sources[i]!, 'r');
      this.handles.set(i, h);
    }
    return h;
  }

  async read(p: Piece, from: number, into: Buffer, at: number, length: number): Promise<void> {
    const h = await this.handle(p.source);
    if (p.check) {
      const key = `${p.source}:${p.check.offset}`;
      if (!this.verified.has(key)) {
        const block = Buffer.alloc(p.check.length);
        const { bytesRead } = await h.read(block, 0, block.length, p.check.offset);
        const digest = createHash('sha256').update(block.subarray(0, bytesRead)).digest('hex');
        if (bytesRead !== block.length || digest !== p.check.sha256) {
          throw new BackupError(BackupErrorCode.CHECKSUM_MISMATCH, `block at ${p.check.offset} of ${this.sources[p.source]} does not match its SHA-256`, {
            path: this.sources[p.source]!,
          });
        }
        this.verified.add(key);
      }
    }
    const { bytesRead } = await h.read(into, at, length, p.sourceOffset + (from - p.targetOffset));
    if (bytesRead !== length) {
      throw new BackupError(BackupErrorCode.DATA_TRUNCATED, `${this.sources[p.source]} ends before offset ${p.sourceOffset + (from - p.targetOffset) + length}`, {
        path: this.sources[p.source]!,
      });
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.handles.values()].map((h) => h.close()));
    this.handles.clear();
  }
}

export interface DiskWrites {
  /** Data files, then the zero file and the patch file (when used). */
  sources: string[];
  extents: Extent[];
  /** Bytes of restored data, of zeros, of patches. */
  dataBytes: number;
  zeroBytes: number;
  patchUnits: number;
}

export interface BuildWritesOptions {
  /** The backward plan: each sector once, the final content. */
  backward: DiskPlan;
  /** The order to write data in: the backward plan itself, or the forward replay. */
  order: DiskPlan;
  /** In place: also write zeros where the point holds no data (a full's unlisted sectors read as zeros). */
  zeroFill: boolean;
  /** Where to put the zero source and the patches (a job's own directory). */
  workDir: string;
  /**
   * Only these areas of the disk (a quick rollback: what changed since the
   * point), KiB-aligned, sorted and disjoint (alignAreas). Absent: the whole disk.
   */
  within?: Area[];
}

/**
 * The complete, aligned copy list of one disk. Deterministic: the same plan
 * gives the same list, so a resumed job's checkpoint (an index into it) stays
 * valid.
 */
export async function buildDiskWrites(opts: BuildWritesOptions): Promise<DiskWrites> {
  const { backward, order } = opts;
  if (order.sources.join('\n') !== backward.sources.join('\n')) throw new Error('backward and forward plans must share their sources');
  const sources = [...backward.sources];
  const zeroRanges = opts.zeroFill ? planZeroExtents(backward) : [];
  const ZERO = sources.length;
  const only = (pieces: Piece[]) => (opts.within ? piecesWithin(pieces, opts.within) : pieces);
  const zeroPieces: Piece[] = only(zeroRanges.map((z) => ({ source: ZERO, sourceOffset: 0, targetOffset: z.targetOffset, length: z.length })));

  // Final content, disjoint and sorted: backward data plus zeros.
  const finalPieces: Piece[] = [...only(backward.extents), ...zeroPieces].sort((x, y) => x.targetOffset - y.targetOffset);
  const { patchUnits } = alignPieces(finalPieces);
  // What is written, in the chosen order, trimmed; patches go last.
  const ordered = alignPieces([...zeroPieces, ...only(order.extents)]).extents;

  const extents: Extent[] = [];
  let zeroBytes = 0;
  let dataBytes = 0;
  let maxZero = 0;
  for (const p of ordered) {
    // Any offset of the zero file reads zeros; 0 keeps it within the file.
    const e: Extent = { source: p.source, sourceOffset: p.source === ZERO ? 0 : p.sourceOffset, targetOffset: p.targetOffset, length: p.length };
    if (p.check) e.check = p.check;
    extents.push(e);
    if (p.source === ZERO) {
      zeroBytes += p.length;
      maxZero = Math.max(maxZero, p.length);
    } else dataBytes += p.length;
  }
  if (zeroPieces.length) {
    // A sparse file of zeros: free on disk, and an ordinary source for the addon.
    const zeroFile = `${opts.workDir}/zeros-${backward.diskKey}.bin`;
    const h = await fsp.open(zeroFile, 'w');
    await h.truncate(Math.max(maxZero, UNIT));
    await h.close();
    sources.push(zeroFile);
  }

  if (patchUnits.size) {
    const PATCH = sources.length;
    const patchFile = `${opts.workDir}/patches-${backward.diskKey}.bin`;
    const reader = new SourceReader(sources);
    const units = [...patchUnits.keys()].sort((a, b) => a - b);
    const buf = Buffer.alloc(units.length * UNIT);
    try {
      for (let i = 0; i < units.length; i++) {
        const start = units[i]! * UNIT;
        for (const p of patchUnits.get(units[i]!)!) {
          const from = Math.max(start, p.targetOffset);
          const to = Math.min(start + UNIT, p.targetOffset + p.length);
          if (to <= from) continue;
          if (p.source === ZERO) continue; // the buffer is zeros already
          await reader.read(p, from, buf, i * UNIT + (from - start), to - from);
        }
      }
    } finally {
      await reader.close();
    }
    await fsp.writeFile(patchFile, buf);
    sources.push(patchFile);
    for (let i = 0; i < units.length; i++) {
      const data = buf.subarray(i * UNIT, (i + 1) * UNIT);
      extents.push({
        source: PATCH,
        sourceOffset: i * UNIT,
        targetOffset: units[i]! * UNIT,
        length: UNIT,
        check: { offset: i * UNIT, length: UNIT, sha256: createHash('sha256').update(data).digest('hex') },
      });
    }
  }
  return { sources, extents, dataBytes, zeroBytes, patchUnits: patchUnits.size };
}
