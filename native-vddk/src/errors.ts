/**
 * The one error class of the addon. C++ constructs it (via setErrorClass) for
 * failures recorded on worker threads; the facade throws it for bad arguments.
 *
 * Stable codes: INVALID_ARG, UNALIGNED_EXTENT, CAPACITY_MISMATCH,
 * CHECKSUM_MISMATCH, VERIFY_MISMATCH, CANCELLED, IO_ERROR, FILE_NOT_FOUND, INVALID_DESCRIPTOR,
 * LIBRARY_NOT_FOUND, LIBRARY_MISMATCH, and VIX_E_* for VixDiskLib failures
 * (then `vixError` holds the raw 64-bit VixError as a number).
 */
export class VddkError extends Error {
  readonly code: string;
  readonly vixError?: number;

  constructor(message: string, code: string, vixError?: number) {
    super(message);
    this.name = 'VddkError';
    this.code = code;
    if (vixError !== undefined) this.vixError = vixError;
  }
}
