// bench/api: requests/s and p99 latency of POST /v1/restores and
// GET /v1/restores/{id} under autocannon, against a bare Fastify route
// measured in the same run, printed as `name: value` lines and ratios.
// Needs the build (npm run build) and the services (scripts/services.sh start).
//   node bench/api/run.mjs        BENCH_SECONDS=5 BENCH_CONNECTIONS=10
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import Fastify from 'fastify';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { buildApp } = require(join(root, 'apps/api/dist'));
const core = require(join(root, 'apps/core/dist'));

const env = { ...process.env };
const envFile = join(root, '.run', 'env');
if (existsSync(envFile)) for (const l of readFileSync(envFile, 'utf8').split('\n')) { const m = /^([A-Z_]+)=(.*)$/.exec(l); if (m && !env[m[1]]) env[m[1]] = m[2]; }
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
const config = core.loadConfig({ ...env, VMRESTORE_QUEUE_PREFIX: `bench${Date.now()}`, LOG_LEVEL: 'silent', VMRESTORE_PORT: '0' });

const app = await buildApp({ config, logLevel: 'silent' });
const apiUrl = await app.listen({ host: '127.0.0.1', port: 0 });
const bare = Fastify({ logger: false });
bare.get('/bare', async () => ({ status: 'ok' }));
const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });

const body = JSON.stringify({ kind: 'in_place', vcenter: 'bench', source: { vm: 'bench-vm', point: 'p1' }, target: { vm: 'vm-1' }, label: 'bench' });
const seed = await (await fetch(`${apiUrl}/v1/restores`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json();

// The load runs in a worker thread so it does not share the servers' event loop.
const measure = (opts) => new Promise((resolve, reject) => autocannon({ duration: seconds, connections, workers: 1, ...opts }, (err, r) => (err ? reject(err) : resolve(r))));
const results = {};
results.bare_get = await measure({ url: `${bareUrl}/bare` });
results.get_restore = await measure({ url: `${apiUrl}/v1/restores/${seed.id}` });
results.post_restores = await measure({ url: `${apiUrl}/v1/restores`, method: 'POST', headers: { 'content-type': 'application/json' }, body });

for (const [name, r] of Object.entries(results)) {
  const bad = r.non2xx + r.errors;
  console.log(`${name}_requests_per_sec: ${r.requests.average.toFixed(0)}`);
  console.log(`${name}_p99_ms: ${r.latency.p99}`);
  if (bad) console.log(`${name}_failed_requests: ${bad}`);
}
const base = results.bare_get;
for (const name of ['get_restore', 'post_restores']) {
  console.log(`${name}_rps_vs_bare: ${(results[name].requests.average / base.requests.average).toFixed(3)}`);
  console.log(`${name}_p99_vs_bare: ${(results[name].latency.p99 / Math.max(base.latency.p99, 1)).toFixed(2)}`);
}

// Leave nothing behind: the bench's jobs and its queue.
await app.db.restoreJob.deleteMany({ where: { vcenter: 'bench' } });
await app.restoreQueue.obliterate({ force: true });
await app.close();
await bare.close();
