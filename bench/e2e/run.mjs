// bench/e2e: end-to-end restore benchmarks (issue #9), from one run, through
// the real api and worker processes (built dist) into the vcsim harness,
// `file` target, timed from the POST to the job's finishedAt. Each section
// starts its own harness, api and workers; baselines are measured in the
// same run on the same file system (the harness datastore's).
//
// Benchmarks
//   npx tsc -b tsconfig.build.json     # the bench runs the dist; needs scripts/build-vcsim.sh and the services
//   node bench/e2e/run.mjs
// Env (defaults finish in about 10 minutes on 2 cores):
//   BENCH_DISK_GB=8            one_disk: one dense disk, in-place restore vs dd of the same bytes
//   BENCH_FOUR_DISKS_GB=8      four_disks: total of 4 dense disks, one new-VM restore with
//                              VMRESTORE_DISK_PARALLELISM=BENCH_DISK_PARALLELISM (default 4) vs 4 dd in parallel,
//                              and (verified) vs those dd plus a direct read-back of what they wrote;
//                              then (BENCH_VERIFY unset) the same restore with verify: false vs the mean of
//                              that dd and a second one run after it
//   BENCH_CHAIN_DISK_GB=2 BENCH_CHAIN_POINTS=30 BENCH_CHAIN_AREAS=300
//                              deep_chain: new-VM restore (thin) of the last point vs dd of its flattened image;
//                              then (BENCH_VERIFY unset) the same restore with verify: false
//   BENCH_SMALL_JOBS=200 BENCH_SMALL_DISK_MB=4 BENCH_WORKERS=1,2,3
//                              small_jobs: in-place restores of distinct VMs, jobs/s per worker count, and
//                              the CPU each part of the stack used meanwhile (% of one core)
//   BENCH_SECTIONS=one_disk,four_disks,deep_chain,small_jobs   BENCH_DIR=<dir> (default the OS tmpdir)
//   BENCH_CPU_PROF=<dir>       V8 CPU profiles of the api and worker processes, written when they stop
//   BENCH_VERIFY=0|1           pass options.verify (default: unset, the service's default: on for new VMs)
// dd baseline: `dd bs=4M conv=fdatasync` into a new file (page cache, one fdatasync at the end).
// Prints `name: value` lines.
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { writeChain, writeDenseFull, prng } from './data.mjs';
import { core, cpuByPart, env, isTerminal, track, removeDir, restoreTimed, setWorkers, startStack, stepSeconds, stepsLine, stopStack, tempDir, flatOf, vmByName } from './stack.mjs';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const num = (name, def) => {
  const v = Number(process.env[name] ?? def);
  if (!(v > 0)) throw new Error(`${name} must be a positive number, got ${process.env[name]}`);
  return v;
};
const diskGb = num('BENCH_DISK_GB', 8);
const fourGb = num('BENCH_FOUR_DISKS_GB', 8);
const diskParallelism = num('BENCH_DISK_PARALLELISM', 4);
const chainGb = num('BENCH_CHAIN_DISK_GB', 2);
const chainPoints = num('BENCH_CHAIN_POINTS', 30);
const chainAreas = num('BENCH_CHAIN_AREAS', 300);
const smallJobs = num('BENCH_SMALL_JOBS', 200);
const smallDiskMb = num('BENCH_SMALL_DISK_MB', 4);
const workerCounts = (process.env.BENCH_WORKERS ?? '1,2,3').split(',').map(Number);
const sections = new Set((process.env.BENCH_SECTIONS ?? 'one_disk,four_disks,deep_chain,small_jobs').split(','));
const verifyOpt = process.env.BENCH_VERIFY === undefined ? {} : { verify: process.env.BENCH_VERIFY === '1' };
const mibOf = (gb) => Math.round(gb * 1024);

const line = (name, value) => console.log(`${name}: ${value}`);
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

function sync() {
  execFileSync('sync');
}

/** dd with each argument list, all in parallel; seconds until the last ends. */
async function ddAll(argLists) {
  const t0 = performance.now();
  await Promise.all(
    argLists.map(
      (args) =>
        new Promise((resolve, reject) => {
          const p = track(spawn('dd', [...args, 'status=none'], { stdio: ['ignore', 'ignore', 'pipe'] }));
          let err = '';
          p.stderr.on('data', (d) => (err += d));
          p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`dd ${args.join(' ')}: ${code} ${err}`))));
        }),
    ),
  );
  return (performance.now() - t0) / 1000;
}

/**
 * dd of each (src, dst) pair, all in parallel; seconds until the last ends.
 * With `readBack` (an object), each written file is then read back with
 * O_DIRECT, all in parallel, and readBack.seconds set: what a verified
 * restore's read-back moves.
 */
async function dd(pairs, readBack) {
  sync();
  const s = await ddAll(pairs.map(([src, dst]) => [`if=${src}`, `of=${dst}`, 'bs=4M', 'conv=fdatasync']));
  if (readBack) readBack.seconds = await ddAll(pairs.map(([, dst]) => [`if=${dst}`, 'of=/dev/null', 'bs=32M', 'iflag=direct']));
  for (const [, dst] of pairs) rmSync(dst, { force: true });
  return s;
}

/** Compares `samples` random 1 MiB windows (and the last one) of two files at the same offsets. */
function sampleCompare(a, b, length, samples, label) {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const ba = Buffer.alloc(MiB);
  const bb = Buffer.alloc(MiB);
  const rnd = prng(length % 100003);
  try {
    const offs = Array.from({ length: samples }, () => Math.floor((rnd() * Math.max(0, length - MiB)) / 4096) * 4096);
    offs.push(Math.max(0, length - MiB));
    for (const off of offs) {
      const n = Math.min(MiB, length - off);
      readSync(fa, ba, 0, n, off);
      readSync(fb, bb, 0, n, off);
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) throw new Error(`${label}: the restored disk differs from the backup near offset ${off}`);
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

function facts(dir) {
  const cpus = os.cpus();
  line('cores', cpus.length);
  line('cpu', JSON.stringify(cpus[0]?.model ?? 'unknown'));
  line('memory_gib', f(os.totalmem() / GiB, 1));
  line('load_average_1m_at_start', f(os.loadavg()[0]));
  const df = execFileSync('df', ['-T', '-P', dir], { encoding: 'utf8' }).trim().split('\n').at(-1).split(/\s+/);
  line('datastore_fs', `${df[1]} (${df[0]}, mounted on ${df[6]}, ${f(Number(df[4]) / 1024 / 1024, 1)} GiB free)`);
  line('bench_dir', process.env.BENCH_DIR ?? os.tmpdir());
  line('dd_baseline', 'dd bs=4M conv=fdatasync into a new file on the datastore file system');
  line('node', process.version);
}

async function oneDisk() {
  const dir = tempDir('bench-e2e-one-');
  let stack;
  try {
    const backups = join(dir, 'backups');
    stack = await startStack({ dir, backups, diskMb: mibOf(diskGb), vms: 1 });
    const vmRef = await core.vsphere.findVm(stack.client, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
    const disk = (await core.vsphere.getVmInfo(stack.client, vmRef)).disks[0];
    const bytes = disk.capacityInBytes;
    await writeDenseFull(core, { root: backups, vmId: 'one', disks: [{ key: disk.key, capacityBytes: bytes }] });
    const dat = join(backups, 'one', 'full', `disk-${disk.key}.dat`);
    if (statSync(dat).size !== bytes) throw new Error('the dense full data file is not the raw image');
    const ddS = await dd([[dat, join(dir, 'dd-one.raw')]]);
    sync();
    const { seconds, job } = await restoreTimed(stack, { kind: 'in_place', vcenter: stack.vcenter, source: { vm: 'one', point: 'full' }, target: { vm: vmRef.value }, options: { transports: ['file'], ...verifyOpt } });
    const info = await core.vsphere.getVmInfo(stack.client, vmRef);
    sampleCompare(dat, flatOf(stack.sim, info.disks[0].fileName), bytes, 32, 'one_disk');
    const write = job.steps.find((s) => s.name === 'write_disks').result;
    line('one_disk_gib', f(bytes / GiB));
    line('one_disk_restore_s', f(seconds));
    line('one_disk_verify_backup_s', f(stepSeconds(job, 'verify_backup')));
    line('one_disk_write_disks_s', f(stepSeconds(job, 'write_disks')));
    line('one_disk_write_plan_s', f(write.planMs / 1000));
    line('one_disk_write_copy_s', f(write.disks[0].copyMs / 1000));
    line('one_disk_bytes_written', write.bytes);
    line('one_disk_dd_s', f(ddS));
    line('one_disk_restore_mib_per_s', f(bytes / MiB / seconds, 1));
    line('one_disk_write_phase_mib_per_s', f(bytes / MiB / stepSeconds(job, 'write_disks'), 1));
    line('one_disk_dd_mib_per_s', f(bytes / MiB / ddS, 1));
    line('one_disk_vs_dd_ratio', f(ddS / seconds, 3));
    line('one_disk_steps_s', stepsLine(job));
  } finally {
    await stopStack(stack);
    removeDir(dir);
  }
}

async function fourDisks() {
  const dir = tempDir('bench-e2e-four-');
  let stack;
  try {
    const backups = join(dir, 'backups');
    stack = await startStack({ dir, backups, diskMb: 1, vms: 1, appEnv: { VMRESTORE_DISK_PARALLELISM: String(diskParallelism) } });
    const per = mibOf(fourGb / 4) * MiB;
    const disks = [2000, 2001, 2002, 2003].map((key) => ({ key, capacityBytes: per }));
    await writeDenseFull(core, { root: backups, vmId: 'four', disks });
    const dats = disks.map((d) => join(backups, 'four', 'full', `disk-${d.key}.dat`));
    const ddRead = {};
    const ddS = await dd(dats.map((d, i) => [d, join(dir, `dd-four-${i}.raw`)]), ddRead);
    sync();
    const { seconds, job } = await restoreTimed(stack, { kind: 'new_vm', vcenter: stack.vcenter, source: { vm: 'four', point: 'full' }, target: { name: 'four-restored', datastore: 'LocalDS_0' }, options: { transports: ['file'], powerOn: false, ...verifyOpt } });
    const vm = await vmByName(stack, 'four-restored');
    if (vm.info.disks.length !== 4) throw new Error(`four_disks: the new VM has ${vm.info.disks.length} disks`);
    vm.info.disks.forEach((d, i) => sampleCompare(dats[i], flatOf(stack.sim, d.fileName), per, 8, `four_disks disk ${i}`));
    const total = per * 4;
    const write = job.steps.find((s) => s.name === 'write_disks').result;
    line('four_disks_gib', f(total / GiB));
    line('four_disks_disk_parallelism', `${diskParallelism} (VMRESTORE_DISK_PARALLELISM; write_disks says parallelDisks=${write.parallelDisks})`);
    line('four_disks_verify', verifyOpt.verify === undefined ? 'service default (new VM: on)' : verifyOpt.verify);
    line('four_disks_restore_s', f(seconds));
    line('four_disks_write_disks_s', f(stepSeconds(job, 'write_disks')));
    line('four_disks_verify_disks_s', f(stepSeconds(job, 'verify_disks')));
    line('four_disks_bytes_written', write.bytes);
    line('four_disks_dd_s', f(ddS));
    line('four_disks_restore_mib_per_s', f(total / MiB / seconds, 1));
    line('four_disks_write_phase_mib_per_s', f(total / MiB / stepSeconds(job, 'write_disks'), 1));
    line('four_disks_dd_mib_per_s', f(total / MiB / ddS, 1));
    line('four_disks_vs_dd_ratio', f(ddS / seconds, 3));
    // A verified restore moves each byte twice (written, read back): against dd doing the same.
    line('four_disks_dd_read_back_s', f(ddRead.seconds));
    if (verifyOpt.verify !== false) {
      line('four_disks_vs_dd_write_and_read_back_ratio', f((ddS + ddRead.seconds) / seconds, 3));
    }
    if (verifyOpt.verify === undefined) {
      // The same restore without the read-back (options.verify: false): the write path alone against dd.
      const plain = await restoreTimed(stack, { kind: 'new_vm', vcenter: stack.vcenter, source: { vm: 'four', point: 'full' }, target: { name: 'four-unverified', datastore: 'LocalDS_0' }, options: { transports: ['file'], powerOn: false, verify: false } });
      const again = await dd(dats.map((d, i) => [d, join(dir, `dd-four-again-${i}.raw`)]));
      line('four_disks_unverified_restore_s', f(plain.seconds));
      line('four_disks_dd_again_s', f(again));
      line('four_disks_unverified_vs_dd_ratio', f((ddS + again) / 2 / plain.seconds, 3));
    }
  } finally {
    await stopStack(stack);
    removeDir(dir);
  }
}

async function deepChain() {
  const dir = tempDir('bench-e2e-chain-');
  let stack;
  try {
    const backups = join(dir, 'backups');
    stack = await startStack({ dir, backups, diskMb: 1, vms: 1 });
    const cap = mibOf(chainGb) * MiB;
    const flat = join(dir, 'flattened.raw');
    const { pointIds, backupBytes } = await writeChain(core, { root: backups, vmId: 'deep', disk: { key: 2000, capacityBytes: cap }, points: chainPoints, smallAreas: chainAreas, flatPath: flat });
    const point = pointIds.at(-1);
    const ddS = await dd([[flat, join(dir, 'dd-chain.raw')]]);
    sync();
    const { seconds, job } = await restoreTimed(stack, { kind: 'new_vm', vcenter: stack.vcenter, source: { vm: 'deep', point }, target: { name: 'deep-restored', datastore: 'LocalDS_0' }, options: { transports: ['file'], provisioning: 'thin', powerOn: false, ...verifyOpt } });
    const vm = await vmByName(stack, 'deep-restored');
    const restored = flatOf(stack.sim, vm.info.disks[0].fileName);
    execFileSync('cmp', ['-n', String(cap), flat, restored]); // whole disk, byte for byte (throws on a difference)
    const write = job.steps.find((s) => s.name === 'write_disks').result;
    line('deep_chain_points', pointIds.length);
    line('deep_chain_restored_point', point);
    line('deep_chain_disk_gib', f(cap / GiB));
    line('deep_chain_backup_bytes', backupBytes);
    line('deep_chain_flattened_allocated_bytes', statSync(flat).blocks * 512);
    line('deep_chain_verify', verifyOpt.verify === undefined ? 'service default (new VM: on)' : verifyOpt.verify);
    line('deep_chain_restore_s', f(seconds));
    line('deep_chain_write_disks_s', f(stepSeconds(job, 'write_disks')));
    line('deep_chain_write_plan_s', f(write.planMs / 1000));
    line('deep_chain_write_copy_s', f(write.disks[0].copyMs / 1000));
    line('deep_chain_verify_disks_s', f(stepSeconds(job, 'verify_disks')));
    line('deep_chain_dd_s', f(ddS));
    line('deep_chain_restore_vs_dd_time_ratio', f(seconds / ddS, 3));
    line('deep_chain_steps_s', stepsLine(job));
    line('deep_chain_bytes_written', write.bytes);
    line('deep_chain_image_bytes', cap);
    line('deep_chain_restored_allocated_bytes', statSync(restored).blocks * 512);
    line('deep_chain_written_vs_image_ratio', f(write.bytes / cap, 3));
    if (verifyOpt.verify === undefined) {
      // The same restore without the read-back (options.verify: false): the write path alone against dd.
      const plain = await restoreTimed(stack, { kind: 'new_vm', vcenter: stack.vcenter, source: { vm: 'deep', point }, target: { name: 'deep-unverified', datastore: 'LocalDS_0' }, options: { transports: ['file'], provisioning: 'thin', powerOn: false, verify: false } });
      execFileSync('cmp', ['-n', String(cap), flat, flatOf(stack.sim, (await vmByName(stack, 'deep-unverified')).info.disks[0].fileName)]);
      line('deep_chain_unverified_restore_s', f(plain.seconds));
      line('deep_chain_unverified_vs_dd_time_ratio', f(plain.seconds / ddS, 3));
    }
  } finally {
    await stopStack(stack);
    removeDir(dir);
  }
}

/** Jobs of `ids` by id (newest pages of the list, then one by one for any not seen). */
async function states(stack, ids) {
  const want = new Set(ids);
  const seen = new Map();
  let cursor;
  for (let page = 0; page < Math.ceil(ids.length / 200) + 1; page++) {
    const r = await stack.call('GET', `/v1/restores?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const j of r.items) if (want.has(j.id)) seen.set(j.id, j);
    cursor = r.nextCursor;
    if (!cursor || seen.size === want.size) break;
  }
  for (const id of ids) if (!seen.has(id)) seen.set(id, await stack.call('GET', `/v1/restores/${id}`));
  return seen;
}

async function smallJobsSection() {
  const dir = tempDir('bench-e2e-small-');
  let stack;
  try {
    const backups = join(dir, 'backups');
    stack = await startStack({ dir, backups, diskMb: smallDiskMb, vms: smallJobs, workers: 0 });
    const vms = (await core.vsphere.findAll(stack.client, 'VirtualMachine', ['name'])).filter((o) => /^DC0_H0_VM\d+$/.test(core.vsphere.propValue(o, 'name')));
    if (vms.length < smallJobs) throw new Error(`the harness made ${vms.length} VMs, not ${smallJobs}`);
    // The harness gives each VM's disk its own device key: one small chain per key (a few MiB each).
    const sourceOf = new Map();
    const made = new Set();
    for (const vm of vms.slice(0, smallJobs)) {
      const disk = (await core.vsphere.getVmInfo(stack.client, vm.obj)).disks[0];
      const vmId = `small-${disk.key}-${disk.capacityInBytes}`;
      if (!made.has(vmId)) {
        made.add(vmId);
        await core.generateFixtureChain({ root: backups, vmId, disks: [{ key: disk.key, capacityBytes: disk.capacityInBytes }], incrementals: 2, seed: 3, areasPerPoint: 8, maxAreaBytes: 256 * 1024 });
      }
      sourceOf.set(vm.obj.value, vmId);
    }
    const rates = new Map();
    line('small_jobs', smallJobs);
    line('small_jobs_disk_mib', smallDiskMb);
    line('small_jobs_worker_concurrency', `${env.VMRESTORE_WORKER_CONCURRENCY ?? 4} per worker (VMRESTORE_WORKER_CONCURRENCY)`);
    for (const w of workerCounts) {
      await setWorkers(stack, w);
      const cpu0 = cpuByPart(stack);
      const t0 = Date.now();
      const ids = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < smallJobs) {
            const vm = vms[next++].obj.value;
            const job = await stack.call('POST', '/v1/restores', { kind: 'in_place', vcenter: stack.vcenter, source: { vm: sourceOf.get(vm), point: 'p2' }, target: { vm }, options: { transports: ['file'] } });
            ids.push(job.id);
          }
        }),
      );
      let jobs;
      for (;;) {
        jobs = await states(stack, ids);
        if ([...jobs.values()].every((j) => isTerminal(j.state))) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const bad = [...jobs.values()].filter((j) => j.state !== 'succeeded');
      if (bad.length) throw new Error(`small_jobs with ${w} worker(s): ${bad.length} of ${ids.length} jobs did not succeed, e.g. ${bad[0].state} ${JSON.stringify(bad[0].error)}`);
      const end = Math.max(...[...jobs.values()].map((j) => Date.parse(j.finishedAt)));
      const rate = ids.length / ((end - t0) / 1000);
      rates.set(w, rate);
      // Where the 2 cores went meanwhile (% of one core each): shows which part bounds the rate.
      const cpu1 = cpuByPart(stack);
      const wall = (Date.now() - t0) / 1000;
      line(`small_jobs_cpu_${w}w`, Object.keys(cpu1).map((k) => `${k} ${Math.round((100 * (cpu1[k] - cpu0[k])) / wall)}%`).join(', '));
      line(`small_jobs_s_${w}w`, f((end - t0) / 1000));
      line(`small_jobs_per_s_${w}w`, f(rate));
    }
    const base = rates.get(workerCounts[0]);
    for (const w of workerCounts.slice(1)) line(`small_jobs_scaling_${w}w_vs_${workerCounts[0]}w`, f(rates.get(w) / base, 3));
  } finally {
    await stopStack(stack);
    removeDir(dir);
  }
}

const top = tempDir('bench-e2e-facts-');
facts(top);
removeDir(top);
const t0 = performance.now();
if (sections.has('one_disk')) await oneDisk();
if (sections.has('four_disks')) await fourDisks();
if (sections.has('deep_chain')) await deepChain();
if (sections.has('small_jobs')) await smallJobsSection();
line('bench_total_s', f((performance.now() - t0) / 1000, 1));
process.exit(0);
