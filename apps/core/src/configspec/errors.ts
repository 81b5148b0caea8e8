// Errors of the ConfigSpec builder. All are permanent: the saved config or
// the restore options cannot produce a spec that CreateVM_Task would accept,
// and retrying does not change that. The worker fails the job at once.
import { JobError } from '../errors';

export const ConfigSpecErrorCode = {
  /** `uuids: 'keep'` and a VM on the target already has the saved BIOS or instance UUID. */
  UUID_COLLISION: 'CONFIGSPEC_UUID_COLLISION',
  /** `macAddresses: 'keep'` and a saved MAC is in use on the target (or twice in the saved config). */
  MAC_COLLISION: 'CONFIGSPEC_MAC_COLLISION',
  /** An RDM disk has no suitable free LUN in the config target (R4). */
  NO_FREE_LUN: 'CONFIGSPEC_NO_FREE_LUN',
  /** Several free LUNs fit an RDM disk equally: choose one with `rdmLuns`. */
  AMBIGUOUS_LUN: 'CONFIGSPEC_AMBIGUOUS_LUN',
  /** A datastore named by the options is not in the config target. */
  DATASTORE_UNAVAILABLE: 'CONFIGSPEC_DATASTORE_UNAVAILABLE',
  /** A NIC's network (saved or chosen) is not in the config target. */
  NETWORK_UNAVAILABLE: 'CONFIGSPEC_NETWORK_UNAVAILABLE',
  /** The saved config is unusable (no device list, duplicate keys, a device on an unknown controller, a disk without capacity). */
  INVALID_CONFIG: 'CONFIGSPEC_INVALID_CONFIG',
  /** An option is malformed (a temp key that is not negative, a datastore name with brackets). */
  INVALID_OPTION: 'CONFIGSPEC_INVALID_OPTION',
  /** A disk cannot be recreated (its controller cannot be). Never dropped silently. */
  UNSUPPORTED_DISK: 'CONFIGSPEC_UNSUPPORTED_DISK',
  /** matchCreatedDisks: a saved disk has no counterpart on the created VM. */
  DISK_NOT_MATCHED: 'CONFIGSPEC_DISK_NOT_MATCHED',
} as const;

export type ConfigSpecErrorCode = (typeof ConfigSpecErrorCode)[keyof typeof ConfigSpecErrorCode];

export interface ConfigSpecErrorDetails {
  deviceKey?: number;
  field?: string;
  value?: string;
}

export class ConfigSpecError extends JobError {
  declare readonly code: ConfigSpecErrorCode;
  constructor(
    code: ConfigSpecErrorCode,
    message: string,
    readonly details: ConfigSpecErrorDetails = {},
  ) {
    super(code, message, true);
    this.name = 'ConfigSpecError';
  }
}
