import { buildRestoreReport, permanent, signDocument, type RestoreJob } from '@vmrestore/core';
import type { StepDef } from '../plan';
import type { RestoreDeps } from './in-place';

/**
 * The last step of a restore: the restore report (core/restore/report.ts),
 * signed with the service's key, stored as this step's result and served
 * by GET /v1/restores/{id}/report.
 */
export function reportStep(deps: RestoreDeps, job: RestoreJob): StepDef {
  return {
    name: 'restore_report',
    async run(ctx) {
      if (!deps.keyring) throw permanent('SECRET_KEYRING_MISSING', 'this worker has no VMRESTORE_SECRET_KEYS: it cannot sign the restore report');
      const steps = await ctx.db.jobStep.findMany({ where: { jobId: job.id } });
      const events = await ctx.db.jobEvent.findMany({ where: { jobId: job.id, type: 'restore.warning' }, orderBy: { id: 'asc' } });
      const report = buildRestoreReport({
        job: { id: job.id, kind: job.kind, request: job.request, createdAt: job.createdAt },
        steps,
        warnings: events.map((e) => (e.data ?? {}) as Record<string, unknown>),
        now: new Date(),
      });
      return { report, signature: signDocument(deps.keyring, report) };
    },
  };
}
