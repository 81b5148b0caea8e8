import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileBackupRepository, canonicalJson, generateFixtureChain, planRestore, vsphere, verifyDocument } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// Issue #11: verified restores (the written areas read back through the same
// target and compared with the backup), the signed restore report, a silently
// corrupting disk caught with the block named, and a corrupt backup refused
// before an in-place restore powers the VM off.

let renv: RestoreEnv;
let api: Proc & { url: string };
let worker: Proc | undefined;
const { http, ended } = apiCalls(() => api.url, () => renv.headers);
const step = (job: any, name: string) => job.steps.find((s: any) => s.name === name);
let h0vm1: string;

const restoreNew = (name: string, point: string, options: Record<string, unknown>) =>
  http('POST', '/v1/restores', '/v1/restores', { kind: 'new_vm', vcenter: renv.vcenterName, source: { vm: 'vr-src', point }, target: { name, datastore: 'LocalDS_0' }, options });


async function vmByName(name: string) {
  const c = await renv.client();
  try {
    const all = await vsphere.findAll(c, 'VirtualMachine', ['name']);
    return all.find((o) => vsphere.propValue<string>(o, 'name') === name)?.obj ?? null;
  } finally {
    await c.close();
  }
}

beforeAll(async () => {
  renv = await startRestoreEnv([], { VMRESTORE_WRITE_BATCH_EXTENTS: '8' });
  const c = await renv.client();
  const src = await vsphere.findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
  h0vm1 = (await vsphere.findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM1' })).value;
  await c.close();
  await renv.backupFor(src.value, 'vr-src', { incrementals: 2, seed: 31 });
  api = await startApi(renv.env);
  worker = await startWorkerProcess(renv.env);
});
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  await renv?.close();
});

it('a new VM is verified by default: every written byte read back through the same transport; the report is signed and checks', async () => {
  const job = await ended((await restoreNew('vr-ok', 'p2', { transports: ['nbdssl'], powerOn: false })).body.id);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  const names = job.steps.filter((s: any) => s.phase === 'main').map((s: any) => s.name);
  expect(names.indexOf('verify_disks')).toBe(names.indexOf('write_disks') + 1);
  expect(names.at(-1)).toBe('restore_report');
  const write = step(job, 'write_disks').result;
  const verify = step(job, 'verify_disks').result;
  expect(verify.verified).toBe(true);
  expect(verify.bytes).toBe(write.bytes);
  expect(verify.disks.every((d: any) => d.transport === 'nbdssl' && d.metadataKeys > 0)).toBe(true);
  expect(renv.vddkLog()).toMatch(/^VixDiskLib_Read /m);

  const { status, body } = await http('GET', `/v1/restores/${job.id}/report`, '/v1/restores/{id}/report');
  expect(status).toBe(200);
  const { report, signature } = body;
  expect(report).toMatchObject({
    format: 'vmrestore.restore-report/1',
    job: { id: job.id, kind: 'new_vm' },
    source: { vm: 'vr-src', point: 'p2', chain: ['p0', 'p1', 'p2'] },
    transport: 'nbdssl',
    bytesWritten: write.bytes,
    verification: { blockChecksumsOnWrite: true, readBack: { bytes: write.bytes, result: 'identical' } },
  });
  for (const d of report.disks) {
    expect(d.readBack).toMatchObject({ verified: true, transport: 'nbdssl' });
    expect(d.backupBlockSha256Digest).toMatch(/^[0-9a-f]{64}$/);
    expect(d.backupBlocks).toBeGreaterThan(0);
  }
  const keys = await http('GET', '/v1/report-keys', '/v1/report-keys');
  const key = keys.body.items.find((k: any) => k.keyId === signature.keyId);
  expect(key).toMatchObject({ alg: 'Ed25519', current: true });
  expect(verifyDocument(key.publicKeyPem, report, signature)).toBe(true);
  // Anyone can check it with plain node:crypto: Ed25519 over the canonical JSON.
  const { verify: edVerify, createPublicKey } = await import('node:crypto');
  expect(edVerify(null, Buffer.from(canonicalJson(report)), createPublicKey(key.publicKeyPem), Buffer.from(signature.value, 'base64'))).toBe(true);
  expect(verifyDocument(key.publicKeyPem, { ...report, bytesWritten: report.bytesWritten + 1 }, signature)).toBe(false);
  // No key material in the report's response.
  expect(JSON.stringify(body)).not.toMatch(/PRIVATE KEY/);
});

it('a disk that silently corrupts a write is caught by verification: the job fails naming the byte and the backup block, the VM is removed', async () => {
  // A byte in the middle of a stored block that the restore writes (not a rebuilt 1 KiB patch unit).
  const plan = await planRestore(new FileBackupRepository([renv.root]), 'vr-src', 'p1');
  const extent = plan.disks[0]!.extents.find((e) => e.length >= 16384 && e.check)!;
  const at = extent.targetOffset + 8192 + 3;
  renv.setVddk({ corruptWriteAt: at });
  try {
    const job = await ended((await restoreNew('vr-bad', 'p1', { transports: ['nbd'] })).body.id);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('VERIFY_MISMATCH');
    expect(job.error.message).toContain(`at byte ${at}`);
    expect(job.error.message).toMatch(/its backup block is bytes \d+\.\.\d+ of .*vr-src.* \(sha256 [0-9a-f]{64}\)/);
    expect(step(job, 'write_disks').state).toBe('succeeded'); // the write itself "succeeded"
    expect(step(job, 'remove_incomplete_vm').result).toMatchObject({ removed: true });
    expect(await vmByName('vr-bad')).toBeNull();
    const report = await http('GET', `/v1/restores/${job.id}/report`, '/v1/restores/{id}/report');
    expect([report.status, report.body.code]).toEqual([409, 'REPORT_NOT_AVAILABLE']);
  } finally {
    renv.setVddk({ corruptWriteAt: '' });
  }
});

it('in place with verify: true, through the file target; the report shows the read-back', async () => {
  const c0 = await renv.backupFor(h0vm1, 'vr-inplace', { incrementals: 1, seed: 5 });
  const job = await ended((await http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source: { vm: 'vr-inplace', point: 'p1' }, target: { vm: h0vm1 }, options: { transports: ['file'], verify: true } })).body.id);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  expect(step(job, 'verify_disks').result.bytes).toBe(step(job, 'write_disks').result.bytes);
  // A file target is read back while it is written: verify_disks reads nothing again.
  const written = step(job, 'write_disks').result.disks;
  expect(written.map((d: any) => [d.verified, d.readBackBytes])).toEqual(written.map((d: any) => [true, d.bytes]));
  expect(step(job, 'verify_disks').result.disks.every((d: any) => d.whileWriting === true)).toBe(true);
  const { body } = await http('GET', `/v1/restores/${job.id}/report`, '/v1/restores/{id}/report');
  expect(body.report).toMatchObject({ job: { kind: 'in_place' }, target: { vm: h0vm1 }, verification: { backupCheckedBeforeWrite: { bytes: expect.any(Number) }, readBack: { result: 'identical' } } });
  expect(body.report.disks.map((d: any) => d.readBack)).toEqual(written.map((d: any) => ({ verified: true, bytes: d.bytes, transport: 'file', whileWriting: true })));
  expect(c0.points).toHaveLength(2);
});

it('a corrupt backup is refused before an in-place restore powers the VM off (the block named)', async () => {
  await renv.backupFor(h0vm1, 'vr-corrupt', { incrementals: 1, seed: 6 });
  // Flip one byte of the incremental's data file (a stored block no longer matches its SHA-256).
  const dir = join(renv.root, 'vr-corrupt', 'p1');
  const data = readdirSync(dir).find((f) => f.endsWith(".dat"))!;
  const buf = readFileSync(join(dir, data));
  buf[10] = buf[10]! ^ 0x55;
  writeFileSync(join(dir, data), buf);
  await renv.sim.clearCalls();
  const c = await renv.client();
  try {
    await vsphere.powerOn(c, { type: 'VirtualMachine', value: h0vm1 });
  } finally {
    await c.close();
  }
  const job = await ended((await http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source: { vm: 'vr-corrupt', point: 'p1' }, target: { vm: h0vm1 }, options: { transports: ['file'] } })).body.id);
  expect(job.state).toBe('failed');
  expect(job.error.code).toBe('BACKUP_CHECKSUM_MISMATCH');
  expect(job.error.message).toMatch(/block 0 .*SHA-256/);
  expect(job.error.message).toContain('the restore stopped before touching');
  expect(step(job, 'verify_backup').state).toBe('failed');
  expect(step(job, 'power_off').state).toBe('pending'); // never ran
  expect(await renv.sim.calls('PowerOffVM_Task')).toHaveLength(0);
  const c2 = await renv.client();
  try {
    expect(await vsphere.getPowerState(c2, { type: 'VirtualMachine', value: h0vm1 })).toBe('poweredOn');
  } finally {
    await c2.close();
  }
});

it('writes and verifies the disks of a VM in parallel (VMRESTORE_DISK_PARALLELISM, default 2): their writes interleave, every disk exact', async () => {
  const MiB = 1024 * 1024;
  const two = await generateFixtureChain({ root: renv.root, vmId: 'vr-two', disks: [{ key: 2000, capacityBytes: 8 * MiB }, { key: 2001, capacityBytes: 8 * MiB }], incrementals: 1, seed: 12 });
  const logBefore = renv.vddkLog().length;
  renv.setVddk({ writeDelayMs: 20 });
  try {
    const job = await ended(
      (await http('POST', '/v1/restores', '/v1/restores', { kind: 'new_vm', vcenter: renv.vcenterName, source: { vm: 'vr-two', point: 'p1' }, target: { name: 'vr-two', datastore: 'LocalDS_0' }, options: { transports: ['nbdssl'], powerOn: false } })).body.id,
    );
    expect([job.state, job.error]).toEqual(['succeeded', null]);
    const write = step(job, 'write_disks').result;
    expect(write.parallelDisks).toBe(2);
    expect(write.disks).toHaveLength(2);
    // Each disk's extent file is named after its descriptor (the delta files are gone once the snapshot is removed).
    const files = write.disks.map((d: any) => `/${String(d.file).split('/').pop()!.replace(/\.vmdk$/, '')}-`);
    const writes = renv.vddkLog().slice(logBefore).split('\n').filter((l) => l.startsWith('VixDiskLib_Write '));
    const at = (f: string) => writes.map((l, i) => (l.includes(f) ? i : -1)).filter((i) => i >= 0);
    const [a, b] = [at(files[0]), at(files[1])];
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    // Interleaved: each disk had a write before the other's last one.
    expect(Math.min(...b)).toBeLessThan(Math.max(...a));
    expect(Math.min(...a)).toBeLessThan(Math.max(...b));
    expect(step(job, 'verify_disks').result.bytes).toBe(write.bytes);
    const c = await renv.client();
    try {
      const info = await vsphere.getVmInfo(c, (await vmByName('vr-two'))!);
      for (const [i, d] of info.disks.entries()) {
        const flat = readFileSync(renv.sim.flatPath(d.fileName));
        const want = two.points[1]!.images.get([2000, 2001][i]!)!;
        expect(flat.subarray(0, want.length).equals(want)).toBe(true);
      }
    } finally {
      await c.close();
    }
  } finally {
    renv.setVddk({ writeDelayMs: 0 });
  }
});
