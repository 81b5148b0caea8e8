/**
 * Writes restore points in the repository format. A point is built in a
 * hidden temporary directory next to its final place and renamed into place
 * on commit, so readers never see half a point.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { BackupError, BackupErrorCode } from './errors';
import {
  FORMAT_VERSION,
  INDEX_HEADER_SIZE,
  INDEX_RECORD_SIZE,
  MAX_BLOCK_BYTES,
  POINT_MANIFEST_FILE,
  SECTOR_SIZE,
  dataFileName,
  encodeIndexHeader,
  encodeIndexRecord,
  indexFileName,
  isSafeName,
  sectorCeil,
  type DiskManifest,
  type PointKind,
  type PointManifest,
} from './format';

export interface NewPointOptions {
  root: string;
  vmId: string;
  pointId: string;
  kind: PointKind;
  parent: string | null;
  config: Record<string, unknown>;
  createdAt?: string;
}

export interface NewDiskOptions {
  key: number;
  capacityBytes: number;
  changeId: string | null;
  metadata: Record<string, string>;
}

const RECORD_BATCH = 4096;

export class DiskWriter {
  private prevEnd = 0;
  private dataBytes = 0;
  private blocks = 0;
  private paddedTailBytes = 0;
  private readonly batch = Buffer.alloc(RECORD_BATCH * INDEX_RECORD_SIZE);
  private batched = 0;
  private closed = false;

  constructor(
    private readonly vmId: string,
    private readonly pointId: string,
    readonly options: NewDiskOptions,
    private readonly idx: fsp.FileHandle,
    private readonly dat: fsp.FileHandle,
  ) {}

  private fail(message: string, diskOffset: number): BackupError {
    return new BackupError(BackupErrorCode.FORMAT_INVALID, `vm ${this.vmId} point ${this.pointId} disk ${this.options.key}: ${message}`, {
      vmId: this.vmId,
      pointId: this.pointId,
      diskKey: this.options.key,
      diskOffset,
    });
  }

  /**
   * Stores one changed area (its current data), split into blocks of at most
   * 1 MiB. Areas must come in increasing disk order, sector aligned; only an
   * area ending exactly at an unaligned capacity may have a partial last
   * sector, which is padded with zeros.
   */
  async writeArea(diskOffset: number, data: Buffer): Promise<void> {
    const cap = this.options.capacityBytes;
    if (!Number.isSafeInteger(diskOffset) || diskOffset < 0 || diskOffset % SECTOR_SIZE !== 0) throw this.fail(`area offset ${diskOffset} is not sector aligned`, diskOffset);
    if (diskOffset < this.prevEnd) throw this.fail(`area at ${diskOffset} overlaps or precedes the previous area ending at ${this.prevEnd}`, diskOffset);
    const end = diskOffset + data.length;
    if (end > cap) throw this.fail(`area [${diskOffset}, ${end}) extends past capacity ${cap}`, diskOffset);
    if (data.length % SECTOR_SIZE !== 0) {
      if (end !== cap) throw this.fail(`area length ${data.length} is not a multiple of ${SECTOR_SIZE}`, diskOffset);
      this.paddedTailBytes = sectorCeil(cap) - cap;
      data = Buffer.concat([data, Buffer.alloc(this.paddedTailBytes)]);
    }
    for (let at = 0; at < data.length; at += MAX_BLOCK_BYTES) {
      await this.writeBlock(diskOffset + at, data.subarray(at, Math.min(data.length, at + MAX_BLOCK_BYTES)));
    }
    this.prevEnd = diskOffset + data.length;
  }

  private async writeBlock(diskOffset: number, block: Buffer): Promise<void> {
    const sha256 = createHash('sha256').update(block).digest();
    encodeIndexRecord({ diskOffset, length: block.length, dataOffset: this.dataBytes, sha256 }, this.batch, this.batched * INDEX_RECORD_SIZE);
    await this.dat.write(block, 0, block.length, this.dataBytes);
    this.dataBytes += block.length;
    this.blocks++;
    this.batched++;
    if (this.batched === RECORD_BATCH) await this.flushRecords();
  }

  private async flushRecords(): Promise<void> {
    const first = this.blocks - this.batched;
    await this.idx.write(this.batch, 0, this.batched * INDEX_RECORD_SIZE, INDEX_HEADER_SIZE + first * INDEX_RECORD_SIZE);
    this.batched = 0;
  }

  /** Flushes, writes the header, syncs and closes both files. */
  async close(): Promise<DiskManifest> {
    if (!this.closed) {
      this.closed = true;
      await this.flushRecords();
      await this.idx.write(encodeIndexHeader(this.blocks), 0, INDEX_HEADER_SIZE, 0);
      await Promise.all([this.idx.sync(), this.dat.sync()]);
      await Promise.all([this.idx.close(), this.dat.close()]);
    }
    return {
      key: this.options.key,
      capacityBytes: this.options.capacityBytes,
      changeId: this.options.changeId,
      metadata: this.options.metadata,
      indexFile: indexFileName(this.options.key),
      dataFile: dataFileName(this.options.key),
      blocks: this.blocks,
      dataBytes: this.dataBytes,
      paddedTailBytes: this.paddedTailBytes,
    };
  }

  /** Closes the files without caring about their content (abort path). */
  async discard(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.idx.close(), this.dat.close()]);
  }
}

export class PointWriter {
  private readonly disks: DiskWriter[] = [];
  private done = false;

  private constructor(
    readonly options: NewPointOptions,
    private readonly tmpDir: string,
    private readonly finalDir: string,
  ) {}

  static async create(options: NewPointOptions): Promise<PointWriter> {
    const { root, vmId, pointId } = options;
    for (const [what, name] of [
      ['vm id', vmId],
      ['point id', pointId],
    ] as const) {
      if (!isSafeName(name) || name.startsWith('.')) {
        throw new BackupError(BackupErrorCode.PATH_ESCAPE, `${what} ${JSON.stringify(name)} is not a safe name ([A-Za-z0-9._-], not starting with ".")`, {
          vmId,
          pointId,
        });
      }
    }
    if (options.kind === 'incremental' && !isSafeName(options.parent)) {
      throw new BackupError(BackupErrorCode.FORMAT_INVALID, `vm ${vmId} point ${pointId}: an incremental needs a parent point id`, { vmId, pointId });
    }
    const vmDir = path.join(path.resolve(root), vmId);
    const finalDir = path.join(vmDir, pointId);
    if (await exists(finalDir)) throw new BackupError(BackupErrorCode.POINT_EXISTS, `vm ${vmId} point ${pointId} already exists`, { vmId, pointId, path: finalDir });
    await fsp.mkdir(vmDir, { recursive: true });
    const tmpDir = path.join(vmDir, `.tmp-${pointId}-${randomBytes(4).toString('hex')}`);
    await fsp.mkdir(tmpDir);
    return new PointWriter(options, tmpDir, finalDir);
  }

  async addDisk(disk: NewDiskOptions): Promise<DiskWriter> {
    if (!Number.isSafeInteger(disk.key) || this.disks.some((d) => d.options.key === disk.key)) {
      throw new BackupError(BackupErrorCode.FORMAT_INVALID, `disk key ${disk.key} is not an integer or appears twice`, { diskKey: disk.key });
    }
    if (!Number.isSafeInteger(disk.capacityBytes) || disk.capacityBytes <= 0) {
      throw new BackupError(BackupErrorCode.FORMAT_INVALID, `disk ${disk.key}: capacity ${disk.capacityBytes} is not a positive integer`, { diskKey: disk.key });
    }
    const idx = await fsp.open(path.join(this.tmpDir, indexFileName(disk.key)), 'w');
    const dat = await fsp.open(path.join(this.tmpDir, dataFileName(disk.key)), 'w').catch(async (err: unknown) => {
      await idx.close();
      throw err;
    });
    await idx.write(encodeIndexHeader(0), 0, INDEX_HEADER_SIZE, 0);
    const w = new DiskWriter(this.options.vmId, this.options.pointId, disk, idx, dat);
    this.disks.push(w);
    return w;
  }

  /** Closes the disks, writes point.json and moves the point into place. */
  async commit(): Promise<PointManifest> {
    if (this.done) throw new Error('PointWriter already committed or aborted');
    try {
      const disks: DiskManifest[] = [];
      for (const d of this.disks) disks.push(await d.close());
      const o = this.options;
      const manifest: PointManifest = {
        format: FORMAT_VERSION,
        vmId: o.vmId,
        pointId: o.pointId,
        kind: o.kind,
        parent: o.kind === 'full' ? null : o.parent,
        createdAt: o.createdAt ?? new Date().toISOString(),
        config: o.config,
        disks: disks.sort((a, b) => a.key - b.key),
      };
      await fsp.writeFile(path.join(this.tmpDir, POINT_MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
      if (await exists(this.finalDir)) {
        throw new BackupError(BackupErrorCode.POINT_EXISTS, `vm ${o.vmId} point ${o.pointId} already exists`, { vmId: o.vmId, pointId: o.pointId });
      }
      await fsp.rename(this.tmpDir, this.finalDir);
      this.done = true;
      return manifest;
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await Promise.all(this.disks.map((d) => d.discard()));
    await fsp.rm(this.tmpDir, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}
