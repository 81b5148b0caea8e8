-- AlterEnum
ALTER TYPE "restore_kind" ADD VALUE 'export';
