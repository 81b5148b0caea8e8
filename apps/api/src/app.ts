import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { loadSecurityConfig, loggerOptions, loadOpenApi, OPENAPI_PATH, type Config, type Keyring, type SecurityConfig } from '@vmrestore/core';
import type { DestinationStream } from 'pino';
import { resources } from './plugins/resources';
import { frameworkErrors, registerProblemHandlers } from './problem';
import { validatorCompiler } from './validation';
import { restoreRoutes } from './routes/restores';
import { healthRoutes } from './routes/health';
import { backupRoutes, exportRoutes } from './routes/backups';
import { keyRoutes } from './routes/keys';
import { vcenterRoutes } from './routes/vcenters';
import { webhookRoutes } from './routes/webhooks';
import { orphanRoutes } from './routes/orphans';
import { dashboardRoutes } from './routes/dashboard';
import type { SseOptions } from './routes/event-stream';
import { authPlugin } from './security/auth';
import { metricsPlugin } from './plugins/metrics';
import { bullBoardPlugin } from './plugins/bull-board';
import { corsPlugin } from './security/cors';

export interface BuildOptions {
  config: Config;
  /** Where logs go (tests capture them to check that no secret is written). */
  logStream?: DestinationStream;
  logLevel?: string;
  /** Auth, rate limit, CORS, webhook targets; default: read from the environment (loadSecurityConfig). */
  security?: SecurityConfig;
  /** Default: VMRESTORE_SECRET_KEYS, read once (null: secrets cannot be stored). */
  keyring?: Keyring | null;
  /** Event stream timing (tests shorten the heartbeat). */
  sse?: Partial<SseOptions>;
  /** Timeout of one call of POST /v1/vcenters/{id}/test. */
  vcenterTestTimeoutMs?: number;
}

/** The API as an app, not a server: tests inject requests, server.ts listens. */
export async function buildApp(opts: BuildOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const security = opts.security ?? loadSecurityConfig();
  const logOpts = { ...loggerOptions(opts.logLevel ?? config.log.level, 'vmrestore-api'), ...(opts.logStream ? { stream: opts.logStream } : {}) };
  const app = Fastify({
    logger: logOpts,
    bodyLimit: config.api.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    routerOptions: { ignoreTrailingSlash: true },
    // Bad percent-encoding or an over-long path parameter: a problem+json 400 too.
    frameworkErrors,
  });
  app.setValidatorCompiler(validatorCompiler());
  registerProblemHandlers(app);
  // While closing, answers in flight end their keep-alive connection, so
  // close() does not wait out the keep-alive timeout of each client.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', String(req.id));
    if (closing) reply.header('connection', 'close');
  });

  await app.register(resources, { config, ...(opts.keyring !== undefined ? { keyring: opts.keyring } : {}) });
  if (security.auth === 'disabled') app.log.warn('VMRESTORE_AUTH=disabled: every request acts as the default tenant with every scope (local demos only)');
  await app.register(metricsPlugin, { token: config.ops.metricsToken }); // /metrics, and HTTP timings of every route (docs/metrics.md)
  await app.register(corsPlugin, { origins: security.corsOrigins });
  await app.register(authPlugin, { security, defaultTenantId: app.defaultTenantId });

  // The contract, served as written.
  await app.register(swagger, { mode: 'static', specification: { path: OPENAPI_PATH, baseDir: OPENAPI_PATH.replace(/\/[^/]+$/, '') } });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const doc = loadOpenApi();
  await app.register(healthRoutes);
  await app.register(restoreRoutes, { doc, ...(opts.sse ? { sse: opts.sse } : {}) });
  await app.register(backupRoutes, { doc });
  await app.register(exportRoutes, { doc });
  await app.register(keyRoutes, { doc });
  await app.register(vcenterRoutes, { doc, ...(opts.vcenterTestTimeoutMs ? { testTimeoutMs: opts.vcenterTestTimeoutMs } : {}) });
  await app.register(webhookRoutes, { doc, security });
  await app.register(orphanRoutes, { doc });
  await app.register(bullBoardPlugin, { security, operatorTenant: config.ops.operatorTenant }); // /admin/queues (docs/metrics.md)
  await app.register(dashboardRoutes); // /ui: static files only, no data (docs/dashboard.md)
  return app;
}
