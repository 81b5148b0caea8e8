import { copy, type CopyOptions, type CopyProgress, type CopyResult } from '@vmrestore/native-vddk';
import { JobError, JOB_ERROR_CODES } from '@vmrestore/core';

// A stall watchdog around the addon's copy(): a disk write whose progress
// stops (a hung NBD connection, storage that no longer answers) is
// cancelled instead of holding its job forever. Progress is what the addon
// reports through onProgress; a callback without new bytes or extents is
// not progress.

export interface WatchOptions {
  /** No progress for this long → cancel the native job → VDDK_STALLED. */
  stallMs: number;
  /**
   * How long the cancelled native job gets to stop. A thread blocked inside
   * VixDiskLib cannot be interrupted: after this the promise rejects anyway
   * and the thread finishes on its own, its result ignored. Default 10 s.
   */
  graceMs?: number;
  /** Names the disk in the error message. */
  label?: string;
}

/**
 * copy() under the watchdog. Rejects with a transient JobError VDDK_STALLED
 * when the copy stalls (a retry resumes from the last checkpoint); any other
 * outcome (result, VddkError, cancel through opts.signal) is copy()'s own.
 */
export async function watchedCopy(opts: CopyOptions, w: WatchOptions, copyFn: (o: CopyOptions) => Promise<CopyResult> = copy): Promise<CopyResult> {
  const inner = new AbortController();
  const outer = opts.signal;
  const onOuterAbort = () => inner.abort(outer?.reason);
  if (outer?.aborted) inner.abort(outer.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });

  let stalled = false;
  let bytes = -1;
  let extents = -1;
  let timer: NodeJS.Timeout | undefined;
  let onStall: () => void = () => undefined;
  const stalledNow = new Promise<never>((_, reject) => {
    onStall = () => {
      stalled = true;
      inner.abort(new Error('stalled'));
      const grace = setTimeout(() => reject(stallError(w, null)), w.graceMs ?? 10_000);
      grace.unref();
    };
  });
  stalledNow.catch(() => undefined);
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onStall, w.stallMs);
  };
  const onProgress = (p: CopyProgress) => {
    if (p.bytesDone > bytes || p.extentsDone > extents) {
      bytes = p.bytesDone;
      extents = p.extentsDone;
      if (!stalled) arm();
    }
    opts.onProgress?.(p);
  };

  arm();
  try {
    return await Promise.race([
      copyFn({ ...opts, signal: inner.signal, onProgress }).catch((err: unknown) => {
        throw stalled ? stallError(w, err) : err;
      }),
      stalledNow,
    ]);
  } finally {
    if (timer) clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

function stallError(w: WatchOptions, cause: unknown): JobError {
  const what = w.label ? `${w.label}: ` : '';
  const still = cause === null ? '; the native job did not stop within its grace period and is left to finish' : '';
  return new JobError(JOB_ERROR_CODES.VDDK_STALLED, `${what}disk copy made no progress for ${w.stallMs} ms: cancelled${still}`, false, cause === null ? undefined : { cause });
}
