// Properties over random saved configs: temporary keys are unique and
// negative; every controllerKey in the spec is a real default controller key
// or a temporary key of a controller in the spec; the spec always passes the
// schema check as CreateVM_Task's body; disks map back one to one.
import fc from 'fast-check';
import type { VirtualDevice } from '../vsphere/types';
import { buildCreateSpec } from './build';
import { DEFAULT_CONTROLLER_KEYS } from './devices';
import { createVmRequest, defaultDevices } from './fixtures';
import { matchCreatedDisks } from './match';

type Json = Record<string, any>;

const CONTROLLER_TYPES = ['VirtualLsiLogicController', 'VirtualLsiLogicSASController', 'ParaVirtualSCSIController', 'VirtualBusLogicController', 'VirtualNVMEController', 'VirtualAHCIController', 'VirtualUSBXHCIController'];
const STORAGE = new Set(CONTROLLER_TYPES.filter((t) => t !== 'VirtualUSBXHCIController'));

/** A random saved config: controllers on PCI, disks on storage controllers or IDE, NICs, CD-ROMs, USB devices. */
const savedConfig = fc
  .record({
    controllers: fc.array(fc.constantFrom(...CONTROLLER_TYPES), { maxLength: 6 }),
    disks: fc.array(fc.record({ on: fc.nat(), gb: fc.integer({ min: 1, max: 4096 }), rdm: fc.constant(false), thin: fc.boolean() }), { maxLength: 12 }),
    nics: fc.array(fc.constantFrom('VirtualVmxnet3', 'VirtualE1000e', 'VirtualE1000', 'VirtualPCNet32', 'VirtualSriovEthernetCard'), { maxLength: 4 }),
    cdroms: fc.array(fc.constantFrom('iso', 'remote', 'atapi'), { maxLength: 3 }),
    usb: fc.nat({ max: 2 }),
    keyBase: fc.integer({ min: 1000, max: 100000 }),
    shuffle: fc.boolean(),
  })
  .map((g) => {
    const devices: Json[] = [...defaultDevices()];
    let key = g.keyBase;
    const ctls = g.controllers.map((type, i) => ({ _type: type, key: key++, controllerKey: 100, unitNumber: 3 + i, busNumber: i, sharedBus: 'noSharing', device: [] as number[] }));
    for (const c of ctls) if (!/SCSI|LsiLogic|BusLogic/.test(c._type)) delete (c as Json).sharedBus;
    devices.push(...ctls);
    const storage = ctls.filter((c) => STORAGE.has(c._type));
    const units = new Map<number, number>();
    g.disks.forEach((d) => {
      const targets = [200, 201, ...storage.map((c) => c.key)];
      const ck = targets[d.on % targets.length]!;
      const unit = units.get(ck) ?? 0;
      units.set(ck, unit + 1);
      devices.push({ _type: 'VirtualDisk', key: key++, controllerKey: ck, unitNumber: unit, capacityInKB: d.gb * 2 ** 20, backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[a] b.vmdk', diskMode: 'persistent', thinProvisioned: d.thin, parent: null } });
    });
    g.nics.forEach((t, i) => devices.push({ _type: t, key: key++, controllerKey: 100, unitNumber: 7 + i, addressType: 'generated', macAddress: `00:50:56:9a:00:0${i}`, backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'VM Network' } }));
    g.cdroms.forEach((b, i) => {
      const backing =
        b === 'iso' ? { _type: 'VirtualCdromIsoBackingInfo', fileName: '[iso] x.iso' } : b === 'remote' ? { _type: 'VirtualCdromRemotePassthroughBackingInfo', deviceName: '', exclusive: false } : { _type: 'VirtualCdromAtapiBackingInfo', deviceName: '/dev/cdrom' };
      devices.push({ _type: 'VirtualCdrom', key: key++, controllerKey: 201, unitNumber: 10 + i, backing, connectable: { startConnected: true, allowGuestControl: true, connected: false } });
    });
    const usbCtl = ctls.find((c) => c._type === 'VirtualUSBXHCIController');
    if (usbCtl) for (let i = 0; i < g.usb; i++) devices.push({ _type: 'VirtualUSB', key: key++, controllerKey: usbCtl.key, unitNumber: i, connected: true, backing: { _type: 'VirtualUSBUSBBackingInfo', deviceName: 'path:1' } });
    if (g.shuffle) devices.reverse(); // devices before their controllers
    return { name: 'r', version: 'vmx-19', guestId: 'otherGuest64', hardware: { numCPU: 2, memoryMB: 1024, device: devices } } as Json;
  });

describe('properties of every built spec', () => {
  test('temp keys unique and negative; controllerKeys resolve; the schema check passes; disks map back', () => {
    const realDefaults = new Set(Object.values(DEFAULT_CONTROLLER_KEYS));
    fc.assert(
      fc.property(savedConfig, fc.boolean(), (config, explicit) => {
        const savedKeys = (config.hardware.device as Json[]).map((d) => d.key as number);
        const tempKeys = explicit ? Object.fromEntries(savedKeys.slice(0, 3).map((k, i) => [k, -1000 * (i + 1)])) : undefined;
        const r = buildCreateSpec({ config, name: 'n', datastore: 'ds', fileExists: () => false, ...(tempKeys ? { tempKeys } : {}) });
        const devs = (r.spec.deviceChange ?? []).map((c) => c.device as Json);
        const keys = devs.map((d) => d.key as number);
        expect(new Set(keys).size).toBe(keys.length);
        for (const k of keys) expect(k).toBeLessThan(0);
        const controllers = new Set(devs.filter((d) => /Controller$/.test(d._type)).map((d) => d.key as number));
        for (const d of devs) {
          if (d.controllerKey === undefined) continue;
          expect(realDefaults.has(d.controllerKey) || controllers.has(d.controllerKey)).toBe(true);
        }
        for (const d of devs) {
          expect(d).not.toHaveProperty('device');
          expect(['VirtualIDEController', 'VirtualPS2Controller', 'VirtualPCIController', 'VirtualSIOController', 'VirtualKeyboard', 'VirtualMachineVMCIDevice', 'VirtualPointingDevice', 'VirtualUSB', 'VirtualSriovEthernetCard']).not.toContain(d._type);
          if (d._type === 'VirtualDisk') expect(d.backing.parent).toBeNull();
        }
        expect(createVmRequest(r.spec).problems).toEqual([]);
        // Every saved disk is in the spec and maps back to a distinct created disk.
        const created: VirtualDevice[] = [
          { _type: 'VirtualIDEController', key: 200, busNumber: 0 } as VirtualDevice,
          { _type: 'VirtualIDEController', key: 201, busNumber: 1 } as VirtualDevice,
          ...devs.map((d) => ({ ...d, key: 9000 - d.key, controllerKey: d.controllerKey < 0 ? 9000 - d.controllerKey : d.controllerKey }) as VirtualDevice),
        ];
        const m = matchCreatedDisks(config, created, r.disks);
        const savedDisks = (config.hardware.device as Json[]).filter((d) => d._type === 'VirtualDisk');
        expect(m.size).toBe(savedDisks.length);
        for (const sd of savedDisks) expect(m.get(sd.key)).toBe(9000 - r.tempKeys.get(sd.key)!);
      }),
      { numRuns: 300 },
    );
  });
});
