import os from 'node:os';

import { VddkError } from './errors';
import type { CopyExtent, CopyOptions, HashBlocksOptions, Target } from './types';

/**
 * Argument checks. Every message has one format:
 *   "<fn>(): <path> must be <expectation>, got <value>"
 * and the C++ side trusts whatever passes here.
 */

export const SECTOR = 512;
export const WRITE_ALIGN = 1024; // MISSION R1.4: whole sectors, and a multiple of 1 KiB
export const TRANSPORTS = ['san', 'hotadd', 'nbdssl', 'nbd'] as const;
export const BUFFER_COUNT = 4;
/** File targets: writes in flight at once (default), and the most allowed. */
export const DEFAULT_QUEUE_DEPTH = 8;
export const MAX_QUEUE_DEPTH = 32;
const MIN_BUFFER = 64 * 1024;
const MAX_BUFFER = 256 * 1024 * 1024;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'function') return 'a function';
  return String(v);
}

export function fail(fn: string, path: string, expectation: string, got: unknown, code = 'INVALID_ARG'): never {
  throw new VddkError(`${fn}(): ${path} must be ${expectation}, got ${show(got)}`, code);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonEmptyString(fn: string, path: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) fail(fn, path, 'a non-empty string', v);
  return v;
}

function optionalString(fn: string, path: string, v: unknown): string | undefined {
  return v === undefined ? undefined : nonEmptyString(fn, path, v);
}

function offset(fn: string, path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(fn, path, 'a non-negative safe integer', v);
  return v;
}

function positive(fn: string, path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(fn, path, 'a positive safe integer', v);
  return v;
}

/** A byte rate: a non-negative safe integer, 0 meaning unlimited. */
export function checkRate(fn: string, path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    fail(fn, path, 'a non-negative safe integer (bytes per second, 0 = unlimited)', v);
  }
  return v;
}

/**
 * The native handle of each RateLimiter made by createRateLimiter()
 * (rate-limiter.ts): nothing else passes as one.
 */
export const limiterHandles = new WeakMap<object, unknown>();

function limiterHandle(v: unknown): unknown {
  return typeof v === 'object' && v !== null ? limiterHandles.get(v) : undefined;
}

/** The native handles of opts.rateLimiter (one limiter or an array of distinct ones). */
function checkLimiters(fn: string, v: unknown): unknown[] {
  if (v === undefined) return [];
  const what = 'a RateLimiter from createRateLimiter()';
  if (!Array.isArray(v)) {
    const h = limiterHandle(v);
    if (h === undefined) fail(fn, 'rateLimiter', `${what} or an array of them`, v);
    return [h];
  }
  return v.map((l, i) => {
    const h = limiterHandle(l);
    if (h === undefined) fail(fn, `rateLimiter[${i}]`, what, l);
    if (v.indexOf(l) !== i) fail(fn, `rateLimiter[${i}]`, 'listed once', l);
    return h;
  });
}

/** The plain object handed to C++ for a target. */
export function checkTarget(fn: string, t: unknown): Record<string, unknown> {
  if (!isObject(t)) fail(fn, 'target', 'an object', t);
  if (t.kind === 'file') {
    const path = nonEmptyString(fn, 'target.path', t.path);
    if (t.fresh !== undefined && typeof t.fresh !== 'boolean') fail(fn, 'target.fresh', 'a boolean', t.fresh);
    const out: Record<string, unknown> = { kind: 'file', path, fresh: t.fresh === true };
    if (t.direct !== undefined) {
      if (typeof t.direct !== 'boolean') fail(fn, 'target.direct', 'a boolean', t.direct);
      out.direct = t.direct;
    }
    if (t.queueDepth !== undefined) {
      if (typeof t.queueDepth !== 'number' || !Number.isSafeInteger(t.queueDepth) || t.queueDepth < 1 || t.queueDepth > MAX_QUEUE_DEPTH) {
        fail(fn, 'target.queueDepth', `a whole number from 1 to ${MAX_QUEUE_DEPTH}`, t.queueDepth);
      }
      out.queueDepth = t.queueDepth;
    }
    if (t.flushBehind !== undefined) {
      if (typeof t.flushBehind !== 'number' || !Number.isSafeInteger(t.flushBehind) || t.flushBehind < 0) fail(fn, 'target.flushBehind', 'a whole number of bytes >= 0', t.flushBehind);
      out.flushBehind = t.flushBehind;
    }
    return out;
  }
  if (t.kind !== 'vddk') fail(fn, 'target.kind', '"file" or "vddk"', t.kind);
  const out: Record<string, unknown> = { kind: 'vddk' };
  for (const k of ['libDir', 'server', 'thumbprint', 'vmMoref', 'diskPath'] as const) {
    out[k] = nonEmptyString(fn, `target.${k}`, t[k]);
  }
  for (const k of ['username', 'password', 'cookie', 'snapshotMoref', 'configFile'] as const) {
    const v = optionalString(fn, `target.${k}`, t[k]);
    if (v !== undefined) out[k] = v;
  }
  if ((out.cookie === undefined) === (out.password === undefined)) {
    fail(fn, 'target', 'given exactly one of password or cookie', t.cookie === undefined ? 'neither' : 'both');
  }
  if (out.password !== undefined && out.username === undefined) {
    fail(fn, 'target.username', 'a non-empty string when password is given', t.username);
  }
  if (!/^\[[^\]]+\] \S/.test(out.diskPath as string)) {
    fail(fn, 'target.diskPath', 'a datastore path like "[ds] vm/vm.vmdk"', t.diskPath);
  }
  const tr = t.transports;
  if (!Array.isArray(tr) || tr.length === 0) fail(fn, 'target.transports', 'a non-empty array', tr);
  tr.forEach((m, i) => {
    if (!(TRANSPORTS as readonly unknown[]).includes(m)) {
      fail(fn, `target.transports[${i}]`, `one of ${TRANSPORTS.join(', ')}`, m);
    }
    if (tr.indexOf(m) !== i) fail(fn, `target.transports[${i}]`, 'listed once', m);
  });
  out.transports = [...tr];
  return out;
}

function checkExtent(fn: string, i: number, e: unknown, sourceCount: number): Record<string, unknown> {
  const p = `extents[${i}]`;
  if (!isObject(e)) fail(fn, p, 'an object', e);
  const x = e as unknown as CopyExtent;
  const source = offset(fn, `${p}.source`, x.source);
  if (source >= sourceCount) fail(fn, `${p}.source`, `an index into sources (0..${sourceCount - 1})`, source);
  const sourceOffset = offset(fn, `${p}.sourceOffset`, x.sourceOffset);
  const targetOffset = offset(fn, `${p}.targetOffset`, x.targetOffset);
  const length = positive(fn, `${p}.length`, x.length);
  if (targetOffset % WRITE_ALIGN !== 0) {
    fail(fn, `${p}.targetOffset`, `a multiple of ${WRITE_ALIGN}`, targetOffset, 'UNALIGNED_EXTENT');
  }
  if (length % WRITE_ALIGN !== 0) fail(fn, `${p}.length`, `a multiple of ${WRITE_ALIGN}`, length, 'UNALIGNED_EXTENT');
  const out: Record<string, unknown> = { source, sourceOffset, targetOffset, length };
  if (x.check !== undefined) {
    if (!isObject(x.check)) fail(fn, `${p}.check`, 'an object', x.check);
    const co = offset(fn, `${p}.check.offset`, x.check.offset);
    const cl = positive(fn, `${p}.check.length`, x.check.length);
    if (co > sourceOffset || co + cl < sourceOffset + length) {
      fail(fn, `${p}.check`, `a range containing bytes ${sourceOffset}..${sourceOffset + length}`, `${co}..${co + cl}`);
    }
    const sha = x.check.sha256;
    if (typeof sha !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha)) {
      fail(fn, `${p}.check.sha256`, 'a SHA-256 as 64 hex digits', sha);
    }
    out.check = { offset: co, length: cl, sha256: Buffer.from(sha, 'hex') };
  }
  return out;
}

/** Checks CopyOptions and returns the plain job object for C++. */
export function checkCopy(opts: CopyOptions): Record<string, unknown> {
  const fn = 'copy';
  if (!isObject(opts)) fail(fn, 'opts', 'an object', opts);
  const { sources, extents } = opts;
  if (!Array.isArray(sources) || sources.length === 0) fail(fn, 'sources', 'a non-empty array', sources);
  sources.forEach((s, i) => nonEmptyString(fn, `sources[${i}]`, s));
  if (!Array.isArray(extents)) fail(fn, 'extents', 'an array', extents);
  const ex = extents.map((e, i) => checkExtent(fn, i, e, sources.length));
  const target = checkTarget(fn, opts.target);
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    fail(fn, 'signal', 'an AbortSignal', opts.signal);
  }
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') {
    fail(fn, 'onProgress', 'a function', opts.onProgress);
  }
  const progressIntervalMs = opts.progressIntervalMs ?? 250;
  if (!Number.isSafeInteger(progressIntervalMs) || progressIntervalMs < 0 || progressIntervalMs > 3_600_000) {
    fail(fn, 'progressIntervalMs', 'an integer from 0 to 3600000', opts.progressIntervalMs);
  }
  const bufferBytes = opts.bufferBytes ?? 4 * 1024 * 1024;
  if (!Number.isSafeInteger(bufferBytes) || bufferBytes % 4096 !== 0 || bufferBytes < MIN_BUFFER || bufferBytes > MAX_BUFFER) {
    fail(fn, 'bufferBytes', `a multiple of 4096 from ${MIN_BUFFER} to ${MAX_BUFFER}`, opts.bufferBytes);
  }
  const metadata: [string, string][] = [];
  if (opts.writeMetadata !== undefined) {
    if (!isObject(opts.writeMetadata)) fail(fn, 'writeMetadata', 'an object of strings', opts.writeMetadata);
    for (const [k, v] of Object.entries(opts.writeMetadata)) {
      if (!/^[A-Za-z][A-Za-z0-9_.]*$/.test(k) || k.startsWith('ddb.')) {
        fail(fn, 'writeMetadata key', 'a VixDiskLib key like "adapterType" (no "ddb." prefix)', k);
      }
      if (typeof v !== 'string' || /["\r\n\0]/.test(v)) {
        fail(fn, `writeMetadata.${k}`, 'a string without quotes or line breaks', v);
      }
      metadata.push([k, v]);
    }
  }
  if (opts.verify !== undefined && typeof opts.verify !== 'boolean') fail(fn, 'verify', 'a boolean', opts.verify);
  if (opts.readBack !== undefined) {
    if (typeof opts.readBack !== 'boolean' && !(isObject(opts.readBack) && (opts.readBack.direct === undefined || typeof opts.readBack.direct === 'boolean'))) {
      fail(fn, 'readBack', 'a boolean or { direct?: boolean }', opts.readBack);
    }
    if (opts.readBack !== false) {
      if (opts.verify === true) fail(fn, 'readBack', 'absent with verify (a verify writes nothing to read back)', opts.readBack);
      if (target.kind !== 'file') fail(fn, 'readBack', 'absent unless target.kind is "file" (verify a VDDK target after the copy)', opts.readBack);
      const overlap = firstOverlap(ex as Array<{ targetOffset: number; length: number }>);
      if (overlap) fail(fn, 'extents', 'extents that do not overlap on the target, with readBack (a later write would change a range already read back)', overlap);
    }
  }
  const maxBytesPerSec = opts.maxBytesPerSec === undefined ? 0 : checkRate(fn, 'maxBytesPerSec', opts.maxBytesPerSec);
  const rateLimiters = checkLimiters(fn, opts.rateLimiter);
  const checkpoint: Record<string, number> = {};
  if (opts.checkpoint !== undefined) {
    if (!isObject(opts.checkpoint)) fail(fn, 'checkpoint', 'an object', opts.checkpoint);
    if (opts.verify === true) fail(fn, 'checkpoint', 'absent with verify (a verify writes nothing to make durable)', opts.checkpoint);
    for (const [k, field] of [['everyExtents', 'checkpointExtents'], ['everyBytes', 'checkpointBytes']] as const) {
      const v = (opts.checkpoint as Record<string, unknown>)[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) fail(fn, `checkpoint.${k}`, 'a whole number >= 1', v);
      checkpoint[field] = v;
    }
  }
  return {
    sources: [...sources], extents: ex, target, progressIntervalMs, bufferBytes, bufferCount: bufferCountFor(target), metadata,
    verify: opts.verify === true, maxBytesPerSec, rateLimiters, ...checkpoint,
    ...(opts.readBack !== undefined && opts.readBack !== false
      ? { readBack: true, readBackDirect: typeof opts.readBack === 'object' ? opts.readBack.direct !== false : true }
      : {}),
  };
}

/** The first two extents that share a target byte ("extents[i] and extents[j]"), or null: none overlap. */
export function firstOverlap(extents: readonly { targetOffset: number; length: number }[]): string | null {
  const order = extents.map((_, i) => i).sort((a, b) => extents[a]!.targetOffset - extents[b]!.targetOffset);
  for (let k = 1; k < order.length; k++) {
    const prev = extents[order[k - 1]!]!;
    if (extents[order[k]!]!.targetOffset < prev.targetOffset + prev.length) return `extents[${order[k - 1]}] and extents[${order[k]}]`;
  }
  return null;
}

/** The ring: 4 buffers, and one more for each buffer of depth a file target gathers beyond the first. */
function bufferCountFor(target: Record<string, unknown>): number {
  if (target.kind !== 'file') return BUFFER_COUNT;
  const depth = (target.queueDepth as number | undefined) ?? DEFAULT_QUEUE_DEPTH;
  if (target.queueDepth === undefined) target.queueDepth = depth;
  return BUFFER_COUNT + depth - 1;
}

export function checkDiskInfoTarget(target: Target): Record<string, unknown> {
  return checkTarget('diskInfo', target);
}

const MAX_HASH_BLOCK = 64 * 1024 * 1024;

/** The plain object handed to C++ for hashBlocks(). */
export function checkHashBlocks(opts: HashBlocksOptions): Record<string, unknown> {
  const fn = 'hashBlocks()';
  if (!isObject(opts)) fail(fn, 'options', 'an object', opts);
  const path = nonEmptyString(fn, 'path', opts.path);
  const n = opts.offsets?.length;
  if (typeof n !== 'number' || opts.lengths?.length !== n) fail(fn, 'lengths', 'as many as offsets', opts.lengths?.length);
  const offsets = new Float64Array(n);
  const lengths = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = opts.offsets[i];
    const l = opts.lengths[i];
    if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0) fail(fn, `offsets[${i}]`, 'a whole number >= 0', o);
    if (typeof l !== 'number' || !Number.isSafeInteger(l) || l < 1 || l > MAX_HASH_BLOCK) fail(fn, `lengths[${i}]`, `a whole number from 1 to ${MAX_HASH_BLOCK}`, l);
    offsets[i] = o;
    lengths[i] = l;
  }
  if (!(opts.sha256 instanceof Uint8Array) || opts.sha256.length !== 32 * n) fail(fn, 'sha256', `${32 * n} bytes (32 per block)`, opts.sha256?.length);
  const threads = opts.threads ?? Math.min(16, Math.max(1, os.availableParallelism()));
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > 16) fail(fn, 'threads', 'a whole number from 1 to 16', opts.threads);
  if (opts.stopAtFirst !== undefined && typeof opts.stopAtFirst !== 'boolean') fail(fn, 'stopAtFirst', 'a boolean', opts.stopAtFirst);
  const progressIntervalMs = opts.progressIntervalMs ?? 250;
  if (!Number.isSafeInteger(progressIntervalMs) || progressIntervalMs < 0 || progressIntervalMs > 3_600_000) {
    fail(fn, 'progressIntervalMs', 'an integer from 0 to 3600000', opts.progressIntervalMs);
  }
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') fail(fn, 'onProgress', 'a function', opts.onProgress);
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) fail(fn, 'signal', 'an AbortSignal', opts.signal);
  const sha256 = Buffer.from(opts.sha256.buffer, opts.sha256.byteOffset, opts.sha256.length);
  return { path, offsets, lengths, sha256, threads, stopAtFirst: opts.stopAtFirst !== false, progressIntervalMs };
}
