import { ConfigError, createDb, createLogger, loadConfig, loadSecurityConfig, startMetricsServer, startWebhookWorker, type Config, type MetricsServer } from '@vmrestore/core';
import { productionPlans, restoreDeps } from './plans';
import { startWorker, type RunningWorker } from './worker';
import type { PlanRegistry } from './plan';

/** Runs a worker process with the given plans until SIGTERM/SIGINT. */
export async function runWorkerProcess(makePlans?: (config: Config) => PlanRegistry): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vmrestore-worker: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.log.level, 'vmrestore-worker');

  // SIGTERM: running jobs stop at their next step boundary and go back to the
  // queue, resumable by any worker; then connections close. The handlers are
  // in place before the worker starts, so an early signal is graceful too.
  let closing = false;
  let started: Promise<RunningWorker> | null = null;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    (started ?? Promise.reject(new Error('worker not started')))
      .then((worker) => worker.close())
      .then(
        () => process.exit(0),
        (err) => {
          log.error({ err: (err as Error).message }, 'error during shutdown');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  const deps = makePlans ? null : restoreDeps(config);
  const plans = makePlans ? makePlans(config) : productionPlans(config, deps!);
  // Webhook deliveries run in the worker processes too, when secrets can be read.
  const hooksDb = deps?.keyring ? createDb(config.databaseUrl, { max: 4 }) : null;
  const hooks =
    hooksDb && deps?.keyring
      ? await startWebhookWorker({ config, db: hooksDb, keyring: deps.keyring, log: log.child({ component: 'webhooks' }), allowPrivate: loadSecurityConfig().webhookAllowPrivate })
      : null;
  // Prometheus /metrics of this process (docs/metrics.md). A port taken (two
  // workers on one host with the same setting) costs the metrics, not the restores.
  const { workerMetricsHost: mhost, workerMetricsPort: mport, metricsToken } = config.ops;
  const metricsServer: MetricsServer | null =
    mport > 0
      ? await startMetricsServer({ host: mhost, port: mport, token: metricsToken }).then(
          (m) => {
            log.info({ url: m.url, token: metricsToken ? 'required' : 'none' }, 'metrics listening');
            return m;
          },
          (err: Error) => {
            log.error({ host: mhost, port: mport, err: err.message }, 'metrics listener could not start (VMRESTORE_WORKER_METRICS_PORT)');
            return null;
          },
        )
      : null;
  started = startWorker({
    config,
    plans,
    log,
    onClose: async () => {
      await metricsServer?.close();
      await hooks?.close();
      await hooksDb?.$disconnect();
      await deps?.close();
    },
  });
  await started;
}

if (require.main === module) {
  runWorkerProcess().catch((err) => {
    process.stderr.write(`vmrestore-worker: failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
