import type { Db } from '../db';

// The queue's order (BullMQ: a lower number runs first, FIFO within one
// number): the priority class first, so every DR restore goes before any
// normal one and those before tests; then, within a class, the tenant's rank
// (how many of its jobs were unfinished when this one arrived), so tenants
// take turns: a tenant's 500th job waits behind another tenant's 1st.

export const PRIORITY_CLASSES = { dr: 1, normal: 100_000, test: 200_000 } as const;
export type PriorityClass = keyof typeof PRIORITY_CLASSES;
const RANK_MAX = 99_998;

export async function fairPriority(db: Db, tenantId: string, cls: PriorityClass): Promise<number> {
  const rank = await db.restoreJob.count({ where: { tenantId, state: { in: ['queued', 'running', 'waiting_for_capacity'] } } });
  return PRIORITY_CLASSES[cls] + Math.min(rank, RANK_MAX);
}

/** The class of a stored priority (for the job view). */
export function priorityClass(priority: number): PriorityClass {
  return priority < PRIORITY_CLASSES.normal ? 'dr' : priority < PRIORITY_CLASSES.test ? 'normal' : 'test';
}
