import type { FastifyInstance } from 'fastify';
import {
  AppError,
  publicSigningKeys,
  checkRestoreRequest,
  dryRunRestore,
  repositoryFromConfig,
  createRestoreJob,
  enqueueRestore,
  getJobWithSteps,
  listEvents,
  listJobs,
  requestCancel,
  routeSchema,
  fastifyPath,
  toEventView,
  toJobView,
  type OpenApiDoc,
  type RestoreRequestBody,
} from '@vmrestore/core';
import { principalOf } from '../security/auth';
import { resumeAfter, SSE_DEFAULTS, sseRegistry, streamEvents, wantsEventStream, type SseOptions } from './event-stream';

export async function restoreRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc; sse?: Partial<SseOptions> }) {
  const { doc } = opts;
  const sse: SseOptions = { ...SSE_DEFAULTS, ...opts.sse };
  const openStreams = sseRegistry(app);
  const schemaFor = (method: string, path: string) => ({ schema: routeSchema(doc, method, path) });

  app.post<{ Body: RestoreRequestBody; Headers: { 'idempotency-key'?: string } }>(
    fastifyPath('/v1/restores'),
    schemaFor('post', '/v1/restores'),
    async (req, reply) => {
      const { dryRun, ...body } = req.body;
      if (dryRun) {
        // Nothing is recorded or touched: the checks and the plan, answered now.
        checkRestoreRequest(body);
        const result = await dryRunRestore({ db: app.db, keyring: app.keyring ?? null, config: app.config, repo: repositoryFromConfig(app.config) }, principalOf(req).tenantId, body);
        return reply.status(200).send(result);
      }
      const key = req.headers['idempotency-key'];
      const { job, replayed } = await createRestoreJob(app.db, principalOf(req).tenantId, body, key);
      if (!replayed) {
        try {
          await enqueueRestore(app.restoreQueue, job.id, job.priority);
        } catch (err) {
          // The job is recorded; the worker's requeue sweep enqueues queued
          // jobs it finds without a queue entry, so accepting is still right.
          req.log.warn({ jobId: job.id, err: (err as Error).message }, 'enqueue failed; the requeue sweep will retry');
        }
      }
      req.log.info({ jobId: job.id, replayed }, replayed ? 'restore replayed' : 'restore accepted');
      reply.header('Location', `/v1/restores/${job.id}`);
      if (replayed) reply.header('Idempotent-Replayed', 'true');
      return reply.status(replayed ? 200 : 202).send(toJobView(job));
    },
  );

  app.get<{ Querystring: { state?: string; vm?: string; limit: number; cursor?: string } }>(
    fastifyPath('/v1/restores'),
    schemaFor('get', '/v1/restores'),
    async (req) => {
      const page = await listJobs(app.db, principalOf(req).tenantId, req.query);
      return { items: page.items.map((j) => toJobView(j)), nextCursor: page.nextCursor };
    },
  );

  app.get<{ Params: { id: string } }>(fastifyPath('/v1/restores/{id}'), schemaFor('get', '/v1/restores/{id}'), async (req) => {
    const { job, steps } = await getJobWithSteps(app.db, principalOf(req).tenantId, req.params.id);
    return toJobView(job, steps);
  });

  app.get<{ Params: { id: string }; Querystring: { after?: number; limit: number } }>(
    fastifyPath('/v1/restores/{id}/events'),
    schemaFor('get', '/v1/restores/{id}/events'),
    async (req, reply) => {
      if (wantsEventStream(req)) {
        const after = resumeAfter(req, req.query.after);
        return streamEvents(app, req, reply, { tenantId: principalOf(req).tenantId, jobId: req.params.id, after, opts: sse, open: openStreams });
      }
      const events = await listEvents(app.db, principalOf(req).tenantId, req.params.id, req.query.after ?? 0, req.query.limit);
      return { items: events.map(toEventView) };
    },
  );

  app.get<{ Params: { id: string } }>(fastifyPath('/v1/restores/{id}/report'), schemaFor('get', '/v1/restores/{id}/report'), async (req) => {
    const { job, steps } = await getJobWithSteps(app.db, principalOf(req).tenantId, req.params.id);
    const step = steps.find((s) => s.phase === 'main' && s.name === 'restore_report' && s.state === 'succeeded');
    if (!step?.result) {
      throw new AppError('REPORT_NOT_AVAILABLE', job.state === 'succeeded' ? `restore job ${job.id} ended before restore reports existed` : `restore job ${job.id} is ${job.state}: a report is made when a restore succeeds`);
    }
    return step.result;
  });

  app.get(fastifyPath('/v1/report-keys'), schemaFor('get', '/v1/report-keys'), async () => {
    if (!app.keyring) throw new AppError('SIGNING_KEY_MISSING', 'set VMRESTORE_SECRET_KEYS (the same as the workers) to show the keys that sign restore reports');
    return { items: publicSigningKeys(app.keyring) };
  });

  app.post<{ Params: { id: string } }>(
    fastifyPath('/v1/restores/{id}/cancel'),
    schemaFor('post', '/v1/restores/{id}/cancel'),
    async (req, reply) => {
      const { job, wasQueued } = await requestCancel(app.db, principalOf(req).tenantId, req.params.id);
      if (wasQueued) {
        // Best effort: a worker that takes it anyway sees `cancelled` and stops.
        await app.restoreQueue.remove(job.id).catch(() => 0);
      } else if (job.state === 'queued' || job.state === 'waiting_for_capacity') {
        // Waiting for a retry: run it now, so its worker sees the cancel and cleans up.
        await app.restoreQueue
          .getJob(job.id)
          .then((j) => j?.promote())
          .catch(() => undefined);
      }
      req.log.info({ jobId: job.id, wasQueued }, 'cancel requested');
      return reply.status(202).send(toJobView(job));
    },
  );
}
