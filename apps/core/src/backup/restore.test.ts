import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { applyDiskPlan, applyDiskPlanToFile, bufferTarget } from './apply';
import { generateFixtureChain, type FixtureChain } from './fixtures';
import { FileBackupRepository } from './repository';
import { extentBatches } from './planner';
import { planRestore, planRestoreCompact } from './restore-plan';
import { verifyChain } from './verify';

jest.setTimeout(60_000);

describe('fixture chain → repository → plan → restore, byte for byte', () => {
  let dir: string;
  let chain: FixtureChain;
  let repo: FileBackupRepository;

  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmr-restore-'));
    chain = await generateFixtureChain({
      root: dir,
      seed: 7,
      incrementals: 5,
      expectedImagesDir: path.join(dir, 'expected'),
      // An unaligned capacity too (padded last sector).
      disks: [
        { key: 2000, capacityBytes: 4 * 1024 * 1024 },
        { key: 2001, capacityBytes: 3 * 1024 * 1024 + 3 * 512 },
        { key: 2002, capacityBytes: 2 * 1024 * 1024 + 700 },
      ],
    });
    repo = new FileBackupRepository([dir]);
  });
  afterAll(() => fsp.rm(dir, { recursive: true, force: true }));

  it('restores every point of the chain, backward and forward, to the expected images', async () => {
    for (const point of chain.points) {
      for (const direction of ['backward', 'forward'] as const) {
        const plan = await planRestore(repo, chain.vmId, point.pointId, { direction });
        expect(plan.chain).toEqual(chain.points.slice(0, chain.points.indexOf(point) + 1).map((p) => p.pointId));
        for (const disk of plan.disks) {
          const out = path.join(dir, `restored-${point.pointId}-${direction}-${disk.diskKey}.raw`);
          await applyDiskPlanToFile(disk, out);
          const got = await fsp.readFile(out);
          const want = point.images.get(disk.diskKey)!;
          expect((await fsp.readFile(point.imagePaths!.get(disk.diskKey)!)).equals(want)).toBe(true);
          expect(got.length).toBe(want.length);
          expect(got.equals(want)).toBe(true);
        }
      }
    }
  });

  it('backward writes no more than forward, and exactly the union of the changed areas', async () => {
    const last = chain.points[chain.points.length - 1]!;
    const back = await planRestore(repo, chain.vmId, last.pointId);
    const fwd = await planRestore(repo, chain.vmId, last.pointId, { direction: 'forward' });
    expect(back.bytes).toBeLessThanOrEqual(fwd.bytes);
    for (const d of back.disks) {
      const sectors = new Set<number>();
      for (const p of chain.points) for (const a of p.areas.get(d.diskKey)!) for (let s = a.start; s < a.start + a.length; s += 512) sectors.add(s);
      expect(d.bytes).toBe(sectors.size * 512);
    }
  });

  it('the compact plan holds the same extents as the object plan', async () => {
    const back = await planRestore(repo, chain.vmId, 'p5');
    const compact = await planRestoreCompact(repo, chain.vmId, 'p5');
    expect(compact.bytes).toBe(back.bytes);
    compact.disks.forEach((d, i) => expect([...extentBatches(d, 7)].flat()).toEqual(back.disks[i]!.extents));
  });

  it('an in-place restore over a dirty disk needs the zero extents too', async () => {
    const last = chain.points[chain.points.length - 1]!;
    const plan = await planRestore(repo, chain.vmId, last.pointId);
    const disk = plan.disks[0]!;
    const dirty = Buffer.alloc(disk.capacityBytes, 0xee);
    await applyDiskPlan(disk, bufferTarget(dirty), { zeroFill: true });
    expect(dirty.equals(last.images.get(disk.diskKey)!)).toBe(true);
  });

  it('keeps the saved config and disk metadata of the point', async () => {
    const p = await repo.getPoint(chain.vmId, 'p3');
    expect(p.kind).toBe('incremental');
    expect(p.parent).toBe('p2');
    expect(p.config['firmware']).toBe('efi');
    expect(p.config['extraConfig']).toEqual(expect.arrayContaining([{ key: 'ctkEnabled', value: 'TRUE' }]));
    const hw = p.config['hardware'] as { device: Array<{ key: number; _type: string }> };
    expect(hw.device.filter((d) => d._type === 'VirtualDisk').map((d) => d.key)).toEqual([2000, 2001, 2002]);
    const d = p.disks.find((x) => x.key === 2002)!;
    expect(d.metadata['ddb.adapterType']).toBe('pvscsi');
    expect(d.metadata['ddb.uuid']).toMatch(/^([0-9a-f]{2} ){15}[0-9a-f]{2}$/);
    expect(d.changeId).toMatch(/\/4$/);
  });

  it('verifies the whole chain with progress up to the total', async () => {
    const calls: Array<[number, number]> = [];
    const report = await verifyChain(repo, chain.vmId, 'p5', { onProgress: (p) => calls.push([p.bytesVerified, p.bytesTotal]), progressEveryBytes: 1 });
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.bytesVerified).toBe(report.bytesTotal);
    expect(report.bytesTotal).toBeGreaterThan(0);
    expect(calls[calls.length - 1]).toEqual([report.bytesTotal, report.bytesTotal]);
    for (let i = 1; i < calls.length; i++) expect(calls[i]![0]).toBeGreaterThanOrEqual(calls[i - 1]![0]);
  });
});

describe('random fixture chains (fast-check over seeds and shapes)', () => {
  it('backward and forward restores of the newest point equal the expected image', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 4096 }),
        async (seed, incrementals, areasPerPoint, capacitySectors) => {
          const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmr-prop-'));
          try {
            const chain = await generateFixtureChain({
              root: dir,
              seed,
              incrementals,
              areasPerPoint,
              maxAreaBytes: 1.25 * 1024 * 1024,
              disks: [
                { key: 2000, capacityBytes: capacitySectors * 512 },
                { key: 2001, capacityBytes: capacitySectors * 512 + 100 },
              ],
            });
            const repo = new FileBackupRepository([dir]);
            const last = chain.points[chain.points.length - 1]!;
            for (const direction of ['backward', 'forward'] as const) {
              const plan = await planRestore(repo, chain.vmId, last.pointId, { direction });
              for (const d of plan.disks) {
                const img = Buffer.alloc(Math.ceil(d.capacityBytes / 512) * 512);
                await applyDiskPlan(d, bufferTarget(img));
                expect(img.subarray(0, d.capacityBytes).equals(last.images.get(d.diskKey)!)).toBe(true);
              }
            }
          } finally {
            await fsp.rm(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 12 },
    );
  });
});
