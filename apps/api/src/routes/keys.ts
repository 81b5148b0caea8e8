import type { FastifyInstance } from 'fastify';
import { createApiKey, fastifyPath, listApiKeys, revokeApiKey, routeSchema, type OpenApiDoc } from '@vmrestore/core';
import { principalOf } from '../security/auth';

// An admin key manages the keys of its own tenant. The first key of a tenant
// comes from the admin CLI on the server host (`vmrestore admin key create`).

export async function keyRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc }) {
  const schemaFor = (method: string, path: string) => ({ schema: routeSchema(opts.doc, method, path) });

  app.post<{ Body: { name: string; scopes: string[] } }>(fastifyPath('/v1/keys'), schemaFor('post', '/v1/keys'), async (req, reply) => {
    const { tenantId } = principalOf(req);
    const { view, key } = await createApiKey(app.db, tenantId, req.body);
    req.log.info({ createdKeyId: view.id, scopes: view.scopes }, 'api key created');
    reply.header('Location', `/v1/keys/${view.id}`);
    return reply.status(201).send({ ...view, key });
  });

  app.get(fastifyPath('/v1/keys'), schemaFor('get', '/v1/keys'), async (req) => ({ items: await listApiKeys(app.db, principalOf(req).tenantId) }));

  app.delete<{ Params: { id: string } }>(fastifyPath('/v1/keys/{id}'), schemaFor('delete', '/v1/keys/{id}'), async (req, reply) => {
    const view = await revokeApiKey(app.db, principalOf(req).tenantId, req.params.id);
    req.log.info({ revokedKeyId: view.id }, 'api key revoked');
    return reply.status(204).send();
  });
}
