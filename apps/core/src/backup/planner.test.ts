import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { BackupErrorCode } from './errors';
import { MAX_BLOCK_BYTES, SECTOR_SIZE, recordTableFrom, type IndexRecord } from './format';
import { extentBatches, planDisk, planDiskCompact, planZeroExtents, type DiskPlan, type PlanDiskInput } from './planner';

/**
 * A random chain in memory: per point, sorted non-overlapping changed areas
 * split into blocks, each block's data placed at a random position in the
 * point's data buffer (so dataOffset matters).
 */
interface MemPoint {
  data: Buffer;
  records: IndexRecord[];
}
interface MemChain {
  capacityBytes: number;
  points: MemPoint[];
}

const S = SECTOR_SIZE;

const chainArb: fc.Arbitrary<MemChain> = fc
  .record({
    sectors: fc.integer({ min: 1, max: 96 }),
    points: fc.array(
      fc.record({
        // Sector runs as [start, len] pairs; cut points split runs into blocks.
        areas: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 24 })), { maxLength: 8 }),
        cuts: fc.array(fc.nat(), { maxLength: 6 }),
        seed: fc.integer(),
        shuffle: fc.boolean(),
      }),
      { minLength: 1, maxLength: 7 },
    ),
  })
  .map(({ sectors, points }) => ({
    capacityBytes: sectors * S,
    points: points.map((p, pi) => {
      const mark = new Uint8Array(sectors);
      for (const [s, l] of p.areas) for (let x = s % sectors; x < Math.min(sectors, (s % sectors) + l); x++) mark[x] = 1;
      const cutSet = new Set(p.cuts.map((c) => c % sectors));
      // Blocks: maximal runs of marked sectors, cut at cut points.
      const blocks: Array<{ start: number; len: number }> = [];
      for (let x = 0; x < sectors; x++) {
        if (!mark[x]) continue;
        const last = blocks[blocks.length - 1];
        if (last && last.start + last.len === x && !cutSet.has(x)) last.len++;
        else blocks.push({ start: x, len: 1 });
      }
      const order = blocks.map((_, i) => i);
      if (p.shuffle) order.reverse();
      let dataOffset = 0;
      const placed = new Map<number, number>();
      for (const i of order) {
        placed.set(i, dataOffset);
        dataOffset += blocks[i]!.len * S;
      }
      const data = Buffer.alloc(dataOffset);
      const records = blocks.map((b, i): IndexRecord => {
        const off = placed.get(i)!;
        // Content tells point and sector apart, so a wrong source shows.
        for (let k = 0; k < b.len * S; k++) data[off + k] = ((pi + 1) * 37 + (b.start * S + k) * 11 + p.seed) & 0xff;
        return {
          diskOffset: b.start * S,
          length: b.len * S,
          dataOffset: off,
          sha256: createHash('sha256')
            .update(data.subarray(off, off + b.len * S))
            .digest(),
        };
      });
      return { data, records };
    }),
  }));

function planInput(c: MemChain): PlanDiskInput {
  return {
    diskKey: 2000,
    capacityBytes: c.capacityBytes,
    points: c.points.map((p, i) => ({ pointId: `p${i}`, source: `mem:${i}`, records: recordTableFrom(p.records) })),
  };
}

/** The model: replay every record of every point, oldest first, sector by sector. */
function modelImage(c: MemChain): Buffer {
  const img = Buffer.alloc(c.capacityBytes);
  for (const p of c.points) for (const r of p.records) p.data.copy(img, r.diskOffset, r.dataOffset, r.dataOffset + r.length);
  return img;
}

/** Applies a plan like the addon would: verify the containing block, then write the sub-range. */
function apply(plan: DiskPlan, c: MemChain): { image: Buffer; writes: Uint32Array } {
  const img = Buffer.alloc(c.capacityBytes);
  const writes = new Uint32Array(c.capacityBytes / S);
  for (const e of plan.extents) {
    const src = c.points[e.source]!.data;
    const chk = e.check!;
    expect(chk).toBeDefined();
    expect(e.sourceOffset).toBeGreaterThanOrEqual(chk.offset);
    expect(e.sourceOffset + e.length).toBeLessThanOrEqual(chk.offset + chk.length);
    expect(createHash('sha256').update(src.subarray(chk.offset, chk.offset + chk.length)).digest('hex')).toBe(chk.sha256);
    expect(e.length % S).toBe(0);
    expect(e.targetOffset % S).toBe(0);
    src.copy(img, e.targetOffset, e.sourceOffset, e.sourceOffset + e.length);
    for (let x = e.targetOffset / S; x < (e.targetOffset + e.length) / S; x++) writes[x]!++;
  }
  return { image: img, writes };
}

function unionSectors(c: MemChain): Set<number> {
  const s = new Set<number>();
  for (const p of c.points) for (const r of p.records) for (let x = r.diskOffset / S; x < (r.diskOffset + r.length) / S; x++) s.add(x);
  return s;
}

describe('planner (property-based, against a sector replay model)', () => {
  it('backward and forward plans both rebuild the model image byte for byte', () => {
    fc.assert(
      fc.property(chainArb, (c) => {
        const want = modelImage(c);
        const back = apply(planDisk(planInput(c), 'backward'), c);
        const fwd = apply(planDisk(planInput(c), 'forward'), c);
        expect(back.image.equals(want)).toBe(true);
        expect(fwd.image.equals(want)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('backward writes each sector of the union exactly once and nothing else; bytes = union size', () => {
    fc.assert(
      fc.property(chainArb, (c) => {
        const plan = planDisk(planInput(c));
        const { writes } = apply(plan, c);
        const u = unionSectors(c);
        writes.forEach((n, x) => expect(n).toBe(u.has(x) ? 1 : 0));
        expect(plan.bytes).toBe(u.size * S);
        expect(plan.extents.reduce((s, e) => s + e.length, 0)).toBe(plan.bytes);
        // zeroExtents are exactly the sectors outside the union.
        const zeros = new Set<number>();
        for (const z of planZeroExtents(plan)) for (let x = z.targetOffset / S; x < (z.targetOffset + z.length) / S; x++) zeros.add(x);
        expect(zeros.size + u.size).toBe(c.capacityBytes / S);
        for (const x of zeros) expect(u.has(x)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('backward extents are sorted by target offset; forward extents follow the chain in order', () => {
    fc.assert(
      fc.property(chainArb, (c) => {
        const back = planDisk(planInput(c), 'backward');
        for (let i = 1; i < back.extents.length; i++) {
          const prev = back.extents[i - 1]!;
          expect(back.extents[i]!.targetOffset).toBeGreaterThanOrEqual(prev.targetOffset + prev.length);
        }
        const fwd = planDisk(planInput(c), 'forward');
        const expected = c.points.flatMap((p, i) => p.records.map((r) => [i, r.diskOffset, r.length]));
        expect(fwd.extents.map((e) => [e.source, e.targetOffset, e.length])).toEqual(expected);
        expect(fwd.bytes).toBe(c.points.reduce((s, p) => s + p.records.reduce((t, r) => t + r.length, 0), 0));
        expect(back.bytes).toBeLessThanOrEqual(fwd.bytes);
        expect(back.sources).toEqual(c.points.map((_p, i) => `mem:${i}`));
      }),
      { numRuns: 200 },
    );
  });

  it('a newer point wins over an older one on the same sectors (example)', () => {
    const rec = (diskOffset: number, length: number, dataOffset: number): IndexRecord => ({ diskOffset, length, dataOffset, sha256: Buffer.alloc(32) });
    const plan = planDisk({
      diskKey: 1,
      capacityBytes: 8 * S,
      points: [
        { pointId: 'full', source: 'a', records: recordTableFrom([rec(0, 8 * S, 0)]) },
        { pointId: 'inc', source: 'b', records: recordTableFrom([rec(2 * S, 2 * S, 0)]) },
      ],
    });
    expect(plan.extents.map(({ source, sourceOffset, targetOffset, length }) => ({ source, sourceOffset, targetOffset, length }))).toEqual([
      { source: 0, sourceOffset: 0, targetOffset: 0, length: 2 * S },
      { source: 1, sourceOffset: 0, targetOffset: 2 * S, length: 2 * S },
      { source: 0, sourceOffset: 4 * S, targetOffset: 4 * S, length: 4 * S },
    ]);
    // Both pieces of the full's block carry the same whole-block check.
    expect(plan.extents[0]!.check).toEqual({ offset: 0, length: 8 * S, sha256: '00'.repeat(32) });
    expect(plan.extents[2]!.check).toBe(plan.extents[0]!.check);
  });

  it('rejects unsorted, overlapping, unaligned, oversized and out-of-disk records, naming point and block', () => {
    const rec = (diskOffset: number, length: number): IndexRecord => ({ diskOffset, length, dataOffset: 0, sha256: Buffer.alloc(32) });
    const bad: Array<[IndexRecord[], RegExp]> = [
      [[rec(4 * S, S), rec(0, S)], /block 1 .*not sorted or overlapping/],
      [[rec(0, 2 * S), rec(S, S)], /block 1 .*not sorted or overlapping/],
      [[rec(100, S)], /block 0 .*not sector aligned/],
      [[rec(0, MAX_BLOCK_BYTES + S)], /block 0 .*length/],
      [[rec(7 * S, 2 * S)], /block 0 .*past capacity/],
    ];
    for (const [records, msg] of bad) {
      const input = { diskKey: 7, capacityBytes: 8 * S, points: [{ pointId: 'p9', source: 'x', records: recordTableFrom(records) }] };
      expect(() => planDisk(input)).toThrow(expect.objectContaining({ code: BackupErrorCode.FORMAT_INVALID, message: expect.stringMatching(msg) }));
      expect(() => planDisk(input)).toThrow(/point p9 disk 7/);
    }
  });

  it('extentBatches yields the same extents as planDisk, in order', () => {
    fc.assert(
      fc.property(chainArb, fc.integer({ min: 1, max: 5 }), fc.constantFrom('backward' as const, 'forward' as const), (c, size, dir) => {
        const compact = planDiskCompact(planInput(c), dir);
        expect([...extentBatches(compact, size)].flat()).toEqual(planDisk(planInput(c), dir).extents);
      }),
      { numRuns: 100 },
    );
  });

  it('plans a 30-point chain of 20k areas each column-wise quickly (regression guard; bench/plan measures 100k)', () => {
    const capacity = 256 * 1024 ** 3;
    let x = 12345;
    const rnd = (): number => (x = (x * 1103515245 + 12345) >>> 0) / 4294967296;
    const points = Array.from({ length: 30 }, (_, p) => {
      const n = 20_000;
      const t = { count: n, diskOffset: new Float64Array(n), length: new Float64Array(n), dataOffset: new Float64Array(n), sha256: new Uint8Array(n * 32) };
      const stride = capacity / n; // one area per stride, random position and length inside it
      let data = 0;
      for (let i = 0; i < n; i++) {
        const len = (1 + Math.floor(rnd() * 128)) * S;
        const off = Math.floor((i * stride + rnd() * (stride - len)) / S) * S;
        t.diskOffset[i] = off;
        t.length[i] = len;
        t.dataOffset[i] = data;
        data += len;
      }
      return { pointId: `p${p}`, source: `/data/p${p}`, records: t };
    });
    const t0 = process.hrtime.bigint();
    const plan = planDiskCompact({ diskKey: 2000, capacityBytes: capacity, points });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(plan.count).toBeGreaterThan(20_000);
    // Generous: code runs several times slower inside jest's vm context than in plain node.
    expect(ms).toBeLessThan(4000);
  });
});
