// Bandwidth caps: maxBytesPerSec and shared, changeable RateLimiters. Only
// lower bounds on time are asserted: a limiter lets at most two buffers plus
// R bytes per second through by any time, so a copy of B bytes capped at
// R bytes/s cannot take less than (B - 2 buffers) / R.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { copy, createRateLimiter, VddkError } from '../src';
import type { CopyOptions, CopyProgress, RateLimiter } from '../src';
import { tmpDir, writeSource } from './helpers';

const KiB = 1024;
const MiB = 1024 * 1024;

describe('bandwidth caps', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('vddk-throttle-');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A random source and an empty raw target of `size` bytes; one extent covering both. */
  function job(name: string, size: number): { data: Buffer; opts: CopyOptions; target: string } {
    const src = path.join(dir, `${name}.src`);
    const target = path.join(dir, `${name}.raw`);
    const data = writeSource(src, size);
    fs.writeFileSync(target, '');
    fs.truncateSync(target, size);
    return {
      data,
      target,
      opts: { sources: [src], extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: size }], target: { kind: 'file', path: target } },
    };
  }

  async function timed<T>(p: () => Promise<T>): Promise<[T, number]> {
    const t0 = performance.now();
    const r = await p();
    return [r, (performance.now() - t0) / 1000];
  }

  it('a copy capped with maxBytesPerSec takes at least about N/R, writes the right bytes and reports a rate within the cap', async () => {
    const N = 6 * MiB;
    const R = 3 * MiB;
    const { data, opts, target } = job('a', N);
    const seen: CopyProgress[] = [];
    const [result, secs] = await timed(() =>
      copy({ ...opts, maxBytesPerSec: R, bufferBytes: 256 * KiB, progressIntervalMs: 50, onProgress: (p) => seen.push(p) }),
    );
    expect(secs).toBeGreaterThanOrEqual((0.8 * N) / R);
    expect(result.durationMs / 1000).toBeGreaterThanOrEqual((0.8 * N) / R);
    expect(result.bytesWritten).toBe(N);
    expect(fs.readFileSync(target).equals(data)).toBe(true);
    // Average since the start, over at least (N - two buffers) / R seconds.
    const last = seen.at(-1)!;
    expect(last.bytesDone).toBe(N);
    expect(last.rateBytesPerSec).toBeGreaterThan(0);
    expect(last.rateBytesPerSec).toBeLessThanOrEqual(R * (N / (N - 2 * 256 * KiB)));
  });

  it('keeps reporting progress while a chunk waits for the cap', async () => {
    // 1 MiB buffers at 1 MiB/s: after the first buffer each waits about a
    // second, far longer than the 50 ms progress interval.
    const N = 3 * MiB;
    const { data, opts, target } = job('p', N);
    const seen: CopyProgress[] = [];
    const [, secs] = await timed(() =>
      copy({ ...opts, maxBytesPerSec: MiB, bufferBytes: MiB, progressIntervalMs: 50, onProgress: (p) => seen.push(p) }),
    );
    expect(secs).toBeGreaterThanOrEqual((0.8 * (N - 2 * MiB)) / MiB);
    expect(fs.readFileSync(target).equals(data)).toBe(true);
    // Two reports with the same bytesDone short of the end: one of them was
    // made while the writer was held back, not after a write.
    const midway = seen.filter((p) => p.bytesDone < N).map((p) => p.bytesDone);
    expect(midway.some((b, i) => i > 0 && b === midway[i - 1])).toBe(true);
  });

  it('a limiter shared by two concurrent copies caps their sum; every cap given applies', async () => {
    const N = 3 * MiB;
    const R = 3 * MiB;
    const shared = createRateLimiter(R);
    expect(shared.bytesPerSec).toBe(R);
    const a = job('a', N);
    const b = job('b', N);
    const [results, secs] = await timed(() =>
      Promise.all([
        // an unlimited limiter (0) beside the shared one changes nothing
        copy({ ...a.opts, rateLimiter: [createRateLimiter(0), shared], bufferBytes: 256 * KiB }),
        copy({ ...b.opts, rateLimiter: shared, bufferBytes: 256 * KiB }),
      ]),
    );
    expect(secs).toBeGreaterThanOrEqual((0.8 * 2 * N) / R);
    expect(results.map((r) => r.bytesWritten)).toEqual([N, N]);
    expect(fs.readFileSync(a.target).equals(a.data)).toBe(true);
    expect(fs.readFileSync(b.target).equals(b.data)).toBe(true);

    // The tightest of a copy's caps wins: an unlimited shared limiter and maxBytesPerSec.
    const c = job('c', N);
    const [, secsC] = await timed(() =>
      copy({ ...c.opts, rateLimiter: createRateLimiter(), maxBytesPerSec: 2 * MiB, bufferBytes: 256 * KiB }),
    );
    expect(secsC).toBeGreaterThanOrEqual((0.8 * N) / (2 * MiB));
    expect(fs.readFileSync(c.target).equals(c.data)).toBe(true);
  });

  it('a new cap set mid-copy takes effect: throttled before the raise, finished after it', async () => {
    // 512 s for the whole copy at this cap, far past the test's timeout:
    // finishing at all shows the raise took effect (and woke the waiting writer).
    const N = 8 * MiB;
    const R = 16 * KiB;
    const buf = 64 * KiB;
    const { data, opts, target } = job('m', N);
    const limiter: RateLimiter = createRateLimiter(R);
    const samples: { t: number; bytesDone: number }[] = [];
    const t0 = performance.now();
    let raisedAt = Infinity;
    const timer = setTimeout(() => {
      raisedAt = (performance.now() - t0) / 1000;
      limiter.set(0);
    }, 1000);
    const result = await copy({
      ...opts,
      rateLimiter: limiter,
      bufferBytes: buf,
      progressIntervalMs: 50,
      onProgress: (p) => samples.push({ t: (performance.now() - t0) / 1000, bytesDone: p.bytesDone }),
    });
    clearTimeout(timer);
    expect(raisedAt).toBeLessThan(Infinity);
    expect(limiter.bytesPerSec).toBe(0);
    expect(result.bytesWritten).toBe(N);
    expect(fs.readFileSync(target).equals(data)).toBe(true);
    // Before the raise, no report shows more than two buffers plus R per second.
    const before = samples.filter((s) => s.t < raisedAt);
    expect(before.length).toBeGreaterThan(0);
    for (const s of before) expect(s.bytesDone).toBeLessThanOrEqual(2 * buf + R * s.t);
    expect(samples.at(-1)!.bytesDone).toBe(N);
  });

  it('a cancel while throttled rejects with CANCELLED before the capped copy could have finished', async () => {
    const N = 16 * MiB;
    const R = 64 * KiB; // 256 s for the whole copy
    const buf = 64 * KiB;
    const { opts, target } = job('c', N);
    const ac = new AbortController();
    let last = 0;
    const t0 = performance.now();
    setTimeout(() => ac.abort(), 500);
    const err = await copy({
      ...opts,
      signal: ac.signal,
      maxBytesPerSec: R,
      bufferBytes: buf,
      onProgress: (p) => {
        last = p.bytesDone;
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const secs = (performance.now() - t0) / 1000;
    expect(err).toBeInstanceOf(VddkError);
    expect((err as VddkError).code).toBe('CANCELLED');
    expect(last).toBeLessThan(N);
    // What reached the disk stayed within the cap until the cancel.
    const written = fs.readFileSync(target);
    let end = written.length;
    while (end > 0 && written[end - 1] === 0) end--;
    expect(end).toBeLessThanOrEqual(2 * buf + R * secs);
    expect(end).toBeLessThan(N);
  });

  it('cancelling one of two copies waiting on a shared limiter leaves the other waiting, and a raise then frees it', async () => {
    const N = 4 * MiB;
    const shared = createRateLimiter(16 * KiB); // 256 s for each copy at this cap
    const a = job('a', N);
    const b = job('b', N);
    const ac = new AbortController();
    const pa = copy({ ...a.opts, rateLimiter: shared, bufferBytes: 64 * KiB, signal: ac.signal }).then(
      () => 'finished',
      (e: VddkError) => e.code,
    );
    let bDone = false;
    const pb = copy({ ...b.opts, rateLimiter: shared, bufferBytes: 64 * KiB }).then((r) => {
      bDone = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    expect(await pa).toBe('CANCELLED');
    expect(bDone).toBe(false);
    shared.set(0);
    expect((await pb).bytesWritten).toBe(N);
    expect(fs.readFileSync(b.target).equals(b.data)).toBe(true);
  });

  it('verify reads back at the cap too', async () => {
    const N = 4 * MiB;
    const R = 2 * MiB;
    const { opts } = job('v', N);
    await copy(opts);
    const [result, secs] = await timed(() => copy({ ...opts, verify: true, maxBytesPerSec: R, bufferBytes: 256 * KiB }));
    expect(result.bytesVerified).toBe(N);
    expect(result.bytesWritten).toBe(0);
    expect(secs).toBeGreaterThanOrEqual((0.8 * N) / R);
  });
});

describe('bandwidth cap arguments', () => {
  const opts: CopyOptions = {
    sources: ['/s'],
    extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 1024 }],
    target: { kind: 'file', path: '/nonexistent/disk.raw' },
  };
  const rateRule = 'a non-negative safe integer (bytes per second, 0 = unlimited)';

  async function rejection(extra: Record<string, unknown>): Promise<VddkError> {
    const err = await copy({ ...opts, ...extra } as CopyOptions).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VddkError);
    expect((err as VddkError).code).toBe('INVALID_ARG');
    return err as VddkError;
  }

  it.each([
    [-1, '-1'],
    [1.5, '1.5'],
    ['100', '"100"'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    [2 ** 53, String(2 ** 53)],
  ])('refuses maxBytesPerSec %p', async (v, shown) => {
    expect((await rejection({ maxBytesPerSec: v })).message).toBe(`copy(): maxBytesPerSec must be ${rateRule}, got ${shown}`);
  });

  it('refuses anything but limiters from createRateLimiter(), and a limiter listed twice', async () => {
    const l = createRateLimiter(MiB);
    const fake = { bytesPerSec: 1, set: () => undefined };
    expect((await rejection({ rateLimiter: fake })).message).toBe(
      'copy(): rateLimiter must be a RateLimiter from createRateLimiter() or an array of them, got an object',
    );
    expect((await rejection({ rateLimiter: 5 })).message).toBe(
      'copy(): rateLimiter must be a RateLimiter from createRateLimiter() or an array of them, got 5',
    );
    expect((await rejection({ rateLimiter: [l, fake] })).message).toBe(
      'copy(): rateLimiter[1] must be a RateLimiter from createRateLimiter(), got an object',
    );
    expect((await rejection({ rateLimiter: [l, l] })).message).toBe('copy(): rateLimiter[1] must be listed once, got an object');
  });

  it('refuses a bad rate in createRateLimiter() and set(), leaving the cap unchanged', () => {
    expect(() => createRateLimiter(-5)).toThrow(new VddkError(`createRateLimiter(): bytesPerSec must be ${rateRule}, got -5`, 'INVALID_ARG'));
    const l = createRateLimiter(MiB);
    let err: unknown;
    try {
      l.set(0.5);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VddkError);
    expect(err).toMatchObject({ code: 'INVALID_ARG', message: `RateLimiter.set(): bytesPerSec must be ${rateRule}, got 0.5` });
    expect(l.bytesPerSec).toBe(MiB);
    l.set(0);
    expect(l.bytesPerSec).toBe(0);
    expect(createRateLimiter().bytesPerSec).toBe(0);
  });
});
