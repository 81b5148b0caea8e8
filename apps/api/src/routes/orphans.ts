import type { FastifyInstance } from 'fastify';
import { fastifyPath, routeSchema, type Db, type OpenApiDoc } from '@vmrestore/core';
import { principalOf } from '../security/auth';

// The orphan sweeper's report and requests (docs/orphans.md). Sweeps run in
// the workers; the API reads their rows and records requests. A tenant sees
// only its own items, and counts made from them.

const requestView = (r: { id: string; status: string; requestedAt: Date }) => ({ id: r.id, status: r.status, requestedAt: r.requestedAt.toISOString() });

/** The tenant's request still waiting or running (merged ones included). */
async function pendingRequest(db: Db, tenantId: string) {
  return db.orphanSweep.findFirst({ where: { requestedBy: tenantId, status: { in: ['requested', 'running'] } }, orderBy: { requestedAt: 'desc' } });
}

export async function orphanReport(db: Db, tenantId: string) {
  // The pending request first: a request that ends between the two reads is
  // then in the sweep read after (read the other way round, a report could
  // say "nothing pending" beside the sweep before it, and `orphans sweep
  // --watch` printed that older sweep).
  const pending = await pendingRequest(db, tenantId);
  const sweep = await db.orphanSweep.findFirst({
    where: { status: { in: ['done', 'failed'] }, mergedInto: null, OR: [{ scopeTenantId: null }, { scopeTenantId: tenantId }] },
    orderBy: { finishedAt: 'desc' },
  });
  const items = sweep ? await db.orphanItem.findMany({ where: { sweepId: sweep.id, tenantId }, orderBy: { id: 'asc' } }) : [];
  const count = (o: string) => items.filter((i) => i.outcome === o).length;
  return {
    sweep: sweep
      ? {
          id: sweep.id,
          trigger: sweep.trigger,
          status: sweep.status,
          startedAt: sweep.startedAt?.toISOString() ?? null,
          finishedAt: sweep.finishedAt!.toISOString(),
          found: count('cleaned') + count('left'),
          cleaned: count('cleaned'),
          left: count('left'),
          kept: count('kept'),
          error: sweep.errorCode ? { code: sweep.errorCode, message: sweep.errorMessage ?? '' } : null,
        }
      : null,
    pending: pending ? requestView(pending) : null,
    items: items.map((i) => ({
      kind: i.kind,
      vcenter: i.vcenter,
      vm: i.vmRef,
      vmName: i.vmName,
      snapshot: i.snapshot,
      snapshotName: i.snapshotName,
      jobId: i.jobId,
      jobState: i.jobState,
      action: i.action,
      outcome: i.outcome,
      error: i.errorCode ? { code: i.errorCode, message: i.errorMessage ?? '' } : null,
    })),
  };
}

export async function orphanRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc }) {
  const schemaFor = (method: string, path: string) => ({ schema: routeSchema(opts.doc, method, path) });

  app.get(fastifyPath('/v1/orphans'), schemaFor('get', '/v1/orphans'), async (req) => orphanReport(app.db, principalOf(req).tenantId));

  app.post(fastifyPath('/v1/orphans/sweep'), schemaFor('post', '/v1/orphans/sweep'), async (req, reply) => {
    const { tenantId } = principalOf(req);
    // One pending request per tenant: asking again returns it.
    const existing = await pendingRequest(app.db, tenantId);
    const r = existing ?? (await app.db.orphanSweep.create({ data: { trigger: 'request', status: 'requested', requestedBy: tenantId } }));
    req.log.info({ sweepId: r.id, again: Boolean(existing) }, 'orphan sweep requested');
    return reply.status(202).send(requestView(r));
  });
}
