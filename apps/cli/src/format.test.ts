import { formatBytes, formatDuration, jobTable, progressBar, rateAndEta, statusLine } from './format';

const job = {
  id: '11111111-1111-4111-8111-111111111111',
  kind: 'in_place',
  state: 'running',
  vcenter: 'vc1',
  source: { vm: 'web01', point: 'p1' },
  target: { vm: 'vm-42' },
  currentStep: 'write_disks',
  progress: { bytesDone: 512 * 1024 * 1024, bytesTotal: 1024 * 1024 * 1024, percent: 50 },
  error: null,
  createdAt: '2026-11-26T02:00:00.000Z',
};

describe('cli formatting', () => {
  it('formats bytes and durations', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 4)).toBe('5.0 TiB');
    expect(formatDuration(3_723_000)).toBe('1:02:03');
    expect(formatDuration(65_000)).toBe('01:05');
    expect(formatDuration(NaN)).toBe('--:--');
  });
  it('draws a bounded progress bar', () => {
    expect(progressBar(50, 10)).toBe('[#####-----]  50.0%');
    expect(progressBar(150, 4)).toBe('[####] 100.0%');
    expect(progressBar(-3, 4)).toBe('[----]   0.0%');
  });
  it('computes rate and ETA from two samples', () => {
    expect(rateAndEta({ at: 0, bytes: 0 }, { at: 1000, bytes: 100 }, 1000)).toEqual({ rate: 100, etaMs: 9000 });
    expect(rateAndEta(null, { at: 1000, bytes: 100 }, 1000).rate).toBe(0);
  });
  it('renders a status line and a table', () => {
    expect(statusLine(job, 100 * 1024 * 1024, 5000)).toBe('running   [###############---------------]  50.0% write_disks 512 MiB/1.0 GiB 100 MiB/s ETA 00:05');
    expect(jobTable([job]).split('\n')[0]).toMatch(/^ID\s+KIND\s+STATE/);
  });
});
