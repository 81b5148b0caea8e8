// Errors of vCenter connections, shaped like API_ERRORS in ../errors.ts.

export const VCENTER_ERRORS = {
  VCENTER_NOT_FOUND: { status: 404, title: 'No such vCenter connection' },
  VCENTER_NAME_TAKEN: { status: 409, title: 'A vCenter connection with this name exists' },
} as const;

export type VcenterErrorCode = keyof typeof VCENTER_ERRORS;

export class VcenterError extends Error {
  readonly status: number;
  readonly title: string;
  readonly fieldErrors: Array<{ in: 'body' | 'path'; field: string; message: string }>;
  constructor(
    readonly code: VcenterErrorCode,
    message: string,
    fieldErrors: Array<{ in: 'body' | 'path'; field: string; message: string }> = [],
  ) {
    super(message);
    this.name = 'VcenterError';
    this.status = VCENTER_ERRORS[code].status;
    this.title = VCENTER_ERRORS[code].title;
    this.fieldErrors = fieldErrors;
  }
}
