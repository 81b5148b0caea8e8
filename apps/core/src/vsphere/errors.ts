// Every vSphere fault becomes a VSphereError with a stable code. `permanent`
// says whether retrying can help (BullMQ's UnrecoverableError idea): bad
// input, missing files and refused privileges fail at once; busy objects,
// lost connections and timeouts are retried by the job.
import { JobError } from '../errors';
import type { DataObject } from './codec';

export interface FaultRule {
  code: string;
  permanent: boolean;
}

/** vim25 fault type -> stable code. Subtypes not listed map through `FAULT_PARENTS` or to the default. */
export const FAULT_CODES: Record<string, FaultRule> = {
  InvalidPowerState: { code: 'VSPHERE_INVALID_POWER_STATE', permanent: false },
  TaskInProgress: { code: 'VSPHERE_TASK_IN_PROGRESS', permanent: false },
  FileNotFound: { code: 'VSPHERE_FILE_NOT_FOUND', permanent: true },
  FileAlreadyExists: { code: 'VSPHERE_FILE_ALREADY_EXISTS', permanent: true },
  FileFault: { code: 'VSPHERE_FILE_FAULT', permanent: true },
  CannotAccessFile: { code: 'VSPHERE_CANNOT_ACCESS_FILE', permanent: true },
  NoDiskSpace: { code: 'VSPHERE_NO_DISK_SPACE', permanent: true },
  InvalidDeviceSpec: { code: 'VSPHERE_INVALID_DEVICE_SPEC', permanent: true },
  DeviceUnsupportedForVmVersion: { code: 'VSPHERE_INVALID_DEVICE_SPEC', permanent: true },
  InvalidVmConfig: { code: 'VSPHERE_INVALID_VM_CONFIG', permanent: true },
  GenericVmConfigFault: { code: 'VSPHERE_VM_CONFIG_FAULT', permanent: true },
  VmConfigFault: { code: 'VSPHERE_VM_CONFIG_FAULT', permanent: true },
  NotAuthenticated: { code: 'VSPHERE_NOT_AUTHENTICATED', permanent: false },
  InvalidLogin: { code: 'VSPHERE_INVALID_LOGIN', permanent: true },
  NoPermission: { code: 'VSPHERE_NO_PERMISSION', permanent: true },
  SecurityError: { code: 'VSPHERE_SECURITY_ERROR', permanent: true },
  MethodDisabled: { code: 'VSPHERE_METHOD_DISABLED', permanent: false },
  InsufficientResourcesFault: { code: 'VSPHERE_INSUFFICIENT_RESOURCES', permanent: false },
  InvalidState: { code: 'VSPHERE_INVALID_STATE', permanent: false },
  ConcurrentAccess: { code: 'VSPHERE_CONCURRENT_ACCESS', permanent: false },
  NotSupported: { code: 'VSPHERE_NOT_SUPPORTED', permanent: true },
  NotImplemented: { code: 'VSPHERE_NOT_SUPPORTED', permanent: true },
  InvalidArgument: { code: 'VSPHERE_INVALID_ARGUMENT', permanent: true },
  InvalidRequest: { code: 'VSPHERE_INVALID_REQUEST', permanent: true },
  InvalidType: { code: 'VSPHERE_INVALID_REQUEST', permanent: true },
  InvalidProperty: { code: 'VSPHERE_INVALID_PROPERTY', permanent: true },
  ManagedObjectNotFound: { code: 'VSPHERE_OBJECT_NOT_FOUND', permanent: true },
  NotFound: { code: 'VSPHERE_NOT_FOUND', permanent: true },
  InvalidName: { code: 'VSPHERE_INVALID_NAME', permanent: true },
  DuplicateName: { code: 'VSPHERE_DUPLICATE_NAME', permanent: true },
  AlreadyExists: { code: 'VSPHERE_ALREADY_EXISTS', permanent: true },
  InvalidDatastore: { code: 'VSPHERE_INVALID_DATASTORE', permanent: true },
  InvalidDatastorePath: { code: 'VSPHERE_INVALID_DATASTORE', permanent: true },
  SnapshotFault: { code: 'VSPHERE_SNAPSHOT_FAULT', permanent: false },
  ToolsUnavailable: { code: 'VSPHERE_TOOLS_UNAVAILABLE', permanent: false },
  RequestCanceled: { code: 'VSPHERE_TASK_CANCELLED', permanent: false },
  Timedout: { code: 'VSPHERE_TIMEOUT', permanent: false },
  HostCommunication: { code: 'VSPHERE_HOST_COMMUNICATION', permanent: false },
  HostNotConnected: { code: 'VSPHERE_HOST_COMMUNICATION', permanent: false },
  SystemError: { code: 'VSPHERE_SYSTEM_ERROR', permanent: false },
};

/** Client-side failures that are not vSphere faults. */
export const CLIENT_CODES = {
  TIMEOUT: { code: 'VSPHERE_TIMEOUT', permanent: false },
  TASK_TIMEOUT: { code: 'VSPHERE_TASK_TIMEOUT', permanent: false },
  NETWORK: { code: 'VSPHERE_NETWORK', permanent: false },
  TLS_UNTRUSTED: { code: 'VSPHERE_TLS_UNTRUSTED', permanent: true },
  TLS_CONFIG: { code: 'VSPHERE_TLS_CONFIG', permanent: true },
  PROTOCOL: { code: 'VSPHERE_PROTOCOL', permanent: false },
  NOT_FOUND: { code: 'VSPHERE_NOT_FOUND', permanent: true },
  POOL_CLOSED: { code: 'VSPHERE_POOL_CLOSED', permanent: false },
  CLIENT_CLOSED: { code: 'VSPHERE_CLIENT_CLOSED', permanent: false },
  POOL_TIMEOUT: { code: 'VSPHERE_POOL_TIMEOUT', permanent: false },
  SHUTDOWN_TIMEOUT: { code: 'VSPHERE_GUEST_SHUTDOWN_TIMEOUT', permanent: false },
  SCHEMA: { code: 'VSPHERE_SCHEMA_VIOLATION', permanent: true },
} as const satisfies Record<string, FaultRule>;

export const DEFAULT_FAULT: FaultRule = { code: 'VSPHERE_FAULT', permanent: false };

/**
 * A JobError, so the worker's retry policy reads `permanent` as it is: a
 * restore step that throws one needs no translation.
 */
export class VSphereError extends JobError {
  /** The vim25 fault type name (e.g. InvalidPowerState), when vSphere sent one. */
  readonly faultType: string | undefined;
  /** The parsed fault object (no secrets: vSphere faults carry none). */
  readonly fault: DataObject | undefined;

  constructor(rule: FaultRule, message: string, opts: { faultType?: string; fault?: DataObject; cause?: unknown } = {}) {
    super(rule.code, message, rule.permanent, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VSphereError';
    this.faultType = opts.faultType;
    this.fault = opts.fault;
  }

  static client(kind: keyof typeof CLIENT_CODES, message: string, cause?: unknown): VSphereError {
    return new VSphereError(CLIENT_CODES[kind], message, cause === undefined ? {} : { cause });
  }
}

/** The rule for a fault type: its own, else a known ancestor's (`parents` from the schema), else the default. */
export function faultRule(faultType: string, parents: (t: string) => string | undefined = () => undefined): FaultRule {
  for (let t: string | undefined = faultType; t; t = parents(t)) {
    const r = FAULT_CODES[t];
    if (r) return r;
  }
  return DEFAULT_FAULT;
}

/** A VSphereError from a vSphere fault object and its message. */
export function faultError(
  fault: DataObject | undefined,
  faultType: string,
  message: string,
  where: string,
  parents?: (t: string) => string | undefined,
): VSphereError {
  const rule = faultRule(faultType, parents);
  const text = message && message !== faultType ? `${faultType}: ${message}` : faultType;
  return new VSphereError(rule, `${where}: ${text}`, fault ? { faultType, fault } : { faultType });
}
