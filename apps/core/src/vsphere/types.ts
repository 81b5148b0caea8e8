// TypeScript views of the vim25 data objects the client reads and writes.
// Values come from the schema-driven parser, so every object also carries
// the fields listed here only in part; `_type` is the xsi:type.
import type { DataObject, MoRef } from './codec';

export type PowerState = 'poweredOn' | 'poweredOff' | 'suspended';

export interface Description extends DataObject {
  label: string;
  summary: string;
}

export interface VirtualDeviceBackingInfo extends DataObject {
  _type?: string;
}

export interface VirtualDeviceFileBackingInfo extends VirtualDeviceBackingInfo {
  fileName: string;
  datastore?: MoRef;
}

export interface VirtualDiskFlatVer2BackingInfo extends VirtualDeviceFileBackingInfo {
  _type?: 'VirtualDiskFlatVer2BackingInfo';
  diskMode: string;
  split?: boolean;
  writeThrough?: boolean;
  thinProvisioned?: boolean;
  eagerlyScrub?: boolean;
  uuid?: string;
  changeId?: string;
  parent?: VirtualDiskFlatVer2BackingInfo;
}

export interface VirtualDiskRawDiskMappingVer1BackingInfo extends VirtualDeviceFileBackingInfo {
  _type?: 'VirtualDiskRawDiskMappingVer1BackingInfo';
  lunUuid?: string;
  deviceName?: string;
  compatibilityMode?: 'physicalMode' | 'virtualMode';
  diskMode?: string;
  uuid?: string;
  parent?: VirtualDiskRawDiskMappingVer1BackingInfo;
}

export interface VirtualDevice extends DataObject {
  _type?: string;
  key: number;
  deviceInfo?: Description;
  backing?: VirtualDeviceBackingInfo;
  connectable?: DataObject;
  controllerKey?: number;
  unitNumber?: number;
}

export interface VirtualController extends VirtualDevice {
  busNumber: number;
  device?: number[];
}

export interface VirtualDisk extends VirtualDevice {
  _type?: 'VirtualDisk';
  capacityInKB: number;
  capacityInBytes?: number;
  backing?: VirtualDiskFlatVer2BackingInfo | VirtualDiskRawDiskMappingVer1BackingInfo | VirtualDeviceBackingInfo;
}

export interface VirtualHardware extends DataObject {
  numCPU: number;
  numCoresPerSocket?: number;
  memoryMB: number;
  device?: VirtualDevice[];
}

export interface VirtualMachineConfigInfo extends DataObject {
  name: string;
  guestId: string;
  version: string;
  uuid: string;
  instanceUuid?: string;
  template: boolean;
  changeTrackingEnabled?: boolean;
  files: DataObject & { vmPathName?: string; snapshotDirectory?: string };
  hardware: VirtualHardware;
  cpuFeatureMask?: DataObject[];
}

export interface VirtualMachineSnapshotTree extends DataObject {
  snapshot: MoRef;
  vm: MoRef;
  name: string;
  description: string;
  id?: number;
  createTime: string;
  state: PowerState;
  quiesced: boolean;
  childSnapshotList?: VirtualMachineSnapshotTree[];
}

export interface VirtualMachineSnapshotInfo extends DataObject {
  currentSnapshot?: MoRef;
  rootSnapshotList?: VirtualMachineSnapshotTree[];
}

export interface VirtualMachineFileLayoutEx extends DataObject {
  file?: Array<DataObject & { key: number; name: string; type: string; size?: number }>;
  disk?: Array<DataObject & { key: number; chain?: Array<DataObject & { fileKey?: number[] }> }>;
  snapshot?: Array<DataObject & { key: MoRef; dataKey: number; disk?: DataObject[] }>;
}

/** A config spec (VirtualMachineConfigSpec); fields are written in schema order whatever the key order. */
export interface VirtualMachineConfigSpec extends DataObject {
  name?: string;
  version?: string;
  guestId?: string;
  files?: DataObject & { vmPathName?: string };
  numCPUs?: number;
  memoryMB?: number;
  changeTrackingEnabled?: boolean;
  deviceChange?: VirtualDeviceConfigSpec[];
}

export interface VirtualDeviceConfigSpec extends DataObject {
  operation?: 'add' | 'remove' | 'edit';
  fileOperation?: 'create' | 'destroy' | 'replace';
  device: VirtualDevice;
}

export interface ScsiDiskInfo extends DataObject {
  name: string;
  disk: DataObject & { canonicalName: string; uuid: string; displayName?: string; capacity?: DataObject };
  transportHint?: string;
  lunNumber?: number;
}

export interface ConfigTarget extends DataObject {
  datastore?: Array<DataObject & { name: string; datastore: DataObject & { datastore: MoRef; name: string; freeSpace?: number } }>;
  network?: Array<DataObject & { name: string; network: DataObject & { name: string; network?: MoRef } }>;
  distributedVirtualPortgroup?: DataObject[];
  scsiDisk?: ScsiDiskInfo[];
}

/** A VM's disk as a restore sees it: the file to open now, and its chain. */
export interface VmDisk {
  key: number;
  label: string | undefined;
  controllerKey: number | undefined;
  unitNumber: number | undefined;
  capacityInBytes: number;
  backingType: string | undefined;
  /** Current file name, e.g. "[ds] vm/vm-000002.vmdk" when snapshots exist. */
  fileName: string;
  /** Descriptor file names, current first, base last. */
  chain: string[];
  changeId: string | undefined;
  /** Thin provisioned (flat VMDK backings); false for thick and RDM disks. */
  thinProvisioned: boolean;
  rdm?: { lunUuid: string | undefined; deviceName: string | undefined; compatibilityMode: string | undefined };
}
