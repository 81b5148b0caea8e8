import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackupRepository, generateFixtureChain, planRestore } from '../backup';
import { buildDiskWrites, alignAreas, alignPieces, piecesWithin, UNIT } from './write-plan';

// Every write of a restore is a whole number of KiB at a KiB offset (MISSION
// R1.4), and applying the writes gives the point's disk byte for byte, in
// either order, over a disk full of old data.

function apply(disk: Buffer, sources: string[], extents: Array<{ source: number; sourceOffset: number; targetOffset: number; length: number }>) {
  const files = sources.map((s) => readFileSync(s));
  for (const e of extents) files[e.source]!.copy(disk, e.targetOffset, e.sourceOffset, e.sourceOffset + e.length);
}

const made: string[] = [];
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('aligned disk writes', () => {
  it('keeps aligned pieces whole and flags the units a boundary cuts', () => {
    const { extents, patchUnits } = alignPieces([
      { source: 0, sourceOffset: 0, targetOffset: 0, length: 1536 },
      { source: 1, sourceOffset: 100, targetOffset: 1536, length: 2560 },
    ]);
    expect(extents).toEqual([
      { source: 0, sourceOffset: 0, targetOffset: 0, length: 1024 },
      { source: 1, sourceOffset: 100 + 512, targetOffset: 2048, length: 2048 },
    ]);
    expect([...patchUnits.keys()]).toEqual([1]);
    expect(patchUnits.get(1)!.map((p) => p.source)).toEqual([0, 1]);
  });

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`restores every point of fixture chain ${seed} exactly, backward and forward, with aligned writes`, async () => {
      const root = tmp('vmr-writes-');
      const work = tmp('vmr-work-');
      const chain = await generateFixtureChain({ root, seed, incrementals: 4, disks: [{ key: 2000, capacityBytes: 2 * 1024 * 1024 }, { key: 2001, capacityBytes: 1024 * 1024 + 3 * 512 }] });
      const repo = new FileBackupRepository([root]);
      let patched = 0;
      for (const point of chain.points) {
        const backward = await planRestore(repo, chain.vmId, point.pointId, { direction: 'backward' });
        const forward = await planRestore(repo, chain.vmId, point.pointId, { direction: 'forward' });
        for (const [bi, disk] of backward.disks.entries()) {
          for (const order of [disk, forward.disks[bi]!]) {
            const writes = await buildDiskWrites({ backward: disk, order, zeroFill: true, workDir: work });
            patched += writes.patchUnits;
            for (const e of writes.extents) {
              expect(e.targetOffset % UNIT).toBe(0);
              expect(e.length % UNIT).toBe(0);
            }
            const size = Math.ceil(disk.capacityBytes / UNIT) * UNIT;
            const target = Buffer.alloc(size, 0xee); // old data everywhere
            apply(target, writes.sources, writes.extents);
            const expected = point.images.get(disk.diskKey)!;
            expect(target.subarray(0, disk.capacityBytes).equals(expected)).toBe(true);
          }
        }
      }
      expect(patched).toBeGreaterThan(0); // the fixtures do cut KiB units
    });
  }

  it('aligns changed areas to whole KiB units, clipped and merged', () => {
    expect(alignAreas([{ start: 5000, length: 100 }, { start: 100, length: 10 }, { start: 900, length: 200 }, { start: 9000, length: 5000 }], 10 * 1024 + 512)).toEqual([
      { start: 0, length: 2048 },
      { start: 4096, length: 1024 },
      { start: 8192, length: 3072 },
    ]);
    expect(piecesWithin([{ source: 3, sourceOffset: 10, targetOffset: 1024, length: 4096 }], [{ start: 0, length: 2048 }, { start: 4096, length: 4096 }])).toEqual([
      { source: 3, sourceOffset: 10, targetOffset: 1024, length: 1024 },
      { source: 3, sourceOffset: 10 + 3072, targetOffset: 4096, length: 1024 },
    ]);
  });

  for (const seed of [11, 12, 13, 14]) {
    it(`quick rollback (chain ${seed}): writing only the changed areas gives the point back, and writes exactly those areas`, async () => {
      const root = tmp('vmr-writes-');
      const work = tmp('vmr-work-');
      const chain = await generateFixtureChain({ root, seed, incrementals: 3, disks: [{ key: 2000, capacityBytes: 2 * 1024 * 1024 }, { key: 2001, capacityBytes: 1024 * 1024 + 3 * 512 }] });
      const repo = new FileBackupRepository([root]);
      let rand = seed * 7919;
      const next = (n: number) => (rand = (rand * 1103515245 + 12345) % 2147483648) % n;
      for (const point of chain.points) {
        for (const order of ['backward', 'forward'] as const) {
          const backward = await planRestore(repo, chain.vmId, point.pointId, { direction: 'backward' });
          const ordered = order === 'forward' ? await planRestore(repo, chain.vmId, point.pointId, { direction: 'forward' }) : backward;
          for (const [bi, disk] of backward.disks.entries()) {
            const expected = point.images.get(disk.diskKey)!;
            const size = Math.ceil(disk.capacityBytes / UNIT) * UNIT;
            // The VM as the point left it, then changed in a few areas (any byte offsets).
            const target = Buffer.alloc(size);
            expected.copy(target);
            const changed = Array.from({ length: 1 + next(6) }, () => ({ start: next(disk.capacityBytes), length: 1 + next(200_000) }));
            for (const a of changed) target.fill(0xee, a.start, Math.min(a.start + a.length, disk.capacityBytes));
            const within = alignAreas(changed, disk.capacityBytes);
            const writes = await buildDiskWrites({ backward: disk, order: ordered.disks[bi]!, zeroFill: true, workDir: work, within });
            for (const e of writes.extents) {
              expect(e.targetOffset % UNIT).toBe(0);
              expect(e.length % UNIT).toBe(0);
              expect(within.some((a) => e.targetOffset >= a.start && e.targetOffset + e.length <= a.start + a.length)).toBe(true);
            }
            apply(target, writes.sources, writes.extents);
            expect(target.subarray(0, disk.capacityBytes).equals(expected)).toBe(true);
            // Backward: each changed unit exactly once.
            if (order === 'backward') expect(writes.extents.reduce((s, e) => s + e.length, 0)).toBe(within.reduce((s, a) => s + a.length, 0));
          }
        }
      }
    });
  }

  it('refuses to patch from a corrupted block', async () => {
    const root = tmp('vmr-writes-');
    const work = tmp('vmr-work-');
    const chain = await generateFixtureChain({ root, seed: 3, incrementals: 3, disks: [{ key: 2000, capacityBytes: 1024 * 1024 }] });
    const repo = new FileBackupRepository([root]);
    const last = chain.points[chain.points.length - 1]!;
    const plan = await planRestore(repo, chain.vmId, last.pointId);
    const disk = plan.disks[0]!;
    const writes = await buildDiskWrites({ backward: disk, order: disk, zeroFill: true, workDir: work });
    if (writes.patchUnits === 0) return; // nothing read from the sources in JS
    const { writeFileSync } = await import('node:fs');
    for (const s of disk.sources) writeFileSync(s, Buffer.alloc(readFileSync(s).length, 0x55));
    await expect(buildDiskWrites({ backward: disk, order: disk, zeroFill: true, workDir: work })).rejects.toMatchObject({ code: 'BACKUP_CHECKSUM_MISMATCH' });
  });
});
