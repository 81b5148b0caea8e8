-- CreateTable
CREATE TABLE "orphan_sweeps" (
    "id" UUID NOT NULL,
    "scope_tenant_id" UUID,
    "trigger" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'requested',
    "requested_by" UUID,
    "merged_into" UUID,
    "worker" TEXT,
    "found" INTEGER NOT NULL DEFAULT 0,
    "cleaned" INTEGER NOT NULL DEFAULT 0,
    "left" INTEGER NOT NULL DEFAULT 0,
    "kept" INTEGER NOT NULL DEFAULT 0,
    "error_code" TEXT,
    "error_message" TEXT,
    "requested_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "orphan_sweeps_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "orphan_items" (
    "id" BIGSERIAL NOT NULL,
    "sweep_id" UUID NOT NULL,
    "tenant_id" UUID,
    "kind" TEXT NOT NULL,
    "vcenter" TEXT,
    "vm_ref" TEXT,
    "vm_name" TEXT,
    "snapshot" TEXT,
    "snapshot_name" TEXT,
    "job_id" UUID,
    "job_state" TEXT,
    "action" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "error_code" TEXT,
    "error_message" TEXT,

    CONSTRAINT "orphan_items_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "orphan_sweeps_status_finished_at_idx" ON "orphan_sweeps"("status", "finished_at" DESC);

-- CreateIndex
CREATE INDEX "orphan_items_sweep_id_tenant_id_idx" ON "orphan_items"("sweep_id", "tenant_id");

-- AddForeignKey
ALTER TABLE "orphan_items" ADD CONSTRAINT "orphan_items_sweep_id_fkey" FOREIGN KEY ("sweep_id") REFERENCES "orphan_sweeps"("id") ON DELETE CASCADE ON UPDATE CASCADE;
