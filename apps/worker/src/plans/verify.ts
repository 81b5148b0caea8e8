import { appendEvent, permanent, verifyChain, type BackupRepository, type VerifyOptions, type VerifyReport } from '@vmrestore/core';
import { hashBlocks } from '@vmrestore/native-vddk';
import type { PlanFactory, StepContext } from '../plan';

/**
 * verifyChain with the addon's hasher, its progress recorded as the step's
 * (one write at a time, all of them done before it returns). Used by the
 * verify job and by an in-place restore's verify_backup.
 */
export async function verifyChainInStep(ctx: StepContext, repo: BackupRepository, vm: string, point: string, options: Omit<VerifyOptions, 'hasher' | 'onProgress'>): Promise<VerifyReport> {
  let pending: Promise<void> = Promise.resolve();
  const report = await verifyChain(repo, vm, point, {
    ...options,
    hasher: hashBlocks,
    onProgress: (p) => {
      pending = pending.then(() => ctx.progress(p.bytesVerified, p.bytesTotal)).catch(() => undefined);
    },
  });
  await pending;
  return report;
}

/**
 * A verify job: the whole chain of a restore point (structure, parents,
 * capacities, every block's SHA-256), with progress. All problems found are
 * recorded in a `verify.report` event; the job fails with the first.
 */
export function verifyPlan(repo: BackupRepository | null): PlanFactory {
  return (job) => ({
    steps: [
      {
        name: 'verify_chain',
        async run(ctx) {
          if (!repo) throw permanent('BACKUP_REPOSITORY_NOT_CONFIGURED', 'no backup repository is configured on this worker (VMRESTORE_BACKUP_ROOTS)');
          const options = ((job.request as { options?: { checksums?: boolean } }).options ?? {}) as { checksums?: boolean };
          const report = await verifyChainInStep(ctx, repo, job.sourceVm, job.sourcePoint, {
            mode: 'all',
            skipChecksums: options.checksums === false,
            progressEveryBytes: 16 * 1024 * 1024,
          });
          await ctx.progress(report.bytesTotal, report.bytesTotal);
          const errors = report.errors.map((e) => ({ code: e.code, message: e.message }));
          await appendEvent(ctx.db, ctx.jobId, 'verify.report', 'verify_chain', { ok: report.ok, chain: report.chain, bytesVerified: report.bytesVerified, errors: errors.slice(0, 100), errorCount: errors.length });
          const first = errors[0];
          if (!report.ok && first) throw permanent(first.code, errors.length > 1 ? `${first.message} (and ${errors.length - 1} more problems)` : first.message);
          return { ok: true, chain: report.chain, bytesVerified: report.bytesVerified };
        },
      },
    ],
    cleanup: [],
  });
}
