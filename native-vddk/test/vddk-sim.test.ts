// The `vddk` target through the VDDK simulator (build/sim/libvixDiskLib.so.8):
// right bytes into the right file for each transport, calls on one thread.
import fs from 'node:fs';
import path from 'node:path';

import { copy, diskInfo } from '../src';
import type { Transport, VddkTarget } from '../src';
import { configureSim, flatOf, makeDelta, makeDisk, readCid, SIM_CONFIG, SIM_LIB_DIR, tmpDir, writeSource } from './helpers';

const MiB = 1024 * 1024;

describe('vddk target through the simulator', () => {
  let dir: string;
  let vmDir: string;
  let log: string;
  let src: Buffer;
  beforeEach(() => {
    dir = tmpDir();
    vmDir = path.join(dir, 'ds0', 'vm1');
    fs.mkdirSync(vmDir, { recursive: true });
    log = path.join(dir, 'sim.log');
    configureSim({ datastores: `LocalDS_0=${path.join(dir, 'ds0')}`, log });
    src = writeSource(path.join(dir, 'src.bin'), 2 * MiB);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterAll(() => fs.rmSync(SIM_CONFIG, { force: true }));

  function target(diskPath: string, transports: Transport[], snapshotMoref?: string): VddkTarget {
    return {
      kind: 'vddk',
      libDir: SIM_LIB_DIR,
      server: 'vcenter.local',
      thumbprint: '11:22:33',
      username: 'administrator@vsphere.local',
      password: 'secret',
      vmMoref: 'vm-42',
      transports,
      diskPath,
      configFile: SIM_CONFIG,
      ...(snapshotMoref ? { snapshotMoref } : {}),
    };
  }

  const extents = [
    { source: 0, sourceOffset: 0, targetOffset: 1 * MiB, length: 512 * 1024 },
    { source: 0, sourceOffset: 1 * MiB, targetOffset: 0, length: 64 * 1024 },
  ];
  function expected(): Buffer {
    const img = Buffer.alloc(4 * MiB);
    src.copy(img, 1 * MiB, 0, 512 * 1024);
    src.copy(img, 0, 1 * MiB, 1 * MiB + 64 * 1024);
    return img;
  }

  it('verifies through VixDiskLib_Read (read-only open, through the snapshot) and finds a difference', async () => {
    const desc = makeDisk(vmDir, 'vm1', 4 * MiB);
    const job = { sources: [path.join(dir, 'src.bin')], extents, target: target('[LocalDS_0] vm1/vm1.vmdk', ['nbdssl', 'nbd']) };
    await copy(job);
    const ok = await copy({ ...job, verify: true });
    expect([ok.bytesVerified, ok.bytesWritten, ok.transport]).toEqual([576 * 1024, 0, 'nbdssl']);
    const flat = flatOf(desc);
    const img = fs.readFileSync(flat);
    img[1 * MiB + 100] = img[1 * MiB + 100]! ^ 1;
    fs.writeFileSync(flat, img);
    const err = await copy({ ...job, verify: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VERIFY_MISMATCH', message: expect.stringContaining(`at byte ${1 * MiB + 100}`) });
    const lines = fs.readFileSync(log, 'utf8').split('\n');
    expect(lines.filter((l) => l.startsWith('MISUSE'))).toEqual([]);
    expect(lines.some((l) => l.startsWith('VixDiskLib_Read '))).toBe(true);
  });

  it('writes the opened disk over nbd and runs Open/Close/ConnectEx/Disconnect on one thread', async () => {
    const desc = makeDisk(vmDir, 'vm1', 4 * MiB);
    const result = await copy({
      sources: [path.join(dir, 'src.bin')],
      extents,
      target: target('[LocalDS_0] vm1/vm1.vmdk', ['nbdssl', 'nbd']),
      writeMetadata: { adapterType: 'pvscsi' },
    });
    expect(result.transport).toBe('nbdssl');
    expect(result.extentsWritten).toBe(2);
    expect(result.warnings.some((w) => w === 'log: VixDiskLib: connected to vcenter.local using transport nbdssl')).toBe(true);
    expect(fs.readFileSync(flatOf(desc)).equals(expected())).toBe(true);
    expect(fs.readFileSync(desc, 'utf8')).toContain('ddb.adapterType = "pvscsi"');

    await diskInfo(target('[LocalDS_0] vm1/vm1.vmdk', ['nbd'])); // a second session, same control thread
    const lines = fs.readFileSync(log, 'utf8').split('\n');
    expect(lines.filter((l) => l.startsWith('MISUSE'))).toEqual([]);
    const control = lines.filter((l) => /^VixDiskLib_(Open|Close|ConnectEx|Disconnect) tid=/.test(l));
    expect(control.map((l) => l.split(' ')[0])).toEqual([
      'VixDiskLib_ConnectEx',
      'VixDiskLib_Open',
      'VixDiskLib_Close',
      'VixDiskLib_Disconnect',
      'VixDiskLib_ConnectEx',
      'VixDiskLib_Open',
      'VixDiskLib_Close',
      'VixDiskLib_Disconnect',
    ]);
    expect(new Set(control.map((l) => /tid=(\d+)/.exec(l)?.[1])).size).toBe(1);
    const connect = control[0] ?? '';
    expect(connect).toContain('vmxSpec="moref=vm-42" server="vcenter.local" thumbPrint="11:22:33" credType=1');
    expect(connect).toContain('readOnly=0 snapshot=NULL transports="nbdssl:nbd"');
    expect(lines.some((l) => l.startsWith('VixDiskLib_PrepareForAccess'))).toBe(true);
    expect(lines.some((l) => l.startsWith('VixDiskLib_EndAccess'))).toBe(true);
    expect(lines.some((l) => l.startsWith('VixDiskLib_Flush'))).toBe(true);
  });

  it('with hotadd and a snapshot writes the delta, leaving the parent alone', async () => {
    const base = makeDisk(vmDir, 'vm1', 4 * MiB);
    const delta = makeDelta(vmDir, 'vm1', 1);
    const result = await copy({
      sources: [path.join(dir, 'src.bin')],
      extents,
      target: target('[LocalDS_0] vm1/vm1-000001.vmdk', ['hotadd', 'nbd'], 'snapshot-7'),
    });
    expect(result.transport).toBe('hotadd');
    expect(fs.readFileSync(flatOf(delta)).equals(expected())).toBe(true);
    expect(fs.readFileSync(flatOf(base)).equals(Buffer.alloc(4 * MiB))).toBe(true);
    expect(readCid(base)).toBe('6c1e2f3a');
    expect(readCid(delta)).not.toBe('aaaabbbb');
  });

  it('with san and a snapshot writes behind the snapshot into the parent, whose CID changes', async () => {
    const base = makeDisk(vmDir, 'vm1', 4 * MiB);
    const delta = makeDelta(vmDir, 'vm1', 1);
    const result = await copy({
      sources: [path.join(dir, 'src.bin')],
      extents,
      target: target('[LocalDS_0] vm1/vm1-000001.vmdk', ['san', 'nbd'], 'snapshot-7'),
    });
    expect(result.transport).toBe('san');
    expect(fs.readFileSync(flatOf(base)).equals(expected())).toBe(true);
    expect(fs.readFileSync(flatOf(delta)).equals(Buffer.alloc(4 * MiB))).toBe(true);
    expect(readCid(base)).not.toBe('6c1e2f3a');
    expect(fs.readFileSync(log, 'utf8')).toContain(`VixDiskLib_Write tid=`);
    expect(fs.readFileSync(log, 'utf8')).toContain(`file=${flatOf(base)} start=2048 n=1024`);
  });

  it('falls back to the next transport when the first is unavailable, with a session cookie', async () => {
    makeDisk(vmDir, 'vm1', 4 * MiB);
    configureSim({ datastores: `LocalDS_0=${path.join(dir, 'ds0')}`, log, unavailable: 'san,hotadd' });
    {
      const { password: _p, username: _u, ...rest } = target('[LocalDS_0] vm1/vm1.vmdk', ['san', 'hotadd', 'nbd']);
      const result = await copy({ sources: [path.join(dir, 'src.bin')], extents, target: { ...rest, cookie: 'vmware_soap_session="abc"' } });
      expect(result.transport).toBe('nbd');
      expect(fs.readFileSync(log, 'utf8')).toContain('credType=2 cookie=set');
    }
  });

  it('reports capacity, metadata and transport through diskInfo without writing', async () => {
    const desc = makeDisk(vmDir, 'vm1', 4 * MiB);
    const before = fs.readFileSync(desc, 'utf8');
    const info = await diskInfo(target('[LocalDS_0] vm1/vm1.vmdk', ['nbd']));
    expect(info).toMatchObject({ capacityBytes: 4 * MiB, transport: 'nbd' });
    expect(info.metadata).toMatchObject({ adapterType: 'lsilogic', 'geometry.heads': '255' });
    expect(fs.readFileSync(desc, 'utf8')).toBe(before);
    expect(fs.readFileSync(log, 'utf8')).toContain('readOnly=1');
  });

  it('reports durable checkpoints: each one after a VixDiskLib_Flush that follows every write before it', async () => {
    makeDisk(vmDir, 'vm1', 4 * MiB);
    // Six 64 KiB extents; a checkpoint every 2 extents: after extents 2 and 4 (the copy's end covers 6).
    const six = Array.from({ length: 6 }, (_, i) => ({ source: 0, sourceOffset: i * 64 * 1024, targetOffset: i * 128 * 1024, length: 64 * 1024 }));
    const checkpoints: Array<{ extentsDone: number; bytesDone: number; transport: string }> = [];
    await copy({
      sources: [path.join(dir, 'src.bin')],
      extents: six,
      target: target('[LocalDS_0] vm1/vm1.vmdk', ['nbdssl']),
      bufferBytes: 64 * 1024,
      checkpoint: { everyExtents: 2 },
      onProgress: (p) => p.checkpoint && checkpoints.push(p.checkpoint),
    });
    expect(checkpoints).toEqual([
      { extentsDone: 2, bytesDone: 128 * 1024, transport: 'nbdssl' },
      { extentsDone: 4, bytesDone: 256 * 1024, transport: 'nbdssl' },
    ]);
    // In the sim's call log: writes of extents 0-1, Flush, writes of 2-3, Flush, writes of 4-5, the final Flush.
    const calls = fs.readFileSync(log, 'utf8').split('\n').map((l) => (/^VixDiskLib_(Write|Flush) /.exec(l)?.[1] ?? /VixDiskLib_(Write|Flush) tid/.exec(l)?.[1])).filter(Boolean);
    expect(calls.join(',')).toBe('Write,Write,Flush,Write,Write,Flush,Write,Write,Flush');
  });

  it('packs extents that follow each other on the disk into one VixDiskLib_Write of up to bufferBytes, checkpointing whole extents', async () => {
    const desc = makeDisk(vmDir, 'vm1', 4 * MiB);
    // 16 extents of 64 KiB back to back on the disk (from scattered source offsets), a gap, then 2 more.
    const KiB = 1024;
    const run = Array.from({ length: 16 }, (_, i) => ({ source: 0, sourceOffset: ((i * 7) % 16) * 64 * KiB, targetOffset: i * 64 * KiB, length: 64 * KiB }));
    const tail = [0, 1].map((i) => ({ source: 0, sourceOffset: MiB + i * 512 * KiB, targetOffset: 2 * MiB + i * 64 * KiB, length: 64 * KiB }));
    const all = [...run, ...tail];
    const checkpoints: Array<{ extentsDone: number; bytesDone: number }> = [];
    const r = await copy({
      sources: [path.join(dir, 'src.bin')],
      extents: all,
      target: target('[LocalDS_0] vm1/vm1.vmdk', ['nbd']),
      bufferBytes: 256 * KiB,
      checkpoint: { everyExtents: 6 },
      onProgress: (p) => p.checkpoint && checkpoints.push({ extentsDone: p.checkpoint.extentsDone, bytesDone: p.checkpoint.bytesDone }),
    });
    const img = Buffer.alloc(4 * MiB);
    for (const e of all) src.copy(img, e.targetOffset, e.sourceOffset, e.sourceOffset + e.length);
    expect(fs.readFileSync(flatOf(desc)).equals(img)).toBe(true);
    expect([r.extentsWritten, r.bytesWritten]).toEqual([18, 18 * 64 * KiB]);
    const writes = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('VixDiskLib_Write tid=')).map((l) => /start=(\d+) n=(\d+)/.exec(l)!.slice(1).map(Number));
    // 256 KiB = 512 sectors: the run in 4 writes, the 2 extents after the gap in 1.
    expect(writes).toEqual([[0, 512], [512, 512], [1024, 512], [1536, 512], [4096, 256]]);
    // Checkpoints fall on buffer ends (4 whole extents each), once 6 or more extents are in.
    expect(checkpoints).toEqual([
      { extentsDone: 8, bytesDone: 8 * 64 * KiB },
      { extentsDone: 16, bytesDone: 16 * 64 * KiB },
    ]);
  });
});
