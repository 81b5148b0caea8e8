-- CreateTable
CREATE TABLE "orphan_sweep_leases" (
    "scope" TEXT NOT NULL,
    "holder" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "orphan_sweep_leases_pkey" PRIMARY KEY ("scope")
);
