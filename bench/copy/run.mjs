// Benchmarks of the native copy (run after `npm run build`, or `npx tsc -b native-vddk`):
//   node bench/copy/run.mjs          BENCH_COPY_GB=1 for a small run (default 4)
// Prints `name: value` lines:
//   full_copy_*        N GiB into a raw file vs `dd bs=4M conv=fsync` of the same bytes
//   sparse_*           a disk 64x larger than its data (data = N/4 GiB, at least 256 MiB), copied
//                      as scattered extents, vs one contiguous copy of the same amount
//   event_loop_p99_ms  event-loop delay p99 while the full copy runs (perf_hooks, 1 ms
//                      resolution; event_loop_p99_idle_ms is the same measure with no copy)
//   rss_growth_mib     peak RSS growth during the full copy
//   throttled_*        the sparse run's data copied under maxBytesPerSec = half the full copy's
//                      rate: throttled_copy_mib_per_s end to end (the final fsync included, which
//                      the cap does not pace), throttled_write_phase_mib_per_s up to the last
//                      progress report before the flush, throttled_vs_cap_ratio = write phase / cap
//   batched_copy_s / checkpointed_copy_s  the full copy in 256 MiB copies (each flushed) vs one copy
//                      with a durable checkpoint every 256 MiB (direct I/O, the default);
//                      direct_io_speedup: that copy through the page cache (direct: false) vs direct;
//                      flush_behind_speedup: the page-cache copy with flush-behind off vs on;
//                      two_streams_vs_one_speedup: two range streams vs one copy
//   unthrottled_with_limiter_unset_vs_baseline_ratio  the same copy with an unset (0) shared
//                      limiter vs none (time of none / time with; best of 3 each, order alternated)
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const facade = path.join(here, '..', '..', 'native-vddk', 'dist', 'index.js');
if (!fs.existsSync(facade)) {
  console.error(`missing ${facade}: run \`npx tsc -b native-vddk\` (and build the addon) first`);
  process.exit(2);
}
const { copy } = require(facade);
const { createRateLimiter } = require(facade);

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const gb = Number(process.env.BENCH_COPY_GB ?? 4);
if (!(gb > 0)) throw new Error(`BENCH_COPY_GB must be a positive number, got ${process.env.BENCH_COPY_GB}`);
const size = Math.round((gb * GiB) / MiB) * MiB;
const dir = fs.mkdtempSync(path.join(process.env.BENCH_COPY_DIR ?? os.tmpdir(), 'bench-copy-'));

function sparseFile(file, bytes) {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, bytes);
}

function writeSource(file, bytes) {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(16 * MiB);
  for (let off = 0; off < bytes; off += chunk.length) {
    randomFillSync(chunk);
    fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off), off);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

function extentsOf(length, step, targetOf) {
  const out = [];
  for (let off = 0, i = 0; off < length; off += step, i++) {
    out.push({ source: 0, sourceOffset: off, targetOffset: targetOf(off, i), length: Math.min(step, length - off) });
  }
  return out;
}

async function timed(fn) {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

function line(name, value) {
  console.log(`${name}: ${value}`);
}

try {
  const src = path.join(dir, 'src.bin');
  writeSource(src, size);

  // dd of the same bytes, into a preallocated (sparse) target like the copy's.
  const ddTarget = path.join(dir, 'dd.raw');
  sparseFile(ddTarget, size);
  const ddSecs = await timed(async () =>
    execFileSync('dd', [`if=${src}`, `of=${ddTarget}`, 'bs=4M', 'conv=fsync,notrunc', 'status=none']),
  );
  fs.rmSync(ddTarget);

  const target = path.join(dir, 'copy.raw');
  sparseFile(target, size);
  // Event-loop delay at 1 ms resolution, idle first for a baseline (the
  // histogram includes the resolution itself and any CPU contention).
  const idle = monitorEventLoopDelay({ resolution: 1 });
  idle.enable();
  await new Promise((r) => setTimeout(r, 1000));
  idle.disable();
  const h = monitorEventLoopDelay({ resolution: 1 });
  const rss0 = process.memoryUsage().rss;
  let rssPeak = rss0;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 20);
  h.enable();
  let progressCalls = 0;
  const copySecs = await timed(() =>
    copy({
      sources: [src],
      extents: extentsOf(size, 64 * MiB, (off) => off),
      target: { kind: 'file', path: target },
      progressIntervalMs: 100,
      onProgress: () => progressCalls++,
    }),
  );
  h.disable();
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  fs.rmSync(target);

  line('full_copy_gib', (size / GiB).toFixed(2));
  line('full_copy_mib_per_s', (size / MiB / copySecs).toFixed(1));
  line('dd_mib_per_s', (size / MiB / ddSecs).toFixed(1));
  line('full_copy_vs_dd_ratio', (ddSecs / copySecs).toFixed(3));
  line('event_loop_p99_idle_ms', (idle.percentile(99) / 1e6).toFixed(2));
  line('event_loop_p99_ms', (h.percentile(99) / 1e6).toFixed(2));
  line('event_loop_max_ms', (h.max / 1e6).toFixed(2));
  line('progress_callbacks', progressCalls);
  line('rss_growth_mib', ((rssPeak - rss0) / MiB).toFixed(1));

  // Sparse: data spread over a disk 64x its size, vs the same bytes contiguous.
  const data = Math.max(256 * MiB, Math.min(size, Math.round(size / 4 / MiB) * MiB));
  const capacity = data * 64;
  const sparse = path.join(dir, 'sparse.raw');
  sparseFile(sparse, capacity);
  const scattered = extentsOf(data, 4 * MiB, (_off, i) => i * 64 * 4 * MiB);
  const sparseSecs = await timed(() => copy({ sources: [src], extents: scattered, target: { kind: 'file', path: sparse } }));
  fs.rmSync(sparse);
  const dense = path.join(dir, 'dense.raw');
  sparseFile(dense, data);
  const denseSecs = await timed(() =>
    copy({ sources: [src], extents: extentsOf(data, 64 * MiB, (off) => off), target: { kind: 'file', path: dense } }),
  );
  fs.rmSync(dense);
  line('sparse_capacity_gib', (capacity / GiB).toFixed(2));
  line('sparse_data_gib', (data / GiB).toFixed(2));
  line('sparse_copy_s', sparseSecs.toFixed(2));
  line('dense_copy_s', denseSecs.toFixed(2));
  line('sparse_vs_dense_time_ratio', (sparseSecs / denseSecs).toFixed(3));

  // Bandwidth caps: a capped copy, and the cost of an unset limiter.
  const denseExtents = extentsOf(data, 64 * MiB, (off) => off);
  const copyOnce = async (extra) => {
    const file = path.join(dir, 'throttle.raw');
    sparseFile(file, data);
    const secs = await timed(() => copy({ sources: [src], extents: denseExtents, target: { kind: 'file', path: file }, ...extra }));
    fs.rmSync(file);
    return secs;
  };
  const capRate = Math.max(MiB, Math.round(size / copySecs / 2));
  const cappedReports = [];
  const cappedSecs = await copyOnce({ maxBytesPerSec: capRate, progressIntervalMs: 100, onProgress: (p) => cappedReports.push(p) });
  // The last report is made after the flush; the one before it ends the write phase.
  const writePhaseRate = (cappedReports.at(-2) ?? cappedReports.at(-1)).rateBytesPerSec;
  const unsetLimiter = createRateLimiter(0);
  let baseBest = Infinity;
  let unsetBest = Infinity;
  for (let i = 0; i < 3; i++) {
    // alternate which goes first, so neither always inherits the other's writeback
    for (const unset of i % 2 ? [true, false] : [false, true]) {
      if (unset) unsetBest = Math.min(unsetBest, await copyOnce({ rateLimiter: unsetLimiter }));
      else baseBest = Math.min(baseBest, await copyOnce({}));
    }
  }
  line('throttle_cap_mib_per_s', (capRate / MiB).toFixed(1));
  line('throttled_copy_mib_per_s', (data / MiB / cappedSecs).toFixed(1));
  line('throttled_write_phase_mib_per_s', (writePhaseRate / MiB).toFixed(1));
  line('throttled_vs_cap_ratio', (writePhaseRate / capRate).toFixed(3));
  line('unthrottled_with_limiter_unset_vs_baseline_ratio', (baseBest / unsetBest).toFixed(3));

  // Checkpointing: the full copy as the worker wrote it before (one copy per
  // 256 MiB batch, each ending in an fsync) vs one copy with a durable
  // checkpoint every 256 MiB (direct I/O, the default), vs the same
  // through the page cache (direct: false) with flush-behind on and off;
  // and two range streams at once vs one copy.
  const full = extentsOf(size, 1 * MiB, (off) => off);
  const perBatch = (256 * MiB) / MiB;
  const into = async (fn) => {
    const file = path.join(dir, 'cp.raw');
    sparseFile(file, size);
    execFileSync('sync');
    const secs = await timed(() => fn(file));
    fs.rmSync(file);
    return secs;
  };
  const batchedSecs = await into(async (file) => {
    for (let i = 0; i < full.length; i += perBatch) await copy({ sources: [src], extents: full.slice(i, i + perBatch), target: { kind: 'file', path: file } });
  });
  let checkpoints = 0;
  const checkpointedSecs = await into((file) =>
    copy({ sources: [src], extents: full, target: { kind: 'file', path: file }, checkpoint: { everyBytes: 256 * MiB }, onProgress: (p) => p.checkpoint && checkpoints++ }),
  );
  let bytesDirect = 0;
  await into(async (file) => {
    bytesDirect = (await copy({ sources: [src], extents: full.slice(0, 16), target: { kind: 'file', path: file } })).bytesDirect;
  });
  const bufferedSecs = await into((file) => copy({ sources: [src], extents: full, target: { kind: 'file', path: file, direct: false }, checkpoint: { everyBytes: 256 * MiB } }));
  const noFlushBehindSecs = await into((file) => copy({ sources: [src], extents: full, target: { kind: 'file', path: file, direct: false, flushBehind: 0 }, checkpoint: { everyBytes: 256 * MiB } }));
  const half = Math.ceil(full.length / 2);
  const twoStreamsSecs = await into((file) =>
    Promise.all([full.slice(0, half), full.slice(half)].map((extents) => copy({ sources: [src], extents, target: { kind: 'file', path: file }, checkpoint: { everyBytes: 256 * MiB } }))),
  );
  line('batched_copy_s', batchedSecs.toFixed(2));
  line('checkpointed_copy_s', checkpointedSecs.toFixed(2));
  line('checkpointed_copy_checkpoints', checkpoints);
  line('checkpointed_vs_batched_speedup', (batchedSecs / checkpointedSecs).toFixed(3));
  line('checkpointed_direct_io', bytesDirect > 0 ? 'yes' : 'no (the file system has no O_DIRECT)');
  line('checkpointed_buffered_s', bufferedSecs.toFixed(2));
  line('direct_io_speedup', (bufferedSecs / checkpointedSecs).toFixed(3));
  line('buffered_no_flush_behind_s', noFlushBehindSecs.toFixed(2));
  line('flush_behind_speedup', (noFlushBehindSecs / bufferedSecs).toFixed(3));
  line('two_streams_s', twoStreamsSecs.toFixed(2));
  line('two_streams_vs_one_speedup', (checkpointedSecs / twoStreamsSecs).toFixed(3));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
