// Errors of authentication, authorization, tenants and API keys, shaped like
// API_ERRORS in ../errors.ts (a stable code, an HTTP status, a title) so the
// API's problem handler renders them like any other.

export const AUTH_ERRORS = {
  UNAUTHENTICATED: { status: 401, title: 'A valid API key is required' },
  FORBIDDEN_SCOPE: { status: 403, title: 'The API key lacks the scope this call needs' },
  RATE_LIMITED: { status: 429, title: 'Too many requests for this API key' },
  API_KEY_NOT_FOUND: { status: 404, title: 'No such API key' },
  API_KEY_INVALID: { status: 400, title: 'The API key request is not valid' },
  TENANT_NOT_FOUND: { status: 404, title: 'No such tenant' },
  TENANT_EXISTS: { status: 409, title: 'A tenant with this name exists' },
} as const;

export type AuthErrorCode = keyof typeof AUTH_ERRORS;

export interface AuthFieldError {
  in: 'body' | 'query' | 'path' | 'header';
  field: string;
  message: string;
}

export class AuthError extends Error {
  readonly status: number;
  readonly title: string;
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    readonly fieldErrors: AuthFieldError[] = [],
  ) {
    super(message);
    this.name = 'AuthError';
    this.status = AUTH_ERRORS[code].status;
    this.title = AUTH_ERRORS[code].title;
  }
}
