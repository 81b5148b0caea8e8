import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import {
  createDb,
  createRedis,
  createRestoreQueue,
  createWebhookQueue,
  ensureDefaultTenant,
  loadKeyring,
  SecretError,
  SECRET_KEYS_ENV,
  type Config,
  type Db,
  type Keyring,
  type RedisClient,
  type RestoreQueue,
  type WebhookQueue,
} from '@vmrestore/core';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    db: Db;
    redis: RedisClient;
    restoreQueue: RestoreQueue;
    /** Producer side of the webhook deliveries queue (redelivery). */
    webhookQueue: WebhookQueue;
    /** The `default` tenant: every request's tenant when VMRESTORE_AUTH=disabled. */
    defaultTenantId: string;
    /** Keys for secrets at rest (vCenter passwords, webhook secrets); null when VMRESTORE_SECRET_KEYS is unset. */
    keyring: Keyring | null;
  }
}

/**
 * Postgres (Prisma), Redis, the restore queue and the secrets keyring, opened
 * at registration and closed in onClose, so closing the app releases
 * everything it opened. The keyring is read once, here: a malformed
 * VMRESTORE_SECRET_KEYS stops the start; an absent one only disables the
 * routes that store secrets (they answer 503).
 */
export const resources = fp(
  async (app: FastifyInstance, opts: { config: Config; keyring?: Keyring | null }) => {
    const { config } = opts;
    let keyring: Keyring | null;
    if (opts.keyring !== undefined) {
      keyring = opts.keyring;
    } else {
      try {
        keyring = loadKeyring();
      } catch (err) {
        if (!(err instanceof SecretError) || (process.env[SECRET_KEYS_ENV] ?? '').trim() !== '') throw err;
        app.log.warn(`${SECRET_KEYS_ENV} is not set: vCenter connections and webhooks cannot be stored`);
        keyring = null;
      }
    }
    const db = createDb(config.databaseUrl);
    const redis = createRedis(config.redisUrl, 'producer');
    const queue = createRestoreQueue(redis, config);
    queue.on('error', (err) => app.log.warn({ err: err.message }, 'restore queue error'));
    const webhookQueue = createWebhookQueue(redis, config);
    webhookQueue.on('error', (err) => app.log.warn({ err: err.message }, 'webhook queue error'));
    app.decorate('config', config);
    app.decorate('db', db);
    // Named: fastify's inference would pick one member of the Redis | Cluster union.
    app.decorate<RedisClient>('redis', redis);
    app.decorate('restoreQueue', queue);
    app.decorate('webhookQueue', webhookQueue);
    app.decorate('keyring', keyring);
    app.addHook('onClose', async () => {
      await queue.close().catch(() => undefined);
      await webhookQueue.close().catch(() => undefined);
      redis.disconnect();
      await db.$disconnect();
    });
    app.decorate('defaultTenantId', await ensureDefaultTenant(db));
  },
  { name: 'vmrestore-resources' },
);
