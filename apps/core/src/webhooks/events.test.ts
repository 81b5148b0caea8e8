import fc from 'fast-check';
import { decodeSubscriptions, encodeSubscriptions, shouldSendProgress, subscribes } from './events';
import { classifyStatus } from './deliver';
import { webhookBackoff, webhookJobOptions } from './queue';

describe('shouldSendProgress', () => {
  it('sends at each multiple of the step, once', () => {
    expect(shouldSendProgress(null, 5, 10)).toBe(false);
    expect(shouldSendProgress(null, 10, 10)).toBe(true);
    expect(shouldSendProgress(null, 23.5, 10)).toBe(true);
    expect(shouldSendProgress(23.5, 29.9, 10)).toBe(false);
    expect(shouldSendProgress(23.5, 30, 10)).toBe(true);
    expect(shouldSendProgress(30, 30, 10)).toBe(false);
    expect(shouldSendProgress(40, 35, 10)).toBe(false); // backwards
    expect(shouldSendProgress(95, 100, 10)).toBe(true);
    expect(shouldSendProgress(100, 100, 10)).toBe(false);
    expect(shouldSendProgress(91, 99, 25)).toBe(false);
    expect(shouldSendProgress(91, 100, 25)).toBe(true);
    expect(shouldSendProgress(0, 1, 1)).toBe(true);
  });

  it('falls back to 10 on a nonsensical step', () => {
    expect(shouldSendProgress(null, 10, 0)).toBe(true);
    expect(shouldSendProgress(null, 9, Number.NaN)).toBe(false);
  });

  it('sends at most 100/step + 1 events for any sequence of reports', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { maxLength: 300 }), (step, reports) => {
        let last: number | null = null;
        let sent = 0;
        for (const p of [...reports].sort((a, b) => a - b)) {
          if (shouldSendProgress(last, p, step)) {
            sent++;
            last = p;
          }
        }
        expect(sent).toBeLessThanOrEqual(Math.floor(100 / step) + 1);
      }),
    );
  });
});

describe('subscriptions', () => {
  it('keeps a per-webhook progress step inside events', () => {
    const stored = encodeSubscriptions(['job.progress', 'job.failed'], 25);
    expect(stored).toEqual(['job.progress', 'job.failed', 'job.progress:25']);
    expect(decodeSubscriptions(stored)).toEqual({ events: ['job.progress', 'job.failed'], progressStep: 25 });
    expect(decodeSubscriptions(['*'])).toEqual({ events: ['*'], progressStep: null });
    expect(subscribes(stored, 'job.progress')).toBe(true);
    expect(subscribes(stored, 'job.started')).toBe(false);
    expect(subscribes(['*'], 'job.started')).toBe(true);
    expect(subscribes(['job.progress:25'], 'job.progress')).toBe(false);
  });
});

describe('classifyStatus', () => {
  it.each([
    [200, 'delivered'],
    [204, 'delivered'],
    [301, 'failed'],
    [400, 'failed'],
    [401, 'failed'],
    [404, 'failed'],
    [410, 'failed'],
    [408, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
  ])('%i → %s', (code, verdict) => expect(classifyStatus(code)).toBe(verdict));
});

describe('webhookBackoff', () => {
  it('draws from [0, base × 2^(n-1)], capped at an hour', () => {
    expect(webhookBackoff(1, { random: () => 0.999999 })).toBe(999);
    expect(webhookBackoff(2, { random: () => 0.999999 })).toBe(1999);
    expect(webhookBackoff(4, { random: () => 0.5 })).toBe(4000);
    expect(webhookBackoff(13, { random: () => 0.999999 })).toBe(3_599_996);
    expect(webhookBackoff(500, { random: () => 0.999999 })).toBeLessThan(3_600_000);
    expect(webhookBackoff(3, { random: () => 0 })).toBe(0);
    expect(webhookBackoff(3, { baseMs: 10, random: () => 0.5 })).toBe(20);
  });

  it('is always within bounds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), (n) => {
        const d = webhookBackoff(n);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(Math.min(3_600_000, 1000 * 2 ** (n - 1)));
      }),
    );
  });

  it('is wired as a custom strategy with 8 attempts', () => {
    expect(webhookJobOptions()).toMatchObject({ attempts: 8, backoff: { type: 'webhook' } });
  });
});
