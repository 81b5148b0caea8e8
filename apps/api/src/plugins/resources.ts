import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { createDb, createRedis, createRestoreQueue, ensureDefaultTenant, type Config, type Db, type Redis, type RestoreQueue } from '@vmrestore/core';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    db: Db;
    redis: Redis;
    restoreQueue: RestoreQueue;
    defaultTenantId: string;
  }
}

/**
 * Postgres (Prisma), Redis and the restore queue, opened at registration and
 * closed in onClose, so closing the app releases everything it opened.
 */
export const resources = fp(
  async (app: FastifyInstance, opts: { config: Config }) => {
    const { config } = opts;
    const db = createDb(config.databaseUrl);
    const redis = createRedis(config.redisUrl, 'producer');
    const queue = createRestoreQueue(redis, config);
    queue.on('error', (err) => app.log.warn({ err: err.message }, 'restore queue error'));
    app.decorate('config', config);
    app.decorate('db', db);
    app.decorate('redis', redis);
    app.decorate('restoreQueue', queue);
    app.addHook('onClose', async () => {
      await queue.close().catch(() => undefined);
      redis.disconnect();
      await db.$disconnect();
    });
    app.decorate('defaultTenantId', await ensureDefaultTenant(db));
  },
  { name: 'vmrestore-resources' },
);
