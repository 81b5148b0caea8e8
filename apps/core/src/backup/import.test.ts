import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyDiskPlan, bufferTarget } from './apply';
import { BackupErrorCode } from './errors';
import { sampleDiskMetadata, sampleVmConfig } from './fixtures';
import { MAX_BLOCK_BYTES } from './format';
import { detectImageFormat, importFull, importIncremental, parseChangedAreas } from './import';
import { FileBackupRepository } from './repository';
import { planRestore } from './restore-plan';
import { verifyChain } from './verify';

jest.setTimeout(60_000);

const MiB = 1024 * 1024;
const hasQemuImg = spawnSync('qemu-img', ['--version']).status === 0;

describe('import', () => {
  let dir: string;
  let root: string;
  const config = sampleVmConfig('vm-imp', [{ key: 2000, capacityBytes: 3 * MiB }]);
  const metadata = sampleDiskMetadata({ key: 2000, capacityBytes: 3 * MiB });

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmr-import-'));
    root = path.join(dir, 'repo');
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

  async function restore(pointId: string): Promise<Buffer> {
    const plan = await planRestore(new FileBackupRepository([root]), 'vm-imp', pointId);
    const d = plan.disks[0]!;
    const img = Buffer.alloc(d.capacityBytes);
    await applyDiskPlan(d, bufferTarget(img));
    return img;
  }

  it('imports a full from a raw image, storing only non-zero areas in ≤1 MiB blocks, and an incremental on top', async () => {
    // 3 MiB image: data at 0..1.5 MiB (crosses a block boundary), a zero hole, 8 KiB of data at 2 MiB + 4 KiB.
    const image = Buffer.alloc(3 * MiB);
    randomBytes(1.5 * MiB).copy(image, 0);
    image.fill(0, 64 * 1024, 128 * 1024); // zero run inside the data
    randomBytes(8192).copy(image, 2 * MiB + 4096);
    const raw = path.join(dir, 'disk.raw');
    await fsp.writeFile(raw, image);

    const full = await importFull({ root, vmId: 'vm-imp', pointId: 'full-1', config, disks: [{ key: 2000, imagePath: raw, metadata, changeId: 'ch/1' }] });
    const disk = full.disks[0]!;
    expect(disk.capacityBytes).toBe(3 * MiB);
    expect(disk.dataBytes).toBe(1.5 * MiB - 64 * 1024 + 8192);
    const repo = new FileBackupRepository([root]);
    const records = [];
    for await (const r of repo.openDiskIndex('vm-imp', 'full-1', 2000)) records.push(r);
    expect(records.every((r) => r.length <= MAX_BLOCK_BYTES && r.diskOffset % 512 === 0 && r.length % 512 === 0)).toBe(true);
    expect(records.map((r) => [r.diskOffset, r.length])).toEqual([
      [0, 64 * 1024],
      [128 * 1024, MiB],
      [128 * 1024 + MiB, 1.5 * MiB - 128 * 1024 - MiB],
      [2 * MiB + 4096, 8192],
    ]);
    expect((await restore('full-1')).equals(image)).toBe(true);
    expect(full.config).toEqual(config);
    expect(full.disks[0]!.metadata).toEqual(metadata);

    // Incremental: change two areas (one zeroes data out), as QueryChangedDiskAreas would report them.
    const next = Buffer.from(image);
    randomBytes(MiB + 512).copy(next, 1 * MiB - 512);
    next.fill(0, 2 * MiB, 2 * MiB + 64 * 1024);
    const raw2 = path.join(dir, 'disk2.raw');
    await fsp.writeFile(raw2, next);
    const areasFile = [
      { start: 2 * MiB, length: 64 * 1024 },
      { start: 1 * MiB - 512, length: MiB + 512 },
    ];
    const inc = await importIncremental({
      root,
      vmId: 'vm-imp',
      pointId: 'inc-1',
      parent: 'full-1',
      config,
      disks: [{ key: 2000, imagePath: raw2, metadata, changeId: 'ch/2', changedAreas: areasFile }],
    });
    expect(inc.kind).toBe('incremental');
    expect(inc.parent).toBe('full-1');
    expect(inc.disks[0]!.dataBytes).toBe(64 * 1024 + MiB + 512);
    expect((await restore('inc-1')).equals(next)).toBe(true);
    expect((await verifyChain(repo, 'vm-imp', 'inc-1')).ok).toBe(true);
  });

  it('pads an unaligned end of disk and notes it', async () => {
    const image = randomBytes(MiB + 700);
    const raw = path.join(dir, 'odd.raw');
    await fsp.writeFile(raw, image);
    const full = await importFull({ root, vmId: 'vm-imp', pointId: 'odd', config, disks: [{ key: 2000, imagePath: raw, metadata }] });
    expect(full.disks[0]!).toMatchObject({ capacityBytes: MiB + 700, paddedTailBytes: 512 - 700 % 512, dataBytes: MiB + 1024 });
    const restored = await restore('odd');
    expect(restored.equals(image)).toBe(true);
  });

  it('refuses a missing parent, a capacity change, bad areas, and an existing point id', async () => {
    const raw = path.join(dir, 'd.raw');
    await fsp.writeFile(raw, Buffer.alloc(MiB, 1));
    const disk = { key: 2000, imagePath: raw, metadata };
    await expect(
      importIncremental({ root, vmId: 'vm-imp', pointId: 'i', parent: 'nope', config, disks: [{ ...disk, changedAreas: [] }] }),
    ).rejects.toMatchObject({ code: BackupErrorCode.CHAIN_BROKEN, message: expect.stringContaining('parent point nope not found') });
    await importFull({ root, vmId: 'vm-imp', pointId: 'f', config, disks: [disk] });
    await expect(importFull({ root, vmId: 'vm-imp', pointId: 'f', config, disks: [disk] })).rejects.toMatchObject({ code: BackupErrorCode.POINT_EXISTS });
    const bigger = path.join(dir, 'big.raw');
    await fsp.writeFile(bigger, Buffer.alloc(2 * MiB));
    await expect(
      importIncremental({ root, vmId: 'vm-imp', pointId: 'i', parent: 'f', config, disks: [{ ...disk, imagePath: bigger, changedAreas: [] }] }),
    ).rejects.toMatchObject({ code: BackupErrorCode.CAPACITY_CHANGED });
    await expect(
      importIncremental({ root, vmId: 'vm-imp', pointId: 'i', parent: 'f', config, disks: [{ ...disk, changedAreas: [{ start: 100, length: 512 }] }] }),
    ).rejects.toMatchObject({ code: BackupErrorCode.IMPORT_FAILED, message: expect.stringContaining('not sector aligned') });
    // Failed imports leave no point and no temporary directory behind.
    expect((await fsp.readdir(path.join(root, 'vm-imp'))).sort()).toEqual(['f']);
    await expect(importFull({ root, vmId: 'vm-imp', pointId: '../x', config, disks: [disk] })).rejects.toMatchObject({ code: BackupErrorCode.PATH_ESCAPE });
  });

  it('parseChangedAreas sorts and merges, accepts the DiskChangeInfo shape, and rejects areas past the disk', () => {
    const l = parseChangedAreas({ startOffset: 0, length: 8192, changedArea: [{ start: 4096, length: 1024 }, { start: 0, length: 4608 }] }, 8192);
    expect([l.count, l.starts[0], l.ends[0]]).toEqual([1, 0, 5120]);
    expect(() => parseChangedAreas([{ start: 4096, length: 8192 }], 8192)).toThrow(/past capacity/);
    expect(() => parseChangedAreas('x', 8192)).toThrow(expect.objectContaining({ code: BackupErrorCode.IMPORT_FAILED }));
  });

  it('detects vmdk/qcow2 and gives a clear error when qemu-img is missing', async () => {
    const qcow = path.join(dir, 'disk.qcow2');
    await fsp.writeFile(qcow, Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb]), Buffer.alloc(508)]));
    const vmdk = path.join(dir, 'disk.vmdk');
    await fsp.writeFile(vmdk, '# Disk DescriptorFile\nversion=1\n');
    expect(await detectImageFormat(qcow)).toBe('qcow2');
    expect(await detectImageFormat(vmdk)).toBe('vmdk');
    await expect(
      importFull({ root, vmId: 'vm-imp', pointId: 'q', config, qemuImg: path.join(dir, 'no-qemu-img'), disks: [{ key: 2000, imagePath: qcow, metadata }] }),
    ).rejects.toMatchObject({
      code: BackupErrorCode.IMPORT_FAILED,
      message: `disk 2000: ${qcow} is a qcow2 image and ${path.join(dir, 'no-qemu-img')} was not found; install qemu-img (qemu-utils) or pass a raw image`,
    });
  });

  (hasQemuImg ? it : it.skip)('converts a qcow2 image with qemu-img', async () => {
    const image = Buffer.alloc(2 * MiB);
    randomBytes(100_000).copy(image, 300_000);
    const raw = path.join(dir, 'src.raw');
    const qcow = path.join(dir, 'src.qcow2');
    await fsp.writeFile(raw, image);
    expect(spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow]).status).toBe(0);
    await importFull({ root, vmId: 'vm-imp', pointId: 'qc', config, disks: [{ key: 2000, imagePath: qcow, metadata }] });
    expect((await restore('qc')).equals(image)).toBe(true);
  });
});
