import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuthError, authenticateApiKey, SCOPES, takeToken, touchApiKey, type Principal, type SecurityConfig } from '@vmrestore/core';
import { isPublicPath, openApiPath, ROUTE_SCOPES, routeKey } from './route-scopes';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling: set on every /v1 route before its handler runs. */
    principal: Principal | null;
  }
}

/** The tenant of the request; only on routes of ROUTE_SCOPES (the hook guarantees a principal there). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Error(`no principal on ${req.method} ${req.url}: route missing from ROUTE_SCOPES`);
  return req.principal;
}

/** The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(req: FastifyRequest): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    if (!m) throw new AuthError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <api key>"');
    return m[1]!;
  }
  const x = req.headers['x-api-key'];
  if (typeof x === 'string' && x.length) return x.trim();
  return null;
}

/**
 * Authentication, scope check and rate limit, in onRequest: before the body
 * is read, so an unauthenticated caller cannot make the server parse 1 MiB.
 */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: { security: SecurityConfig; defaultTenantId: string }) => {
    const { security, defaultTenantId } = opts;
    app.decorateRequest('principal', null);

    // Every /v1 route must say which scope it needs.
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const template = openApiPath(route.url);
      if (!template.startsWith('/v1/')) return;
      for (const m of methods) {
        if (m === 'HEAD' || m === 'OPTIONS') continue;
        if (!ROUTE_SCOPES[routeKey(m, template)]) throw new Error(`route ${m} ${template} has no entry in ROUTE_SCOPES (apps/api/src/security/route-scopes.ts)`);
      }
    });

    const lastTouched = new Map<string, number>();
    const TOUCH_MS = 60_000;

    app.addHook('onRequest', async (req, reply) => {
      if (req.method === 'OPTIONS') return;
      const url = req.routeOptions.url;
      if (!url) return; // no such route: the not-found handler answers
      const template = openApiPath(url);
      if (isPublicPath(template)) return;
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const needed = ROUTE_SCOPES[routeKey(method, template)];
      if (!needed) return;

      let principal: Principal;
      if (security.auth === 'disabled') {
        principal = { tenantId: defaultTenantId, keyId: null, scopes: SCOPES };
      } else {
        const key = presentedKey(req);
        if (!key) throw new AuthError('UNAUTHENTICATED', 'this call needs an API key: "Authorization: Bearer <key>" or "X-API-Key: <key>"');
        principal = await authenticateApiKey(app.db, key);
      }
      if (!needed.some((s) => principal.scopes.includes(s))) {
        throw new AuthError('FORBIDDEN_SCOPE', `${method} ${template} needs the scope ${needed.join(' or ')}`);
      }
      req.principal = principal;
      if (principal.keyId) req.log = req.log.child({ apiKeyId: principal.keyId, tenantId: principal.tenantId });

      if (security.rateLimitPerMin > 0) {
        const bucket = `${app.config.queue.prefix}:ratelimit:${principal.keyId ?? `ip:${req.ip}`}`;
        const decision = await takeToken(app.redis, bucket, security.rateLimitPerMin).catch((err: Error) => {
          // Redis down: serve rather than refuse everything; /readyz reports it.
          req.log.warn({ err: err.message }, 'rate limiter unavailable');
          return null;
        });
        if (decision) {
          reply.header('ratelimit-limit', String(security.rateLimitPerMin));
          reply.header('ratelimit-remaining', String(Math.max(0, decision.remaining)));
          if (!decision.allowed) {
            const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
            reply.header('retry-after', String(seconds));
            throw new AuthError('RATE_LIMITED', `more than ${security.rateLimitPerMin} requests a minute with this API key; retry in ${seconds} s`);
          }
        }
      }

      if (principal.keyId) {
        const now = Date.now();
        const last = lastTouched.get(principal.keyId) ?? 0;
        if (now - last >= TOUCH_MS) {
          lastTouched.set(principal.keyId, now);
          if (lastTouched.size > 10_000) lastTouched.clear();
          touchApiKey(app.db, principal.keyId, TOUCH_MS).catch((err: Error) => req.log.warn({ err: err.message }, 'could not record API key use'));
        }
      }
    });
  },
  { name: 'vmrestore-auth', dependencies: ['vmrestore-resources'] },
);
