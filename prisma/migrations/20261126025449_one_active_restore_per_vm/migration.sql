-- One active in-place restore per VM: a second request for a VM with a
-- queued, running or cleanup_pending restore is refused (409). Partial
-- unique indexes are not expressible in schema.prisma, hence by hand; in
-- its own migration because a new enum value cannot be used in the
-- transaction that adds it.
CREATE UNIQUE INDEX "restore_jobs_one_active_per_vm" ON "restore_jobs" ("tenant_id", "vcenter", "target_vm")
  WHERE "kind" = 'in_place' AND "state" IN ('queued', 'running', 'cleanup_pending');
