import { mapLimited } from './in-place';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('mapLimited (disks of a job in parallel)', () => {
  it('runs at most `limit` at a time and keeps the order of results', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimited([5, 1, 4, 2, 3, 0], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      for (let i = 0; i < n; i++) await tick();
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0]);
    expect(peak).toBe(2);
  });

  it('on a failure starts nothing new, lets the running ones finish, then throws the first error', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const err = await mapLimited([1, 2, 3, 4], 2, async (n) => {
      started.push(n);
      await tick();
      if (n === 1) throw new Error('disk 1 failed');
      await tick();
      finished.push(n);
      return n;
    }).catch((e: Error) => e);
    expect((err as Error).message).toBe('disk 1 failed');
    expect(started).toEqual([1, 2]);
    expect(finished).toEqual([2]);
  });

  it('handles no items and a limit above the count', async () => {
    expect(await mapLimited([], 4, async (n: number) => n)).toEqual([]);
    expect(await mapLimited([1], 8, async (n) => n + 1)).toEqual([2]);
  });
});
