import type { Scope } from '@vmrestore/core';

// Which scope each route needs: the one table the auth hook reads, the tests
// iterate and openapi.yaml documents (`x-scopes` on each operation; a test
// checks the two agree). A route lists the scopes any one of which admits a
// key. A /v1 route missing here fails at registration, so a new route cannot
// be public by accident. Public routes are listed in PUBLIC_ROUTES.

export const ROUTE_SCOPES: Readonly<Record<string, readonly Scope[]>> = {
  'POST /v1/restores': ['restores:write'],
  'GET /v1/restores': ['restores:read'],
  'GET /v1/restores/{id}': ['restores:read'],
  'GET /v1/restores/{id}/events': ['restores:read'],
  'POST /v1/restores/{id}/cancel': ['restores:write'],
  'GET /v1/restores/{id}/report': ['restores:read'],
  'GET /v1/report-keys': ['restores:read'],

  'GET /v1/backups': ['backups:read'],
  'GET /v1/backups/{vm}/points': ['backups:read'],
  'GET /v1/backups/{vm}/points/{point}': ['backups:read'],
  // Verification starts a job (seen under /v1/restores), so it needs the write scope.
  'POST /v1/backups/{vm}/points/{point}/verify': ['restores:write'],
  // An export is a job too.
  'POST /v1/exports': ['restores:write'],

  'POST /v1/keys': ['admin'],
  'GET /v1/keys': ['admin'],
  'DELETE /v1/keys/{id}': ['admin'],

  'POST /v1/vcenters': ['admin'],
  // Restore clients pick a connection by name; admins manage them.
  'GET /v1/vcenters': ['restores:read', 'admin'],
  'GET /v1/vcenters/{id}': ['restores:read', 'admin'],
  'DELETE /v1/vcenters/{id}': ['admin'],
  'POST /v1/vcenters/{id}/test': ['admin'],

  'POST /v1/webhooks': ['admin'],
  'GET /v1/webhooks': ['admin'],
  'DELETE /v1/webhooks/{id}': ['admin'],
  'GET /v1/webhooks/{id}/deliveries': ['admin'],
  'POST /v1/webhooks/{id}/deliveries/{deliveryId}/redeliver': ['admin'],

  // The orphan sweeper's report and requests (docs/orphans.md).
  'GET /v1/orphans': ['admin'],
  'POST /v1/orphans/sweep': ['admin'],
};

/** Routes anyone may call: liveness, readiness and the contract itself. */
export const PUBLIC_ROUTES = ['/healthz', '/readyz'];
export const isPublicPath = (template: string) => PUBLIC_ROUTES.includes(template) || template === '/docs' || template.startsWith('/docs/');

/** Fastify's /v1/restores/:id to the contract's /v1/restores/{id}. */
export const openApiPath = (fastifyUrl: string) => fastifyUrl.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

export const routeKey = (method: string, template: string) => `${method.toUpperCase()} ${template}`;
