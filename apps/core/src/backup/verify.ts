/**
 * Chain verification: everything a restore relies on, checked before any
 * byte reaches a disk. Structure (parents, VM, cycles, full at the root),
 * constant capacities and disk sets, index records (aligned, sorted,
 * non-overlapping, inside the disk), data files long enough, and the SHA-256
 * of every block.
 */
import { webcrypto } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { BackupError, BackupErrorCode } from './errors';
import { findRecordProblem, type PointManifest, type RecordTable } from './format';
import { chainProblems, loadChain } from './chain';
import type { BackupRepository } from './repository';

export interface VerifyProgress {
  bytesVerified: number;
  bytesTotal: number;
  pointId: string;
  diskKey: number;
}

export interface VerifyOptions {
  /** 'first' (default) stops at the first problem; 'all' collects every problem it can reach. */
  mode?: 'first' | 'all';
  onProgress?: (p: VerifyProgress) => void;
  /** Minimum bytes between two progress calls (default 64 MiB); a call is always made at the end of each disk. */
  progressEveryBytes?: number;
  /** Skip reading data and checksums: structure and sizes only. */
  skipChecksums?: boolean;
  /**
   * Hashes the blocks of one data file natively (the worker passes
   * native-vddk's hashBlocks: several threads, SHA extensions). Without
   * one, blocks are read and hashed with WebCrypto in libuv's pool.
   */
  hasher?: BlockHasher;
}

/** The shape of native-vddk's hashBlocks(), as verifyChain uses it. */
export type BlockHasher = (o: {
  path: string;
  offsets: ArrayLike<number>;
  lengths: ArrayLike<number>;
  sha256: Uint8Array;
  stopAtFirst: boolean;
  onProgress?: (p: { bytesDone: number }) => void;
}) => Promise<{ mismatches: Array<{ block: number; sha256: string; bytesRead: number }> }>;

export interface VerifyReport {
  ok: boolean;
  vmId: string;
  pointId: string;
  /** Point ids of the chain, oldest first (as far as it could be followed). */
  chain: string[];
  errors: BackupError[];
  bytesVerified: number;
  bytesTotal: number;
}

class Stop extends Error {}

/** Blocks read and hashed at once (each at most MAX_BLOCK_BYTES of memory). */
const HASH_WINDOW = 8;

export async function verifyChain(repo: BackupRepository, vmId: string, pointId: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const mode = options.mode ?? 'first';
  const every = options.progressEveryBytes ?? 64 * 1024 * 1024;
  const report: VerifyReport = { ok: true, vmId, pointId, chain: [], errors: [], bytesVerified: 0, bytesTotal: 0 };
  const problem = (err: BackupError): void => {
    report.ok = false;
    report.errors.push(err);
    if (mode === 'first') throw new Stop();
  };
  try {
    let chain: PointManifest[];
    try {
      chain = await loadChain(repo, vmId, pointId, { check: false });
    } catch (err) {
      if (err instanceof BackupError) {
        report.ok = false;
        report.errors.push(err);
        return report;
      }
      throw err;
    }
    report.chain = chain.map((p) => p.pointId);
    chainProblems(chain).forEach(problem);
    report.bytesTotal = chain.reduce((sum, p) => sum + p.disks.reduce((s, d) => s + d.dataBytes, 0), 0);
    let lastReported = 0;
    const progress = (pid: string, diskKey: number, force: boolean): void => {
      if (!options.onProgress || (!force && report.bytesVerified - lastReported < every)) return;
      lastReported = report.bytesVerified;
      options.onProgress({ bytesVerified: report.bytesVerified, bytesTotal: report.bytesTotal, pointId: pid, diskKey });
    };
    for (const point of chain) {
      for (const disk of point.disks) {
        const where = { vmId, pointId: point.pointId, diskKey: disk.key };
        const label = `vm ${vmId} point ${point.pointId} disk ${disk.key}`;
        let table: RecordTable;
        let dataPath: string;
        try {
          table = await repo.readDiskIndex(vmId, point.pointId, disk.key);
          dataPath = await repo.dataPath(vmId, point.pointId, disk.key);
        } catch (err) {
          if (err instanceof BackupError) {
            problem(err);
            continue;
          }
          throw err;
        }
        const bad = findRecordProblem(table, disk.capacityBytes);
        if (bad) {
          problem(
            new BackupError(BackupErrorCode.FORMAT_INVALID, `${label} block ${bad.block} (disk offset ${bad.diskOffset}): ${bad.problem}`, {
              ...where,
              block: bad.block,
              diskOffset: bad.diskOffset,
            }),
          );
          continue;
        }
        let sum = 0;
        for (let i = 0; i < table.count; i++) sum += table.length[i]!;
        if (sum !== disk.dataBytes) {
          problem(new BackupError(BackupErrorCode.FORMAT_INVALID, `${label}: blocks hold ${sum} bytes, point.json says ${disk.dataBytes}`, where));
        }
        const size = (await fsp.stat(dataPath)).size;
        const truncated = (i: number): void => {
          const off = table.dataOffset[i]!;
          const len = table.length[i]!;
          const diskOffset = table.diskOffset[i]!;
          problem(
            new BackupError(BackupErrorCode.DATA_TRUNCATED, `${label} block ${i} (disk offset ${diskOffset}): data file has ${size} bytes, block needs [${off}, ${off + len})`, {
              ...where,
              block: i,
              diskOffset,
              path: dataPath,
            }),
          );
        };
        const mismatch = (i: number, got: string): void => {
          const off = table.dataOffset[i]!;
          const len = table.length[i]!;
          const want = Buffer.from(table.sha256.buffer, table.sha256.byteOffset + i * 32, 32).toString('hex');
          problem(
            new BackupError(
              BackupErrorCode.CHECKSUM_MISMATCH,
              `${label} block ${i} (disk offset ${table.diskOffset[i]}, ${len} bytes at data offset ${off}): SHA-256 ${got} != stored ${want}`,
              { ...where, block: i, diskOffset: table.diskOffset[i]!, path: dataPath, expected: want, actual: got },
            ),
          );
        };
        if (options.skipChecksums || options.hasher) {
          // Structure only (skipChecksums: every block inside the data file, nothing read), or every block
          // inside the file hashed natively in one call; problems then raised in block order.
          const bad = new Map<number, string>();
          if (!options.skipChecksums) {
            const inside: number[] = [];
            for (let i = 0; i < table.count; i++) if (table.dataOffset[i]! + table.length[i]! <= size) inside.push(i);
            const sha = Buffer.alloc(32 * inside.length);
            inside.forEach((i, k) => sha.set(table.sha256.subarray(i * 32, i * 32 + 32), k * 32));
            const base = report.bytesVerified;
            const { mismatches } = await options.hasher!({
              path: dataPath,
              offsets: inside.map((i) => table.dataOffset[i]!),
              lengths: inside.map((i) => table.length[i]!),
              sha256: sha,
              stopAtFirst: mode === 'first',
              onProgress: (p) => {
                report.bytesVerified = base + p.bytesDone;
                progress(point.pointId, disk.key, false);
              },
            });
            report.bytesVerified = base;
            for (const m of mismatches) bad.set(inside[m.block]!, m.sha256);
          }
          for (let i = 0; i < table.count; i++) {
            if (table.dataOffset[i]! + table.length[i]! > size) {
              truncated(i);
              continue;
            }
            if (bad.has(i)) mismatch(i, bad.get(i)!);
            report.bytesVerified += table.length[i]!;
          }
          progress(point.pointId, disk.key, true);
          continue;
        }
        const fh = await fsp.open(dataPath, 'r');
        // Blocks are read and hashed HASH_WINDOW at a time, off the main
        // thread (fs reads and WebCrypto digests both run in libuv's pool),
        // so reading and hashing overlap and use every core; results are
        // taken in block order, so the first problem is the first block's.
        const digest = async (i: number): Promise<{ bytesRead: number; got: Buffer } | null> => {
          const off = table.dataOffset[i]!;
          const len = table.length[i]!;
          if (off + len > size) return null;
          const buf = Buffer.allocUnsafe(len);
          const { bytesRead } = await fh.read(buf, 0, len, off);
          return { bytesRead, got: Buffer.from(await webcrypto.subtle.digest('SHA-256', buf.subarray(0, bytesRead))) };
        };
        const inFlight: Array<Promise<{ bytesRead: number; got: Buffer } | null>> = [];
        try {
          for (let i = 0; i < Math.min(HASH_WINDOW, table.count); i++) inFlight.push(digest(i));
          for (let i = 0; i < table.count; i++) {
            const hashed = await inFlight.shift()!;
            if (i + HASH_WINDOW < table.count) inFlight.push(digest(i + HASH_WINDOW));
            const off = table.dataOffset[i]!;
            const len = table.length[i]!;
            if (off + len > size) {
              truncated(i);
              continue;
            }
            if (hashed) {
              const { bytesRead, got } = hashed;
              const want = Buffer.from(table.sha256.buffer, table.sha256.byteOffset + i * 32, 32);
              if (bytesRead !== len || !got.equals(want)) mismatch(i, got.toString('hex'));
            }
            report.bytesVerified += len;
            progress(point.pointId, disk.key, false);
          }
        } finally {
          // Reads still in flight (a stop at the first problem) finish before the file closes.
          await Promise.allSettled(inFlight);
          await fh.close();
        }
        progress(point.pointId, disk.key, true);
      }
    }
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
  }
  return report;
}

/** Verifies and throws the first problem. */
export async function assertChainValid(repo: BackupRepository, vmId: string, pointId: string, options: Omit<VerifyOptions, 'mode'> = {}): Promise<VerifyReport> {
  const report = await verifyChain(repo, vmId, pointId, { ...options, mode: 'first' });
  const first = report.errors[0];
  if (first) throw first;
  return report;
}
