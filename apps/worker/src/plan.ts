import type { Logger } from 'pino';
import type { Db, RestoreJob } from '@vmrestore/core';

// A restore is a plan: named steps run in order, then cleanup steps that run
// whatever happened (success, failure, cancel). Each step must be idempotent:
// a worker can die after a step did its work but before it was recorded, and
// the step then runs again on the next worker.

export interface DiskCheckpointState {
  bytesDone: number;
  bytesTotal: number;
  nextExtent: number;
  state?: Record<string, unknown> | null;
}

export interface StepContext {
  job: RestoreJob;
  jobId: string;
  db: Db;
  log: Logger;
  /** Aborted on cancel or worker shutdown: long steps stop at their next safe point. */
  signal: AbortSignal;
  /** Results of the steps recorded so far, by step name. */
  results: Readonly<Record<string, Record<string, unknown>>>;
  /** This step's attempt number, 1 on its first run. */
  attempt: number;
  /** For cleanup steps: how the main steps ended. */
  outcome?: 'succeeded' | 'failed' | 'cancelled';
  progress(bytesDone: number, bytesTotal: number): Promise<void>;
  /** Records a vCenter task this step started (a `vcenter.task` event with its id). */
  recordTask(task: string, method: string): void;
  checkpoint: {
    load(diskKey: number): Promise<DiskCheckpointState | null>;
    save(diskKey: number, cp: DiskCheckpointState): Promise<void>;
  };
}

export interface StepDef {
  name: string;
  run(ctx: StepContext): Promise<Record<string, unknown> | void>;
}

export interface Plan {
  steps: StepDef[];
  cleanup: StepDef[];
}

export type PlanFactory = (job: RestoreJob) => Plan;
export type PlanRegistry = Record<RestoreJob['kind'], PlanFactory>;
