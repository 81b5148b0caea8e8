-- A restore waiting for capacity is still active: one in-place restore per
-- VM counts it too (its own migration: the enum value was added in the
-- previous one and cannot be used in the transaction that adds it).
DROP INDEX IF EXISTS "restore_jobs_one_active_per_vm";
CREATE UNIQUE INDEX "restore_jobs_one_active_per_vm" ON "restore_jobs" ("tenant_id", "vcenter", "target_vm")
  WHERE "kind" = 'in_place' AND "state" IN ('queued', 'running', 'cleanup_pending', 'waiting_for_capacity');
