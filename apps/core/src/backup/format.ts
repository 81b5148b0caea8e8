/**
 * The on-disk backup repository format, version 1 (see docs/backup-format.md).
 *
 *   <root>/<vmId>/<pointId>/point.json       manifest (this file's PointManifest)
 *   <root>/<vmId>/<pointId>/disk-<key>.idx   binary block index, fixed-size records
 *   <root>/<vmId>/<pointId>/disk-<key>.dat   block payloads, concatenated
 *
 * Pure: parsing and encoding only, no I/O.
 */
import { BackupError, BackupErrorCode, type BackupErrorDetails } from './errors';

export const FORMAT_VERSION = 1;
export const SECTOR_SIZE = 512;
/** Largest payload of one block record (1 MiB). Longer areas are split. */
export const MAX_BLOCK_BYTES = 1024 * 1024;
export const POINT_MANIFEST_FILE = 'point.json';

export const INDEX_MAGIC = 'VMRBIDX1';
export const INDEX_HEADER_SIZE = 64;
/** diskOffset u64 | length u32 | flags u32 | dataOffset u64 | sha256 [32] */
export const INDEX_RECORD_SIZE = 56;

/** Names usable as a path segment: vm ids, point ids. */
const SAFE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function isSafeName(name: unknown): name is string {
  return typeof name === 'string' && SAFE_NAME.test(name) && name !== '.' && name !== '..';
}

export function indexFileName(diskKey: number): string {
  return `disk-${diskKey}.idx`;
}
export function dataFileName(diskKey: number): string {
  return `disk-${diskKey}.dat`;
}

export type PointKind = 'full' | 'incremental';

/** One changed area as QueryChangedDiskAreas reports it (DiskChangeExtent). */
export interface ChangedArea {
  start: number;
  length: number;
}

export interface DiskManifest {
  /** VirtualDevice.key of the VirtualDisk in the saved config. */
  key: number;
  capacityBytes: number;
  /** CBT changeId of the disk at backup time ("*" never appears here). */
  changeId: string | null;
  /** VixDiskLib_ReadMetadata output, key → value (ddb.adapterType, ddb.geometry.*, ddb.uuid, ...). */
  metadata: Record<string, string>;
  /** File names relative to the point directory. */
  indexFile: string;
  dataFile: string;
  /** Number of block records in the index. */
  blocks: number;
  /** Sum of the block lengths = bytes in the data file. */
  dataBytes: number;
  /**
   * Bytes of zero padding after the end of the disk: > 0 only when the
   * capacity is not a multiple of 512 and the last sector was backed up.
   */
  paddedTailBytes: number;
}

export interface PointManifest {
  format: number;
  vmId: string;
  pointId: string;
  kind: PointKind;
  /** Point id of the parent in the same VM; null for a full. */
  parent: string | null;
  /** ISO 8601 time the backup was taken. */
  createdAt: string;
  /** VirtualMachineConfigInfo as captured (JSON), device list, firmware, extraConfig and all. */
  config: Record<string, unknown>;
  disks: DiskManifest[];
}

/** One block of one disk in one point. */
export interface IndexRecord {
  diskOffset: number;
  length: number;
  dataOffset: number;
  /** 32 bytes. */
  sha256: Buffer;
}

function invalid(message: string, where: BackupErrorDetails): BackupError {
  return new BackupError(BackupErrorCode.FORMAT_INVALID, message, where);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates a parsed point.json. `expected` names the directory it was read
 * from: the manifest must agree with it, so a copied directory cannot pose as
 * another point.
 */
export function parsePointManifest(raw: unknown, expected: { vmId: string; pointId: string; path?: string }): PointManifest {
  const where = { vmId: expected.vmId, pointId: expected.pointId, path: expected.path };
  const label = `vm ${expected.vmId} point ${expected.pointId}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid(`${label}: point.json is not an object`, where);
  const o = raw as Record<string, unknown>;
  if (o['format'] !== FORMAT_VERSION) {
    throw new BackupError(
      BackupErrorCode.FORMAT_UNSUPPORTED,
      `${label}: point.json format ${JSON.stringify(o['format'])} is not supported (expected ${FORMAT_VERSION})`,
      where,
    );
  }
  if (o['vmId'] !== expected.vmId) throw invalid(`${label}: point.json vmId ${JSON.stringify(o['vmId'])} does not match its directory`, where);
  if (o['pointId'] !== expected.pointId) throw invalid(`${label}: point.json pointId ${JSON.stringify(o['pointId'])} does not match its directory`, where);
  const kind = o['kind'];
  if (kind !== 'full' && kind !== 'incremental') throw invalid(`${label}: kind must be "full" or "incremental"`, where);
  const parent = o['parent'] ?? null;
  if (kind === 'full' && parent !== null) throw invalid(`${label}: a full point has no parent`, where);
  if (kind === 'incremental' && !isSafeName(parent)) throw invalid(`${label}: an incremental needs a parent point id ([A-Za-z0-9._-])`, where);
  if (typeof o['createdAt'] !== 'string') throw invalid(`${label}: createdAt must be an ISO 8601 string`, where);
  const config = o['config'];
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw invalid(`${label}: config must be an object`, where);
  const disksRaw = o['disks'];
  if (!Array.isArray(disksRaw) || disksRaw.length === 0) throw invalid(`${label}: disks must be a non-empty array`, where);
  const seen = new Set<number>();
  const disks = disksRaw.map((d: unknown, i): DiskManifest => {
    if (typeof d !== 'object' || d === null) throw invalid(`${label}: disks[${i}] is not an object`, where);
    const dd = d as Record<string, unknown>;
    const key = dd['key'];
    if (typeof key !== 'number' || !Number.isSafeInteger(key)) throw invalid(`${label}: disks[${i}].key must be an integer`, where);
    if (seen.has(key)) throw invalid(`${label}: disk key ${key} appears twice`, where);
    seen.add(key);
    const dl = `${label} disk ${key}`;
    for (const f of ['capacityBytes', 'blocks', 'dataBytes', 'paddedTailBytes'] as const) {
      if (!isNonNegInt(dd[f])) throw invalid(`${dl}: ${f} must be a non-negative integer`, { ...where, diskKey: key });
    }
    const changeId = dd['changeId'] ?? null;
    if (changeId !== null && typeof changeId !== 'string') throw invalid(`${dl}: changeId must be a string or null`, where);
    const metadata = dd['metadata'] ?? {};
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw invalid(`${dl}: metadata must be an object`, where);
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw invalid(`${dl}: metadata ${k} must be a string`, where);
    }
    // File names are repository content, but still never allowed to leave the point directory.
    const indexFile = dd['indexFile'];
    const dataFile = dd['dataFile'];
    if (!isSafeName(indexFile) || !isSafeName(dataFile)) {
      throw new BackupError(BackupErrorCode.PATH_ESCAPE, `${dl}: indexFile/dataFile must be plain file names`, { ...where, diskKey: key });
    }
    return {
      key,
      capacityBytes: dd['capacityBytes'] as number,
      changeId,
      metadata: metadata as Record<string, string>,
      indexFile,
      dataFile,
      blocks: dd['blocks'] as number,
      dataBytes: dd['dataBytes'] as number,
      paddedTailBytes: dd['paddedTailBytes'] as number,
    };
  });
  return {
    format: FORMAT_VERSION,
    vmId: expected.vmId,
    pointId: expected.pointId,
    kind,
    parent: parent as string | null,
    createdAt: o['createdAt'] as string,
    config: config as Record<string, unknown>,
    disks,
  };
}

// ---------------------------------------------------------------- index codec

export interface IndexHeader {
  version: number;
  recordSize: number;
  recordCount: number;
}

export function encodeIndexHeader(recordCount: number): Buffer {
  const b = Buffer.alloc(INDEX_HEADER_SIZE);
  b.write(INDEX_MAGIC, 0, 'latin1');
  b.writeUInt32LE(FORMAT_VERSION, 8);
  b.writeUInt32LE(INDEX_RECORD_SIZE, 12);
  writeU64(b, 16, recordCount);
  b.writeUInt32LE(MAX_BLOCK_BYTES, 24);
  return b;
}

/** Throws FORMAT_UNSUPPORTED on a bad magic, version or record size. */
export function decodeIndexHeader(b: Buffer, where: { vmId?: string; pointId?: string; diskKey?: number; path?: string }): IndexHeader {
  const label = `vm ${where.vmId} point ${where.pointId} disk ${where.diskKey}`;
  if (b.length < INDEX_HEADER_SIZE || b.toString('latin1', 0, 8) !== INDEX_MAGIC) {
    throw new BackupError(BackupErrorCode.FORMAT_UNSUPPORTED, `${label}: index file has no ${INDEX_MAGIC} header`, where);
  }
  const version = b.readUInt32LE(8);
  const recordSize = b.readUInt32LE(12);
  if (version !== FORMAT_VERSION || recordSize !== INDEX_RECORD_SIZE) {
    throw new BackupError(
      BackupErrorCode.FORMAT_UNSUPPORTED,
      `${label}: index version ${version} record size ${recordSize} not supported (expected ${FORMAT_VERSION}/${INDEX_RECORD_SIZE})`,
      where,
    );
  }
  return { version, recordSize, recordCount: readU64(b, 16) };
}

export function encodeIndexRecord(r: IndexRecord, out: Buffer = Buffer.alloc(INDEX_RECORD_SIZE), at = 0): Buffer {
  writeU64(out, at, r.diskOffset);
  out.writeUInt32LE(r.length, at + 8);
  out.writeUInt32LE(0, at + 12);
  writeU64(out, at + 16, r.dataOffset);
  r.sha256.copy(out, at + 24, 0, 32);
  return out;
}

export function readU64(b: Buffer, at: number): number {
  const lo = b.readUInt32LE(at);
  const hi = b.readUInt32LE(at + 4);
  // Offsets above 2^53 cannot be planned in JS numbers; they are never valid disk offsets here.
  if (hi >= 0x200000) return Number.NaN;
  return hi * 0x100000000 + lo;
}

export function writeU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32LE(v % 0x100000000, at);
  b.writeUInt32LE(Math.floor(v / 0x100000000), at + 4);
}

// --------------------------------------------------------------- record table

/**
 * The block records of one disk in one point, column-wise: a million records
 * cost 56 MB here instead of a million objects.
 */
export interface RecordTable {
  readonly count: number;
  readonly diskOffset: Float64Array;
  readonly length: Float64Array;
  readonly dataOffset: Float64Array;
  /** 32 bytes per record. */
  readonly sha256: Uint8Array;
}

export function emptyRecordTable(capacity: number): RecordTable & { count: number } {
  return {
    count: 0,
    diskOffset: new Float64Array(capacity),
    length: new Float64Array(capacity),
    dataOffset: new Float64Array(capacity),
    sha256: new Uint8Array(capacity * 32),
  };
}

/** Decodes `n` records from `b` starting at byte `at` into the table at row `row`. */
export function decodeRecordsInto(t: RecordTable, row: number, b: Buffer, at: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const p = at + i * INDEX_RECORD_SIZE;
    t.diskOffset[row + i] = readU64(b, p);
    t.length[row + i] = b.readUInt32LE(p + 8);
    t.dataOffset[row + i] = readU64(b, p + 16);
    t.sha256.set(b.subarray(p + 24, p + 56), (row + i) * 32);
  }
}

export function recordTableFrom(records: readonly IndexRecord[]): RecordTable {
  const t = emptyRecordTable(records.length);
  records.forEach((r, i) => {
    t.diskOffset[i] = r.diskOffset;
    t.length[i] = r.length;
    t.dataOffset[i] = r.dataOffset;
    t.sha256.set(r.sha256.subarray(0, 32), i * 32);
  });
  t.count = records.length;
  return t;
}

export function shaHex(t: RecordTable, i: number): string {
  return Buffer.from(t.sha256.buffer, t.sha256.byteOffset + i * 32, 32).toString('hex');
}

/** Rounds up to a whole sector. */
export function sectorCeil(n: number): number {
  return Math.ceil(n / SECTOR_SIZE) * SECTOR_SIZE;
}

/**
 * Checks the records of one disk of one point: sector aligned, 1..MAX_BLOCK_BYTES
 * long, sorted by disk offset, not overlapping, inside the (sector-rounded)
 * capacity. Returns the first problem, or null. Pure.
 */
export function findRecordProblem(t: RecordTable, capacityBytes: number): { block: number; diskOffset: number; problem: string } | null {
  const end = sectorCeil(capacityBytes);
  let prevEnd = 0;
  for (let i = 0; i < t.count; i++) {
    const off = t.diskOffset[i]!;
    const len = t.length[i]!;
    const dOff = t.dataOffset[i]!;
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(dOff)) return { block: i, diskOffset: off, problem: 'offset beyond 2^53' };
    if (off % SECTOR_SIZE !== 0 || len % SECTOR_SIZE !== 0) return { block: i, diskOffset: off, problem: 'not sector aligned' };
    if (len <= 0 || len > MAX_BLOCK_BYTES) return { block: i, diskOffset: off, problem: `length ${len} not in 1..${MAX_BLOCK_BYTES}` };
    if (off < prevEnd) return { block: i, diskOffset: off, problem: 'records not sorted or overlapping' };
    if (off + len > end) return { block: i, diskOffset: off, problem: `extends past capacity ${capacityBytes}` };
    prevEnd = off + len;
  }
  return null;
}
