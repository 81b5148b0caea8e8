import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BackupErrorCode } from './errors';
import { generateFixtureChain, type FixtureChain } from './fixtures';
import { FileBackupRepository } from './repository';

jest.setTimeout(60_000);

describe('FileBackupRepository', () => {
  let base: string;
  let root: string;
  let root2: string;
  let outside: string;
  let chain: FixtureChain;
  let repo: FileBackupRepository;

  beforeAll(async () => {
    base = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmr-repo-'));
    root = path.join(base, 'root');
    root2 = path.join(base, 'root2');
    outside = path.join(base, 'outside');
    chain = await generateFixtureChain({ root, seed: 11, incrementals: 2, areasPerPoint: 5 });
    // A second root holding another VM, and a copy of a VM outside every root.
    await generateFixtureChain({ root: root2, vmId: 'vm-other', seed: 12, incrementals: 1, areasPerPoint: 3 });
    await generateFixtureChain({ root: outside, vmId: 'vm-secret', seed: 13, incrementals: 0, areasPerPoint: 3 });
    repo = new FileBackupRepository([root, root2, path.join(base, 'not-yet')]);
  });
  afterAll(() => fsp.rm(base, { recursive: true, force: true }));

  it('lists VMs across roots and points in time order', async () => {
    expect(await repo.listVms()).toEqual(['vm-fixture', 'vm-other']);
    expect(await repo.listPoints('vm-fixture')).toEqual([
      { pointId: 'p0', kind: 'full', parent: null, createdAt: '2026-11-01T02:00:00.000Z' },
      { pointId: 'p1', kind: 'incremental', parent: 'p0', createdAt: '2026-11-02T02:00:00.000Z' },
      { pointId: 'p2', kind: 'incremental', parent: 'p1', createdAt: '2026-11-03T02:00:00.000Z' },
    ]);
    expect((await repo.listPoints('vm-other')).map((p) => p.pointId)).toEqual(['p0', 'p1']);
  });

  it('streams index records equal to the loaded table', async () => {
    const key = chain.points[1]!.manifest.disks[0]!.key;
    const table = await repo.readDiskIndex('vm-fixture', 'p1', key);
    const streamed = [];
    for await (const r of repo.openDiskIndex('vm-fixture', 'p1', key)) streamed.push(r);
    expect(streamed).toHaveLength(table.count);
    streamed.forEach((r, i) => {
      expect(r.block).toBe(i);
      expect(r.diskOffset).toBe(table.diskOffset[i]);
      expect(r.length).toBe(table.length[i]);
      expect(r.dataOffset).toBe(table.dataOffset[i]);
      expect(r.length).toBeLessThanOrEqual(1024 * 1024);
      expect(r.sha256.equals(Buffer.from(table.sha256.subarray(i * 32, i * 32 + 32)))).toBe(true);
    });
    expect(await repo.dataPath('vm-fixture', 'p1', key)).toBe(path.join(await fsp.realpath(root), 'vm-fixture', 'p1', `disk-${key}.dat`));
  });

  it('reports unknown VMs, points and disks with typed errors', async () => {
    await expect(repo.listPoints('vm-none')).rejects.toMatchObject({ code: BackupErrorCode.POINT_NOT_FOUND });
    await expect(repo.getPoint('vm-fixture', 'p9')).rejects.toMatchObject({ code: BackupErrorCode.POINT_NOT_FOUND, message: 'vm vm-fixture point p9 not found' });
    await expect(repo.dataPath('vm-fixture', 'p1', 9999)).rejects.toMatchObject({ code: BackupErrorCode.DISK_NOT_FOUND });
  });

  it.each([
    ['..', 'p0'],
    ['vm-fixture', '..'],
    ['.', 'p0'],
    ['../outside/vm-secret', 'p0'],
    ['vm-fixture', '../../outside/vm-secret/p0'],
    ['/etc', 'p0'],
    [os.tmpdir(), 'p0'],
    ['vm-fixture', '/etc/passwd'],
    ['vm-fixture', 'p0/../p1'],
    ['vm-fixture', 'p0\0'],
    ['vm-fixture\\..', 'p0'],
    ['', 'p0'],
  ])('refuses the reference vm=%j point=%j with BACKUP_PATH_ESCAPE', async (vm, point) => {
    await expect(repo.getPoint(vm, point)).rejects.toMatchObject({ code: BackupErrorCode.PATH_ESCAPE });
    await expect(repo.dataPath(vm, point, 2000)).rejects.toMatchObject({ code: BackupErrorCode.PATH_ESCAPE });
    await expect(
      (async () => {
        for await (const _ of repo.openDiskIndex(vm, point, 2000)) void _;
      })(),
    ).rejects.toMatchObject({ code: BackupErrorCode.PATH_ESCAPE });
  });

  it('refuses non-integer disk keys', async () => {
    await expect(repo.dataPath('vm-fixture', 'p0', Number.NaN)).rejects.toMatchObject({ code: BackupErrorCode.PATH_ESCAPE });
  });

  it('refuses symlinks leading out of the root: VM dir, point dir, data file', async () => {
    await fsp.symlink(path.join(outside, 'vm-secret'), path.join(root, 'vm-link'));
    await expect(repo.getPoint('vm-link', 'p0')).rejects.toMatchObject({
      code: BackupErrorCode.PATH_ESCAPE,
      message: 'vm vm-link point p0: vm-link/p0 resolves outside the backup root',
    });
    expect(await repo.listVms()).not.toContain('vm-link');

    await fsp.symlink(path.join(outside, 'vm-secret', 'p0'), path.join(root, 'vm-fixture', 'p-link'));
    await expect(repo.getPoint('vm-fixture', 'p-link')).rejects.toMatchObject({ code: BackupErrorCode.PATH_ESCAPE });
    const listed = await repo.listPoints('vm-fixture');
    expect(listed.find((p) => p.pointId === 'p-link')?.problem?.code).toBe(BackupErrorCode.PATH_ESCAPE);

    // A data file swapped for a symlink to a file outside.
    const key = chain.points[2]!.manifest.disks[0]!.key;
    const dat = path.join(root, 'vm-fixture', 'p2', `disk-${key}.dat`);
    await fsp.rename(dat, `${dat}.orig`);
    await fsp.symlink(path.join(outside, 'vm-secret', 'p0', `disk-${key}.dat`), dat);
    await expect(repo.dataPath('vm-fixture', 'p2', key)).rejects.toMatchObject({
      code: BackupErrorCode.PATH_ESCAPE,
      details: { vmId: 'vm-fixture', pointId: 'p2', diskKey: key },
    });
    await fsp.rm(dat);
    await fsp.rename(`${dat}.orig`, dat);

    // A symlink that stays inside the root is fine.
    await fsp.symlink(path.join(root, 'vm-fixture'), path.join(root, 'vm-alias'));
    expect((await repo.getPoint('vm-alias', 'p0').catch((e: Error) => e)) as Error).toMatchObject({ code: BackupErrorCode.FORMAT_INVALID });
  });

  it('refuses a point.json naming files outside its directory', async () => {
    const file = path.join(root2, 'vm-other', 'p1', 'point.json');
    const m = JSON.parse(await fsp.readFile(file, 'utf8'));
    m.disks[0].dataFile = '../../../outside/vm-secret/p0/disk-2000.dat';
    await fsp.writeFile(file, JSON.stringify(m));
    await expect(repo.getPoint('vm-other', 'p1')).rejects.toMatchObject({ code: BackupErrorCode.PATH_ESCAPE, message: expect.stringContaining('point p1 disk 2000') });
  });

  it('needs absolute roots', () => {
    expect(() => new FileBackupRepository(['relative/root'])).toThrow(expect.objectContaining({ code: BackupErrorCode.PATH_ESCAPE }));
    expect(() => new FileBackupRepository([])).toThrow();
  });
});
