// The ConfigSpec builder for a restore as a new VM (MISSION R2, R4, R5): pure
// functions from the saved VirtualMachineConfigInfo to CreateVM_Task's spec,
// and the mapping of saved disks to the disks vCenter created.
export { buildCreateSpec } from './build';
export { matchCreatedDisks } from './match';
export { chooseRdmLuns, type RdmChoice, type SavedRdm } from './rdm';
export { assignTempKeys } from './keys';
export { filterExtraConfig, DROPPED_EXTRA_CONFIG } from './extra-config';
export { DEFAULT_DEVICE_TYPES, DEFAULT_CONTROLLER_KEYS } from './devices';
export { ConfigSpecError, ConfigSpecErrorCode, type ConfigSpecErrorDetails } from './errors';
export * from './types';
