import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_ERRORS, AUTH_ERRORS, VCENTER_ERRORS, WEBHOOK_ERRORS, type FieldError } from '@vmrestore/core';

// Every error leaves the API as application/problem+json (RFC 9457) with a
// stable `code`. Only AppErrors and Fastify's own client errors say what went
// wrong; anything else is INTERNAL, logged with its stack, shown without it.

export const PROBLEM_TYPE_BASE = 'https://vmrestore.dev/problems/';

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

const CONTEXT: Record<string, FieldError['in']> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

export function fieldErrors(errors: AjvError[], context: string | undefined): FieldError[] {
  const where = CONTEXT[context ?? 'body'] ?? 'body';
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const e of errors) {
    const base = e.instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    let field = base.join('.');
    let message = e.message ?? 'is not valid';
    if (e.keyword === 'required') {
      field = [...base, String(e.params.missingProperty)].join('.');
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      field = [...base, String(e.params.additionalProperty)].join('.');
      message = 'is not a known field';
    } else if (e.keyword === 'enum') {
      message = `must be one of: ${(e.params.allowedValues as unknown[]).map(String).join(', ')}`;
    }
    if (field === '') field = where === 'body' ? '(body)' : '(all)';
    const key = `${field}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ in: where, field, message });
  }
  return out;
}

interface ProblemDef {
  status: number;
  title: string;
}

/**
 * Every code the API can answer with: the core registry plus the modules'
 * own (auth, vCenters, webhooks), each shaped { status, title }.
 */
const PROBLEMS: Record<string, ProblemDef> = { ...API_ERRORS, ...AUTH_ERRORS, ...VCENTER_ERRORS, ...WEBHOOK_ERRORS };

/** Adds a module's error registry (e.g. the webhooks module's); a code may not change meaning. */
export function registerProblems(defs: Record<string, ProblemDef>) {
  for (const [code, def] of Object.entries(defs)) {
    const known = PROBLEMS[code];
    if (known && (known.status !== def.status || known.title !== def.title)) throw new Error(`problem code ${code} is registered twice with different meanings`);
    PROBLEMS[code] = def;
  }
}

export type ProblemCode = keyof typeof API_ERRORS | keyof typeof AUTH_ERRORS | keyof typeof VCENTER_ERRORS | keyof typeof WEBHOOK_ERRORS;

/** An error a service threw on purpose: a registered code (AppError, AuthError, VcenterError, WebhookError...). */
function codedError(err: unknown): { code: string; message: string; fieldErrors: FieldError[] } | null {
  if (!err || typeof err !== 'object') return null;
  const e = err as { code?: unknown; message?: unknown; fieldErrors?: unknown; status?: unknown };
  if (typeof e.code !== 'string' || typeof e.status !== 'number' || !Object.hasOwn(PROBLEMS, e.code)) return null;
  if (PROBLEMS[e.code]!.status !== e.status) return null;
  return { code: e.code, message: String(e.message ?? ''), fieldErrors: Array.isArray(e.fieldErrors) ? (e.fieldErrors as FieldError[]) : [] };
}

export function sendProblem(reply: FastifyReply, req: FastifyRequest, code: ProblemCode | string, detail: string, errors: FieldError[] = []) {
  const def = PROBLEMS[code] ?? PROBLEMS.INTERNAL!;
  const body: Record<string, unknown> = {
    type: PROBLEM_TYPE_BASE + code.toLowerCase().replace(/_/g, '-'),
    title: def.title,
    status: def.status,
    detail,
    code,
    instance: req.url.split('?')[0],
    requestId: String(req.id),
  };
  if (errors.length) body.errors = errors;
  return reply.status(def.status).type('application/problem+json').send(body);
}

/** Fastify's own client-side errors, by code, to ours. */
const FASTIFY_CODES: Record<string, ProblemCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
};

/**
 * For Fastify's `frameworkErrors` option (buildApp): errors the router raises
 * before any hook or handler runs. Without it Fastify writes its own
 * application/json body: a path with bad percent-encoding (FST_ERR_BAD_URL,
 * 400) or a path parameter over maxParamLength (FST_ERR_MAX_PARAM_LENGTH, 414).
 * Both are a path parameter that cannot be valid: 400 VALIDATION_FAILED.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  const path = req.url.split('?')[0];
  if (err.code === 'FST_ERR_BAD_URL') {
    return sendProblem(reply, req, 'VALIDATION_FAILED', `the path ${path} is not valid: bad percent-encoding`, [{ in: 'path', field: '(path)', message: 'has bad percent-encoding' }]);
  }
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return sendProblem(reply, req, 'VALIDATION_FAILED', 'a path parameter is too long', [{ in: 'path', field: '(path)', message: 'has a parameter over 100 characters' }]);
  }
  req.log.error({ err }, 'framework error');
  return sendProblem(reply, req, 'INTERNAL', 'the server hit an unexpected error; the request id identifies it in the logs');
}

export function registerProblemHandlers(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const coded = codedError(err);
    if (coded) return sendProblem(reply, req, coded.code, coded.message, coded.fieldErrors);
    if (err.validation) {
      const errors = fieldErrors(err.validation as unknown as AjvError[], err.validationContext);
      const first = errors[0];
      const detail = first ? `${first.in} field ${first.field} ${first.message}` : 'the request is not valid';
      return sendProblem(reply, req, 'VALIDATION_FAILED', detail, errors);
    }
    const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (mapped) {
      const detail = mapped === 'MALFORMED_JSON' ? `the body is not valid JSON: ${err.message}` : err.message;
      return sendProblem(reply, req, mapped, detail);
    }
    if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
      return sendProblem(reply, req, 'MALFORMED_JSON', `the body is not valid JSON: ${err.message}`);
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendProblem(reply, req, 'VALIDATION_FAILED', err.message);
    }
    req.log.error({ err }, 'unhandled error');
    return sendProblem(reply, req, 'INTERNAL', 'the server hit an unexpected error; the request id identifies it in the logs');
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, req, 'ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
}
