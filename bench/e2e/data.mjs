// Backup points for bench/e2e written straight in the repository format
// (core's PointWriter), 1 MiB at a time: memory stays bounded whatever the
// disk size. Data is incompressible: every 4 KiB page is a page of a 64 MiB
// AES-CTR keystream pool, picked by a hash of (disk offset, salt), stamped
// with its offset and salt, so no two pages of a disk or a chain are equal.
import { createCipheriv } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';

const MiB = 1024 * 1024;
const PAGE = 4096;
const POOL_PAGES = (64 * MiB) / PAGE;

export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let pool;
function getPool() {
  if (!pool) {
    const c = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), Buffer.alloc(16, 3));
    pool = c.update(Buffer.alloc(64 * MiB));
  }
  return pool;
}

/** Fills buf (a multiple of 512 bytes) with the data of the disk at diskOffset, for this salt. */
export function fill(buf, diskOffset, salt) {
  const p = getPool();
  for (let at = 0; at < buf.length; at += PAGE) {
    const off = diskOffset + at;
    const page = Math.floor(off / PAGE);
    let h = Math.imul(page ^ Math.imul(salt + 1, 0x9e3779b1), 0x85ebca6b) ^ Math.floor(page / 4294967296);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) ^ (h >>> 16);
    const src = ((h >>> 0) % POOL_PAGES) * PAGE;
    const n = Math.min(PAGE, buf.length - at);
    p.copy(buf, at, src, src + n);
    if (n >= 16) {
      buf.writeUInt32LE(off % 4294967296, at);
      buf.writeUInt32LE(Math.floor(off / 4294967296), at + 4);
      buf.writeUInt32LE(salt >>> 0, at + 8);
    }
  }
}

function diskSpec(core, d, rnd) {
  return { key: d.key, capacityBytes: d.capacityBytes, changeId: `52 3c 8a 1f 9e 0b 44 d2-a7 61 0e 5c 3b 28 f9 00/${d.key}`, metadata: core.sampleDiskMetadata(d, rnd) };
}

/**
 * A full point whose disks hold data everywhere (dense): the data file of
 * each disk is then exactly its raw image (blocks in disk order), the dd
 * baseline's input. Returns the manifest.
 */
export async function writeDenseFull(core, { root, vmId, pointId = 'full', disks, config, seed = 1 }) {
  const rnd = prng(seed);
  const w = await core.PointWriter.create({ root, vmId, pointId, kind: 'full', parent: null, config: config ?? core.sampleVmConfig(vmId, disks) });
  try {
    const buf = Buffer.alloc(MiB);
    for (const d of disks) {
      const dw = await w.addDisk(diskSpec(core, d, rnd));
      for (let off = 0; off < d.capacityBytes; off += MiB) {
        const b = buf.subarray(0, Math.min(MiB, d.capacityBytes - off));
        fill(b, off, d.key);
        await dw.writeArea(off, b);
      }
    }
    return await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

const align = (n, a) => Math.floor(n / a) * a;

/**
 * A chain of `points` points of one disk: a full with about `allocated` of
 * the disk in runs of 1-32 MiB, then incrementals of `smallAreas` small
 * writes (4-64 KiB, anywhere), a rotating half of 16 hot areas (256 KiB -
 * 2 MiB, rewritten again and again: logs, metadata), now and then a large
 * write (8-48 MiB), and a few areas zeroed. The disk at the last point is
 * also written to `flatPath` (a sparse raw file), point after point, oldest
 * first: the flattened image. Returns point ids and byte counts.
 */
export async function writeChain(core, { root, vmId, disk, points, allocated = 0.6, smallAreas = 300, seed = 11, flatPath }) {
  const rnd = prng(seed);
  const cap = disk.capacityBytes;
  const config = core.sampleVmConfig(vmId, [disk]);
  const spec = diskSpec(core, disk, rnd);
  const flat = openSync(flatPath, 'w');
  ftruncateSync(flat, cap);
  const buf = Buffer.alloc(MiB);
  const zeros = Buffer.alloc(MiB);
  const ids = [];
  let backupBytes = 0;
  const hot = Array.from({ length: 16 }, () => {
    const len = align(256 * 1024 + rnd() * 1792 * 1024, PAGE);
    const start = align(rnd() * (cap - len), PAGE);
    return { start, end: start + len };
  });
  const base = Date.parse('2026-10-01T02:00:00Z');
  try {
    for (let n = 0; n < points; n++) {
      const pointId = `p${String(n).padStart(2, '0')}`;
      let areas = [];
      if (n === 0) {
        for (let at = 0; at < cap; ) {
          const run = align(MiB + rnd() * 31 * MiB, 64 * 1024);
          const hole = align(run * ((1 - allocated) / allocated) * (0.5 + rnd()), 64 * 1024);
          areas.push({ start: at, end: Math.min(cap, at + run) });
          at += run + hole;
        }
      } else {
        for (let i = 0; i < smallAreas; i++) {
          const len = align(PAGE + rnd() * 60 * 1024, PAGE);
          const start = align(rnd() * (cap - len), PAGE);
          areas.push({ start, end: start + len });
        }
        for (const h of hot) if (rnd() < 0.5) areas.push(h);
        if (rnd() < 0.2) {
          const len = align(8 * MiB + rnd() * 40 * MiB, MiB);
          const start = align(rnd() * (cap - len), MiB);
          areas.push({ start, end: start + len });
        }
      }
      areas = core.extents.toRanges(core.extents.fromRanges(areas));
      const w = await core.PointWriter.create({ root, vmId, pointId, kind: n === 0 ? 'full' : 'incremental', parent: n === 0 ? null : ids.at(-1), config, createdAt: new Date(base + n * 86_400_000).toISOString() });
      try {
        const dw = await w.addDisk({ ...spec, changeId: `52 3c 8a 1f 9e 0b 44 d2-a7 61 0e 5c 3b 28 f9 00/${n + 1}` });
        for (const a of areas) {
          const zeroed = n > 0 && a.end - a.start <= 64 * 1024 && rnd() < 0.05; // a trimmed/zeroed area: still a change
          for (let off = a.start; off < a.end; off += MiB) {
            const len = Math.min(MiB, a.end - off);
            const b = zeroed ? zeros.subarray(0, len) : buf.subarray(0, len);
            if (!zeroed) fill(b, off, 1000 + n);
            await dw.writeArea(off, b);
            writeSync(flat, b, 0, len, off);
          }
          backupBytes += a.end - a.start;
        }
        await w.commit();
      } catch (e) {
        await w.abort();
        throw e;
      }
      ids.push(pointId);
    }
  } finally {
    closeSync(flat);
  }
  return { pointIds: ids, backupBytes };
}
