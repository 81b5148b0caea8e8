/**
 * Makes restore points from disk images:
 * - a full from a raw image (VMDK/qcow2 converted with `qemu-img convert -O raw`
 *   when qemu-img is installed), storing only the areas holding non-zero data;
 * - an incremental from a raw image of the disk at backup time plus the
 *   changed areas QueryChangedDiskAreas returned, on top of a parent point.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BackupError, BackupErrorCode } from './errors';
import { fromRanges, type IntervalList } from './extents';
import { MAX_BLOCK_BYTES, SECTOR_SIZE, type ChangedArea, type PointManifest } from './format';
import { FileBackupRepository } from './repository';
import { PointWriter, type DiskWriter } from './writer';

export type ImageFormat = 'raw' | 'vmdk' | 'qcow2';

export interface ImportDiskInput {
  /** VirtualDevice.key of the disk in the config. */
  key: number;
  imagePath: string;
  /** Default 'auto': detected from the file's magic (KDMV / "# Disk DescriptorFile" = vmdk, QFI\xfb = qcow2, else raw). */
  format?: ImageFormat | 'auto';
  /** VixDiskLib_ReadMetadata output. */
  metadata: Record<string, string>;
  changeId?: string | null;
}

export interface ImportCommon {
  root: string;
  vmId: string;
  pointId: string;
  /** VirtualMachineConfigInfo as captured. */
  config: Record<string, unknown>;
  createdAt?: string;
  /** qemu-img executable (default "qemu-img" on PATH). */
  qemuImg?: string;
}

export interface ImportFullOptions extends ImportCommon {
  disks: ImportDiskInput[];
  /** Zero detection granularity in bytes, a multiple of 512 (default 4096). */
  granularity?: number;
}

export interface ImportIncrementalOptions extends ImportCommon {
  parent: string;
  disks: Array<ImportDiskInput & { changedAreas: ChangedArea[] }>;
}

function importError(message: string, details: Record<string, unknown> = {}, cause?: unknown): BackupError {
  return new BackupError(BackupErrorCode.IMPORT_FAILED, message, details, cause === undefined ? undefined : { cause });
}

/** Reads and parses a JSON file (config, metadata, changed areas), with the file named in errors. */
export async function readJsonFile(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    throw importError(`cannot read JSON from ${file}: ${(err as Error).message}`, { path: file }, err);
  }
}

/**
 * Validates a changed-areas list: an array of {start, length} (or the
 * DiskChangeInfo object holding it as `changedArea`). Starts are sector
 * aligned, lengths too except an area ending at an unaligned capacity; areas
 * lie inside the disk. Returns them sorted and merged. Pure.
 */
export function parseChangedAreas(raw: unknown, capacityBytes: number, label = 'changed areas'): IntervalList {
  const list = Array.isArray(raw) ? raw : (raw as { changedArea?: unknown } | null)?.changedArea;
  if (!Array.isArray(list)) throw importError(`${label}: expected a JSON array of {start, length}`);
  const ranges = list.map((a: unknown, i) => {
    const o = a as { start?: unknown; length?: unknown } | null;
    const start = Number(o?.start);
    const length = Number(o?.length);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length <= 0) {
      throw importError(`${label}[${i}]: start and length must be integers, start >= 0, length > 0`, { area: i });
    }
    const end = start + length;
    if (start % SECTOR_SIZE !== 0 || (length % SECTOR_SIZE !== 0 && end !== capacityBytes)) {
      throw importError(`${label}[${i}]: [${start}, ${end}) is not sector aligned`, { area: i });
    }
    if (end > capacityBytes) throw importError(`${label}[${i}]: [${start}, ${end}) extends past capacity ${capacityBytes}`, { area: i });
    return { start, end };
  });
  return fromRanges(ranges);
}

export async function detectImageFormat(file: string): Promise<ImageFormat> {
  const fh = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(32);
    const { bytesRead } = await fh.read(head, 0, 32, 0);
    const h = head.subarray(0, bytesRead);
    if (h.subarray(0, 4).toString('latin1') === 'KDMV' || h.toString('latin1').startsWith('# Disk DescriptorFile')) return 'vmdk';
    if (h.subarray(0, 4).equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]))) return 'qcow2';
    return 'raw';
  } finally {
    await fh.close();
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${stderr.trim()}`))));
  });
}

/** A raw view of the image: the file itself, or a temporary conversion. */
async function rawImage(disk: ImportDiskInput, qemuImg: string): Promise<{ file: string; cleanup: () => Promise<void> }> {
  const format = !disk.format || disk.format === 'auto' ? await detectImageFormat(disk.imagePath) : disk.format;
  if (format === 'raw') return { file: disk.imagePath, cleanup: async () => undefined };
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmrestore-import-'));
  const file = path.join(dir, `disk-${disk.key}.raw`);
  const cleanup = (): Promise<void> => fsp.rm(dir, { recursive: true, force: true });
  try {
    await run(qemuImg, ['convert', '-f', format, '-O', 'raw', disk.imagePath, file]);
  } catch (err) {
    await cleanup();
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw importError(
      missing
        ? `disk ${disk.key}: ${disk.imagePath} is a ${format} image and ${qemuImg} was not found; install qemu-img (qemu-utils) or pass a raw image`
        : `disk ${disk.key}: converting ${disk.imagePath} (${format}) to raw failed: ${(err as Error).message}`,
      { diskKey: disk.key, path: disk.imagePath },
      err,
    );
  }
  return { file, cleanup };
}

/** Writes the non-zero runs of an image, in blocks of at most 1 MiB. */
async function writeNonZero(w: DiskWriter, file: string, size: number, granularity: number): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    const chunk = Buffer.alloc(MAX_BLOCK_BYTES);
    const zero = Buffer.alloc(granularity);
    const pending = Buffer.alloc(MAX_BLOCK_BYTES);
    let pendingStart = -1;
    let pendingLen = 0;
    const flush = async (): Promise<void> => {
      if (pendingLen > 0) await w.writeArea(pendingStart, Buffer.from(pending.subarray(0, pendingLen)));
      pendingStart = -1;
      pendingLen = 0;
    };
    for (let at = 0; at < size; at += MAX_BLOCK_BYTES) {
      const n = Math.min(MAX_BLOCK_BYTES, size - at);
      const { bytesRead } = await fh.read(chunk, 0, n, at);
      if (bytesRead !== n) throw importError(`${file}: short read at ${at}`, { path: file });
      for (let g = 0; g < n; g += granularity) {
        const gl = Math.min(granularity, n - g);
        const piece = chunk.subarray(g, g + gl);
        if (piece.equals(gl === granularity ? zero : zero.subarray(0, gl))) {
          await flush();
          continue;
        }
        if (pendingLen === 0) pendingStart = at + g;
        else if (pendingLen + gl > MAX_BLOCK_BYTES) {
          await flush();
          pendingStart = at + g;
        }
        piece.copy(pending, pendingLen);
        pendingLen += gl;
      }
    }
    await flush();
  } finally {
    await fh.close();
  }
}

/** Writes the given areas of an image, read in pieces of at most 1 MiB. */
async function writeAreas(w: DiskWriter, file: string, areas: IntervalList): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    for (let i = 0; i < areas.count; i++) {
      const end = areas.ends[i]!;
      for (let at = areas.starts[i]!; at < end; at += MAX_BLOCK_BYTES) {
        const n = Math.min(MAX_BLOCK_BYTES, end - at);
        const buf = Buffer.alloc(n);
        const { bytesRead } = await fh.read(buf, 0, n, at);
        if (bytesRead !== n) throw importError(`${file}: short read at ${at}`, { path: file });
        await w.writeArea(at, buf);
      }
    }
  } finally {
    await fh.close();
  }
}

export async function importFull(options: ImportFullOptions): Promise<PointManifest> {
  const granularity = options.granularity ?? 4096;
  if (!Number.isSafeInteger(granularity) || granularity <= 0 || granularity % SECTOR_SIZE !== 0 || MAX_BLOCK_BYTES % granularity !== 0) {
    throw importError(`granularity ${granularity} must be a multiple of ${SECTOR_SIZE} dividing 1 MiB`);
  }
  const writer = await PointWriter.create({ ...options, kind: 'full', parent: null });
  try {
    for (const disk of options.disks) {
      const raw = await rawImage(disk, options.qemuImg ?? 'qemu-img');
      try {
        const size = (await fsp.stat(raw.file)).size;
        if (size === 0) throw importError(`disk ${disk.key}: image ${disk.imagePath} is empty`, { diskKey: disk.key });
        const w = await writer.addDisk({ key: disk.key, capacityBytes: size, changeId: disk.changeId ?? null, metadata: disk.metadata });
        await writeNonZero(w, raw.file, size, granularity);
      } finally {
        await raw.cleanup();
      }
    }
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

export async function importIncremental(options: ImportIncrementalOptions): Promise<PointManifest> {
  const { vmId, pointId } = options;
  const parent = await new FileBackupRepository([path.resolve(options.root)]).getPoint(vmId, options.parent).catch((err: unknown) => {
    if (err instanceof BackupError && err.code === BackupErrorCode.POINT_NOT_FOUND) {
      throw new BackupError(BackupErrorCode.CHAIN_BROKEN, `vm ${vmId} point ${pointId}: parent point ${options.parent} not found`, {
        vmId,
        pointId,
        parent: options.parent,
      });
    }
    throw err;
  });
  const parentKeys = parent.disks.map((d) => d.key).sort((a, b) => a - b);
  const keys = options.disks.map((d) => d.key).sort((a, b) => a - b);
  if (parentKeys.join(',') !== keys.join(',')) {
    throw new BackupError(BackupErrorCode.DISK_SET_CHANGED, `vm ${vmId} point ${pointId}: disks [${keys}] differ from parent ${parent.pointId} [${parentKeys}]`, {
      vmId,
      pointId,
    });
  }
  const writer = await PointWriter.create({ ...options, kind: 'incremental', parent: options.parent });
  try {
    for (const disk of options.disks) {
      const capacityBytes = parent.disks.find((d) => d.key === disk.key)!.capacityBytes;
      const raw = await rawImage(disk, options.qemuImg ?? 'qemu-img');
      try {
        const size = (await fsp.stat(raw.file)).size;
        if (size !== capacityBytes) {
          throw new BackupError(
            BackupErrorCode.CAPACITY_CHANGED,
            `vm ${vmId} point ${pointId} disk ${disk.key}: image holds ${size} bytes, parent ${parent.pointId} has capacity ${capacityBytes}`,
            { vmId, pointId, diskKey: disk.key },
          );
        }
        const areas = parseChangedAreas(disk.changedAreas, capacityBytes, `disk ${disk.key} changed areas`);
        const w = await writer.addDisk({ key: disk.key, capacityBytes, changeId: disk.changeId ?? null, metadata: disk.metadata });
        await writeAreas(w, raw.file, areas);
      } finally {
        await raw.cleanup();
      }
    }
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
