// One registry of the errors the API can return: a stable code, its HTTP
// status and a title. Services throw AppError; the API's error handler turns
// it into application/problem+json. Internals (SQL, Redis, stack traces)
// never reach a response: anything that is not an AppError becomes INTERNAL.

export const API_ERRORS = {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  MALFORMED_JSON: { status: 400, title: 'The body is not valid JSON' },
  BODY_TOO_LARGE: { status: 413, title: 'The body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported content type' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  RESTORE_NOT_FOUND: { status: 404, title: 'No such restore job' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency-Key was used with another request body' },
  JOB_ALREADY_FINISHED: { status: 409, title: 'The job has already ended' },
  RESTORE_CONFLICT: { status: 409, title: 'Another restore of this VM is active' },
  DRY_RUN_REFUSED: { status: 422, title: 'The restore would fail' },
  REPORT_NOT_AVAILABLE: { status: 409, title: 'The job has no restore report' },
  SIGNING_KEY_MISSING: { status: 503, title: 'This server has no VMRESTORE_SECRET_KEYS to show signing keys' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'A dependency is unavailable' },
  BACKUP_REPOSITORY_NOT_CONFIGURED: { status: 503, title: 'No backup repository is configured' },
  EXPORT_NOT_CONFIGURED: { status: 503, title: 'Exports are not configured' },
  BACKUP_NOT_FOUND: { status: 404, title: 'No such backup VM or restore point' },
  BACKUP_PATH_ESCAPE: { status: 400, title: 'The backup reference is not allowed' },
  BACKUP_UNREADABLE: { status: 422, title: 'The restore point cannot be read' },
  INTERNAL: { status: 500, title: 'Internal error' },
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

export interface FieldError {
  in: 'body' | 'query' | 'path' | 'header';
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  readonly title: string;
  constructor(
    readonly code: ApiErrorCode,
    detail: string,
    readonly fieldErrors: FieldError[] = [],
    options?: { cause?: unknown },
  ) {
    super(detail, options);
    this.name = 'AppError';
    this.status = API_ERRORS[code].status;
    this.title = API_ERRORS[code].title;
  }
}

/**
 * Errors raised inside restore steps. `permanent` ones (bad input, missing
 * backup, refused by vCenter for good) fail the job at once; the others are
 * retried with backoff until the job's attempts run out.
 */
export class JobError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly permanent: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'JobError';
  }
}

export const permanent = (code: string, message: string, cause?: unknown) => new JobError(code, message, true, { cause });
export const transient = (code: string, message: string, cause?: unknown) => new JobError(code, message, false, { cause });

/** The job-level error codes the service itself raises (vCenter and VDDK faults add their own). */
export const JOB_ERROR_CODES = {
  NOT_IMPLEMENTED: 'NOT_IMPLEMENTED',
  CANCELLED: 'CANCELLED',
  STEP_FAILED: 'STEP_FAILED',
  ATTEMPTS_EXHAUSTED: 'ATTEMPTS_EXHAUSTED',
  CLEANUP_FAILED: 'CLEANUP_FAILED',
  UNKNOWN_PLAN: 'UNKNOWN_PLAN',
  /** A step passed its deadline, or its progress stopped (docs/resilience.md). Permanent: the job runs its cleanup. */
  STEP_TIMEOUT: 'STEP_TIMEOUT',
  /** A disk copy reported no progress within VMRESTORE_VDDK_STALL_TIMEOUT_MS. Transient: a retry resumes from the last checkpoint. */
  VDDK_STALLED: 'VDDK_STALLED',
  /** The job's queue entry ended or vanished without the job ending, MAX_REQUEUES times (workers kept dying under it): abandoned after its cleanup. */
  WORKER_LOST: 'WORKER_LOST',
} as const;
