import { readFileSync } from 'node:fs';
import { vsphere } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { waitFor } from '../support/env';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// Range streams (issue #9, docs/scheduling.md): with VMRESTORE_DISK_STREAMS
// a large disk of a file target is written by several copies at once, each
// over its own range of the write list, each range checkpointed; a worker
// killed mid-write is replaced and the job resumes every range where it was.

let renv: RestoreEnv;
let api: Proc & { url: string };
let worker: Proc | undefined;
const { http, ended } = apiCalls(() => api.url, () => renv.headers);

beforeAll(async () => {
  renv = await startRestoreEnv(['-disk-mb', '24'], { VMRESTORE_DISK_STREAMS: '3', VMRESTORE_STREAM_MIN_MB: '1', VMRESTORE_WRITE_BATCH_EXTENTS: '2' });
  api = await startApi(renv.env);
});
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  await renv?.close();
});

async function expectPoint(ref: vsphere.MoRef, chain: Awaited<ReturnType<RestoreEnv['backupFor']>>, pointId: string) {
  const c = await renv.client();
  try {
    const info = await vsphere.getVmInfo(c, ref);
    const point = chain.points.find((p) => p.pointId === pointId)!;
    for (const d of info.disks) {
      const expected = point.images.get(d.key)!;
      expect({ disk: d.key, identical: readFileSync(renv.sim.flatPath(d.fileName)).subarray(0, expected.length).equals(expected) }).toEqual({ disk: d.key, identical: true });
    }
  } finally {
    await c.close();
  }
}

async function vm(name: string) {
  const c = await renv.client();
  try {
    return await vsphere.findVm(c, { inventoryPath: `DC0/vm/${name}` });
  } finally {
    await c.close();
  }
}

it('writes each large disk in three ranges at once, byte for byte', async () => {
  const ref = await vm('DC0_H0_VM0');
  const chain = await renv.backupFor(ref.value, 'streams-vm', { incrementals: 2, seed: 31 });
  worker = await startWorkerProcess(renv.env);
  const created = await http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source: { vm: 'streams-vm', point: 'p2' }, target: { vm: ref.value }, options: { transports: ['file'], verify: true } });
  const done = await ended(created.body.id, 90_000);
  expect([done.state, done.error]).toEqual(['succeeded', null]);
  const write = done.steps.find((s: any) => s.name === 'write_disks').result;
  expect(write.disks.map((d: any) => d.streams)).toEqual(write.disks.map(() => 3));
  // Several copies at once: through the page cache under VMRESTORE_FILE_DIRECT_IO=auto.
  expect(write.disks.map((d: any) => d.directBytes)).toEqual(write.disks.map(() => 0));
  // verify: every range read back while it was written; verify_disks reads nothing again.
  expect(write.disks.map((d: any) => [d.verified, d.readBackBytes])).toEqual(write.disks.map((d: any) => [true, d.bytes]));
  const verify = done.steps.find((s: any) => s.name === 'verify_disks').result;
  expect(verify.disks.map((d: any) => [d.key, d.whileWriting, d.bytesVerified])).toEqual(write.disks.map((d: any) => [d.key, true, d.bytes]));
  await expectPoint(ref, chain, 'p2');
  await stop(worker);
  worker = undefined;
}, 120_000);

it('resumes every range from its own checkpoint after the worker is killed mid-write', async () => {
  const ref = await vm('DC0_H0_VM1');
  const chain = await renv.backupFor(ref.value, 'streams-crash', { incrementals: 2, seed: 32 });
  worker = await startWorkerProcess(renv.env);
  // 4 MiB/s for the job: the write of its disks takes seconds, checkpointed every 2 extents per range.
  const created = await http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source: { vm: 'streams-crash', point: 'p2' }, target: { vm: ref.value }, options: { transports: ['file'], maxMBps: 4, verify: true } });
  const id = created.body.id;
  // Killed once every range of a disk has moved past its start.
  const ranged = async () => {
    const cps = await renv.db.diskCheckpoint.findMany({ where: { jobId: id } });
    return cps.find((c) => {
      const r = (c.state as { ranges?: Array<{ from: number; next: number; to: number }> } | null)?.ranges;
      return r && r.length === 3 && r.every((x) => x.next > x.from) && r.some((x) => x.next < x.to);
    });
  };
  const before = await waitFor('a checkpoint of three ranges, each under way', ranged, 60_000, 50);
  await stop(worker, 'SIGKILL');
  worker = await startWorkerProcess(renv.env);
  const done = await ended(id, 120_000);
  expect([done.state, done.error]).toEqual(['succeeded', null]);
  const disk = done.steps.find((s: any) => s.name === 'write_disks').result.disks.find((d: any) => d.key === before.diskKey);
  // The second run took the saved ranges: it began with what the first had checkpointed.
  expect(disk.streams).toBe(3);
  expect(disk.resumedBytes).toBeGreaterThanOrEqual(Number(before.bytesDone));
  expect(disk.resumedBytes).toBeGreaterThan(0);
  // Its read-back while writing covered only this run's part: verify_disks read the whole disk back.
  expect([disk.verified, disk.readBackBytes]).toEqual([false, disk.bytes - disk.resumedBytes]);
  const verified = done.steps.find((s: any) => s.name === 'verify_disks').result.disks.find((d: any) => d.key === before.diskKey);
  expect([verified.whileWriting, verified.bytesVerified]).toEqual([undefined, disk.bytes]);
  await expectPoint(ref, chain, 'p2');
}, 180_000);
