/**
 * Generates realistic backup chains for tests, demos and benchmarks: a full
 * with random data and zero runs, then incrementals whose changed areas
 * overlap earlier ones, cross 1 MiB block boundaries, end off block
 * boundaries, sometimes zero data out, and sometimes touch the end of the
 * disk; several disks per VM. Returns the expected raw image of every disk at
 * every point, for byte-for-byte comparisons.
 */
import { createCipheriv } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fromRanges, toRanges } from './extents';
import { SECTOR_SIZE, type PointManifest } from './format';
import { PointWriter } from './writer';

export interface FixtureDiskSpec {
  key: number;
  capacityBytes: number;
}

export interface FixtureOptions {
  root: string;
  vmId?: string;
  /** PRNG seed; the same seed gives the same chain. */
  seed?: number;
  disks?: FixtureDiskSpec[];
  /** Number of incrementals after the full (default 4). */
  incrementals?: number;
  /** Changed areas per point and disk before merging (default 12). */
  areasPerPoint?: number;
  /** Longest area in bytes (default 1.5 MiB, so some areas span several blocks). */
  maxAreaBytes?: number;
  /** Point id prefix (default "p"): ids are p0 (full), p1, p2, ... */
  pointPrefix?: string;
  /**
   * Also write the expected images as files, `<dir>/<pointId>/disk-<key>.raw`
   * (for demos and tools outside this process). Keep it outside the backup root.
   */
  expectedImagesDir?: string;
}

export interface FixturePoint {
  pointId: string;
  manifest: PointManifest;
  /** Expected disk content at this point, per disk key (capacity bytes long). */
  images: Map<number, Buffer>;
  /** Changed areas stored for this point, per disk key (merged, sorted). */
  areas: Map<number, Array<{ start: number; length: number }>>;
  /** Paths of the expected images per disk key, when expectedImagesDir was given. */
  imagePaths?: Map<number, string>;
}

export interface FixtureChain {
  root: string;
  vmId: string;
  points: FixturePoint[];
}

/** Small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills with a deterministic keystream (AES-256-CTR of zeros, key and IV from the PRNG): fast for megabytes. */
function fillRandom(buf: Buffer, rnd: () => number): void {
  const seed = Buffer.alloc(48);
  for (let i = 0; i < 48; i += 4) seed.writeUInt32LE(Math.floor(rnd() * 4294967296), i);
  const cipher = createCipheriv('aes-256-ctr', seed.subarray(0, 32), seed.subarray(32));
  const stream = cipher.update(Buffer.alloc(buf.length));
  stream.copy(buf);
}

export const DEFAULT_FIXTURE_DISKS: FixtureDiskSpec[] = [
  { key: 2000, capacityBytes: 4 * 1024 * 1024 },
  { key: 2001, capacityBytes: 3 * 1024 * 1024 + 3 * SECTOR_SIZE },
];

/** A VirtualMachineConfigInfo as a backup would capture it (JSON), with the given disks. */
export function sampleVmConfig(vmId: string, disks: FixtureDiskSpec[]): Record<string, unknown> {
  const device: Array<Record<string, unknown>> = [
    { _type: 'VirtualIDEController', key: 200, busNumber: 0, device: [] },
    { _type: 'VirtualIDEController', key: 201, busNumber: 1, device: [3002] },
    { _type: 'VirtualPS2Controller', key: 300, busNumber: 0, device: [600, 700] },
    { _type: 'VirtualPCIController', key: 100, busNumber: 0, device: [500, 12000, 1000, 4000] },
    { _type: 'VirtualSIOController', key: 400, busNumber: 0, device: [] },
    { _type: 'VirtualKeyboard', key: 600, controllerKey: 300, unitNumber: 0 },
    { _type: 'VirtualPointingDevice', key: 700, controllerKey: 300, unitNumber: 1 },
    { _type: 'VirtualMachineVideoCard', key: 500, controllerKey: 100, unitNumber: 0, videoRamSizeInKB: 4096, numDisplays: 1 },
    { _type: 'VirtualMachineVMCIDevice', key: 12000, controllerKey: 100, unitNumber: 17 },
    {
      _type: 'ParaVirtualSCSIController',
      key: 1000,
      controllerKey: 100,
      unitNumber: 3,
      busNumber: 0,
      sharedBus: 'noSharing',
      device: disks.map((d) => d.key),
    },
    {
      _type: 'VirtualCdrom',
      key: 3002,
      controllerKey: 201,
      unitNumber: 0,
      backing: { _type: 'VirtualCdromRemotePassthroughBackingInfo', deviceName: '', exclusive: false },
      connectable: { startConnected: false, allowGuestControl: true, connected: false },
    },
    {
      _type: 'VirtualVmxnet3',
      key: 4000,
      controllerKey: 100,
      unitNumber: 7,
      addressType: 'generated',
      macAddress: '00:50:56:9a:12:34',
      wakeOnLanEnabled: true,
      backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'VM Network' },
      connectable: { startConnected: true, allowGuestControl: true, connected: true },
    },
    ...disks.map((d, i) => ({
      _type: 'VirtualDisk',
      key: d.key,
      controllerKey: 1000,
      unitNumber: i,
      capacityInKB: Math.floor(d.capacityBytes / 1024),
      capacityInBytes: d.capacityBytes,
      backing: {
        _type: 'VirtualDiskFlatVer2BackingInfo',
        fileName: i === 0 ? `[datastore1] ${vmId}/${vmId}.vmdk` : `[datastore1] ${vmId}/${vmId}_${i}.vmdk`,
        diskMode: 'persistent',
        thinProvisioned: true,
        parent: null,
        uuid: `6000C29${i}-1234-5678-9abc-def012345678`,
      },
    })),
  ];
  return {
    name: vmId,
    guestId: 'otherLinux64Guest',
    version: 'vmx-19',
    uuid: '421a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8',
    firmware: 'efi',
    files: { vmPathName: `[datastore1] ${vmId}/${vmId}.vmx` },
    hardware: { numCPU: 2, numCoresPerSocket: 1, memoryMB: 2048, device },
    cpuFeatureMask: [],
    changeTrackingEnabled: true,
    extraConfig: [
      { key: 'ctkEnabled', value: 'TRUE' },
      ...disks.map((_d, i) => ({ key: `scsi0:${i}.ctkEnabled`, value: 'TRUE' })),
      { key: 'svga.present', value: 'TRUE' },
    ],
  };
}

/** Disk metadata as VixDiskLib_ReadMetadata returns it. */
export function sampleDiskMetadata(d: FixtureDiskSpec, rnd: () => number = Math.random): Record<string, string> {
  const sectors = Math.ceil(d.capacityBytes / SECTOR_SIZE);
  const hex = (): string => Math.floor(rnd() * 256).toString(16).padStart(2, '0');
  return {
    'ddb.adapterType': 'pvscsi',
    'ddb.geometry.cylinders': String(Math.max(1, Math.floor(sectors / (255 * 63)))),
    'ddb.geometry.heads': '255',
    'ddb.geometry.sectors': '63',
    'ddb.longContentID': Array.from({ length: 16 }, hex).join(''),
    'ddb.toolsVersion': '12352',
    'ddb.uuid': Array.from({ length: 16 }, hex).join(' '),
    'ddb.virtualHWVersion': '19',
  };
}

function randomAreas(rnd: () => number, capacity: number, count: number, maxBytes: number): Array<{ start: number; end: number }> {
  const sectors = Math.floor(capacity / SECTOR_SIZE);
  const out: Array<{ start: number; end: number }> = [];
  for (let i = 0; i < count; i++) {
    const len = (1 + Math.floor(rnd() * (maxBytes / SECTOR_SIZE))) * SECTOR_SIZE;
    const start = Math.floor(rnd() * sectors) * SECTOR_SIZE;
    out.push({ start, end: Math.min(capacity, start + len) });
  }
  // Now and then an area reaching the end of the disk (an unaligned capacity gets a padded last sector).
  if (rnd() < 0.4) out.push({ start: Math.max(0, sectors - 3) * SECTOR_SIZE, end: capacity });
  return out;
}

export async function generateFixtureChain(options: FixtureOptions): Promise<FixtureChain> {
  const vmId = options.vmId ?? 'vm-fixture';
  const disks = options.disks ?? DEFAULT_FIXTURE_DISKS;
  const rnd = prng(options.seed ?? 1);
  const incrementals = options.incrementals ?? 4;
  const areasPerPoint = options.areasPerPoint ?? 12;
  const maxArea = options.maxAreaBytes ?? 1.5 * 1024 * 1024;
  const prefix = options.pointPrefix ?? 'p';
  const config = sampleVmConfig(vmId, disks);
  const metadata = new Map(disks.map((d) => [d.key, sampleDiskMetadata(d, rnd)]));
  const images = new Map(disks.map((d) => [d.key, Buffer.alloc(d.capacityBytes)]));
  const points: FixturePoint[] = [];
  const base = Date.parse('2026-11-01T02:00:00Z');
  for (let n = 0; n <= incrementals; n++) {
    const pointId = `${prefix}${n}`;
    const writer = await PointWriter.create({
      root: options.root,
      vmId,
      pointId,
      kind: n === 0 ? 'full' : 'incremental',
      parent: n === 0 ? null : `${prefix}${n - 1}`,
      config,
      createdAt: new Date(base + n * 86_400_000).toISOString(),
    });
    const areasByDisk = new Map<number, Array<{ start: number; length: number }>>();
    for (const d of disks) {
      const img = images.get(d.key)!;
      const areas = toRanges(fromRanges(randomAreas(rnd, d.capacityBytes, areasPerPoint, maxArea)));
      for (const a of areas) {
        const region = img.subarray(a.start, a.end);
        const r = rnd();
        if (n > 0 && r < 0.15) region.fill(0); // data zeroed out: still a change, still stored
        else {
          fillRandom(region, rnd);
          if (r > 0.7 && region.length >= 4 * SECTOR_SIZE) {
            // A zero run inside changed data.
            const z = Math.floor(rnd() * (region.length / SECTOR_SIZE - 2)) * SECTOR_SIZE;
            region.fill(0, z, z + 2 * SECTOR_SIZE);
          }
        }
      }
      const w = await writer.addDisk({
        key: d.key,
        capacityBytes: d.capacityBytes,
        changeId: `52 3c 8a 1f 9e 0b 44 d2-a7 61 0e 5c 3b 28 f9 ${d.key.toString(16).slice(-2)}/${n + 1}`,
        metadata: metadata.get(d.key)!,
      });
      for (const a of areas) await w.writeArea(a.start, img.subarray(a.start, a.end));
      areasByDisk.set(
        d.key,
        areas.map((a) => ({ start: a.start, length: a.end - a.start })),
      );
    }
    const manifest = await writer.commit();
    const point: FixturePoint = { pointId, manifest, images: new Map([...images].map(([k, b]) => [k, Buffer.from(b)])), areas: areasByDisk };
    if (options.expectedImagesDir !== undefined) {
      const dir = path.join(options.expectedImagesDir, pointId);
      await fsp.mkdir(dir, { recursive: true });
      point.imagePaths = new Map();
      for (const [key, img] of point.images) {
        const file = path.join(dir, `disk-${key}.raw`);
        await fsp.writeFile(file, img);
        point.imagePaths.set(key, file);
      }
    }
    points.push(point);
  }
  return { root: options.root, vmId, points };
}
