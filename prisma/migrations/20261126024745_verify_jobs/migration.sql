-- AlterEnum
ALTER TYPE "restore_kind" ADD VALUE 'verify';

-- AlterTable
ALTER TABLE "restore_jobs" ALTER COLUMN "vcenter" DROP NOT NULL;
