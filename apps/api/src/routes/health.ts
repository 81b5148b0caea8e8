import type { FastifyInstance } from 'fastify';

const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

export async function healthRoutes(app: FastifyInstance) {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const [postgres, redis] = await Promise.all([
      within(app.db.$queryRaw`SELECT 1`, 2_000).then(() => 'ok' as const, () => 'unavailable' as const),
      within(app.redis.ping(), 2_000).then(() => 'ok' as const, () => 'unavailable' as const),
    ]);
    const ok = postgres === 'ok' && redis === 'ok';
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks: { postgres, redis } });
  });
}
