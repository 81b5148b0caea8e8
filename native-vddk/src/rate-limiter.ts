import { loadAddon } from './native';
import type { RateLimiter } from './types';
import { checkRate, limiterHandles } from './validate';

class NativeRateLimiter implements RateLimiter {
  constructor(private readonly handle: unknown) {
    limiterHandles.set(this, handle);
  }

  get bytesPerSec(): number {
    return loadAddon().rateLimiterGet(this.handle);
  }

  set(bytesPerSec: number): void {
    loadAddon().rateLimiterSet(this.handle, checkRate('RateLimiter.set', 'bytesPerSec', bytesPerSec));
  }
}

/**
 * A byte-rate cap that copies share: every copy given it (`copy({ rateLimiter })`)
 * draws from one budget of `bytesPerSec`, and `set()` changes it for all of
 * them at once, mid-copy included. 0 = unlimited.
 */
export function createRateLimiter(bytesPerSec = 0): RateLimiter {
  const rate = checkRate('createRateLimiter', 'bytesPerSec', bytesPerSec);
  return new NativeRateLimiter(loadAddon().createRateLimiter(rate));
}
