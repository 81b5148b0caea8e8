// What to do about an error, by its code: the common codes of a restore job
// (apps/core/src/errors.ts, docs/restore.md, docs/vcenter.md) and of the API.
// Codes not listed get a hint by family (VSPHERE_*, VIX_E_*, BACKUP_*, ...)
// or the generic one.

const HINTS = {
  // API answers
  UNAUTHENTICATED: 'Sign in again with a valid API key.',
  FORBIDDEN_SCOPE: 'This API key lacks the scope this needs: ask an admin for a key with restores:read / restores:write.',
  RATE_LIMITED: 'Too many requests with this key: wait a moment and retry.',
  VALIDATION_FAILED: 'Correct the fields listed and submit again.',
  RESTORE_NOT_FOUND: 'The job does not exist for this key\'s tenant: check the id, or sign in with the right key.',
  RESTORE_CONFLICT: 'Another restore of this VM is queued, running or cleaning up: wait for it to end (or cancel it) and retry.',
  JOB_ALREADY_FINISHED: 'The job has already ended; nothing to cancel.',
  IDEMPOTENCY_KEY_REUSED: 'Send a new Idempotency-Key for a different request.',
  SERVICE_UNAVAILABLE: 'Postgres or Redis is unavailable: check /readyz and the service logs, then retry.',
  INTERNAL: 'An unexpected error: retry, and give the request id to the operators if it persists.',

  // Restore jobs
  CANCELLED: 'The restore was cancelled. An in-place target VM may be partly written and powered off: restore it again before powering it on.',
  CLEANUP_FAILED: 'A cleanup step failed: check the VM for a leftover "vmrestore-<job id>" snapshot; the sweeper retries the cleanup.',
  STEP_FAILED: 'A step failed: see the step\'s error in the timeline below.',
  ATTEMPTS_EXHAUSTED: 'The step kept failing with transient errors: fix the cause shown in the timeline, then start the restore again.',
  VCENTER_NOT_FOUND: 'No vCenter connection of that name for this tenant: check the name (GET /v1/vcenters) or register it.',
  SECRET_KEYRING_MISSING: 'The worker cannot decrypt the vCenter password: set VMRESTORE_SECRET_KEYS on the worker to the API\'s keyring.',
  DISK_MISMATCH: 'The VM\'s disks do not match the backup (device keys or count): pick the right VM, or restore as a new VM.',
  TARGET_DISK_TOO_SMALL: 'A disk of the VM is smaller than the backed-up disk: extend it in vCenter, or restore as a new VM.',
  TRANSPORT_UNAVAILABLE: 'None of the requested transports can be used from this worker: read the message, then install VDDK, mount the datastore (file) or choose other transports.',
  SAN_SNAPSHOTS_PRESENT: 'A SAN restore needs a VM without snapshots: remove them, or set removeExistingSnapshots: true, or use another transport.',
  VM_LOCKED: 'Another job holds this VM: it is retried automatically; wait for the other job to end.',
  VM_LOCK_KEPT: 'The VM stays locked while its temporary snapshot remains: the sweeper retries the cleanup.',
  TEMP_SNAPSHOT_DUPLICATED: 'More than one "vmrestore-<job id>" snapshot exists: remove the extra ones in vCenter, then restore again.',
  VDDK_THUMBPRINT_REQUIRED: 'VDDK needs the vCenter\'s certificate thumbprint: set thumbprint on the vCenter connection.',
  VM_POWERED_ON: 'Someone powered the VM on during the restore: power it off and restore again.',
  VCENTER_CHANGED: 'The vCenter behind the connection changed (instance UUID) during the job: check the connection and restore again.',
  VM_CHANGED: 'The VM changed identity during the job (recreated or re-registered): find the right VM and restore again.',
  VM_NAME_TAKEN: 'A VM of that name exists: choose another name for the new VM.',
  PLACEMENT_NOT_FOUND: 'The folder, resource pool, host or datastore was not found: check the names in the request.',
  BACKUP_REPOSITORY_NOT_CONFIGURED: 'Set VMRESTORE_BACKUP_ROOTS on the API and the workers.',
  BACKUP_NOT_FOUND: 'No such backup VM or restore point: check GET /v1/backups.',
  BACKUP_POINT_NOT_FOUND: 'No such restore point: pick one listed by GET /v1/backups/{vm}/points.',
  BACKUP_CHAIN_BROKEN: 'The point\'s incremental chain misses a parent: restore an older complete point, or repair the backup.',
  BACKUP_CHECKSUM_MISMATCH: 'The backup data is corrupt (checksum): restore another point and check the backup storage.',
  VSPHERE_NO_PERMISSION: 'The vCenter user lacks a privilege for this operation: grant it (see docs/vcenter.md), then restore again.',
  VSPHERE_INVALID_LOGIN: 'vCenter refused the user name or password: update the vCenter connection.',
  VSPHERE_NOT_AUTHENTICATED: 'The vCenter session was lost: retry; check the vCenter\'s session limits if it recurs.',
  VSPHERE_INVALID_POWER_STATE: 'The VM is not in the power state this step needs: check it in vCenter and retry.',
  VSPHERE_NETWORK: 'vCenter could not be reached: check the network and the vCenter URL; transient errors are retried.',
  VSPHERE_GUEST_SHUTDOWN_TIMEOUT: 'The guest did not shut down in time: raise gracefulShutdownSeconds or use 0 for a hard power off.',
  VDDK_CHECKSUM_MISMATCH: 'The data read back does not match the backup: check the target datastore, then restore again.',
};

const FAMILIES = [
  [/^VSPHERE_/, 'vCenter refused the operation: read the message, fix the cause in vCenter (see docs/vcenter.md) and restore again.'],
  [/^VIX_E_/, 'VDDK reported an error: read the message, check the transport, the VDDK installation and the datastore (see docs/native-vddk.md).'],
  [/^VDDK_/, 'The disk library reported an error: read the message (see docs/native-vddk.md).'],
  [/^BACKUP_/, 'The backup cannot be used as is: check the restore point in the repository (see docs/backup-format.md).'],
  [/^CONFIGSPEC_/, 'The saved VM configuration cannot be applied here: see docs/configspec.md and adjust the request.'],
];

const GENERIC = 'Read the message and the step that failed in the timeline; fix the cause and start the restore again. The service logs carry the job id.';

/** The hint for an error code: its own, its family's, or the generic one. */
export function hintFor(code) {
  if (typeof code !== 'string') return GENERIC;
  if (Object.prototype.hasOwnProperty.call(HINTS, code)) return HINTS[code];
  for (const [re, hint] of FAMILIES) if (re.test(code)) return hint;
  return GENERIC;
}
