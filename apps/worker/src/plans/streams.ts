import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { firstOverlap } from '@vmrestore/native-vddk';

// Range streams (docs/scheduling.md): one large disk written by several
// copies at once, each over its own contiguous range of the write list.
// Pure helpers; the write step (in-place.ts) runs the copies.

/** Extents [from, to) of a disk's write list, written up to `next`. */
export interface WriteRange {
  from: number;
  to: number;
  next: number;
}

interface Sized {
  targetOffset: number;
  length: number;
}

/** True when no two extents overlap on the disk: then their order does not matter, and ranges may be written at once. */
export function disjoint(extents: readonly Sized[]): boolean {
  return firstOverlap(extents) === null; // the addon's own check for readBack
}

/** Cumulative bytes: at[i] = bytes of extents [0, i). */
export function prefixBytes(extents: readonly Sized[]): Float64Array {
  const at = new Float64Array(extents.length + 1);
  for (let i = 0; i < extents.length; i++) at[i + 1] = at[i]! + extents[i]!.length;
  return at;
}

/**
 * Splits extents [from, to) into at most `streams` contiguous ranges of
 * about equal bytes (each at least `minBytes`, so a small disk stays one
 * range). Never an empty range.
 */
export function splitRange(at: Float64Array, from: number, to: number, streams: number, minBytes: number): WriteRange[] {
  const bytes = at[to]! - at[from]!;
  const n = Math.max(1, Math.min(streams, Math.floor(bytes / Math.max(1, minBytes)), to - from));
  const out: WriteRange[] = [];
  let start = from;
  for (let r = 1; r <= n; r++) {
    let end = to;
    if (r < n) {
      // The first index whose prefix reaches this range's share.
      const goal = at[from]! + (bytes * r) / n;
      end = start + 1;
      while (end < to && at[end]! < goal) end++;
    }
    if (end > start) out.push({ from: start, to: end, next: start });
    start = end;
    if (start >= to) break;
  }
  return out;
}

/** The index before which every extent is written: what an older, range-unaware resume may start from. */
export function contiguousNext(ranges: readonly WriteRange[], total: number): number {
  for (const r of ranges) if (r.next < r.to) return r.next;
  return total;
}

/** Bytes of the ranges written so far, plus what lies before the first range (written earlier). */
export function bytesWritten(at: Float64Array, ranges: readonly WriteRange[]): number {
  if (ranges.length === 0) return 0;
  return ranges.reduce((s, r) => s + (at[r.next]! - at[r.from]!), at[ranges[0]!.from]!);
}

/** Saved ranges from a checkpoint's state, if they are sound for a list of `total` extents. */
export function savedRanges(state: unknown, total: number): WriteRange[] | null {
  const ranges = (state as { ranges?: unknown } | null)?.ranges;
  if (!Array.isArray(ranges) || ranges.length === 0) return null;
  let expect = (ranges[0] as WriteRange).from;
  for (const r of ranges as WriteRange[]) {
    if (![r?.from, r?.to, r?.next].every(Number.isSafeInteger) || r.from !== expect || r.to <= r.from || r.next < r.from || r.next > r.to) return null;
    expect = r.to;
  }
  return expect === total ? (ranges as WriteRange[]).map((r) => ({ from: r.from, to: r.to, next: r.next })) : null;
}

/**
 * The file that holds a file-target disk's bytes: the FLAT extent of a text
 * descriptor (docs/disk-model.md), or the path itself for a raw image.
 * Range streams write there, after one write through the descriptor gave
 * the disk its new CID: two copies must not rewrite one descriptor at once.
 */
export function flatExtentPath(path: string): string {
  const text = readFileSync(path, { encoding: 'latin1' }).slice(0, 64 * 1024);
  if (!text.startsWith('# Disk DescriptorFile')) return path;
  const m = /^RW \d+ FLAT "([^"]+)" 0\s*$/m.exec(text);
  if (!m) throw new Error(`${path}: no "RW <sectors> FLAT" extent line`);
  return m[1]!.startsWith('/') ? m[1]! : join(dirname(path), m[1]!);
}

/**
 * How a `file` target is written when `copies` copies run at once in the
 * step (VMRESTORE_FILE_DIRECT_IO): O_DIRECT, or the page cache. Measured
 * here with bench/copy and bench/e2e: one direct stream beats the page
 * cache by about 1.3x, while four at once are slower direct than buffered
 * (ext4 serializes allocating direct writes; delayed allocation batches
 * them). Several copies through the page cache get no flush-behind: their
 * checkpoint fsyncs (every 256 MiB, off the write path) bound the dirty
 * pages already, and flush-behind's waits only stalled the writers (4 × 2
 * GiB at once: 14.4 s without it, 17.0 s with it, means of 4 runs).
 */
export function fileWriteMode(mode: 'auto' | 'on' | 'off', copies: number): { direct: boolean; flushBehind?: number } {
  const direct = mode === 'on' || (mode === 'auto' && copies <= 1);
  return !direct && copies > 1 ? { direct, flushBehind: 0 } : { direct };
}
