import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

// CORS, off unless VMRESTORE_CORS_ORIGINS lists origins; then only those get
// the headers (no wildcard: keys are bearer credentials a page could leak).

const ALLOW_HEADERS = 'authorization, x-api-key, content-type, idempotency-key, last-event-id, x-request-id';
const EXPOSE_HEADERS = 'location, x-request-id, retry-after, idempotent-replayed, ratelimit-limit, ratelimit-remaining';
const ALLOW_METHODS = 'GET, POST, DELETE, OPTIONS';

export const corsPlugin = fp(
  async (app: FastifyInstance, opts: { origins: string[] }) => {
    if (!opts.origins.length) return;
    const allowed = new Set(opts.origins);
    app.addHook('onRequest', async (req, reply) => {
      const origin = req.headers.origin;
      reply.header('vary', 'Origin');
      if (typeof origin !== 'string' || !allowed.has(origin)) return;
      reply.header('access-control-allow-origin', origin);
      reply.header('access-control-expose-headers', EXPOSE_HEADERS);
    });
    // Preflight: answered for allowed origins only, without authentication
    // (browsers send no credentials on it).
    app.options('/*', async (req, reply) => {
      const origin = req.headers.origin;
      if (typeof origin !== 'string' || !allowed.has(origin)) return reply.status(204).send();
      reply.header('access-control-allow-methods', ALLOW_METHODS);
      reply.header('access-control-allow-headers', ALLOW_HEADERS);
      reply.header('access-control-max-age', '600');
      return reply.status(204).send();
    });
  },
  { name: 'vmrestore-cors' },
);
