/**
 * TypeScript facade of the native block-copy addon (build/Release/vddk.node).
 * Validates every argument here (validate.ts); the C++ side trusts them.
 */
import { VddkError } from './errors';
import { loadAddon } from './native';
import type { CopyOptions, CopyProgress, CopyResult, DiskInfo, HashBlocksOptions, HashBlocksResult, Target } from './types';
import { checkCopy, checkDiskInfoTarget, checkHashBlocks } from './validate';

export { VddkError } from './errors';
export type * from './types';
export { SECTOR, WRITE_ALIGN, TRANSPORTS, firstOverlap } from './validate';
export { createRateLimiter } from './rate-limiter';

/**
 * Copies extents of local source files into a target disk on threads the
 * addon owns. Resolves after the target is flushed; rejects with a VddkError.
 */
export async function copy(opts: CopyOptions): Promise<CopyResult> {
  const job = checkCopy(opts);
  if (opts.signal?.aborted) throw new VddkError('copy(): cancelled before it started', 'CANCELLED');
  let progressError: unknown;
  let task: { cancel(): void } | undefined;
  const userProgress = opts.onProgress;
  const onProgress = userProgress
    ? (p: unknown) => {
        if (progressError !== undefined) return;
        try {
          userProgress(p as CopyProgress);
        } catch (err) {
          // A throwing callback stops the job and becomes its error.
          progressError = err;
          task?.cancel();
        }
      }
    : undefined;
  const native = loadAddon().copy(job, onProgress);
  task = native;
  const onAbort = (): void => native.cancel();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = (await native.promise) as CopyResult;
    if (progressError !== undefined) throw progressError;
    return result;
  } catch (err) {
    throw progressError ?? err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** Capacity, metadata (ddb keys without prefix) and transport of a target disk; never writes. */
export async function diskInfo(target: Target): Promise<DiskInfo> {
  const t = checkDiskInfoTarget(target);
  return (await loadAddon().diskInfo(t).promise) as DiskInfo;
}

/**
 * The SHA-256 of many blocks of one file, on several threads of the addon
 * (SHA extensions where the CPU has them), compared with the expected
 * digests. Resolves with the blocks that differ; rejects with a VddkError
 * (IO_ERROR, FILE_NOT_FOUND, CANCELLED).
 */
export async function hashBlocks(opts: HashBlocksOptions): Promise<HashBlocksResult> {
  const spec = checkHashBlocks(opts);
  if (opts.signal?.aborted) throw new VddkError('hashBlocks(): cancelled before it started', 'CANCELLED');
  const user = opts.onProgress;
  const onProgress = user
    ? (p: unknown) => {
        const { bytesDone, bytesTotal } = p as { bytesDone: number; bytesTotal: number };
        try {
          user({ bytesDone, bytesTotal });
        } catch {
          native.cancel(); // a throwing callback stops the hashing, as with copy()
        }
      }
    : undefined;
  const native = loadAddon().hashBlocks(spec, onProgress);
  const onAbort = (): void => native.cancel();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return (await native.promise) as HashBlocksResult;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
