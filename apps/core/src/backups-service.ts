import type { Config } from './config';
import { AppError } from './errors';
import { BackupError, BackupErrorCode, FileBackupRepository, loadChain, type BackupRepository, type PointManifest } from './backup';

// The backup repository as the API sees it: typed views, and backup errors
// mapped to the API's problem codes (the backup code stays in the detail).

export function repositoryFromConfig(config: Config): BackupRepository | null {
  return config.backupRoots.length ? new FileBackupRepository(config.backupRoots, { readTimeoutMs: config.restore.backupReadTimeoutMs }) : null;
}

export function requireRepository(repo: BackupRepository | null): BackupRepository {
  if (!repo) throw new AppError('BACKUP_REPOSITORY_NOT_CONFIGURED', 'no backup repository is configured (set VMRESTORE_BACKUP_ROOTS)');
  return repo;
}

export function backupAppError(err: unknown): unknown {
  if (!(err instanceof BackupError)) return err;
  if (err.code === BackupErrorCode.POINT_NOT_FOUND || err.code === BackupErrorCode.DISK_NOT_FOUND) return new AppError('BACKUP_NOT_FOUND', err.message, [], { cause: err });
  if (err.code === BackupErrorCode.PATH_ESCAPE) return new AppError('BACKUP_PATH_ESCAPE', err.message, [], { cause: err });
  return new AppError('BACKUP_UNREADABLE', `${err.code}: ${err.message}`, [], { cause: err });
}

export async function withBackupErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw backupAppError(err);
  }
}

type Device = Record<string, unknown> & { _type?: string; key?: number };

function configSummary(config: Record<string, unknown>) {
  const hw = (config.hardware ?? {}) as Record<string, unknown>;
  const devices = (Array.isArray(hw.device) ? hw.device : []) as Device[];
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    name: str(config.name),
    guestId: str(config.guestId),
    version: str(config.version),
    firmware: str(config.firmware),
    numCPU: num(hw.numCPU),
    memoryMB: num(hw.memoryMB),
    deviceCount: devices.length,
    nicCount: devices.filter((d) => typeof d._type === 'string' && /^Virtual(E1000e?|Vmxnet\d?|PCNet32|Sriov)/.test(d._type)).length,
  };
}

export function pointView(point: PointManifest, chain: PointManifest[]) {
  return {
    vm: point.vmId,
    point: point.pointId,
    kind: point.kind,
    parent: point.parent,
    createdAt: point.createdAt,
    chain: chain.map((p) => p.pointId),
    disks: point.disks.map((d) => ({
      key: d.key,
      capacityBytes: d.capacityBytes,
      changeId: d.changeId,
      blocks: d.blocks,
      dataBytes: d.dataBytes,
      metadata: d.metadata,
    })),
    config: configSummary(point.config),
  };
}

export async function describePoint(repo: BackupRepository, vm: string, point: string) {
  return withBackupErrors(async () => {
    const manifest = await repo.getPoint(vm, point);
    const chain = await loadChain(repo, vm, point, { check: false });
    return pointView(manifest, chain);
  });
}
