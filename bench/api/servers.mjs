// The servers under test for bench/api/run.mjs, in their own process so the
// load generator does not share their event loop. Prints one JSON line
// {apiUrl, bareUrl, key}, serves until SIGTERM, then removes what it made.
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { buildApp } = require(join(root, 'apps/api/dist'));
const core = require(join(root, 'apps/core/dist'));

const env = { ...process.env };
const envFile = join(root, '.run', 'env');
if (existsSync(envFile)) for (const l of readFileSync(envFile, 'utf8').split('\n')) { const m = /^([A-Z_]+)=(.*)$/.exec(l); if (m && !env[m[1]]) env[m[1]] = m[2]; }
const config = core.loadConfig({ ...env, VMRESTORE_QUEUE_PREFIX: `bench${Date.now()}`, LOG_LEVEL: 'silent', VMRESTORE_PORT: '0' });

// As deployed: API keys checked on every request; the rate limit off (it would measure the limiter).
const app = await buildApp({ config, logLevel: 'silent', security: { ...core.loadSecurityConfig(env), auth: 'required', rateLimitPerMin: 0 } });
const apiUrl = await app.listen({ host: '127.0.0.1', port: 0 });
const tenant = await core.createTenant(app.db, `bench-${Date.now()}`);
const { key } = await core.createApiKey(app.db, tenant.id, { name: 'bench', scopes: ['restores:read', 'restores:write'] });
const bare = Fastify({ logger: false });
bare.get('/bare', async () => ({ status: 'ok' }));
const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(JSON.stringify({ apiUrl, bareUrl, key }) + '\n');

process.on('SIGTERM', async () => {
  await app.db.tenant.delete({ where: { id: tenant.id } }); // its jobs and key go with it
  await app.restoreQueue.obliterate({ force: true });
  await app.close();
  await bare.close();
  process.exit(0);
});
