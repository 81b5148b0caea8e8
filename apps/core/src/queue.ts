import { Queue, type JobsOptions } from 'bullmq';
import type { RedisClient } from './redis';
import type { Config } from './config';

// The typed contract between producer (api) and consumer (worker): queue
// name → job name → payload. The worker refuses to start if a job name here
// has no handler. Job data carries ids only, never secrets or requests.
export const QUEUE_CONTRACT = {
  restore: { jobName: 'restore.run' as const },
} as const;

export type QueueName = keyof typeof QUEUE_CONTRACT;

export interface QueuePayloads {
  /** abandon: set by the reconciler for a job that lost its run too often (the runner cleans up and fails it). */
  restore: { jobId: string; abandon?: string };
}

export type RestoreQueue = Queue<QueuePayloads['restore'], unknown, string>;

export function createRestoreQueue(connection: RedisClient, config: Config): RestoreQueue {
  return new Queue<QueuePayloads['restore'], unknown, string>('restore', {
    connection,
    prefix: config.queue.prefix,
    defaultJobOptions: restoreJobOptions(config),
  });
}

export function restoreJobOptions(config: Config): JobsOptions {
  return {
    attempts: config.queue.attempts,
    backoff: { type: 'exponential', delay: config.queue.backoffMs },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

/**
 * Enqueue by the database job id: BullMQ ignores a second add with the same
 * id while the first exists, so enqueueing again (API retry, the requeue
 * sweep) never runs a job twice.
 */
export async function enqueueRestore(queue: RestoreQueue, jobId: string, priority = 0, extra: Omit<QueuePayloads['restore'], 'jobId'> = {}): Promise<void> {
  await queue.add(QUEUE_CONTRACT.restore.jobName, { jobId, ...extra }, { jobId, ...(priority > 0 ? { priority } : {}) });
}
