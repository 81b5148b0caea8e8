// The restore report: what a succeeded restore wrote, where, how, how fast,
// the checksums it was checked against and what was read back, signed with
// the service's key (secrets/signing.ts) so a backup product or an auditor
// can keep it and check it later, offline, with GET /v1/report-keys.

export const REPORT_FORMAT = 'vmrestore.restore-report/1';

export interface ReportStepInput {
  name: string;
  phase: string;
  seq: number;
  attempt: number;
  startedAt: Date | null;
  finishedAt: Date | null;
  result: unknown;
}

export interface ReportInput {
  job: { id: string; kind: string; request: unknown; createdAt: Date };
  steps: ReportStepInput[];
  warnings: Array<{ code?: unknown; message?: unknown; reason?: unknown }>;
  now: Date;
}

type Obj = Record<string, any>;

export function buildRestoreReport(input: ReportInput): Obj {
  const main = input.steps.filter((s) => s.phase === 'main' && s.name !== 'restore_report').sort((a, b) => a.seq - b.seq);
  const result = (name: string): Obj | undefined => (main.find((s) => s.name === name)?.result ?? undefined) as Obj | undefined;
  const req = input.job.request as Obj;
  const pre = result('preflight') ?? {};
  const write = result('write_disks') ?? {};
  const verify = result('verify_disks');
  const verifyBackup = result('verify_backup');
  const quick = result('changed_areas');
  const started = main.map((s) => s.startedAt).filter((d): d is Date => Boolean(d)).sort((a, b) => a.getTime() - b.getTime())[0] ?? input.now;
  const readBack = new Map(((verify?.disks ?? []) as Obj[]).map((d) => [d.key, d]));
  const isNew = input.job.kind === 'new_vm';
  const created = result('create_vm') ?? {};
  return {
    format: REPORT_FORMAT,
    job: { id: input.job.id, kind: input.job.kind, createdAt: input.job.createdAt.toISOString(), startedAt: started.toISOString(), finishedAt: input.now.toISOString(), durationMs: input.now.getTime() - started.getTime() },
    vcenter: { name: req.vcenter, instanceUuid: pre.vcenterInstanceUuid ?? null },
    source: { vm: req.source?.vm, point: req.source?.point, chain: pre.chain ?? [] },
    target: isNew
      ? { vm: created.vm ?? null, name: pre.name ?? req.target?.name ?? null, datastore: pre.datastore ?? null }
      : { vm: pre.vm ?? req.target?.vm, name: pre.vmName ?? null, instanceUuid: pre.vmInstanceUuid ?? null },
    mode: write.mode ?? 'full',
    ...(quick?.fallback ? { quickRollbackFallback: quick.fallback } : {}),
    transport: write.transport ?? null,
    bytesWritten: write.bytes ?? 0,
    disks: ((write.disks ?? []) as Obj[]).map((d) => {
      const rb = readBack.get(d.key);
      return {
        key: d.key,
        file: d.file,
        transport: d.transport ?? null,
        bytesWritten: d.bytes,
        dataBytes: d.dataBytes,
        zeroBytes: d.zeroBytes,
        extents: d.extents,
        // The checksums the data was checked against as it was written: each
        // backup block's SHA-256 (their digest), and the write list's digest.
        backupBlocks: d.blocks ?? null,
        backupBlockSha256Digest: d.blockSha256Digest ?? null,
        planDigest: d.planDigest ?? null,
        readBack: rb ? { verified: true, bytes: rb.bytesVerified, transport: rb.transport ?? null, whileWriting: rb.whileWriting === true } : { verified: false },
      };
    }),
    verification: {
      blockChecksumsOnWrite: true,
      backupCheckedBeforeWrite: verifyBackup ? { bytes: verifyBackup.bytesVerified ?? 0 } : false,
      readBack: verify ? { bytes: verify.bytes ?? 0, result: 'identical' } : false,
    },
    steps: main.map((s) => ({
      name: s.name,
      attempt: s.attempt,
      startedAt: s.startedAt?.toISOString() ?? null,
      finishedAt: s.finishedAt?.toISOString() ?? null,
      durationMs: s.startedAt && s.finishedAt ? s.finishedAt.getTime() - s.startedAt.getTime() : null,
    })),
    warnings: input.warnings.map((w) => ({ code: String(w.code ?? 'WARNING'), message: String(w.message ?? '') })),
  };
}
