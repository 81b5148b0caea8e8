-- AlterEnum
ALTER TYPE "job_state" ADD VALUE 'cleanup_pending';
