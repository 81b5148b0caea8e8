import type { FastifyInstance } from 'fastify';
import {
  AppError,
  createWebhook,
  deleteWebhook,
  fastifyPath,
  getWebhook,
  listDeliveries,
  listWebhooks,
  redeliver,
  routeSchema,
  WebhookError,
  type CreateWebhookInput,
  type OpenApiDoc,
  type SecurityConfig,
  type TargetPolicy,
} from '@vmrestore/core';
import { principalOf } from '../security/auth';

// Webhooks of the caller's tenant, over the webhooks module's API helpers
// (apps/core/src/webhooks/api.ts). The signing secret is in the create
// response once and nowhere else.

export async function webhookRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc; security: SecurityConfig }) {
  const schemaFor = (method: string, path: string) => ({ schema: routeSchema(opts.doc, method, path) });
  // Same rule as the delivery worker: private targets imply plain http is allowed too.
  const policy: TargetPolicy = { allowPrivate: opts.security.webhookAllowPrivate, allowHttp: opts.security.webhookAllowPrivate };

  app.post<{ Body: CreateWebhookInput }>(fastifyPath('/v1/webhooks'), schemaFor('post', '/v1/webhooks'), async (req, reply) => {
    if (!app.keyring) throw new AppError('SERVICE_UNAVAILABLE', 'VMRESTORE_SECRET_KEYS is not set on the server: webhook secrets cannot be stored');
    const { webhook, secret } = await createWebhook(app.db, app.keyring, principalOf(req).tenantId, req.body, policy);
    req.log.info({ webhookId: webhook.id, events: webhook.events }, 'webhook created');
    reply.header('Location', `/v1/webhooks/${webhook.id}`);
    return reply.status(201).send({ ...webhook, secret });
  });

  app.get(fastifyPath('/v1/webhooks'), schemaFor('get', '/v1/webhooks'), async (req) => ({ items: await listWebhooks(app.db, principalOf(req).tenantId) }));

  app.delete<{ Params: { id: string } }>(fastifyPath('/v1/webhooks/{id}'), schemaFor('delete', '/v1/webhooks/{id}'), async (req, reply) => {
    await deleteWebhook(app.db, principalOf(req).tenantId, req.params.id);
    req.log.info({ webhookId: req.params.id }, 'webhook deleted');
    return reply.status(204).send();
  });

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string } }>(
    fastifyPath('/v1/webhooks/{id}/deliveries'),
    schemaFor('get', '/v1/webhooks/{id}/deliveries'),
    async (req) => listDeliveries(app.db, principalOf(req).tenantId, req.params.id, { limit: req.query.limit, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) }),
  );

  app.post<{ Params: { id: string; deliveryId: string } }>(
    fastifyPath('/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver'),
    schemaFor('post', '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver'),
    async (req, reply) => {
      const { tenantId } = principalOf(req);
      await getWebhook(app.db, tenantId, req.params.id);
      // The delivery must be this webhook's, not just the tenant's.
      const owned = await app.db.webhookDelivery.count({ where: { id: req.params.deliveryId, webhookId: req.params.id } });
      if (!owned) throw new WebhookError('WEBHOOK_DELIVERY_NOT_FOUND', `no delivery ${req.params.deliveryId} of webhook ${req.params.id}`);
      await redeliver(app.db, app.webhookQueue, tenantId, req.params.deliveryId);
      req.log.info({ webhookId: req.params.id, deliveryId: req.params.deliveryId }, 'webhook redelivery queued');
      return reply.status(202).send();
    },
  );
}
