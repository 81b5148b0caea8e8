import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyDiskPlan, bufferTarget } from './apply';
import { BackupErrorCode } from './errors';
import { generateFixtureChain, type FixtureChain } from './fixtures';
import { FileBackupRepository } from './repository';
import { planRestore } from './restore-plan';
import { verifyChain } from './verify';

jest.setTimeout(60_000);

/** Each test gets its own fresh chain p0 (full) .. p4 of vm-fixture. */
let dir: string;
let chain: FixtureChain;
let repo: FileBackupRepository;
const VM = 'vm-fixture';
const pointDir = (p: string): string => path.join(dir, VM, p);

async function editManifest(p: string, edit: (m: Record<string, unknown>) => void): Promise<void> {
  const file = path.join(pointDir(p), 'point.json');
  const m = JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown>;
  edit(m);
  await fsp.writeFile(file, JSON.stringify(m));
}

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmr-verify-'));
  chain = await generateFixtureChain({ root: dir, seed: 3, incrementals: 4, areasPerPoint: 6 });
  repo = new FileBackupRepository([dir]);
});
afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

describe('verifyChain and planRestore on damaged repositories', () => {
  it('a corrupted block: CHECKSUM_MISMATCH naming point, disk and block; the copier refuses it too', async () => {
    const p2 = chain.points[2]!.manifest;
    const disk = p2.disks[0]!;
    const table = await repo.readDiskIndex(VM, 'p2', disk.key);
    const block = table.count - 1;
    const at = table.dataOffset[block]! + 100;
    const file = path.join(pointDir('p2'), disk.dataFile);
    const data = await fsp.readFile(file);
    data[at] = data[at]! ^ 0xff;
    await fsp.writeFile(file, data);

    const report = await verifyChain(repo, VM, 'p4');
    expect(report.ok).toBe(false);
    expect(report.errors).toHaveLength(1);
    const err = report.errors[0]!;
    expect(err.code).toBe(BackupErrorCode.CHECKSUM_MISMATCH);
    expect(err.message).toContain(`point p2 disk ${disk.key} block ${block} (disk offset ${table.diskOffset[block]}`);
    expect(err.details).toMatchObject({ vmId: VM, pointId: 'p2', diskKey: disk.key, block });

    // The forward plan replays every block of p2: the copier's own check catches it.
    const plan = await planRestore(repo, VM, 'p4', { direction: 'forward' });
    const d = plan.disks.find((x) => x.diskKey === disk.key)!;
    await expect(applyDiskPlan(d, bufferTarget(Buffer.alloc(d.capacityBytes)))).rejects.toMatchObject({
      code: BackupErrorCode.CHECKSUM_MISMATCH,
      message: expect.stringContaining(`p2/${disk.dataFile} block at data offset ${table.dataOffset[block]}`),
    });
  });

  it('a missing parent: CHAIN_BROKEN naming the child and the missing parent', async () => {
    await fsp.rm(pointDir('p1'), { recursive: true });
    const report = await verifyChain(repo, VM, 'p3');
    expect(report.errors.map((e) => e.code)).toEqual([BackupErrorCode.CHAIN_BROKEN]);
    expect(report.errors[0]!.message).toBe(`vm ${VM} point p2: parent point p1 is missing (chain of p3)`);
    await expect(planRestore(repo, VM, 'p3')).rejects.toMatchObject({ code: BackupErrorCode.CHAIN_BROKEN });
    // Points before the gap are still fine.
    expect((await verifyChain(repo, VM, 'p0')).ok).toBe(true);
  });

  it('a parent cycle: CHAIN_BROKEN', async () => {
    await editManifest('p0', (m) => {
      m['kind'] = 'incremental';
      m['parent'] = 'p2';
    });
    const report = await verifyChain(repo, VM, 'p2');
    expect(report.errors[0]).toMatchObject({ code: BackupErrorCode.CHAIN_BROKEN, message: expect.stringContaining('cycle') });
  });

  it('a capacity change mid-chain: CAPACITY_CHANGED naming point and disk', async () => {
    await editManifest('p2', (m) => {
      const disks = m['disks'] as Array<Record<string, number>>;
      disks[1]!['capacityBytes'] = disks[1]!['capacityBytes']! + 1024 * 1024;
    });
    const key = chain.points[2]!.manifest.disks[1]!.key;
    const report = await verifyChain(repo, VM, 'p4', { mode: 'all' });
    const err = report.errors.find((e) => e.code === BackupErrorCode.CAPACITY_CHANGED)!;
    expect(err.message).toContain(`point p2 disk ${key}: capacity`);
    expect(err.message).toContain('in parent p1');
    await expect(planRestore(repo, VM, 'p4')).rejects.toMatchObject({ code: BackupErrorCode.CAPACITY_CHANGED });
  });

  it('a truncated data file: DATA_TRUNCATED naming point, disk and first missing block', async () => {
    const disk = chain.points[3]!.manifest.disks[0]!;
    const table = await repo.readDiskIndex(VM, 'p3', disk.key);
    const cut = table.dataOffset[table.count - 1]! + 10;
    await fsp.truncate(path.join(pointDir('p3'), disk.dataFile), cut);
    const report = await verifyChain(repo, VM, 'p4');
    expect(report.errors[0]).toMatchObject({
      code: BackupErrorCode.DATA_TRUNCATED,
      details: { pointId: 'p3', diskKey: disk.key, block: table.count - 1 },
      message: expect.stringContaining(`point p3 disk ${disk.key} block ${table.count - 1}`),
    });
  });

  it('a missing data file: DATA_TRUNCATED', async () => {
    const disk = chain.points[1]!.manifest.disks[0]!;
    await fsp.rm(path.join(pointDir('p1'), disk.dataFile));
    const report = await verifyChain(repo, VM, 'p1');
    expect(report.errors[0]).toMatchObject({ code: BackupErrorCode.DATA_TRUNCATED, message: expect.stringContaining('is missing') });
  });

  it('mode "all" collects every problem; mode "first" stops at one', async () => {
    const d1 = chain.points[1]!.manifest.disks[0]!;
    const d3 = chain.points[3]!.manifest.disks[1]!;
    for (const [p, d] of [
      ['p1', d1],
      ['p3', d3],
    ] as const) {
      const file = path.join(pointDir(p), d.dataFile);
      const data = await fsp.readFile(file);
      data[0] = data[0]! ^ 1;
      await fsp.writeFile(file, data);
    }
    const all = await verifyChain(repo, VM, 'p4', { mode: 'all' });
    expect(all.errors.map((e) => [e.code, e.details.pointId])).toEqual([
      [BackupErrorCode.CHECKSUM_MISMATCH, 'p1'],
      [BackupErrorCode.CHECKSUM_MISMATCH, 'p3'],
    ]);
    expect(all.bytesVerified).toBe(all.bytesTotal);
    const first = await verifyChain(repo, VM, 'p4');
    expect(first.errors).toHaveLength(1);
    expect(first.bytesVerified).toBeLessThan(first.bytesTotal);
  });

  it('an unknown format version: FORMAT_UNSUPPORTED; a bad index header too', async () => {
    await editManifest('p1', (m) => {
      m['format'] = 2;
    });
    await expect(repo.getPoint(VM, 'p1')).rejects.toMatchObject({ code: BackupErrorCode.FORMAT_UNSUPPORTED, message: expect.stringContaining('point p1') });
    const disk = chain.points[2]!.manifest.disks[0]!;
    const idx = path.join(pointDir('p2'), disk.indexFile);
    const b = await fsp.readFile(idx);
    b.write('XXXX', 0, 'latin1');
    await fsp.writeFile(idx, b);
    await expect(repo.readDiskIndex(VM, 'p2', disk.key)).rejects.toMatchObject({ code: BackupErrorCode.FORMAT_UNSUPPORTED });
  });

  it('index records out of order: FORMAT_INVALID naming the block', async () => {
    const disk = chain.points[1]!.manifest.disks[0]!;
    const idx = path.join(pointDir('p1'), disk.indexFile);
    const b = await fsp.readFile(idx);
    // Swap the first two records.
    const r0 = Buffer.from(b.subarray(64, 120));
    b.copy(b, 64, 120, 176);
    r0.copy(b, 120);
    await fsp.writeFile(idx, b);
    const report = await verifyChain(repo, VM, 'p1');
    expect(report.errors[0]).toMatchObject({ code: BackupErrorCode.FORMAT_INVALID, message: expect.stringContaining(`point p1 disk ${disk.key} block 1`) });
    await expect(planRestore(repo, VM, 'p1')).rejects.toMatchObject({ code: BackupErrorCode.FORMAT_INVALID, message: expect.stringContaining('block 1') });
  });

  it('an unknown point: POINT_NOT_FOUND', async () => {
    await expect(verifyChain(repo, VM, 'nope')).resolves.toMatchObject({ ok: false, errors: [expect.objectContaining({ code: BackupErrorCode.POINT_NOT_FOUND })] });
  });
});
