import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { loadOpenApi, type JsonSchema } from '@vmrestore/core';

// Every response a test sees is checked against openapi.yaml: the status must
// be documented for the operation, and the body must match the documented
// schema for its content type. Strict: unknown properties fail where the
// schema says additionalProperties: false.

const doc = loadOpenApi();
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const cache = new Map<string, ValidateFunction>();

export interface ResponseLike {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

export function checkContract(method: string, pathTemplate: string, res: ResponseLike): unknown {
  const op = doc.paths[pathTemplate]?.[method.toLowerCase()];
  if (!op) throw new Error(`contract: ${method} ${pathTemplate} is not in openapi.yaml`);
  const response = op.responses[String(res.statusCode)];
  if (!response) throw new Error(`contract: ${method} ${pathTemplate} returned ${res.statusCode}, which openapi.yaml does not document (body: ${res.body.slice(0, 300)})`);
  const contentType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (!response.content) return undefined;
  const media = response.content[contentType];
  if (!media) throw new Error(`contract: ${method} ${pathTemplate} ${res.statusCode} returned ${contentType}; documented: ${Object.keys(response.content).join(', ')}`);
  // An event stream is checked for its status and content type only; its
  // events are JobEvents, which the tests parse and check themselves.
  if (contentType === 'text/event-stream') return undefined;
  const key = `${method} ${pathTemplate} ${res.statusCode} ${contentType}`;
  let validate = cache.get(key);
  if (!validate) {
    validate = ajv.compile(media.schema as JsonSchema);
    cache.set(key, validate);
  }
  const body: unknown = JSON.parse(res.body);
  if (!validate(body)) {
    throw new Error(`contract: ${key} body does not match openapi.yaml: ${ajv.errorsText(validate.errors)}\n${res.body.slice(0, 500)}`);
  }
  for (const [name, h] of Object.entries(op.responses[String(res.statusCode)]?.headers ?? {})) {
    // A header the contract marks required must be there.
    if ((h as { required?: boolean }).required && res.headers[name.toLowerCase()] === undefined) throw new Error(`contract: ${key} must send ${name}`);
  }
  return body;
}
