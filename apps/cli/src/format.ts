// Human output for the CLI. Pure functions, so they are unit-tested.

export interface JobLike {
  id: string;
  kind: string;
  state: string;
  label?: string | null;
  vcenter: string;
  source: { vm: string; point: string };
  target: { vm: string | null };
  currentStep: string | null;
  progress: { bytesDone: number; bytesTotal: number; percent: number };
  error: { code: string; message: string } | null;
  createdAt: string;
  steps?: Array<{ name: string; phase: string; state: string; startedAt: string | null; finishedAt: string | null; error: { code: string; message: string } | null }>;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--:--';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (x: number) => String(x).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
}

export function progressBar(percent: number, width = 30): string {
  const p = Math.max(0, Math.min(100, percent));
  const full = Math.round((p / 100) * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${p.toFixed(1).padStart(5)}%`;
}

/** Rate and ETA from two progress samples. */
export function rateAndEta(prev: { at: number; bytes: number } | null, now: { at: number; bytes: number }, total: number): { rate: number; etaMs: number } {
  if (!prev || now.at <= prev.at || now.bytes < prev.bytes) return { rate: 0, etaMs: NaN };
  const rate = ((now.bytes - prev.bytes) / (now.at - prev.at)) * 1000;
  return { rate, etaMs: rate > 0 ? ((total - now.bytes) / rate) * 1000 : NaN };
}

export function statusLine(job: JobLike, rate = 0, etaMs = NaN): string {
  const step = job.currentStep ? ` ${job.currentStep}` : '';
  const bytes = job.progress.bytesTotal ? ` ${formatBytes(job.progress.bytesDone)}/${formatBytes(job.progress.bytesTotal)}` : '';
  const speed = rate > 0 ? ` ${formatBytes(rate)}/s ETA ${formatDuration(etaMs)}` : '';
  return `${job.state.padEnd(9)} ${progressBar(job.progress.percent)}${step}${bytes}${speed}`;
}

export function jobTable(jobs: JobLike[]): string {
  const rows = jobs.map((j) => [j.id, j.kind, j.state, `${j.progress.percent.toFixed(0)}%`, j.target.vm ?? '-', `${j.source.vm}@${j.source.point}`, j.createdAt]);
  const head = ['ID', 'KIND', 'STATE', 'DONE', 'TARGET', 'SOURCE', 'CREATED'];
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  return all.map((r) => r.map((c, i) => String(c).padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function jobDetail(job: JobLike): string {
  const lines = [
    `id:       ${job.id}`,
    `kind:     ${job.kind}${job.label ? `  (${job.label})` : ''}`,
    `state:    ${job.state}`,
    `vcenter:  ${job.vcenter}`,
    `source:   ${job.source.vm} @ ${job.source.point}`,
    `target:   ${job.target.vm ?? '(new VM)'}`,
    `progress: ${progressBar(job.progress.percent)}`,
  ];
  if (job.error) lines.push(`error:    ${job.error.code}: ${job.error.message}`);
  if (job.steps?.length) {
    lines.push('steps:');
    for (const s of job.steps) {
      const took = s.startedAt && s.finishedAt ? ` ${formatDuration(Date.parse(s.finishedAt) - Date.parse(s.startedAt))}` : '';
      const err = s.error ? `  ${s.error.code}: ${s.error.message}` : '';
      lines.push(`  ${s.phase === 'cleanup' ? '(cleanup) ' : ''}${s.name.padEnd(24)} ${s.state}${took}${err}`);
    }
  }
  return lines.join('\n');
}
