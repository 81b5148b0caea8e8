import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { AuthError, enableDefaultMetrics, metrics, metricsAuthorized, metricsRegistry, QUEUE_STATES, setJobCounts, setQueueCounts } from '@vmrestore/core';
import { openApiPath } from '../security/route-scopes';

// GET /metrics of the api process (docs/metrics.md): HTTP timings of every
// request, plus two gauges read at scrape time: jobs by kind and state (one
// GROUP BY in Postgres) and BullMQ queue depth. Prometheus scrapers carry no
// API key: the route is public unless VMRESTORE_METRICS_TOKEN is set, then it
// needs `Authorization: Bearer <token>`. Labels never name a tenant or a job.

const SCRAPE_TIMEOUT_MS = 3_000;

const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

export const metricsPlugin = fp(
  async (app: FastifyInstance, opts: { token: string | null }) => {
    enableDefaultMetrics();

    // Registered before the routes so every route gets the hook. Unmatched
    // URLs share one label: a scanner cannot grow the series count.
    app.addHook('onResponse', async (req, reply) => {
      const url = req.routeOptions.url;
      const route = url ? openApiPath(url) : '(unmatched)';
      metrics.httpRequestDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });

    const refreshJobs = async () => {
      const rows = await within(app.db.restoreJob.groupBy({ by: ['kind', 'state'], _count: { _all: true } }), SCRAPE_TIMEOUT_MS);
      setJobCounts(rows.map((r) => ({ kind: r.kind, state: r.state, count: r._count._all })));
    };
    const refreshQueues = async () => {
      for (const q of [app.restoreQueue, app.webhookQueue]) {
        setQueueCounts(q.name, await within(q.getJobCounts(...QUEUE_STATES), SCRAPE_TIMEOUT_MS));
      }
    };

    app.get('/metrics', { logLevel: 'warn' }, async (req, reply) => {
      if (!metricsAuthorized(req.headers.authorization, opts.token)) {
        reply.header('www-authenticate', 'Bearer realm="vmrestore metrics"');
        throw new AuthError('UNAUTHENTICATED', 'GET /metrics needs "Authorization: Bearer <token>" with the token set in VMRESTORE_METRICS_TOKEN');
      }
      // Postgres or Redis down: the scrape still answers (process and HTTP
      // metrics), without the gauges it could not read rather than stale ones.
      await Promise.all([
        refreshJobs().catch((err: Error) => {
          metrics.jobs.reset();
          req.log.warn({ err: err.message }, 'metrics: cannot count jobs');
        }),
        refreshQueues().catch((err: Error) => {
          metrics.queueJobs.reset();
          req.log.warn({ err: err.message }, 'metrics: cannot read queue depth');
        }),
      ]);
      return reply.type(metricsRegistry.contentType).send(await metricsRegistry.metrics());
    });
  },
  { name: 'vmrestore-metrics', dependencies: ['vmrestore-resources'] },
);
