// Which saved devices go into the spec, which are left out, and why (R5).
import type { Schema } from '../vsphere/schema';
import type { DefaultControllerKeys, WarningCode } from './types';

type Json = Record<string, unknown>;

/**
 * Devices every new VM gets from vCenter; a spec that adds them fails (R5).
 * VirtualVMCIDevice is the name the source uses; vim25 calls the type
 * VirtualMachineVMCIDevice: both are left out.
 */
export const DEFAULT_DEVICE_TYPES: ReadonlySet<string> = new Set([
  'VirtualIDEController',
  'VirtualPS2Controller',
  'VirtualPCIController',
  'VirtualSIOController',
  'VirtualKeyboard',
  'VirtualVMCIDevice',
  'VirtualMachineVMCIDevice',
  'VirtualPointingDevice',
]);

export const DEFAULT_CONTROLLER_KEYS: Required<DefaultControllerKeys> = { ide0: 200, ide1: 201, ps2: 300, pci: 100, sio: 400 };

/** The real key the new VM's default controller has, for a saved default controller. */
export function defaultControllerKey(dev: Json, keys: DefaultControllerKeys = {}): number | undefined {
  const k = { ...DEFAULT_CONTROLLER_KEYS, ...keys };
  switch (dev._type) {
    case 'VirtualIDEController':
      return dev.busNumber === 1 ? k.ide1 : k.ide0;
    case 'VirtualPS2Controller':
      return k.ps2;
    case 'VirtualPCIController':
      return k.pci;
    case 'VirtualSIOController':
      return k.sio;
    default:
      return undefined;
  }
}

export interface DropReason {
  code: WarningCode;
  message: string;
}

const backingType = (dev: Json): string | undefined => (dev.backing as Json | undefined)?._type as string | undefined;

/** Host-device backings: they name a device of the old host (or of a client). */
const HOST_BACKINGS = new Set([
  'VirtualSerialPortDeviceBackingInfo',
  'VirtualParallelPortDeviceBackingInfo',
  'VirtualFloppyDeviceBackingInfo',
  'VirtualSoundCardDeviceBackingInfo',
  'VirtualSCSIPassthroughDeviceBackingInfo',
]);

/** Why a (non-default) saved device cannot be recreated on the target, or undefined when it can. */
export function dropReason(dev: Json, schema: Schema, fileExists?: (p: string) => boolean, backingReplaced = false): DropReason | undefined {
  const type = String(dev._type ?? '');
  if (!schema.complex.has(type) || !schema.isSubtype(type, 'VirtualDevice')) {
    return { code: 'DEVICE_DROPPED_UNKNOWN_TYPE', message: `${type || 'a device without _type'} is not a device type of the shipped vim25 schema` };
  }
  const bt0 = backingType(dev);
  if (!backingReplaced && bt0 !== undefined && !schema.complex.has(bt0)) {
    return { code: 'DEVICE_DROPPED_UNKNOWN_TYPE', message: `its backing ${bt0} is not a type of the shipped vim25 schema` };
  }
  if (schema.isSubtype(type, 'VirtualUSB')) {
    return { code: 'DEVICE_DROPPED_USB', message: 'USB devices are attached to a host or a client and cannot be recreated' };
  }
  if (schema.isSubtype(type, 'VirtualPCIPassthrough') || schema.isSubtype(type, 'VirtualSriovEthernetCard')) {
    return { code: 'DEVICE_DROPPED_PASSTHROUGH', message: `${type} binds to a PCI device of the old host` };
  }
  if (schema.isSubtype(type, 'VirtualSCSIPassthrough')) {
    return { code: 'DEVICE_DROPPED_HOST_BACKING', message: 'a generic SCSI device is a device of the old host' };
  }
  const bt = backingType(dev);
  if (bt !== undefined && HOST_BACKINGS.has(bt)) {
    return { code: 'DEVICE_DROPPED_HOST_BACKING', message: `${type} is backed by a host device (${bt})` };
  }
  if (type === 'VirtualFloppy' && bt === 'VirtualFloppyImageBackingInfo' && fileExists) {
    const file = (dev.backing as Json).fileName;
    if (typeof file === 'string' && file && !fileExists(file)) {
      return { code: 'DEVICE_DROPPED_MISSING_FILE', message: `floppy image ${file} does not exist on the target` };
    }
  }
  if (schema.isSubtype(type, 'VirtualTPM')) {
    return { code: 'DEVICE_DROPPED_TPM', message: 'a virtual TPM needs VM encryption with a key provider; add it after the restore' };
  }
  if (type === 'VirtualNVDIMM' || type === 'VirtualNVDIMMController') {
    return { code: 'DEVICE_DROPPED_NVDIMM', message: `${type}: persistent memory is a host resource` };
  }
  return undefined;
}

export const isController = (schema: Schema, type: unknown): boolean =>
  typeof type === 'string' && schema.complex.has(type) && schema.isSubtype(type, 'VirtualController');
