// bench/api: requests/s and p99 latency of POST /v1/restores and
// GET /v1/restores/{id} under autocannon, against a bare Fastify route
// measured in the same run, printed as `name: value` lines and ratios.
// The servers run in a child process (bench/api/servers.mjs).
// Needs the build (npm run build) and the services (scripts/services.sh start).
//   node bench/api/run.mjs        BENCH_SECONDS=5 BENCH_CONNECTIONS=10
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);

const child = spawn(process.execPath, [join(here, 'servers.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const first = await new Promise((resolve, reject) => {
  createInterface({ input: child.stdout }).once('line', resolve);
  child.once('exit', (code) => reject(new Error(`bench servers exited ${code}`)));
});
const { apiUrl, bareUrl, key } = JSON.parse(first);
const auth = { authorization: `Bearer ${key}` };
// Fixed-width VM numbers keep every body the same length (autocannon sends the first body's length).
const vmId = (i) => `vm-${String(i).padStart(9, '0')}`;
const body = JSON.stringify({ kind: 'in_place', vcenter: 'bench', source: { vm: 'bench-vm', point: 'p1' }, target: { vm: vmId(0) }, label: 'bench' });
const seed = await (await fetch(`${apiUrl}/v1/restores`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body })).json();

const measure = (opts) => new Promise((resolve, reject) => autocannon({ duration: seconds, connections, ...opts }, (err, r) => (err ? reject(err) : resolve(r))));
const results = {};
results.bare_get = await measure({ url: `${bareUrl}/bare` });
results.get_restore = await measure({ url: `${apiUrl}/v1/restores/${seed.id}`, headers: auth });
// Each POST restores another VM: one active in-place restore per VM.
let n = 0;
results.post_restores = await measure({
  url: apiUrl,
  requests: [
    {
      method: 'POST',
      path: '/v1/restores',
      headers: { 'content-type': 'application/json', ...auth },
      body,
      setupRequest: (req) => ({ ...req, body: body.replace(vmId(0), vmId(++n)) }),
    },
  ],
});

for (const [name, r] of Object.entries(results)) {
  console.log(`${name}_requests_per_sec: ${r.requests.average.toFixed(0)}`);
  console.log(`${name}_p99_ms: ${r.latency.p99}`);
  const bad = r.non2xx + r.errors;
  if (bad) console.log(`${name}_failed_requests: ${bad} (status codes: ${JSON.stringify(r.statusCodeStats)})`);
}
const base = results.bare_get;
for (const name of ['get_restore', 'post_restores']) {
  console.log(`${name}_rps_vs_bare: ${(results[name].requests.average / base.requests.average).toFixed(3)}`);
  console.log(`${name}_p99_vs_bare: ${(results[name].latency.p99 / Math.max(base.latency.p99, 1)).toFixed(2)}`);
}
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
