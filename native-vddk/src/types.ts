/** One run of bytes to copy: `length` bytes of sources[source] from sourceOffset to targetOffset. */
export interface CopyExtent {
  source: number;
  sourceOffset: number;
  targetOffset: number;
  length: number;
  /**
   * A range of the source file, containing [sourceOffset, sourceOffset+length),
   * whose SHA-256 (hex) is verified before any of this extent is written.
   */
  check?: { offset: number; length: number; sha256: string };
}

export type Transport = 'san' | 'hotadd' | 'nbdssl' | 'nbd';

/** A local disk: a disk-model descriptor (.vmdk) or a raw image. */
export interface FileTarget {
  kind: 'file';
  path: string;
  /** The target is known to be all zeros: all-zero buffers are not written. */
  fresh?: boolean;
  /**
   * Flush-behind window in bytes (default 64 MiB; 0 = off): writeback of
   * each write starts at once and at most this many bytes are in flight,
   * so the disk is busy from the first write and the copy's final fsync is
   * short. Off, the page cache holds the writes until its dirty limit.
   */
  flushBehind?: number;
  /**
   * Direct I/O (default true): writes and read-backs whose offset, length
   * and buffer meet the file's O_DIRECT alignment (statx STATX_DIOALIGN;
   * every whole-block extent does) bypass the page cache. The disk is
   * written at device speed instead of through the dirty-page limit, a
   * restore does not evict the host's cache, and a verify reads what the
   * storage holds, not a cached copy. Where the file system has no direct
   * I/O (tmpfs) or refuses a request, the page cache is used, with
   * flush-behind; `CopyResult.bytesDirect` says how much went direct.
   */
  direct?: boolean;
  /**
   * Buffers that follow each other on the disk written in one request
   * (default 8, 1-32): one `pwritev` of up to queueDepth x bufferBytes,
   * which the kernel sends to the device as that many requests at once (a
   * disk reaches its speed only with several queued; ext4 serializes direct
   * writes that allocate, so they must come from one call). Memory: one
   * more buffer of `bufferBytes` per unit of depth beyond the first.
   */
  queueDepth?: number;
}

/** A disk of a VM reached through VMware's VixDiskLib. */
export interface VddkTarget {
  kind: 'vddk';
  libDir: string;
  server: string;
  thumbprint: string;
  username?: string;
  password?: string;
  cookie?: string;
  vmMoref: string;
  snapshotMoref?: string;
  transports: Transport[];
  diskPath: string;
  configFile?: string;
}

export type Target = FileTarget | VddkTarget;

export interface CopyProgress {
  bytesDone: number;
  bytesTotal: number;
  extentsDone: number;
  rateBytesPerSec: number;
  /** With `readBack`: the bytes read back and found equal so far (behind `bytesDone`). */
  bytesVerified?: number;
  /**
   * Present on a durable checkpoint (see CopyOptions.checkpoint): every
   * extent before `extentsDone` is written and flushed to the target
   * (`bytesDone` bytes of extents), through `transport`. A copy resumed
   * after a crash may start at extent `extentsDone`.
   */
  checkpoint?: { extentsDone: number; bytesDone: number; transport: string };
}

export interface CopyOptions {
  sources: string[];
  extents: CopyExtent[];
  target: Target;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
  progressIntervalMs?: number;
  /** Size of each of the 4 ring buffers; a multiple of 4096 in [65536, 268435456]. Default 4 MiB. */
  bufferBytes?: number;
  /** Disk metadata (VixDiskLib keys without the "ddb." prefix, e.g. "adapterType"). */
  writeMetadata?: Record<string, string>;
  /**
   * Verify instead of write: open the target read-only, read every extent
   * back and compare it with the source bytes (each block's SHA-256 checked
   * first, as for a write), and compare `writeMetadata` with the disk's.
   * A difference fails with VERIFY_MISMATCH naming the disk offset and the
   * backup block.
   */
  verify?: boolean;
  /**
   * Read back while writing (a `file` target, extents that do not overlap on
   * the target): each range, once a flush made it durable (a checkpoint, or
   * the copy's end), is read back by a thread of its own and compared with
   * the source bytes while the copy writes on; `writeMetadata` is compared
   * at the end. The copy resolves once all of it compared equal
   * (`bytesVerified`), and fails with VERIFY_MISMATCH as `verify` would.
   * The read-back uses O_DIRECT where the file system allows it, so it
   * checks what the storage holds; `{ direct: false }` reads through the
   * page cache. Not with `verify`.
   */
  readBack?: boolean | { direct?: boolean };
  /**
   * Cap on the bytes this copy writes (or reads back, with `verify` or `readBack`) per
   * second, fixed for its life; 0 or absent = unlimited. Zero buffers
   * skipped on a fresh file target are not counted.
   */
  maxBytesPerSec?: number;
  /**
   * Shared caps from createRateLimiter(), changeable while the copy runs:
   * copies given the same limiter share its budget. Every byte passes all
   * of them (and maxBytesPerSec), e.g. [perJob, perDatastore, perTenant].
   */
  rateLimiter?: RateLimiter | readonly RateLimiter[];
  /**
   * Durable checkpoints while the copy runs (not with `verify`): after every
   * `everyExtents` whole extents or `everyBytes` bytes, whichever comes
   * first, the target is flushed (fsync / VixDiskLib_Flush) and a progress
   * report carries `checkpoint`. One long copy with checkpoints keeps the
   * target busy where a copy per batch would stop for each batch's flush.
   */
  checkpoint?: { everyExtents?: number; everyBytes?: number };
}

/** A byte-rate cap shared by the copies given it; see createRateLimiter(). */
export interface RateLimiter {
  /** The current cap in bytes per second; 0 = unlimited. */
  readonly bytesPerSec: number;
  /** Changes the cap for every copy using this limiter, at once (a waiting copy wakes). 0 = unlimited. */
  set(bytesPerSec: number): void;
}

export interface CopyResult {
  /** Bytes handed to the target (zero buffers skipped on a fresh file target are not counted). */
  bytesWritten: number;
  bytesSkipped: number;
  extentsWritten: number;
  /** verify (bytesWritten is then 0) or readBack: bytes read back and found equal. */
  bytesVerified: number;
  /** File target: bytes written (or read back, in verify) with direct I/O; the rest went through the page cache. */
  bytesDirect: number;
  /** Transport actually used: 'file' for file targets, VixDiskLib_GetTransportMode otherwise. */
  transport: string;
  durationMs: number;
  /** Messages from VDDK's log/warn/panic callbacks and from the target. */
  warnings: string[];
}

export interface DiskInfo {
  capacityBytes: number;
  metadata: Record<string, string>;
  transport: string;
  warnings: string[];
}

/** hashBlocks(): the ranges of one file whose SHA-256 must match. */
export interface HashBlocksOptions {
  path: string;
  /** Byte offset and length of each block in `path` (lengths 1 byte to 64 MiB). */
  offsets: ArrayLike<number>;
  lengths: ArrayLike<number>;
  /** The expected SHA-256 of each block, 32 bytes each, in block order. */
  sha256: Uint8Array;
  /** Threads hashing at once (default: the machine's cores, at most 16). */
  threads?: number;
  /** Stop at the first block that differs (default true): blocks after it are not read. */
  stopAtFirst?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
  /** Milliseconds between progress calls (default 250). */
  progressIntervalMs?: number;
}

export interface HashBlocksResult {
  bytesHashed: number;
  /**
   * Blocks that differ, in block order (only the first with stopAtFirst):
   * what the block hashed to, and the bytes read (fewer than its length
   * if the file ended inside it).
   */
  mismatches: Array<{ block: number; sha256: string; bytesRead: number }>;
}
