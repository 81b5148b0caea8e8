// Errors of the webhooks module, shaped like API_ERRORS in ../errors.ts so the
// API can add them to its registry: a stable code, an HTTP status, a title.

export const WEBHOOK_ERRORS = {
  WEBHOOK_TARGET_REFUSED: { status: 422, title: 'The webhook URL is not allowed' },
  WEBHOOK_INVALID: { status: 400, title: 'The webhook is not valid' },
  WEBHOOK_NOT_FOUND: { status: 404, title: 'No such webhook' },
  WEBHOOK_DELIVERY_NOT_FOUND: { status: 404, title: 'No such webhook delivery' },
  WEBHOOK_DELIVERY_IN_PROGRESS: { status: 409, title: 'The delivery is still being attempted' },
} as const;

export type WebhookErrorCode = keyof typeof WEBHOOK_ERRORS;

export interface WebhookFieldError {
  in: 'body' | 'query' | 'path';
  field: string;
  message: string;
}

export class WebhookError extends Error {
  readonly status: number;
  readonly title: string;
  constructor(
    readonly code: WebhookErrorCode,
    message: string,
    readonly fieldErrors: WebhookFieldError[] = [],
  ) {
    super(message);
    this.name = 'WebhookError';
    this.status = WEBHOOK_ERRORS[code].status;
    this.title = WEBHOOK_ERRORS[code].title;
  }
}

export type TargetRefusal =
  | 'invalid_url'
  | 'scheme'
  | 'credentials'
  | 'unresolvable'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'multicast'
  | 'unspecified'
  | 'reserved';

/** A webhook URL that may not be called; `reason` says why, the message names the host, never the path or query. */
export class WebhookTargetError extends WebhookError {
  constructor(
    readonly reason: TargetRefusal,
    message: string,
  ) {
    super('WEBHOOK_TARGET_REFUSED', message, [{ in: 'body', field: 'url', message }]);
    this.name = 'WebhookTargetError';
  }
}
