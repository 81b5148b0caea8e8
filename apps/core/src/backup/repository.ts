/**
 * Read access to backup repositories on a file system.
 *
 * Every reference that comes from an API caller (vm id, point id, disk key)
 * is checked twice: syntactically (safe names only, no `..`, no separators,
 * no NUL) and after resolution (realpath must stay inside the realpath of a
 * configured root, so a symlink cannot lead out).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { BackupError, BackupErrorCode, describeLocation, type BackupErrorDetails } from './errors';
import {
  INDEX_HEADER_SIZE,
  INDEX_RECORD_SIZE,
  POINT_MANIFEST_FILE,
  decodeIndexHeader,
  decodeRecordsInto,
  emptyRecordTable,
  isSafeName,
  parsePointManifest,
  type DiskManifest,
  type IndexRecord,
  type PointKind,
  type PointManifest,
  type RecordTable,
} from './format';

export interface PointSummary {
  pointId: string;
  kind: PointKind | null;
  parent: string | null;
  createdAt: string | null;
  /** Set when point.json cannot be read; the point is listed so the problem is visible. */
  problem?: { code: string; message: string };
}

export interface BlockRecord extends IndexRecord {
  /** Position of the record in the disk index (0-based). */
  block: number;
}

export interface BackupRepository {
  listVms(): Promise<string[]>;
  listPoints(vmId: string): Promise<PointSummary[]>;
  getPoint(vmId: string, pointId: string): Promise<PointManifest>;
  /** Streams the block records of a disk, in file order, without loading the index. */
  openDiskIndex(vmId: string, pointId: string, diskKey: number): AsyncIterable<BlockRecord>;
  /** Loads the whole index column-wise (compact) for the planner. */
  readDiskIndex(vmId: string, pointId: string, diskKey: number): Promise<RecordTable>;
  /** Absolute, confined path of the disk's data file. */
  dataPath(vmId: string, pointId: string, diskKey: number): Promise<string>;
}

const RECORDS_PER_READ = 4096;

const BACKUP_READ_TIMEOUT = BackupErrorCode.READ_TIMEOUT;
const BACKUP_UNREADABLE = BackupErrorCode.UNREADABLE;
export const DEFAULT_READ_TIMEOUT_MS = 60_000;

export interface FileBackupRepositoryOptions {
  /** Longest wait for one file-system call on the repository (ms). Default 60 s. */
  readTimeoutMs?: number;
}

/**
 * Bounds one file-system call. A call that hangs in the kernel cannot be
 * interrupted: its promise is abandoned (a file handle it opens later is
 * closed) and the caller gets BACKUP_READ_TIMEOUT.
 */
export function withReadTimeout<T>(ms: number, what: string, details: BackupErrorDetails, op: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      const where = describeLocation(details);
      reject(new BackupError(BACKUP_READ_TIMEOUT, `${where ? `${where}: ` : ''}${what} did not answer within ${ms} ms (VMRESTORE_BACKUP_READ_TIMEOUT_MS)`, details));
    }, ms);
  });
  op.then(
    (v) => {
      if (timedOut && v && typeof (v as { close?: unknown }).close === 'function') (v as unknown as fsp.FileHandle).close().catch(() => undefined);
    },
    () => undefined,
  );
  return Promise.race([op, late]).finally(() => clearTimeout(timer));
}

function isNotFound(err: unknown): boolean {
  const c = (err as NodeJS.ErrnoException | null)?.code;
  return c === 'ENOENT' || c === 'ENOTDIR';
}

export function assertSafeName(kind: 'vm id' | 'point id', name: unknown, details: BackupErrorDetails = {}): asserts name is string {
  if (!isSafeName(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.replace(/\0/g, '\\0')) : typeof name;
    throw new BackupError(BackupErrorCode.PATH_ESCAPE, `${kind} ${shown} is not a safe name ([A-Za-z0-9._-], not "." or "..")`, details);
  }
}

function assertDiskKey(diskKey: unknown, details: BackupErrorDetails): asserts diskKey is number {
  if (typeof diskKey !== 'number' || !Number.isSafeInteger(diskKey)) {
    throw new BackupError(BackupErrorCode.PATH_ESCAPE, `disk key ${String(diskKey)} is not an integer`, details);
  }
}

function isInside(parent: string, child: string): boolean {
  return child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
}

export class FileBackupRepository implements BackupRepository {
  private readonly roots: string[];
  private readonly readTimeoutMs: number;

  constructor(roots: string[], opts: FileBackupRepositoryOptions = {}) {
    this.readTimeoutMs = opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    if (roots.length === 0) throw new BackupError(BackupErrorCode.FORMAT_INVALID, 'FileBackupRepository needs at least one root');
    for (const r of roots) {
      if (!path.isAbsolute(r) || r.includes('\0')) {
        throw new BackupError(BackupErrorCode.PATH_ESCAPE, `backup root ${JSON.stringify(r)} must be an absolute path`, { path: r });
      }
    }
    this.roots = roots.map((r) => path.resolve(r));
  }

  /** One file-system call on the repository, under the read timeout. */
  private io<T>(what: string, details: BackupErrorDetails, op: Promise<T>): Promise<T> {
    return withReadTimeout(this.readTimeoutMs, what, { ...details }, op);
  }

  /** Realpath of each root, null for a root that does not exist (yet). Not cached: roots may appear later. */
  private resolvedRoots(): Promise<Array<string | null>> {
    return Promise.all(this.roots.map((r) => this.io(`realpath ${r}`, { path: r }, fsp.realpath(r)).catch((err: unknown) => (isNotFound(err) ? null : Promise.reject(err)))));
  }

  /** Realpath of `rel` under `root` if it exists and stays inside; null if absent; throws PATH_ESCAPE. */
  private async confined(realRoot: string, rel: string[], details: BackupErrorDetails): Promise<string | null> {
    const candidate = path.join(realRoot, ...rel);
    let real: string;
    try {
      real = await this.io(`realpath ${candidate}`, { ...details, path: candidate }, fsp.realpath(candidate));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    if (!isInside(realRoot, real)) {
      throw new BackupError(BackupErrorCode.PATH_ESCAPE, `${describeLocation(details)}: ${rel.join('/')} resolves outside the backup root`, {
        ...details,
        path: candidate,
      });
    }
    return real;
  }

  async listVms(): Promise<string[]> {
    const out = new Set<string>();
    for (const root of await this.resolvedRoots()) {
      if (root === null) continue;
      for (const e of await this.io(`readdir ${root}`, { path: root }, fsp.readdir(root, { withFileTypes: true }))) {
        if (!isSafeName(e.name) || !(e.isDirectory() || e.isSymbolicLink())) continue;
        // A symlinked VM directory is listed only if it stays inside the root.
        const dir = await this.confined(root, [e.name], { vmId: e.name }).catch(() => null);
        if (dir !== null) out.add(e.name);
      }
    }
    return [...out].sort();
  }

  async listPoints(vmId: string): Promise<PointSummary[]> {
    assertSafeName('vm id', vmId);
    const ids = new Set<string>();
    let vmFound = false;
    for (const root of await this.resolvedRoots()) {
      if (root === null) continue;
      const dir = await this.confined(root, [vmId], { vmId });
      if (dir === null) continue;
      vmFound = true;
      for (const e of await this.io(`readdir ${dir}`, { vmId, path: dir }, fsp.readdir(dir, { withFileTypes: true }))) {
        if (isSafeName(e.name) && !e.name.startsWith('.') && (e.isDirectory() || e.isSymbolicLink())) ids.add(e.name);
      }
    }
    if (!vmFound) throw new BackupError(BackupErrorCode.POINT_NOT_FOUND, `vm ${vmId} has no backups in any configured root`, { vmId });
    const out: PointSummary[] = [];
    for (const pointId of ids) {
      try {
        const p = await this.getPoint(vmId, pointId);
        out.push({ pointId, kind: p.kind, parent: p.parent, createdAt: p.createdAt });
      } catch (err) {
        if (err instanceof BackupError && err.code === BackupErrorCode.POINT_NOT_FOUND) continue; // a directory without point.json (e.g. in progress)
        const code = err instanceof BackupError ? err.code : 'BACKUP_READ_FAILED';
        out.push({ pointId, kind: null, parent: null, createdAt: null, problem: { code, message: (err as Error).message } });
      }
    }
    return out.sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || a.pointId.localeCompare(b.pointId));
  }

  /** Realpath of the point directory (the first root that has it wins). */
  private async pointDir(vmId: string, pointId: string): Promise<string> {
    assertSafeName('vm id', vmId, { vmId, pointId });
    assertSafeName('point id', pointId, { vmId, pointId });
    for (const root of await this.resolvedRoots()) {
      if (root === null) continue;
      const dir = await this.confined(root, [vmId, pointId], { vmId, pointId });
      if (dir === null) continue;
      const manifest = await this.confined(root, [vmId, pointId, POINT_MANIFEST_FILE], { vmId, pointId });
      if (manifest !== null) return dir;
    }
    throw new BackupError(BackupErrorCode.POINT_NOT_FOUND, `vm ${vmId} point ${pointId} not found`, { vmId, pointId });
  }

  private async rootOf(real: string): Promise<string> {
    for (const root of await this.resolvedRoots()) if (root !== null && isInside(root, real)) return root;
    /* istanbul ignore next -- pointDir only returns confined paths */
    throw new BackupError(BackupErrorCode.PATH_ESCAPE, `${real} is outside every backup root`, { path: real });
  }

  /** Confined realpath of a file of the point: inside the same root as the point. */
  private async pointFile(vmId: string, pointId: string, file: string, details: BackupErrorDetails): Promise<string> {
    const dir = await this.pointDir(vmId, pointId);
    const root = await this.rootOf(dir);
    const rel = path.relative(root, path.join(dir, file)).split(path.sep);
    const real = await this.confined(root, rel, details);
    if (real === null) {
      throw new BackupError(BackupErrorCode.DATA_TRUNCATED, `${describeLocation(details)}: file ${file} is missing`, {
        ...details,
        path: path.join(dir, file),
      });
    }
    return real;
  }

  async getPoint(vmId: string, pointId: string): Promise<PointManifest> {
    const dir = await this.pointDir(vmId, pointId);
    const file = path.join(dir, POINT_MANIFEST_FILE);
    const manifestFile = await this.pointFile(vmId, pointId, POINT_MANIFEST_FILE, { vmId, pointId });
    const text = await this.io(`reading ${POINT_MANIFEST_FILE}`, { vmId, pointId, path: manifestFile }, fsp.readFile(manifestFile, 'utf8'));
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new BackupError(BackupErrorCode.FORMAT_INVALID, `vm ${vmId} point ${pointId}: point.json is not valid JSON`, { vmId, pointId, path: file }, { cause: err });
    }
    return parsePointManifest(raw, { vmId, pointId, path: file });
  }

  private async disk(vmId: string, pointId: string, diskKey: number): Promise<DiskManifest> {
    assertDiskKey(diskKey, { vmId, pointId });
    const p = await this.getPoint(vmId, pointId);
    const d = p.disks.find((x) => x.key === diskKey);
    if (!d) throw new BackupError(BackupErrorCode.DISK_NOT_FOUND, `vm ${vmId} point ${pointId} has no disk ${diskKey}`, { vmId, pointId, diskKey });
    return d;
  }

  async dataPath(vmId: string, pointId: string, diskKey: number): Promise<string> {
    const d = await this.disk(vmId, pointId, diskKey);
    const file = await this.pointFile(vmId, pointId, d.dataFile, { vmId, pointId, diskKey });
    // Opened and closed under the read timeout: a data file that cannot be
    // read, or a mount that hangs, is found here with a BACKUP_* code, before
    // the native copy (which reads it on its own threads) gets to it.
    const where = { vmId, pointId, diskKey, path: file };
    try {
      await (await this.io('opening the data file', where, fsp.open(file, 'r'))).close();
    } catch (err) {
      if (err instanceof BackupError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw new BackupError(BACKUP_UNREADABLE, `${describeLocation(where)}: data file ${d.dataFile} cannot be read (${code})`, where, { cause: err });
    }
    return file;
  }

  async indexPath(vmId: string, pointId: string, diskKey: number): Promise<string> {
    const d = await this.disk(vmId, pointId, diskKey);
    return this.pointFile(vmId, pointId, d.indexFile, { vmId, pointId, diskKey });
  }

  /** Opens the index, checks header and size against the manifest; returns the record count. */
  private async openIndex(vmId: string, pointId: string, diskKey: number): Promise<{ fh: fsp.FileHandle; count: number; read: (buf: Buffer, len: number, pos: number) => Promise<unknown> }> {
    const d = await this.disk(vmId, pointId, diskKey);
    const file = await this.pointFile(vmId, pointId, d.indexFile, { vmId, pointId, diskKey });
    const where = { vmId, pointId, diskKey, path: file };
    const fh = await this.io('opening the index', where, fsp.open(file, 'r'));
    try {
      const head = Buffer.alloc(INDEX_HEADER_SIZE);
      const { bytesRead } = await this.io('reading the index', where, fh.read(head, 0, INDEX_HEADER_SIZE, 0));
      const header = decodeIndexHeader(head.subarray(0, bytesRead), where);
      const size = (await this.io('reading the index', where, fh.stat())).size;
      const expected = INDEX_HEADER_SIZE + header.recordCount * INDEX_RECORD_SIZE;
      if (size !== expected || header.recordCount !== d.blocks) {
        throw new BackupError(
          BackupErrorCode.FORMAT_INVALID,
          `vm ${vmId} point ${pointId} disk ${diskKey}: index holds ${size} bytes / ${header.recordCount} records, expected ${expected} bytes / ${d.blocks} records (point.json)`,
          where,
        );
      }
      return { fh, count: header.recordCount, read: (buf, len, pos) => this.io('reading the index', where, fh.read(buf, 0, len, pos)) };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async *openDiskIndex(vmId: string, pointId: string, diskKey: number): AsyncGenerator<BlockRecord> {
    const { fh, count, read } = await this.openIndex(vmId, pointId, diskKey);
    try {
      const buf = Buffer.alloc(RECORDS_PER_READ * INDEX_RECORD_SIZE);
      const table = emptyRecordTable(RECORDS_PER_READ);
      for (let first = 0; first < count; first += RECORDS_PER_READ) {
        const n = Math.min(RECORDS_PER_READ, count - first);
        await read(buf, n * INDEX_RECORD_SIZE, INDEX_HEADER_SIZE + first * INDEX_RECORD_SIZE);
        decodeRecordsInto(table, 0, buf, 0, n);
        for (let i = 0; i < n; i++) {
          yield {
            block: first + i,
            diskOffset: table.diskOffset[i]!,
            length: table.length[i]!,
            dataOffset: table.dataOffset[i]!,
            sha256: Buffer.from(table.sha256.subarray(i * 32, i * 32 + 32)),
          };
        }
      }
    } finally {
      await fh.close();
    }
  }

  async readDiskIndex(vmId: string, pointId: string, diskKey: number): Promise<RecordTable> {
    const { fh, count, read } = await this.openIndex(vmId, pointId, diskKey);
    try {
      const table = emptyRecordTable(count);
      const buf = Buffer.alloc(Math.min(count, RECORDS_PER_READ * 16) * INDEX_RECORD_SIZE);
      const per = buf.length / INDEX_RECORD_SIZE;
      for (let first = 0; first < count; first += per) {
        const n = Math.min(per, count - first);
        await read(buf, n * INDEX_RECORD_SIZE, INDEX_HEADER_SIZE + first * INDEX_RECORD_SIZE);
        decodeRecordsInto(table, first, buf, 0, n);
      }
      table.count = count;
      return table;
    } finally {
      await fh.close();
    }
  }
}
