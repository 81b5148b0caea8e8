import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const SIM_LIB_DIR = path.join(__dirname, '..', 'build', 'sim');

export function tmpDir(prefix = 'vddk-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Writes a random source file and returns its bytes. */
export function writeSource(file: string, size: number): Buffer {
  const data = randomBytes(size);
  fs.writeFileSync(file, data);
  return data;
}

export interface DiskOptions {
  parent?: string; // descriptor file name in the same directory
  parentCid?: string;
  cid?: string;
}

/** A disk in the layout of docs/disk-model.md: descriptor + sparse flat extent. */
export function makeDisk(dir: string, base: string, capacity: number, o: DiskOptions = {}): string {
  const flat = `${base}-flat.vmdk`;
  const desc = path.join(dir, `${base}.vmdk`);
  const lines = [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${o.cid ?? '6c1e2f3a'}`,
    `parentCID=${o.parentCid ?? 'ffffffff'}`,
    ...(o.parent ? [`parentFileNameHint="${o.parent}"`] : []),
    'createType="monolithicFlat"',
    '# Extent description',
    `RW ${capacity / 512} FLAT "${flat}" 0`,
    '# The Disk Data Base',
    '#DDB',
    'ddb.adapterType = "lsilogic"',
    'ddb.geometry.cylinders = "130"',
    'ddb.geometry.heads = "255"',
    'ddb.geometry.sectors = "63"',
    'ddb.virtualHWVersion = "14"',
  ];
  fs.writeFileSync(desc, lines.join('\n') + '\n');
  const fd = fs.openSync(path.join(dir, flat), 'w');
  fs.ftruncateSync(fd, capacity);
  fs.closeSync(fd);
  return desc;
}

/** A snapshot delta per disk-model.md: a sparse full copy of the parent. */
export function makeDelta(dir: string, parentBase: string, n: number): string {
  const parentDesc = fs.readFileSync(path.join(dir, `${parentBase}.vmdk`), 'utf8');
  const cid = /^CID=(\w+)/m.exec(parentDesc)?.[1] ?? 'ffffffff';
  const cap = Number(/^RW (\d+) FLAT/m.exec(parentDesc)?.[1]) * 512;
  const base = `${parentBase}-${String(n).padStart(6, '0')}`;
  const desc = makeDisk(dir, base, cap, { parent: `${parentBase}.vmdk`, parentCid: cid, cid: 'aaaabbbb' });
  fs.copyFileSync(path.join(dir, `${parentBase}-flat.vmdk`), path.join(dir, `${base}-flat.vmdk`));
  return desc;
}

export function readCid(desc: string): string {
  return /^CID=(\w+)/m.exec(fs.readFileSync(desc, 'utf8'))?.[1] ?? '';
}

export function flatOf(desc: string): string {
  return desc.replace(/\.vmdk$/, '-flat.vmdk');
}

/** Random 1 KiB aligned extents over a source, copied in order into `expected`. */
export function randomExtents(
  source: Buffer,
  capacity: number,
  count: number,
  expected: Buffer,
): { source: number; sourceOffset: number; targetOffset: number; length: number }[] {
  const out = [];
  for (let i = 0; i < count; i++) {
    const length = 1024 * (1 + Math.floor(Math.random() * 300));
    const sourceOffset = Math.floor(Math.random() * (source.length - length));
    const targetOffset = 1024 * Math.floor(Math.random() * ((capacity - length) / 1024));
    source.copy(expected, targetOffset, sourceOffset, sourceOffset + length);
    out.push({ source: 0, sourceOffset, targetOffset, length });
  }
  return out;
}

/**
 * The simulator's settings file for this process. VDDK reads its configFile
 * once, at InitEx (first use in the process), and the simulator re-reads it
 * on every call, so each test rewrites it; jest's process.env is a copy the
 * native code never sees, so environment variables cannot be used here.
 */
export const SIM_CONFIG = path.join(os.tmpdir(), `vddk-sim-${process.pid}.conf`);

export function configureSim(settings: Record<string, string>): void {
  const lines = Object.entries(settings).map(([k, v]) => `sim.${k} = "${v}"`);
  fs.writeFileSync(SIM_CONFIG, lines.join('\n') + '\n');
}
