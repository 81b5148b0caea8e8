import type { FastifyInstance } from 'fastify';
import {
  AppError,
  createExportJob,
  createVerifyJob,
  describePoint,
  enqueueRestore,
  fastifyPath,
  repositoryFromConfig,
  requireRepository,
  routeSchema,
  toJobView,
  withBackupErrors,
  type OpenApiDoc,
} from '@vmrestore/core';
import { principalOf } from '../security/auth';

export async function backupRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc }) {
  const { doc } = opts;
  const schemaFor = (method: string, path: string) => ({ schema: routeSchema(doc, method, path) });
  const repo = repositoryFromConfig(app.config);

  app.get(fastifyPath('/v1/backups'), schemaFor('get', '/v1/backups'), async () => {
    const vms = await withBackupErrors(() => requireRepository(repo).listVms());
    return { items: vms.map((vm) => ({ vm, links: { points: `/v1/backups/${vm}/points` } })) };
  });

  app.get<{ Params: { vm: string } }>(fastifyPath('/v1/backups/{vm}/points'), schemaFor('get', '/v1/backups/{vm}/points'), async (req) => {
    const points = await withBackupErrors(() => requireRepository(repo).listPoints(req.params.vm));
    return { items: points.map(({ pointId, ...rest }) => ({ point: pointId, ...rest })) };
  });

  app.get<{ Params: { vm: string; point: string } }>(
    fastifyPath('/v1/backups/{vm}/points/{point}'),
    schemaFor('get', '/v1/backups/{vm}/points/{point}'),
    async (req) => describePoint(requireRepository(repo), req.params.vm, req.params.point),
  );

  app.post<{ Params: { vm: string; point: string }; Body: { checksums?: boolean } | undefined }>(
    fastifyPath('/v1/backups/{vm}/points/{point}/verify'),
    {
      ...schemaFor('post', '/v1/backups/{vm}/points/{point}/verify'),
      // The body is optional: no body means the defaults.
      preValidation: async (req) => {
        if (req.body === undefined || req.body === null) req.body = {};
      },
    },
    async (req, reply) => {
      const r = requireRepository(repo);
      // The point must exist before a job is made for it.
      await withBackupErrors(() => r.getPoint(req.params.vm, req.params.point));
      const job = await createVerifyJob(app.db, principalOf(req).tenantId, req.params.vm, req.params.point, { checksums: req.body?.checksums ?? true });
      try {
        await enqueueRestore(app.restoreQueue, job.id, job.priority);
      } catch (err) {
        req.log.warn({ jobId: job.id, err: (err as Error).message }, 'enqueue failed; the requeue sweep will retry');
      }
      reply.header('Location', `/v1/restores/${job.id}`);
      return reply.status(202).send(toJobView(job));
    },
  );
}

export async function exportRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc }) {
  const repo = repositoryFromConfig(app.config);
  app.post<{ Body: { source: { vm: string; point: string }; target: { directory: string }; options?: { incrementalOrder?: 'backward' | 'forward' }; label?: string } }>(
    fastifyPath('/v1/exports'),
    { schema: routeSchema(opts.doc, 'post', '/v1/exports') },
    async (req, reply) => {
      if (!app.config.restore.exportRoot) throw new AppError('EXPORT_NOT_CONFIGURED', 'exports are not configured on this server (VMRESTORE_EXPORT_ROOT)');
      const r = requireRepository(repo);
      await withBackupErrors(() => r.getPoint(req.body.source.vm, req.body.source.point));
      const job = await createExportJob(app.db, principalOf(req).tenantId, req.body);
      try {
        await enqueueRestore(app.restoreQueue, job.id, job.priority);
      } catch (err) {
        req.log.warn({ jobId: job.id, err: (err as Error).message }, 'enqueue failed; the requeue sweep will retry');
      }
      reply.header('Location', `/v1/restores/${job.id}`);
      return reply.status(202).send(toJobView(job));
    },
  );
}
