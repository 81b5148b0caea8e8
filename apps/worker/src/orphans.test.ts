import { decideLock, decideSnapshot, decideVm, leaseScope, retryDelayMs, summarize, tempSnapshotJobId, type OrphanItem } from './orphans';
import { needsRevert } from './plans/in-place';

// The sweeper's decision table (docs/orphans.md). The sweep itself runs
// against Postgres and the vcsim harness in test/e2e/orphans.test.ts.

const JOB = '0b8f2c1e-6a57-4c1d-9a3e-2f4d5e6a7b8c';

describe('orphan decisions', () => {
  it('recognises only our temporary snapshot names', () => {
    expect(tempSnapshotJobId(`vmrestore-${JOB}`)).toBe(JOB);
    expect(tempSnapshotJobId(`vmrestore-${JOB.toUpperCase()}`)).toBe(JOB);
    for (const other of ['vmrestore-', `vmrestore-${JOB}-2`, `before-vmrestore-${JOB}`, 'vmrestore-not-a-uuid', JOB, 'nightly']) expect(tempSnapshotJobId(other)).toBeNull();
  });

  it('removes a temporary snapshot unless its job is still active', () => {
    const table = ['queued', 'running', 'cleanup_pending', 'succeeded', 'failed', 'cancelled', null].map((s) => [s, decideSnapshot(s)]);
    expect(table).toEqual([
      ['queued', 'keep'],
      ['running', 'keep'],
      ['cleanup_pending', 'keep'],
      ['succeeded', 'remove'],
      ['failed', 'remove'],
      ['cancelled', 'remove'],
      [null, 'remove'],
    ]);
  });

  it('destroys a marked VM only when its job failed, was cancelled or is gone; never a succeeded one', () => {
    const table = ['queued', 'running', 'cleanup_pending', 'succeeded', 'failed', 'cancelled', null].map((s) => [s, decideVm(JOB, s)]);
    expect(table).toEqual([
      ['queued', 'keep'],
      ['running', 'keep'],
      ['cleanup_pending', 'keep'],
      ['succeeded', 'ignore'],
      ['failed', 'destroy'],
      ['cancelled', 'destroy'],
      [null, 'destroy'],
    ]);
    // A marker that is not a job id is nobody's to judge.
    expect(decideVm('hand-made', null)).toBe('refuse');
    expect(decideVm('', 'failed')).toBe('refuse');
  });

  it("deletes an ended job's lock, unless its temporary snapshot is still there", () => {
    expect(['queued', 'running', 'cleanup_pending'].map((s) => decideLock(s, false))).toEqual(['ignore', 'ignore', 'ignore']);
    expect(['succeeded', 'failed', 'cancelled'].map((s) => decideLock(s, false))).toEqual(['delete', 'delete', 'delete']);
    expect(decideLock('failed', true)).toBe('keep');
  });

  it('reverts before removing exactly when the job may have written through SAN (as dropTempSnapshot)', () => {
    expect(needsRevert(['san'], false, 0)).toBe(true);
    expect(needsRevert(['nbdssl', 'san'], false, 1)).toBe(true);
    expect(needsRevert(['nbdssl'], true, 3)).toBe(false); // what was recorded wins
    expect(needsRevert([], true, 1)).toBe(true); // a write began before any transport was recorded
    expect(needsRevert([], true, 0)).toBe(false);
    expect(needsRevert([], false, 2)).toBe(false);
  });

  it('backs off doubling, and keys the lease by scope', () => {
    expect([1, 2, 3].map((a) => retryDelayMs(a, 500))).toEqual([500, 1000, 2000]);
    expect(leaseScope(null)).toBe('all');
    expect(leaseScope(JOB)).toBe(`tenant:${JOB}`);
  });

  it('counts found as cleaned plus left; kept apart', () => {
    const it = (outcome: OrphanItem['outcome']) => ({ outcome }) as OrphanItem;
    expect(summarize([it('cleaned'), it('left'), it('kept'), it('cleaned')])).toEqual({ found: 3, cleaned: 2, left: 1, kept: 1 });
  });
});
