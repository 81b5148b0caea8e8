/**
 * Interval arithmetic on byte ranges, for the restore planner. Pure.
 *
 * An IntervalList is a set of bytes stored as sorted, disjoint, non-adjacent
 * half-open ranges [start, end) in two Float64Arrays. Every operation is a
 * linear merge of sorted lists (O(n + m)); nothing is per sector, so a 2 TiB
 * disk with a million areas costs megabytes, not gigabytes.
 */

export interface IntervalList {
  readonly count: number;
  readonly starts: Float64Array;
  readonly ends: Float64Array;
}

/** Sorted, non-overlapping ranges that may touch (e.g. the blocks of one split area). */
export interface SortedRanges {
  readonly count: number;
  readonly starts: ArrayLike<number>;
  readonly ends: ArrayLike<number>;
}

export const EMPTY_INTERVALS: IntervalList = { count: 0, starts: new Float64Array(0), ends: new Float64Array(0) };

class Builder {
  count = 0;
  starts: Float64Array;
  ends: Float64Array;
  constructor(capacity: number) {
    this.starts = new Float64Array(Math.max(4, capacity));
    this.ends = new Float64Array(Math.max(4, capacity));
  }
  /** Appends [s, e); s must be >= the last end - merges when touching or overlapping. */
  push(s: number, e: number): void {
    if (e <= s) return;
    const n = this.count;
    if (n > 0 && s <= this.ends[n - 1]!) {
      if (e > this.ends[n - 1]!) this.ends[n - 1] = e;
      return;
    }
    if (n === this.starts.length) {
      const grow = (a: Float64Array): Float64Array => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts);
      this.ends = grow(this.ends);
    }
    this.starts[n] = s;
    this.ends[n] = e;
    this.count = n + 1;
  }
  done(): IntervalList {
    return { count: this.count, starts: this.starts.subarray(0, this.count), ends: this.ends.subarray(0, this.count) };
  }
}

/** Builds a normalized list from ranges in any order, overlapping or not. */
export function fromRanges(ranges: ReadonlyArray<{ start: number; end: number }>): IntervalList {
  const sorted = ranges.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  const b = new Builder(sorted.length);
  for (const r of sorted) b.push(r.start, r.end);
  return b.done();
}

/** Normalizes ranges that are already sorted by start (touching/overlapping allowed). */
export function fromSorted(r: SortedRanges): IntervalList {
  const b = new Builder(r.count);
  for (let i = 0; i < r.count; i++) {
    const s = r.starts[i]!;
    if (i > 0 && s < r.starts[i - 1]!) throw new RangeError(`fromSorted: range ${i} starts before range ${i - 1}`);
    b.push(s, r.ends[i]!);
  }
  return b.done();
}

export function toRanges(l: IntervalList): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  for (let i = 0; i < l.count; i++) out.push({ start: l.starts[i]!, end: l.ends[i]! });
  return out;
}

export function totalLength(l: IntervalList): number {
  let t = 0;
  for (let i = 0; i < l.count; i++) t += l.ends[i]! - l.starts[i]!;
  return t;
}

/** a ∪ b. a may be any sorted ranges; b too. Linear. */
export function union(a: SortedRanges, b: SortedRanges): IntervalList {
  const out = new Builder(a.count + b.count);
  let i = 0;
  let j = 0;
  while (i < a.count || j < b.count) {
    if (j >= b.count || (i < a.count && a.starts[i]! <= b.starts[j]!)) {
      out.push(a.starts[i]!, a.ends[i]!);
      i++;
    } else {
      out.push(b.starts[j]!, b.ends[j]!);
      j++;
    }
  }
  return out.done();
}

/**
 * Calls emit(i, start, end) for each part of a's range i that is not in
 * `covered`, in order of start. `a` is sorted and non-overlapping (touching
 * is fine); `covered` is normalized. Linear in a.count + covered.count.
 */
export function forEachUncovered(a: SortedRanges, covered: IntervalList, emit: (i: number, start: number, end: number) => void): void {
  let c = 0;
  for (let i = 0; i < a.count; i++) {
    let s = a.starts[i]!;
    const e = a.ends[i]!;
    // Skip covered ranges ending before s. Since a is sorted, c never moves back.
    while (c < covered.count && covered.ends[c]! <= s) c++;
    let k = c;
    while (s < e) {
      if (k >= covered.count || covered.starts[k]! >= e) {
        emit(i, s, e);
        break;
      }
      const cs = covered.starts[k]!;
      const ce = covered.ends[k]!;
      if (cs > s) emit(i, s, cs);
      s = Math.max(s, ce);
      k++;
    }
  }
}

/** a \ b. */
export function subtract(a: SortedRanges, b: IntervalList): IntervalList {
  const out = new Builder(a.count + b.count);
  forEachUncovered(a, b, (_i, s, e) => out.push(s, e));
  return out.done();
}

/** a ∩ b. */
export function intersect(a: IntervalList, b: IntervalList): IntervalList {
  const out = new Builder(Math.min(a.count, b.count) * 2);
  let i = 0;
  let j = 0;
  while (i < a.count && j < b.count) {
    const s = Math.max(a.starts[i]!, b.starts[j]!);
    const e = Math.min(a.ends[i]!, b.ends[j]!);
    if (s < e) out.push(s, e);
    if (a.ends[i]! < b.ends[j]!) i++;
    else j++;
  }
  return out.done();
}

/** [lo, hi) \ l: the gaps. */
export function complement(l: IntervalList, lo: number, hi: number): IntervalList {
  return subtract({ count: 1, starts: [lo], ends: [hi] }, l);
}
