import type { FastifyInstance } from 'fastify';
import {
  AppError,
  createVcenterConnection,
  deleteVcenter,
  fastifyPath,
  getVcenter,
  listVcenters,
  routeSchema,
  testVcenterConnection,
  toVcenterView,
  type Keyring,
  type OpenApiDoc,
  type VcenterInput,
} from '@vmrestore/core';
import { principalOf } from '../security/auth';

// vCenter connections of the caller's tenant. The password goes in once and
// never comes out: no response, log line or error holds it (the request
// logger does not log bodies).

export async function vcenterRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc; testTimeoutMs?: number }) {
  const schemaFor = (method: string, path: string) => ({ schema: routeSchema(opts.doc, method, path) });
  const keyring = (): Keyring => {
    if (!app.keyring) throw new AppError('SERVICE_UNAVAILABLE', 'VMRESTORE_SECRET_KEYS is not set on the server: vCenter passwords cannot be stored or read');
    return app.keyring;
  };

  app.post<{ Body: VcenterInput }>(fastifyPath('/v1/vcenters'), schemaFor('post', '/v1/vcenters'), async (req, reply) => {
    const row = await createVcenterConnection(app.db, keyring(), principalOf(req).tenantId, req.body);
    req.log.info({ vcenterId: row.id, name: row.name }, 'vCenter connection created');
    reply.header('Location', `/v1/vcenters/${row.id}`);
    return reply.status(201).send(toVcenterView(row));
  });

  app.get(fastifyPath('/v1/vcenters'), schemaFor('get', '/v1/vcenters'), async (req) => ({
    items: (await listVcenters(app.db, principalOf(req).tenantId)).map(toVcenterView),
  }));

  app.get<{ Params: { id: string } }>(fastifyPath('/v1/vcenters/{id}'), schemaFor('get', '/v1/vcenters/{id}'), async (req) =>
    toVcenterView(await getVcenter(app.db, principalOf(req).tenantId, req.params.id)),
  );

  app.delete<{ Params: { id: string } }>(fastifyPath('/v1/vcenters/{id}'), schemaFor('delete', '/v1/vcenters/{id}'), async (req, reply) => {
    await deleteVcenter(app.db, principalOf(req).tenantId, req.params.id);
    req.log.info({ vcenterId: req.params.id }, 'vCenter connection deleted');
    return reply.status(204).send();
  });

  app.post<{ Params: { id: string } }>(fastifyPath('/v1/vcenters/{id}/test'), schemaFor('post', '/v1/vcenters/{id}/test'), async (req) => {
    const row = await getVcenter(app.db, principalOf(req).tenantId, req.params.id);
    const result = await testVcenterConnection(keyring(), row, { timeoutMs: opts.testTimeoutMs ?? 10_000 });
    req.log.info({ vcenterId: row.id, ok: result.ok, code: result.error?.code }, 'vCenter connection tested');
    return result;
  });
}
