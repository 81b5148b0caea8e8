/**
 * Errors of the backup repository. Every error carries a stable `code` that
 * callers (API error handler, worker) switch on, and `details` naming the VM,
 * point, disk and block involved, so an operator can find the bad file.
 */
export const BackupErrorCode = {
  /** The VM or restore point does not exist in any configured root. */
  POINT_NOT_FOUND: 'BACKUP_POINT_NOT_FOUND',
  /** A disk key is not part of the restore point. */
  DISK_NOT_FOUND: 'BACKUP_DISK_NOT_FOUND',
  /** A reference (vm id, point id, file name) is unsafe or resolves outside the roots. */
  PATH_ESCAPE: 'BACKUP_PATH_ESCAPE',
  /** A parent is missing, belongs to another VM, the chain has a cycle or no full at its root. */
  CHAIN_BROKEN: 'BACKUP_CHAIN_BROKEN',
  /** The stored SHA-256 of a block does not match its data. */
  CHECKSUM_MISMATCH: 'BACKUP_CHECKSUM_MISMATCH',
  /** A disk's capacity differs between two points of one chain. */
  CAPACITY_CHANGED: 'BACKUP_CAPACITY_CHANGED',
  /** The set of disk keys differs between two points of one chain. */
  DISK_SET_CHANGED: 'BACKUP_DISK_SET_CHANGED',
  /** The data file is shorter than its index says. */
  DATA_TRUNCATED: 'BACKUP_DATA_TRUNCATED',
  /** The point or index file has an unknown format version or magic. */
  FORMAT_UNSUPPORTED: 'BACKUP_FORMAT_UNSUPPORTED',
  /** The point.json or index content is malformed (bad field, unsorted, overlapping, unaligned). */
  FORMAT_INVALID: 'BACKUP_FORMAT_INVALID',
  /** An input to import is unusable (missing qemu-img, bad changed-areas list, ...). */
  IMPORT_FAILED: 'BACKUP_IMPORT_FAILED',
  /** The restore point being created already exists. */
  POINT_EXISTS: 'BACKUP_POINT_EXISTS',
  /** A read of the repository did not answer in time (a hung NFS or SMB mount). */
  READ_TIMEOUT: 'BACKUP_READ_TIMEOUT',
  /** A file of the repository exists but cannot be read (permissions, I/O error). */
  UNREADABLE: 'BACKUP_UNREADABLE',
} as const;

export type BackupErrorCode = (typeof BackupErrorCode)[keyof typeof BackupErrorCode];

/** Where an error was found; every field optional, filled as far as known. */
export interface BackupErrorDetails {
  vmId?: string;
  pointId?: string;
  diskKey?: number;
  /** Index of the block record within the disk index of the point. */
  block?: number;
  /** Byte offset of the block on the virtual disk. */
  diskOffset?: number;
  path?: string;
  [extra: string]: unknown;
}

export class BackupError extends Error {
  override readonly name = 'BackupError';
  readonly code: BackupErrorCode;
  readonly details: BackupErrorDetails;

  constructor(code: BackupErrorCode, message: string, details: BackupErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

export function isBackupError(err: unknown, code?: BackupErrorCode): err is BackupError {
  return err instanceof BackupError && (code === undefined || err.code === code);
}

/** "vm vm-42 point p3 disk 2000 block 17 (disk offset 1048576)", for messages. */
export function describeLocation(d: BackupErrorDetails): string {
  const parts: string[] = [];
  if (d.vmId !== undefined) parts.push(`vm ${d.vmId}`);
  if (d.pointId !== undefined) parts.push(`point ${d.pointId}`);
  if (d.diskKey !== undefined) parts.push(`disk ${d.diskKey}`);
  if (d.block !== undefined) parts.push(`block ${d.block}`);
  if (d.diskOffset !== undefined) parts.push(`(disk offset ${d.diskOffset})`);
  return parts.join(' ');
}
