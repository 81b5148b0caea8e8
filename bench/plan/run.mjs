// Restore planner benchmark: a 30-point chain, 100k changed areas per point.
//
//   node bench/plan/run.mjs            (from the repo root)
//
// Compiles apps/core/src/backup alone into a temporary directory (or uses
// PLAN_BUILD=<dir of compiled backup/*.js>). Each case runs in its own child process
// so its peak RSS (input record tables included) is its own. Prints
// `name: value` lines.
import { execFileSync, fork } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const POINTS = 30;
const REPEAT = Number(process.env.REPEAT ?? 3);
const AREAS = 100_000;
const S = 512;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function buildDir() {
  // Compiled fresh from source each run: apps/core/dist may be stale or mid-build by others.
  if (process.env.PLAN_BUILD && existsSync(path.join(process.env.PLAN_BUILD, 'planner.js'))) return process.env.PLAN_BUILD;
  const out = mkdtempSync(path.join(os.tmpdir(), 'vmrestore-plan-build-'));
  const src = path.join(repoRoot, 'apps/core/src/backup');
  const files = readdirSync(src).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((f) => path.join(src, f));
  execFileSync(
    process.execPath,
    [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '--outDir', out, '--module', 'commonjs', '--target', 'ES2022', '--strict', '--skipLibCheck',
      '--types', 'node', '--typeRoots', path.join(repoRoot, 'node_modules/@types'), ...files],
    { stdio: 'inherit' },
  );
  return out;
}

/** Deterministic LCG. */
function rng(seed) {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296;
}

/**
 * One point's records. Scenario "hot": CBT-like 64 KiB-granular areas, 70% in
 * a hot 5% of a 2 TiB disk (databases, logs: the same places change daily),
 * 30% anywhere. Scenario "uniform": areas spread evenly, little overlap (worst
 * case for the planner's output size).
 */
function pointTable(P, scenario, p, capacity) {
  const rnd = rng(1000 + p);
  const ranges = [];
  const hotStart = Math.floor(capacity * 0.3 / MiB) * MiB;
  const hotLen = capacity * 0.05;
  for (let i = 0; i < AREAS; i++) {
    let start, len;
    if (scenario === 'uniform') {
      const stride = capacity / AREAS;
      len = (1 + Math.floor(rnd() * 128)) * S;
      start = Math.floor((i * stride + rnd() * (stride - len)) / S) * S;
    } else {
      len = (1 + Math.floor(-Math.log(1 - rnd() * 0.999) * 3)) * 64 * KiB;
      const base = rnd() < 0.7 ? hotStart + rnd() * hotLen : rnd() * capacity;
      start = Math.min(capacity - len, Math.floor(base / (64 * KiB)) * 64 * KiB);
    }
    ranges.push({ start, end: start + len });
  }
  const merged = P.extents.fromRanges(ranges);
  // Split merged areas into blocks of at most 1 MiB, as the writer does.
  let n = 0;
  for (let i = 0; i < merged.count; i++) n += Math.ceil((merged.ends[i] - merged.starts[i]) / MiB);
  const t = { count: n, diskOffset: new Float64Array(n), length: new Float64Array(n), dataOffset: new Float64Array(n), sha256: new Uint8Array(n * 32) };
  let r = 0;
  let data = 0;
  for (let i = 0; i < merged.count; i++) {
    for (let at = merged.starts[i]; at < merged.ends[i]; at += MiB) {
      const len = Math.min(MiB, merged.ends[i] - at);
      t.diskOffset[r] = at;
      t.length[r] = len;
      t.dataOffset[r] = data;
      t.sha256[r * 32] = r & 0xff;
      data += len;
      r++;
    }
  }
  return t;
}

function runCase(build, scenario, kind) {
  const require = createRequire(import.meta.url);
  const P = require(path.join(build, 'index.js'));
  const capacity = 2 * 1024 * GiB;
  const points = [];
  let records = 0;
  for (let p = 0; p < POINTS; p++) {
    const t = pointTable(P, scenario, p, capacity);
    records += t.count;
    points.push({ pointId: `p${p}`, source: `/backups/vm/p${p}/disk-2000.dat`, records: t });
    global.gc?.(); // drop the generator's temporary arrays before the next point
  }
  const input = { diskKey: 2000, capacityBytes: capacity, points };
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  // The machine may be shared: time several runs, report the fastest and the median.
  const times = [];
  let peak = 0;
  let count = 0;
  let bytes = 0;
  for (let run = 0; run < REPEAT; run++) {
    count = 0;
    bytes = 0;
    const t0 = process.hrtime.bigint();
    if (kind === 'backward' || kind === 'forward') {
      const plan = P.planDiskCompact(input, kind);
      count = plan.count;
      bytes = plan.bytes;
    } else if (kind === 'backward-batches') {
      const plan = P.planDiskCompact(input, 'backward');
      for (const batch of P.extentBatches(plan, 65536)) {
        count += batch.length;
        for (const e of batch) bytes += e.length;
      }
    } else if (kind === 'backward-array') {
      const plan = P.planDisk(input, 'backward');
      count = plan.extents.length;
      bytes = plan.bytes;
    }
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (run === 0) peak = process.resourceUsage().maxRSS * 1024; // peak of one planning, not of the repeats
    global.gc?.();
  }
  times.sort((a, b) => a - b);
  const ms = times[0];
  const medianMs = times[Math.floor(times.length / 2)];
  process.send({ records, ms, medianMs, count, bytes, peakMiB: peak / MiB, inputMiB: rssBefore / MiB });
}

function child(build, scenario, kind) {
  return new Promise((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ['--case', build, scenario, kind], { execArgv: ['--expose-gc'] });
    c.on('message', resolve);
    c.on('error', reject);
    c.on('exit', (code) => code !== 0 && reject(new Error(`case ${scenario}/${kind} exited with ${code}`)));
  });
}

async function main() {
  const build = buildDir();
  console.log(`chain: ${POINTS} points x ${AREAS} areas, 2 TiB disk`);
  for (const scenario of ['hot', 'uniform']) {
    const back = await child(build, scenario, 'backward');
    const fwd = await child(build, scenario, 'forward');
    console.log(`${scenario}.records_total: ${back.records}`);
    console.log(`${scenario}.backward.plan_ms: ${back.ms.toFixed(0)} (median of ${REPEAT}: ${back.medianMs.toFixed(0)})`);
    console.log(`${scenario}.backward.peak_rss_mib: ${back.peakMiB.toFixed(0)} (input tables + runtime before planning: ${back.inputMiB.toFixed(0)})`);
    console.log(`${scenario}.backward.extents: ${back.count}`);
    console.log(`${scenario}.forward.plan_ms: ${fwd.ms.toFixed(0)} (median of ${REPEAT}: ${fwd.medianMs.toFixed(0)})`);
    console.log(`${scenario}.forward.peak_rss_mib: ${fwd.peakMiB.toFixed(0)}`);
    console.log(`${scenario}.forward.extents: ${fwd.count}`);
    console.log(`${scenario}.bytes_written.backward: ${back.bytes}`);
    console.log(`${scenario}.bytes_written.forward: ${fwd.bytes}`);
    console.log(`${scenario}.bytes_written.backward_over_forward: ${(back.bytes / fwd.bytes).toFixed(3)}`);
    const batches = await child(build, scenario, 'backward-batches');
    console.log(`${scenario}.backward.plan_plus_extent_batches_ms: ${batches.ms.toFixed(0)} (median ${batches.medianMs.toFixed(0)})`);
    console.log(`${scenario}.backward.plan_plus_extent_batches_peak_rss_mib: ${batches.peakMiB.toFixed(0)}`);
    const arr = await child(build, scenario, 'backward-array');
    console.log(`${scenario}.backward.planDisk_extent_array_ms: ${arr.ms.toFixed(0)} (median ${arr.medianMs.toFixed(0)})`);
    console.log(`${scenario}.backward.planDisk_extent_array_peak_rss_mib: ${arr.peakMiB.toFixed(0)}`);
  }
}

if (process.argv[2] === '--case') runCase(process.argv[3], process.argv[4], process.argv[5]);
else main().catch((err) => {
  console.error(err);
  process.exit(1);
});
