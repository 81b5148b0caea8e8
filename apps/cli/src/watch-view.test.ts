import { applyEvent, isEndEvent, viewFromJob, WatchRenderer, type StreamEvent, type WatchMode } from './watch-view';
import type { JobLike } from './format';

const job: JobLike = {
  id: '11111111-1111-4111-8111-111111111111',
  kind: 'in_place',
  state: 'running',
  vcenter: 'vc1',
  source: { vm: 'web01', point: 'p1' },
  target: { vm: 'vm-42' },
  currentStep: 'power_off',
  progress: { bytesDone: 0, bytesTotal: 0, percent: 0 },
  error: null,
  createdAt: '2026-11-26T02:00:00.000Z',
};
let seq = 0;
const ev = (type: string, step: string | null, data: Record<string, unknown> | null = null): StreamEvent => ({ id: ++seq, at: '2026-11-26T02:00:01.000Z', type, step, data });
const GiB = 1024 ** 3;

function render(mode: WatchMode) {
  let out = '';
  return { r: new WatchRenderer(mode, (s) => (out += s)), out: () => out };
}

describe('watch view', () => {
  it('follows steps and progress events, with the server’s rate and ETA', () => {
    let v = viewFromJob(job);
    v = applyEvent(v, ev('step.started', 'write_disks'));
    expect(v.currentStep).toBe('write_disks');
    v = applyEvent(v, ev('progress', 'write_disks', { bytesDone: GiB, bytesTotal: 4 * GiB, percent: 25, rateBytesPerSec: 100 * 1024 ** 2, etaSeconds: 30.7 }));
    expect(v).toMatchObject({ state: 'running', progress: { bytesDone: GiB, bytesTotal: 4 * GiB, percent: 25 }, rate: 100 * 1024 ** 2, etaMs: 30_700 });
    v = applyEvent(v, ev('job.cancel_requested', null));
    expect(v.cancelRequested).toBe(true);
    // A cleanup step's cleanup_pending is not the job's end; the job's own event is.
    expect(isEndEvent(ev('job.cleanup_pending', 'remove_temp_snapshot'))).toBe(false);
    expect(isEndEvent(ev('job.cancelled', null))).toBe(true);
    expect(applyEvent(v, ev('job.cancelled', null)).state).toBe('cancelled');
    // Progress without a percent: computed; unknown events change nothing.
    const p = applyEvent(v, ev('progress', 'write_disks', { bytesDone: 3 * GiB, bytesTotal: 4 * GiB }));
    expect(p.progress.percent).toBe(75);
    expect(p.rate).toBeNull();
    expect(applyEvent(p, ev('vcenter.task', 'write_disks', { task: 'task-1' }))).toBe(p);
  });

  it('lines mode: a line per change of state, step or whole percent, no control codes', () => {
    const { r, out } = render('lines');
    let v = viewFromJob(job);
    r.update(v);
    r.update(v); // no change: no line
    v = applyEvent(v, ev('progress', 'write_disks', { bytesDone: 10, bytesTotal: 1000, percent: 1 }));
    r.update(v);
    r.update(applyEvent(v, ev('progress', 'write_disks', { bytesDone: 15, bytesTotal: 1000, percent: 1.5 }))); // same whole percent
    r.reconnecting('connection refused');
    r.reconnecting('connection refused'); // said once per outage
    r.reconnected();
    r.end({ ...job, state: 'succeeded', currentStep: null, progress: { bytesDone: 1000, bytesTotal: 1000, percent: 100 } });
    const lines = out().trimEnd().split('\n');
    expect(lines.slice(0, 5)).toEqual([
      'running   [------------------------------]   0.0% power_off',
      'running   [------------------------------]   1.0% write_disks 10 B/1000 B',
      'reconnecting: connection refused',
      'reconnected',
      'succeeded [##############################] 100.0% 1000 B/1000 B',
    ]);
    expect(lines[5]).toBe(`id:       ${job.id}`);
    expect(out()).not.toMatch(/[\r\x1b]/);
  });

  it('tty mode: one line redrawn in place, reconnecting shown on it', () => {
    const { r, out } = render('tty');
    r.update(viewFromJob(job));
    r.reconnecting('HTTP 503');
    expect(out()).toBe('\r\x1b[2Krunning   [------------------------------]   0.0% power_off\r\x1b[2Krunning   [------------------------------]   0.0% power_off  reconnecting… (HTTP 503)');
  });

  it('json mode: an object per line, each parseable, the job last', () => {
    const { r, out } = render('json');
    let v = viewFromJob(job);
    r.update(v);
    v = applyEvent(v, ev('progress', 'write_disks', { bytesDone: 10, bytesTotal: 1000, percent: 1, rateBytesPerSec: 5, etaSeconds: 198 }));
    r.update(v);
    r.update(applyEvent(v, ev('progress', 'write_disks', { bytesDone: 12, bytesTotal: 1000, percent: 1.2 }))); // bytes changed: a line
    r.end({ ...job, state: 'failed', error: { code: 'X', message: 'y' } });
    const objs = out().trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(objs.map((o) => o.type)).toEqual(['update', 'update', 'update', 'update', 'end']);
    expect(objs[1]).toEqual({ type: 'update', id: job.id, state: 'running', step: 'write_disks', progress: { bytesDone: 10, bytesTotal: 1000, percent: 1 }, rateBytesPerSec: 5, etaSeconds: 198, cancelRequested: false });
    expect(objs[4].job.error.code).toBe('X');
  });
});
