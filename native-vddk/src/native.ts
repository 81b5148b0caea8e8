import path from 'node:path';

import { VddkError } from './errors';

/** What the C++ addon exports (src/addon.cc). Arguments are pre-validated. */
export interface NativeTask<T> {
  promise: Promise<T>;
  cancel(): void;
}

export interface NativeAddon {
  copy(job: unknown, onProgress?: (p: unknown) => void): NativeTask<unknown>;
  diskInfo(target: unknown): NativeTask<unknown>;
  hashBlocks(spec: unknown, onProgress?: (p: unknown) => void): NativeTask<unknown>;
  setErrorClass(cls: typeof VddkError): void;
  /** An opaque handle (a tagged External) owning a shared native limiter. */
  createRateLimiter(bytesPerSec: number): unknown;
  rateLimiterSet(handle: unknown, bytesPerSec: number): void;
  rateLimiterGet(handle: unknown): number;
}

let cached: NativeAddon | undefined;

/**
 * Loads build/Release/vddk.node on first use, so importing this package does
 * not require the addon to be built. VMRESTORE_VDDK_ADDON overrides the path
 * (used only by test/asan.sh to load a sanitizer build).
 */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const file = process.env.VMRESTORE_VDDK_ADDON ?? path.join(__dirname, '..', 'build', 'Release', 'vddk.node');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const addon = require(file) as NativeAddon;
  addon.setErrorClass(VddkError);
  cached = addon;
  return addon;
}
