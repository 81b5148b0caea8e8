// Inputs and outputs of the ConfigSpec builder (restore as a new VM, MISSION
// R2, R4, R5). See docs/configspec.md for the rules behind each option.
import type { MoRef } from '../vsphere/codec';
import type { Schema } from '../vsphere/schema';
import type { ConfigTarget, VirtualDevice, VirtualMachineConfigSpec } from '../vsphere/types';

export type Provisioning = 'thin' | 'thick-lazy' | 'thick-eager';

export interface NetworkChoice {
  /** Network (port group) name: the backing's deviceName. */
  name: string;
  /** Its moref, when known (e.g. from the config target). */
  network?: MoRef;
}

/** The real keys vCenter gives the default controllers of a new VM (R5). */
export interface DefaultControllerKeys {
  /** IDE bus 0 (default 200). */
  ide0?: number;
  /** IDE bus 1 (default 201). */
  ide1?: number;
  /** PS/2 (default 300). */
  ps2?: number;
  /** PCI (default 100). */
  pci?: number;
  /** Super I/O (default 400). */
  sio?: number;
}

export interface ExistingIdentities {
  instanceUuids: string[];
  biosUuids: string[];
  macs: string[];
}

export interface BuildCreateSpecInput {
  /** The saved VirtualMachineConfigInfo, as JSON in the backup (devices carry `_type`). */
  config: Record<string, unknown>;
  /** Name of the new VM. */
  name: string;
  /** Default datastore: the VM's home ("[ds]") and every disk not in `diskDatastores`. */
  datastore: string;
  /** Datastore per saved disk key. */
  diskDatastores?: Record<number, string>;
  /** Disk provisioning for all disks, or per saved disk key. Default (and keys not listed): as saved. */
  provisioning?: Provisioning | Record<number, Provisioning>;
  /** Network per saved NIC key. NICs not listed keep their saved backing. */
  networks?: Record<number, NetworkChoice>;
  /** Default 'regenerate': addressType generated, no macAddress. */
  macAddresses?: 'keep' | 'regenerate';
  /** Default 'new': uuid and instanceUuid left out, vCenter makes new ones. */
  uuids?: 'keep' | 'new';
  /** Identities in use on the target; 'keep' refuses to duplicate them. */
  existingUuids?: ExistingIdentities;
  /** QueryConfigTarget of the target: free LUNs for RDM (R4), datastores, networks, host CD-ROMs. */
  configTarget?: ConfigTarget;
  /** Saved RDM disk key -> canonicalName of the LUN to map. */
  rdmLuns?: Record<number, string>;
  /** changeTrackingEnabled of the new VM. Default false (R3: CBT off while the restore writes). */
  cbt?: boolean;
  /** Real keys of the new VM's default controllers. Defaults: IDE 200/201, PS2 300, PCI 100, SIO 400. */
  defaultControllerKeys?: DefaultControllerKeys;
  /** Whether a datastore path ("[ds] dir/file.iso") exists on the target. Without it, ISO and floppy image backings are kept unchecked. */
  fileExists?: (dsPath: string) => boolean;
  /** Explicit temporary keys per saved device key (negative, unique). Others are numbered -1, -2, ... skipping these. */
  tempKeys?: Record<number, number>;
  /** The vim25 schema the spec must fit (default: the shipped one). */
  schema?: Schema;
}

export const WarningCode = {
  /** A USB device (host or client passthrough) was left out; USB controllers are kept. */
  DEVICE_DROPPED_USB: 'DEVICE_DROPPED_USB',
  /** PCI passthrough, dynamic DirectPath or an SR-IOV NIC was left out: it binds to a host's PCI device. */
  DEVICE_DROPPED_PASSTHROUGH: 'DEVICE_DROPPED_PASSTHROUGH',
  /** A serial/parallel port, floppy, sound card or generic SCSI device backed by a host device was left out. */
  DEVICE_DROPPED_HOST_BACKING: 'DEVICE_DROPPED_HOST_BACKING',
  /** A floppy whose image file does not exist on the target was left out. */
  DEVICE_DROPPED_MISSING_FILE: 'DEVICE_DROPPED_MISSING_FILE',
  /** A virtual TPM was left out: it needs VM encryption (a key provider); add it after the restore. */
  DEVICE_DROPPED_TPM: 'DEVICE_DROPPED_TPM',
  /** An NVDIMM or its controller was left out: persistent memory is host-bound. */
  DEVICE_DROPPED_NVDIMM: 'DEVICE_DROPPED_NVDIMM',
  /** A device type the shipped vim25 schema does not know was left out. */
  DEVICE_DROPPED_UNKNOWN_TYPE: 'DEVICE_DROPPED_UNKNOWN_TYPE',
  /** A device whose controller was left out was left out too. */
  DEVICE_DROPPED_CONTROLLER: 'DEVICE_DROPPED_CONTROLLER',
  /** A CD-ROM's ISO is missing on the target: kept as an empty client device, not connected at power on. */
  CDROM_ISO_MISSING: 'CDROM_ISO_MISSING',
  /** A CD-ROM backed by a host drive the target does not have: kept as an empty client device, not connected. */
  CDROM_HOST_DEVICE_UNAVAILABLE: 'CDROM_HOST_DEVICE_UNAVAILABLE',
  /** A disk with another backing (sparse, SE sparse, PMem, raw disk) is recreated as a flat disk. */
  DISK_BACKING_CONVERTED: 'DISK_BACKING_CONVERTED',
  /** An RDM's LUN was chosen by capacity alone (no name or uuid match). */
  RDM_LUN_BY_CAPACITY: 'RDM_LUN_BY_CAPACITY',
  /** `macAddresses: 'keep'` but the NIC had no saved MAC: it gets a generated one. */
  MAC_NOT_SAVED: 'MAC_NOT_SAVED',
  /** A kept MAC is a vCenter-generated one (00:50:56:80-BF): vCenter may refuse it as a manual address. */
  MAC_OUTSIDE_STATIC_RANGE: 'MAC_OUTSIDE_STATIC_RANGE',
  /** The saved boot order refers to old device keys and is left out; set it after the VM exists. */
  BOOT_ORDER_DROPPED: 'BOOT_ORDER_DROPPED',
  /** vApp options (product, properties, OVF environment) are left out. */
  VAPP_CONFIG_DROPPED: 'VAPP_CONFIG_DROPPED',
  /** Fault tolerance or vSphere Replication settings bind to the old VM and are left out. */
  FT_OR_REPLICATION_DROPPED: 'FT_OR_REPLICATION_DROPPED',
  /** CPU or memory affinity names host resources and is left out. */
  AFFINITY_DROPPED: 'AFFINITY_DROPPED',
  /** The saved VM was encrypted; the new VM and its disks are not. */
  ENCRYPTION_DROPPED: 'ENCRYPTION_DROPPED',
  /** NPIV world wide names bind to the old VM and are left out. */
  NPIV_DROPPED: 'NPIV_DROPPED',
  /** A disk's I/O filters are left out (they must be installed on the target first). */
  IOFILTER_DROPPED: 'IOFILTER_DROPPED',
  /** A saved field the shipped vim25 schema does not know (newer vSphere) was left out. */
  FIELD_DROPPED: 'FIELD_DROPPED',
} as const;

export type WarningCode = (typeof WarningCode)[keyof typeof WarningCode];

export interface ConfigSpecWarning {
  code: WarningCode;
  message: string;
  /** Saved key of the device concerned. */
  deviceKey?: number;
  deviceType?: string;
}

/** Where a saved disk goes, and how to find it again once vCenter has created it. */
export interface DiskPlacement {
  savedKey: number;
  tempKey: number;
  /** The controller's temporary key, or the real key of a default controller (IDE). */
  controllerKey: number;
  controllerType: string;
  busNumber: number;
  unitNumber: number | undefined;
  capacityInKB: number;
  capacityBytes: number;
  datastore: string;
  /** As in the spec ("[ds]"): vCenter names the file. */
  fileName: string;
  diskMode: string | undefined;
  /** Provisioning of the new disk; undefined: as saved and saved none (vCenter's default, thick lazy). */
  provisioning: Provisioning | undefined;
  rdm?: {
    deviceName: string;
    lunUuid: string;
    compatibilityMode: string | undefined;
    matchedBy: 'choice' | 'deviceName' | 'lunUuid' | 'capacity';
  };
}

export interface NicPlacement {
  savedKey: number;
  tempKey: number;
  deviceType: string;
  /** Backing type in the spec. */
  backingType: string | undefined;
  /** Network name (network backings) or portgroup key (distributed port backings). */
  network: string | undefined;
  addressType: 'manual' | 'generated';
  macAddress: string | undefined;
  savedMacAddress: string | undefined;
}

export interface BuildCreateSpecResult {
  spec: VirtualMachineConfigSpec;
  warnings: ConfigSpecWarning[];
  disks: DiskPlacement[];
  nics: NicPlacement[];
  /** Saved key -> temporary key, for every device in deviceChange. */
  tempKeys: Map<number, number>;
  /** extraConfig keys left out (they bind to the old VM). */
  droppedExtraConfig: string[];
}

export type { VirtualDevice };
