// The `file` target writes the right bytes into a disk-model disk or a raw image.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { copy, diskInfo } from '../src';
import type { CopyProgress } from '../src';
import { flatOf, makeDisk, randomExtents, readCid, tmpDir, writeSource } from './helpers';

const MiB = 1024 * 1024;
const qemuOk = spawnSync('bash', [path.join(__dirname, 'ensure-qemu.sh')]).status === 0;

describe('copy to a file target', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('copies random extents byte for byte into the flat extent of a descriptor', async () => {
    const capacity = 16 * MiB;
    const src = writeSource(path.join(dir, 'src.bin'), 8 * MiB);
    const desc = makeDisk(dir, 'vm', capacity);
    const expected = Buffer.alloc(capacity);
    const extents = randomExtents(src, capacity, 40, expected);
    const seen: number[] = [];
    const result = await copy({
      sources: [path.join(dir, 'src.bin')],
      extents,
      target: { kind: 'file', path: desc },
      bufferBytes: 64 * 1024,
      progressIntervalMs: 0,
      onProgress: (p) => seen.push(p.bytesDone),
    });
    expect(fs.readFileSync(flatOf(desc)).equals(expected)).toBe(true);
    expect(result.transport).toBe('file');
    expect(result.extentsWritten).toBe(40);
    expect(result.bytesWritten).toBe(extents.reduce((n, e) => n + e.length, 0));
    expect(seen.at(-1)).toBe(result.bytesWritten);
    expect(readCid(desc)).toMatch(/^[0-9a-f]{8}$/);
    expect(readCid(desc)).not.toBe('6c1e2f3a');
    expect(fs.statSync(flatOf(desc)).size).toBe(capacity);
  });

  it('reports durable checkpoints by bytes, with flush-behind on or off, and writes the same bytes', async () => {
    const capacity = 16 * MiB;
    const src = writeSource(path.join(dir, 'src.bin'), 8 * MiB);
    for (const flushBehind of [0, 256 * 1024]) {
      const desc = makeDisk(dir, `fb${flushBehind}`, capacity);
      const expected = Buffer.alloc(capacity);
      const extents = randomExtents(src, capacity, 40, expected);
      const total = extents.reduce((n, e) => n + e.length, 0);
      const checkpoints: Array<{ extentsDone: number; bytesDone: number }> = [];
      await copy({
        sources: [path.join(dir, 'src.bin')],
        extents,
        target: { kind: 'file', path: desc, flushBehind },
        bufferBytes: 64 * 1024,
        checkpoint: { everyBytes: 1 * MiB },
        onProgress: (p) => p.checkpoint && checkpoints.push(p.checkpoint),
      });
      expect(fs.readFileSync(flatOf(desc)).equals(expected)).toBe(true);
      expect(checkpoints.length).toBeGreaterThan(0);
      // Each checkpoint: whole extents, at least 1 MiB more than the one before, and its bytes are those extents' bytes.
      let prev = { extentsDone: 0, bytesDone: 0 };
      for (const cp of checkpoints) {
        expect(cp.bytesDone).toBe(extents.slice(0, cp.extentsDone).reduce((n, e) => n + e.length, 0));
        expect(cp.bytesDone - prev.bytesDone).toBeGreaterThanOrEqual(1 * MiB);
        prev = cp;
      }
      expect(prev.extentsDone).toBeLessThan(40);
      expect(prev.bytesDone).toBeLessThan(total);
    }
  });

  it('writes a raw image and several sources, later extents overwriting earlier ones', async () => {
    const a = writeSource(path.join(dir, 'a'), 1 * MiB);
    const b = writeSource(path.join(dir, 'b'), 1 * MiB);
    const raw = path.join(dir, 'disk.raw');
    fs.writeFileSync(raw, Buffer.alloc(2 * MiB));
    const expected = Buffer.alloc(2 * MiB);
    a.copy(expected, 0, 0, MiB);
    b.copy(expected, 512 * 1024, 4096, 4096 + 8192);
    await copy({
      sources: [path.join(dir, 'a'), path.join(dir, 'b')],
      extents: [
        { source: 0, sourceOffset: 0, targetOffset: 0, length: MiB },
        { source: 1, sourceOffset: 4096, targetOffset: 512 * 1024, length: 8192 },
      ],
      target: { kind: 'file', path: raw },
    });
    expect(fs.readFileSync(raw).equals(expected)).toBe(true);
  });

  it('skips zero buffers only when the target is fresh', async () => {
    fs.writeFileSync(path.join(dir, 'zeros'), Buffer.alloc(MiB));
    const desc = makeDisk(dir, 'vm', 4 * MiB);
    const extents = [{ source: 0, sourceOffset: 0, targetOffset: 0, length: MiB }];
    const fresh = await copy({ sources: [path.join(dir, 'zeros')], extents, target: { kind: 'file', path: desc, fresh: true } });
    expect([fresh.bytesWritten, fresh.bytesSkipped]).toEqual([0, MiB]);
    fs.writeFileSync(flatOf(desc), Buffer.alloc(4 * MiB, 0xff));
    const used = await copy({ sources: [path.join(dir, 'zeros')], extents, target: { kind: 'file', path: desc } });
    expect([used.bytesWritten, used.bytesSkipped]).toEqual([MiB, 0]);
    expect(fs.readFileSync(flatOf(desc)).subarray(0, MiB).equals(Buffer.alloc(MiB))).toBe(true);
  });

  it('throttles progress to progressIntervalMs, always reporting the end', async () => {
    writeSource(path.join(dir, 's'), 4 * MiB);
    const raw = path.join(dir, 'disk.raw');
    fs.writeFileSync(raw, Buffer.alloc(4 * MiB));
    const seen: CopyProgress[] = [];
    await copy({
      sources: [path.join(dir, 's')],
      extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 4 * MiB }],
      target: { kind: 'file', path: raw },
      bufferBytes: 64 * 1024,
      progressIntervalMs: 60_000,
      onProgress: (p) => seen.push(p),
    });
    // the first buffer (interval counted from the start) and the final report
    expect(seen.length).toBeLessThanOrEqual(2);
    expect(seen.at(-1)).toMatchObject({ bytesDone: 4 * MiB, bytesTotal: 4 * MiB, extentsDone: 1 });
  });

  it('writes metadata as ddb keys and reads it back with diskInfo', async () => {
    const desc = makeDisk(dir, 'vm', 4 * MiB);
    fs.writeFileSync(path.join(dir, 's'), Buffer.alloc(1024, 7));
    await copy({
      sources: [path.join(dir, 's')],
      extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 1024 }],
      target: { kind: 'file', path: desc },
      writeMetadata: { adapterType: 'pvscsi', 'uuid': '60 00 C2 9a' },
    });
    expect(fs.readFileSync(desc, 'utf8')).toContain('ddb.adapterType = "pvscsi"');
    const info = await diskInfo({ kind: 'file', path: desc });
    expect(info).toMatchObject({ capacityBytes: 4 * MiB, transport: 'file' });
    expect(info.metadata).toMatchObject({ adapterType: 'pvscsi', uuid: '60 00 C2 9a', virtualHWVersion: '14' });
  });

  (qemuOk ? it : it.skip)('leaves a disk that qemu-img reads and compares equal to the expected image', async () => {
    const capacity = 8 * MiB;
    const src = writeSource(path.join(dir, 'src.bin'), 4 * MiB);
    const desc = makeDisk(dir, 'vm', capacity);
    const expected = Buffer.alloc(capacity);
    const extents = randomExtents(src, capacity, 20, expected);
    await copy({ sources: [path.join(dir, 'src.bin')], extents, target: { kind: 'file', path: desc } });
    fs.writeFileSync(path.join(dir, 'expected.raw'), expected);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-f', 'vmdk', desc], { encoding: 'utf8' }));
    expect(info['virtual-size']).toBe(capacity);
    const cmp = spawnSync('qemu-img', ['compare', '-f', 'vmdk', '-F', 'raw', desc, path.join(dir, 'expected.raw')], {
      encoding: 'utf8',
    });
    expect(cmp.stdout).toContain('Images are identical');
    expect(cmp.status).toBe(0);
  });
});

/** Whether files in `dir` can be opened with O_DIRECT (not on every file system). */
function directIoIn(dir: string): boolean {
  const probe = path.join(dir, 'direct-probe');
  fs.writeFileSync(probe, Buffer.alloc(4096));
  try {
    fs.closeSync(fs.openSync(probe, fs.constants.O_RDWR | fs.constants.O_DIRECT));
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe);
  }
}

describe('direct I/O and packed buffers on the file target', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes and reads back with O_DIRECT where the file system allows it, through the page cache when told not to', async () => {
    const capacity = 8 * MiB;
    const src = writeSource(path.join(dir, 'src.bin'), 4 * MiB);
    const expected = Buffer.alloc(capacity);
    // Whole blocks, 1 KiB pieces at odd KiB offsets, packed and not: the same bytes either way.
    const extents = [
      { source: 0, sourceOffset: 0, targetOffset: 0, length: MiB },
      { source: 0, sourceOffset: 3 * MiB, targetOffset: MiB, length: MiB },
      { source: 0, sourceOffset: 5 * 1024, targetOffset: 3 * MiB + 3 * 1024, length: 1024 },
      { source: 0, sourceOffset: 9 * 1024, targetOffset: 5 * MiB + 7 * 1024, length: 33 * 1024 },
    ];
    for (const e of extents) src.copy(expected, e.targetOffset, e.sourceOffset, e.sourceOffset + e.length);
    const total = extents.reduce((n, e) => n + e.length, 0);
    const direct = directIoIn(dir);
    for (const mode of [undefined, false] as const) {
      const desc = makeDisk(dir, `d${String(mode)}`, capacity);
      const target = { kind: 'file' as const, path: desc, ...(mode === undefined ? {} : { direct: mode }) };
      const w = await copy({ sources: [path.join(dir, 'src.bin')], extents, target, bufferBytes: 4 * MiB });
      expect(fs.readFileSync(flatOf(desc)).equals(expected)).toBe(true);
      const v = await copy({ sources: [path.join(dir, 'src.bin')], extents, target, verify: true });
      expect(v.bytesVerified).toBe(total);
      // ext4 and xfs: every request here meets the alignment (512 bytes on this machine's disk; 1 KiB pieces do too).
      expect([w.bytesDirect, v.bytesDirect]).toEqual(mode === false || !direct ? [0, 0] : [total, total]);
    }
  });

  it('reads a flat extent shorter than the disk as zeros past its end, direct or not', async () => {
    const desc = makeDisk(dir, 'short', 4 * MiB);
    fs.writeFileSync(path.join(dir, 'zeros'), Buffer.alloc(MiB));
    fs.truncateSync(flatOf(desc), MiB + 512 * 1024); // ends inside the extent verified below
    const extents = [{ source: 0, sourceOffset: 0, targetOffset: MiB, length: MiB }];
    for (const direct of [true, false]) {
      const v = await copy({ sources: [path.join(dir, 'zeros')], extents, target: { kind: 'file', path: desc, direct }, verify: true });
      expect(v.bytesVerified).toBe(MiB);
    }
  });

  it('skips the all-zero 64 KiB granules of a fresh target, leaving them unallocated', async () => {
    const src = Buffer.alloc(4 * MiB, 0);
    src.fill(0x5a, 0, 64 * 1024); // data, 192 KiB of zeros, data to the end of the first MiB, then a zero MiB, then data
    src.fill(0x5a, 256 * 1024, MiB);
    src.fill(0x5a, 2 * MiB, 4 * MiB);
    fs.writeFileSync(path.join(dir, 'src.bin'), src);
    const raw = path.join(dir, 'fresh.raw');
    fs.closeSync(fs.openSync(raw, 'w'));
    fs.truncateSync(raw, 4 * MiB);
    const r = await copy({ sources: [path.join(dir, 'src.bin')], extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 4 * MiB }], target: { kind: 'file', path: raw, fresh: true } });
    expect(fs.readFileSync(raw).equals(src)).toBe(true);
    expect([r.bytesWritten, r.bytesSkipped]).toEqual([4 * MiB - 192 * 1024 - MiB, 192 * 1024 + MiB]);
    expect(fs.statSync(raw).blocks * 512).toBeLessThanOrEqual(r.bytesWritten);
  });
});

describe('verify: read back through the target and compare', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('passes on the bytes just written, names the disk offset and the backup block on a difference, never writes', async () => {
    const capacity = 8 * MiB;
    const src = writeSource(path.join(dir, 'src.bin'), 4 * MiB);
    const desc = makeDisk(dir, 'vm', capacity);
    const expected = Buffer.alloc(capacity);
    // Disjoint extents: what verification compares is the disk's final content.
    const extents: Parameters<typeof copy>[0]['extents'] = [];
    for (let i = 0; i < 20; i++) {
      const length = 1024 * (1 + Math.floor(Math.random() * 255));
      const sourceOffset = 1024 * Math.floor(Math.random() * 3000);
      extents.push({ source: 0, sourceOffset, targetOffset: i * 256 * 1024, length });
      src.copy(expected, i * 256 * 1024, sourceOffset, sourceOffset + length);
    }
    // One extent with its stored block's checksum, as restores send them.
    const block = { offset: 0, length: MiB, sha256: require('node:crypto').createHash('sha256').update(src.subarray(0, MiB)).digest('hex') };
    extents.push({ source: 0, sourceOffset: 4096, targetOffset: 7 * MiB, length: 64 * 1024, check: block });
    src.copy(expected, 7 * MiB, 4096, 4096 + 64 * 1024);
    const job = { sources: [path.join(dir, 'src.bin')], extents, target: { kind: 'file' as const, path: desc }, writeMetadata: { adapterType: 'lsilogic' } };
    await copy(job);
    const total = extents.reduce((n, e) => n + e.length, 0);
    const ok = await copy({ ...job, verify: true });
    expect([ok.bytesVerified, ok.bytesWritten, ok.extentsWritten]).toEqual([total, 0, extents.length]);

    // One byte of the disk changes inside the checked extent: named, with its block.
    const flat = flatOf(desc);
    const fd = fs.openSync(flat, 'r+');
    fs.writeSync(fd, Buffer.from([expected[7 * MiB + 5000]! ^ 0xff]), 0, 1, 7 * MiB + 5000);
    fs.closeSync(fd);
    const before = fs.readFileSync(flat);
    const err = await copy({ ...job, verify: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VERIFY_MISMATCH' });
    expect((err as Error).message).toContain(`at byte ${7 * MiB + 5000}`);
    expect((err as Error).message).toContain(`bytes 0..${MiB} of ${path.join(dir, 'src.bin')} (sha256 ${block.sha256})`);
    expect(fs.readFileSync(flat).equals(before)).toBe(true); // verification never writes

    // Metadata differing from the backup's is a difference too.
    const md = await copy({ ...job, extents: [], writeMetadata: { adapterType: 'pvscsi' }, verify: true }).catch((e: unknown) => e);
    expect(md).toMatchObject({ code: 'VERIFY_MISMATCH', message: expect.stringContaining('adapterType') });
  });
});

describe('readBack: each durable range read back and compared while the copy writes on', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('verifies every byte written and the metadata, the read-back running behind the writes, direct or not', async () => {
    const capacity = 16 * MiB;
    const src = writeSource(path.join(dir, 'src.bin'), 8 * MiB);
    // Whole blocks packed into gathered writes, and small pieces apart from them: disjoint on the target.
    const extents: Parameters<typeof copy>[0]['extents'] = [];
    for (let i = 0; i < 6; i++) extents.push({ source: 0, sourceOffset: ((i * 3) % 8) * MiB, targetOffset: i * MiB, length: MiB });
    for (let i = 0; i < 20; i++) extents.push({ source: 0, sourceOffset: 1024 * (7 + 5 * i), targetOffset: 8 * MiB + i * 256 * 1024, length: 1024 * (1 + 7 * i) });
    const expected = Buffer.alloc(capacity);
    for (const e of extents) src.copy(expected, e.targetOffset, e.sourceOffset, e.sourceOffset + e.length);
    const total = extents.reduce((n, e) => n + e.length, 0);
    for (const readBack of [true, { direct: false }] as const) {
      const desc = makeDisk(dir, `rb${JSON.stringify(readBack).length}`, capacity);
      const seen: CopyProgress[] = [];
      const r = await copy({
        sources: [path.join(dir, 'src.bin')],
        extents,
        target: { kind: 'file', path: desc, queueDepth: 4 },
        bufferBytes: 256 * 1024,
        writeMetadata: { adapterType: 'pvscsi' },
        checkpoint: { everyBytes: 256 * 1024 },
        maxBytesPerSec: 16 * MiB, // writes and read-backs share it: the copy lasts long enough to see both at once
        progressIntervalMs: 0,
        readBack,
        onProgress: (p) => seen.push(p),
      });
      expect(fs.readFileSync(flatOf(desc)).equals(expected)).toBe(true);
      expect([r.bytesWritten, r.bytesVerified]).toEqual([total, total]);
      expect(seen.every((p) => p.bytesVerified !== undefined && p.bytesVerified <= p.bytesDone)).toBe(true);
      // Read back while the copy was still writing, not only after it.
      expect(seen.some((p) => p.bytesVerified! > 0 && p.bytesDone < total)).toBe(true);
      expect(seen.at(-1)!.bytesVerified).toBe(total);
    }
  });

  it('fails with VERIFY_MISMATCH at the first byte that reads back otherwise (a "fresh" target that was not)', async () => {
    // Zero granules of a fresh target are skipped (it reads as zeros already): here it does not.
    const src = Buffer.alloc(4 * MiB, 0x5a);
    src.fill(0, MiB + 128 * 1024, MiB + 192 * 1024);
    fs.writeFileSync(path.join(dir, 'src.bin'), src);
    const raw = path.join(dir, 'stale.raw');
    fs.writeFileSync(raw, Buffer.alloc(4 * MiB, 0xee));
    const job = { sources: [path.join(dir, 'src.bin')], extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 4 * MiB }], target: { kind: 'file' as const, path: raw, fresh: true } };
    const err = await copy({ ...job, readBack: true, checkpoint: { everyBytes: MiB } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VERIFY_MISMATCH', message: expect.stringContaining(`differs from the backup at byte ${MiB + 128 * 1024} (extent 0`) });
    // Without the read-back the same copy succeeds and leaves the stale bytes.
    const r = await copy(job);
    expect(r.bytesSkipped).toBe(64 * 1024);
    expect(fs.readFileSync(raw).subarray(MiB + 128 * 1024, MiB + 192 * 1024).every((b) => b === 0xee)).toBe(true);
  });
});

describe('block checks: the SHA-256 of any length matches node:crypto (SHA extensions or portable code)', () => {
  it('accepts checks of many lengths computed by node:crypto, refuses a wrong one', async () => {
    const dir = tmpDir();
    try {
      const src = writeSource(path.join(dir, 'src.bin'), 4 * MiB);
      const raw = path.join(dir, 'disk.raw');
      fs.writeFileSync(raw, Buffer.alloc(8 * MiB));
      const { createHash } = require('node:crypto') as typeof import('node:crypto');
      // Lengths around the 64-byte block and the padding boundaries, and over several ring buffers.
      const lengths = [1024, 1025, 1079, 1080, 1087, 1088, 1151, 4096, 65535, 65536, 65537, 1048576, 3 * MiB + 17];
      const extents = lengths.map((len, i) => {
        const offset = (i * 7919) % (4 * MiB - len);
        const sha256 = createHash('sha256').update(src.subarray(offset, offset + len)).digest('hex');
        return { source: 0, sourceOffset: offset, targetOffset: i * 1024, length: 1024, check: { offset, length: len, sha256 } };
      });
      const r = await copy({ sources: [path.join(dir, 'src.bin')], extents, target: { kind: 'file', path: raw }, bufferBytes: 65536 });
      expect(r.extentsWritten).toBe(extents.length);
      const bad = { ...extents[5]!, check: { ...extents[5]!.check, sha256: createHash('sha256').update('x').digest('hex') } };
      await expect(copy({ sources: [path.join(dir, 'src.bin')], extents: [bad], target: { kind: 'file', path: raw } })).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
