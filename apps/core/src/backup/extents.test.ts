import fc from 'fast-check';
import { complement, forEachUncovered, fromRanges, fromSorted, intersect, subtract, toRanges, totalLength, union, type IntervalList } from './extents';

// Model: a set of unit positions in [0, 200).
const rangeArb = fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 40 })).map(([s, l]) => ({ start: s, end: s + l }));
const rangesArb = fc.array(rangeArb, { maxLength: 20 });

function toSet(l: IntervalList): Set<number> {
  const s = new Set<number>();
  for (const r of toRanges(l)) for (let x = r.start; x < r.end; x++) s.add(x);
  return s;
}
function modelSet(rs: Array<{ start: number; end: number }>): Set<number> {
  const s = new Set<number>();
  for (const r of rs) for (let x = r.start; x < r.end; x++) s.add(x);
  return s;
}
function sorted(s: Set<number>): number[] {
  return [...s].sort((a, b) => a - b);
}
function assertNormalized(l: IntervalList): void {
  for (let i = 0; i < l.count; i++) {
    expect(l.starts[i]!).toBeLessThan(l.ends[i]!);
    if (i > 0) expect(l.starts[i]!).toBeGreaterThan(l.ends[i - 1]!); // disjoint and not touching
  }
}

describe('extents', () => {
  it('fromRanges normalizes to the same set', () => {
    fc.assert(
      fc.property(rangesArb, (rs) => {
        const l = fromRanges(rs);
        assertNormalized(l);
        expect(sorted(toSet(l))).toEqual(sorted(modelSet(rs)));
        expect(totalLength(l)).toBe(modelSet(rs).size);
      }),
    );
  });

  it('union, subtract, intersect, complement agree with set arithmetic', () => {
    fc.assert(
      fc.property(rangesArb, rangesArb, (ra, rb) => {
        const a = fromRanges(ra);
        const b = fromRanges(rb);
        const A = modelSet(ra);
        const B = modelSet(rb);
        const u = union(a, b);
        const d = subtract(a, b);
        const x = intersect(a, b);
        const c = complement(a, 0, 250);
        [u, d, x, c].forEach(assertNormalized);
        expect(sorted(toSet(u))).toEqual(sorted(new Set([...A, ...B])));
        expect(sorted(toSet(d))).toEqual(sorted(A).filter((v) => !B.has(v)));
        expect(sorted(toSet(x))).toEqual(sorted(A).filter((v) => B.has(v)));
        expect(sorted(toSet(c))).toEqual(Array.from({ length: 250 }, (_, i) => i).filter((v) => !A.has(v)));
      }),
    );
  });

  it('forEachUncovered reports, per touching sorted range, exactly its uncovered positions in order', () => {
    // Sorted, non-overlapping, possibly touching ranges: cut a normalized list at random points.
    const cutArb = fc.tuple(rangesArb, fc.array(fc.integer({ min: 0, max: 240 }), { maxLength: 10 }), rangesArb);
    fc.assert(
      fc.property(cutArb, ([ra, cuts, rc]) => {
        const pieces: Array<{ start: number; end: number }> = [];
        for (const r of toRanges(fromRanges(ra))) {
          const inside = [...new Set(cuts.filter((c) => c > r.start && c < r.end))].sort((x, y) => x - y);
          let s = r.start;
          for (const c of [...inside, r.end]) {
            pieces.push({ start: s, end: c });
            s = c;
          }
        }
        const covered = fromRanges(rc);
        const C = modelSet(rc);
        const got: Array<[number, number]> = [];
        let lastEnd = -1;
        forEachUncovered(
          { count: pieces.length, starts: pieces.map((p) => p.start), ends: pieces.map((p) => p.end) },
          covered,
          (i, s, e) => {
            expect(s).toBeGreaterThanOrEqual(pieces[i]!.start);
            expect(e).toBeLessThanOrEqual(pieces[i]!.end);
            expect(s).toBeGreaterThan(lastEnd - 1);
            lastEnd = e;
            for (let v = s; v < e; v++) got.push([i, v]);
          },
        );
        const want: Array<[number, number]> = [];
        pieces.forEach((p, i) => {
          for (let v = p.start; v < p.end; v++) if (!C.has(v)) want.push([i, v]);
        });
        expect(got).toEqual(want);
      }),
    );
  });

  it('fromSorted rejects unsorted input', () => {
    expect(() => fromSorted({ count: 2, starts: [10, 5], ends: [12, 6] })).toThrow(RangeError);
  });

  it('handles large lists linearly', () => {
    const n = 200_000;
    const starts = new Float64Array(n);
    const ends = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      starts[i] = i * 4096;
      ends[i] = i * 4096 + 2048;
    }
    const a = { count: n, starts, ends };
    const shifted = { count: n, starts: starts.map((s) => s + 1024), ends: ends.map((e) => e + 1024) };
    const t0 = Date.now();
    const u = union(a, shifted);
    const d = subtract(a, fromSorted(shifted));
    expect(u.count).toBe(n);
    expect(totalLength(d)).toBe(n * 1024);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
