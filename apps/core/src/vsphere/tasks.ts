// vSphere tasks: start a *_Task method, poll info (state, progress) through
// the PropertyCollector until it ends, give up after a deadline that covers
// the call and the wait, and try CancelTask on the way out.
import type { DataObject, MoRef } from './codec';
import { VSphereError } from './errors';
import { getProperty, type VimCaller } from './properties';

export interface TaskInfo extends DataObject {
  key: string;
  task: MoRef;
  state: 'queued' | 'running' | 'success' | 'error';
  progress?: number;
  result?: unknown;
  error?: DataObject & { fault?: DataObject; localizedMessage?: string };
  cancelable?: boolean;
}

export interface TaskOptions {
  /** Deadline for the call plus the wait (ms). Default 30 minutes. */
  timeoutMs?: number;
  /**
   * First poll period (ms). Default 50, doubling to 2 s: most tasks of a
   * restore (power, snapshot, create) end within a second, and a 250 ms first
   * period cost each of them up to 250 ms; a long task is polled every 2 s
   * after about 4 s, as before.
   */
  pollMs?: number;
  /** Called when progress (0-100) changes. */
  onProgress?: (progress: number, info: TaskInfo) => void;
  /** CancelTask when the deadline passes (default true). */
  cancelOnTimeout?: boolean;
  /** Called once the task exists, with its moref and the method (jobs record vCenter task ids). */
  onTask?: (task: MoRef, method: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Calls a *_Task method and waits for its result; task errors become VSphereError. */
export async function runTask<T = unknown>(
  client: VimCaller,
  method: string,
  self: MoRef,
  args: Record<string, unknown> = {},
  opts: TaskOptions = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000);
  let task: MoRef;
  try {
    task = await client.call<MoRef>(method, self, args, { timeoutMs: Math.max(1, deadline - Date.now()) });
  } catch (err) {
    if (err instanceof VSphereError && err.code === 'VSPHERE_TIMEOUT') {
      throw VSphereError.client('TASK_TIMEOUT', `${method} on ${self.value}: not started within ${opts.timeoutMs} ms`, err);
    }
    throw err;
  }
  opts.onTask?.(task, method);
  return (await waitForTask(client, task, { ...opts, deadline, label: `${method} on ${self.value}` })) as T;
}

/** Waits for a task to end; resolves to info.result. */
export async function waitForTask(
  client: VimCaller,
  task: MoRef,
  opts: TaskOptions & { deadline?: number; label?: string } = {},
): Promise<unknown> {
  const label = opts.label ?? `task ${task.value}`;
  const deadline = opts.deadline ?? Date.now() + (opts.timeoutMs ?? 30 * 60_000);
  let pollMs = opts.pollMs ?? 50;
  let lastProgress = -1;
  for (;;) {
    const left = deadline - Date.now();
    let info: TaskInfo | undefined;
    if (left > 0) {
      try {
        info = await getProperty<TaskInfo>(client, task, 'info', { timeoutMs: Math.min(left, 60_000) });
      } catch (err) {
        if (!(err instanceof VSphereError && err.code === 'VSPHERE_TIMEOUT')) throw err;
      }
    }
    if (info) {
      if (info.state === 'success') return info.result;
      if (info.state === 'error') throw client.taskError(label, info.error);
      const p = info.progress ?? 0;
      if (p !== lastProgress && opts.onProgress) opts.onProgress(p, info);
      lastProgress = p;
    }
    if (!info || Date.now() >= deadline) {
      if (opts.cancelOnTimeout !== false) await cancelTask(client, task);
      throw VSphereError.client('TASK_TIMEOUT', `${label}: not finished within the deadline (task ${task.value})`);
    }
    await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())));
    pollMs = Math.min(pollMs * 2, 2_000);
  }
}

/** CancelTask, best effort: a task that already ended or cannot be cancelled is left alone. */
export async function cancelTask(client: VimCaller, task: MoRef): Promise<boolean> {
  try {
    await client.call('CancelTask', task, {}, { timeoutMs: 10_000 });
    return true;
  } catch {
    return false;
  }
}
