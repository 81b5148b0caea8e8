import { loadConfig, loadSecurityConfig, ConfigError, type SecurityConfig } from '@vmrestore/core';
import { buildApp } from './app';

async function main() {
  let config;
  let security: SecurityConfig;
  try {
    config = loadConfig();
    security = loadSecurityConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vmrestore-api: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const app = await buildApp({ config, security });

  // SIGTERM: stop accepting, finish in-flight requests, close Postgres,
  // Redis and the queue (each plugin's onClose), then exit.
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (err) => {
        app.log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  // Handlers first, then listen: a SIGTERM right after start is still graceful.
  await app.listen({ host: config.api.host, port: config.api.port });
}

main().catch((err) => {
  process.stderr.write(`vmrestore-api: failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
