// Exercised by test/asan.sh under AddressSanitizer/UBSan and ThreadSanitizer:
// every native path once (file copy, read-back while writing, checksum stop,
// cancels, progress, vddk copy, diskInfo).
'use strict';
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const [facadePath, simDir] = process.argv.slice(2);
const { copy, diskInfo, hashBlocks } = require(facadePath);
const MiB = 1024 * 1024;

function disk(dir, base, capacity) {
  const desc = path.join(dir, `${base}.vmdk`);
  fs.writeFileSync(desc, ['# Disk DescriptorFile', 'version=1', 'CID=12345678', 'parentCID=ffffffff',
    'createType="monolithicFlat"', '# Extent description', `RW ${capacity / 512} FLAT "${base}-flat.vmdk" 0`,
    '#DDB', 'ddb.adapterType = "lsilogic"', ''].join('\n'));
  fs.writeFileSync(path.join(dir, `${base}-flat.vmdk`), '');
  fs.truncateSync(path.join(dir, `${base}-flat.vmdk`), capacity);
  return desc;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vddk-asan-'));
  try {
    const srcPath = path.join(dir, 'src');
    const src = crypto.randomBytes(8 * MiB);
    fs.writeFileSync(srcPath, src);
    const desc = disk(dir, 'vm', 8 * MiB);
    let progress = 0;
    const r = await copy({
      sources: [srcPath],
      extents: [
        { source: 0, sourceOffset: 0, targetOffset: 0, length: 4 * MiB,
          check: { offset: 0, length: 4 * MiB, sha256: crypto.createHash('sha256').update(src.subarray(0, 4 * MiB)).digest('hex') } },
        { source: 0, sourceOffset: 4 * MiB, targetOffset: 4 * MiB, length: 4 * MiB },
      ],
      target: { kind: 'file', path: desc },
      bufferBytes: 64 * 1024, progressIntervalMs: 0, onProgress: () => progress++,
      writeMetadata: { uuid: '60 00' },
    });
    assert.equal(r.bytesWritten, 8 * MiB);
    assert.ok(progress > 0);
    assert.ok(fs.readFileSync(path.join(dir, 'vm-flat.vmdk')).equals(src));

    // Packed 64 KiB extents, checkpoints flushed on the flusher thread, a verify read back.
    const packed = Array.from({ length: 128 }, (_, i) => ({ source: 0, sourceOffset: ((i * 37) % 128) * 64 * 1024, targetOffset: i * 64 * 1024, length: 64 * 1024 }));
    let checkpoints = 0;
    const pr = await copy({ sources: [srcPath], extents: packed, target: { kind: 'file', path: desc }, bufferBytes: 256 * 1024,
      checkpoint: { everyExtents: 8 }, onProgress: (p) => p.checkpoint && checkpoints++ });
    assert.equal(pr.extentsWritten, 128);
    assert.ok(checkpoints > 0);
    assert.equal((await copy({ sources: [srcPath], extents: packed, target: { kind: 'file', path: desc }, verify: true })).bytesVerified, 8 * MiB);

    // hashBlocks on 4 threads: every block's result, and a stop at the first difference.
    const blocks = Array.from({ length: 32 }, (_, i) => i * 256 * 1024);
    const sums = Buffer.concat(blocks.map((o) => crypto.createHash('sha256').update(src.subarray(o, o + 256 * 1024)).digest()));
    sums[5 * 32] ^= 1;
    const all = await hashBlocks({ path: srcPath, offsets: blocks, lengths: blocks.map(() => 256 * 1024), sha256: sums, threads: 4, stopAtFirst: false, progressIntervalMs: 0, onProgress: () => undefined });
    assert.deepEqual(all.mismatches.map((m) => m.block), [5]);
    const first = await hashBlocks({ path: srcPath, offsets: blocks, lengths: blocks.map(() => 256 * 1024), sha256: sums, threads: 4 });
    assert.deepEqual(first.mismatches.map((m) => m.block), [5]);

    // Read-back while writing: a success, a difference (a "fresh" target that is not), a cancel.
    const rb = await copy({ sources: [srcPath], extents: packed, target: { kind: 'file', path: desc, queueDepth: 4 }, bufferBytes: 256 * 1024,
      checkpoint: { everyExtents: 8 }, readBack: true, writeMetadata: { uuid: '60 00' } });
    assert.equal(rb.bytesVerified, 8 * MiB);
    const stale = path.join(dir, 'stale.raw');
    fs.writeFileSync(stale, Buffer.alloc(8 * MiB, 0xee));
    const zeros = path.join(dir, 'zeros');
    fs.writeFileSync(zeros, Buffer.alloc(8 * MiB));
    await assert.rejects(copy({ sources: [zeros], extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 8 * MiB }],
      target: { kind: 'file', path: stale, fresh: true }, bufferBytes: 64 * 1024, checkpoint: { everyBytes: 1024 * 1024 }, readBack: true }), { code: 'VERIFY_MISMATCH' });
    const rbAbort = new AbortController();
    await assert.rejects(copy({ sources: [srcPath], extents: packed, target: { kind: 'file', path: desc }, bufferBytes: 64 * 1024,
      checkpoint: { everyExtents: 2 }, readBack: true, maxBytesPerSec: 1024 * 1024, progressIntervalMs: 0, signal: rbAbort.signal,
      onProgress: (p) => p.bytesVerified > 0 && rbAbort.abort() }), { code: 'CANCELLED' });

    await assert.rejects(copy({
      sources: [srcPath],
      extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 1024, check: { offset: 0, length: 1024, sha256: '00'.repeat(32) } }],
      target: { kind: 'file', path: desc },
    }), { code: 'CHECKSUM_MISMATCH' });

    const ac = new AbortController();
    await assert.rejects(copy({
      sources: [srcPath],
      extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 8 * MiB }],
      target: { kind: 'file', path: desc }, bufferBytes: 64 * 1024, progressIntervalMs: 0,
      // Capped at 1 MiB/s (8 s for the extent): the cancel always lands mid-copy, and the throttle runs under the sanitizers.
      maxBytesPerSec: 1024 * 1024,
      signal: ac.signal, onProgress: () => ac.abort(),
    }), { code: 'CANCELLED' });

    fs.mkdirSync(path.join(dir, 'ds', 'vm1'), { recursive: true });
    disk(path.join(dir, 'ds', 'vm1'), 'vm1', 8 * MiB);
    const conf = path.join(dir, 'sim.conf');
    fs.writeFileSync(conf, `sim.datastores = "LocalDS_0=${path.join(dir, 'ds')}"\nsim.fail = "Write:5:VIX_E_DISK_FULL"\n`);
    const target = { kind: 'vddk', libDir: simDir, server: 'vc', thumbprint: 'aa', username: 'u', password: 'p',
      vmMoref: 'vm-1', transports: ['hotadd', 'nbd'], diskPath: '[LocalDS_0] vm1/vm1.vmdk', configFile: conf };
    const extents = [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 8 * MiB }];
    await assert.rejects(copy({ sources: [srcPath], extents, target, bufferBytes: 1 * MiB }), { code: 'VIX_E_DISK_FULL' });
    fs.writeFileSync(conf, `sim.datastores = "LocalDS_0=${path.join(dir, 'ds')}"\n`);
    const v = await copy({ sources: [srcPath], extents, target, bufferBytes: 1 * MiB });
    assert.equal(v.transport, 'hotadd');
    assert.ok(fs.readFileSync(path.join(dir, 'ds', 'vm1', 'vm1-flat.vmdk')).equals(src));
    const info = await diskInfo(target);
    assert.equal(info.capacityBytes, 8 * MiB);
    assert.equal(info.metadata.adapterType, 'lsilogic');
    console.log('asan-driver: ok');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
