-- AlterEnum
ALTER TYPE "job_state" ADD VALUE 'waiting_for_capacity';

-- AlterTable
ALTER TABLE "restore_jobs" ADD COLUMN     "wait_reason" TEXT;
