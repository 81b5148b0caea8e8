import { appendEvent, permanent, verifyChain, type BackupRepository } from '@vmrestore/core';
import { hashBlocks } from '@vmrestore/native-vddk';
import type { PlanFactory } from '../plan';

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
          let pending: Promise<void> = Promise.resolve();
          const report = await verifyChain(repo, job.sourceVm, job.sourcePoint, {
            mode: 'all',
            skipChecksums: options.checksums === false,
            hasher: hashBlocks,
            progressEveryBytes: 16 * 1024 * 1024,
            onProgress: (p) => {
              pending = pending.then(() => ctx.progress(p.bytesVerified, p.bytesTotal)).catch(() => undefined);
            },
          });
          await pending;
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
