import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

// openapi.yaml is the contract. The API takes its request schemas from it and
// the tests validate every response against it, so the two cannot drift.

export type JsonSchema = Record<string, unknown>;

export interface OpenApiDoc {
  paths: Record<string, Record<string, OperationObject>>;
  components: Record<string, Record<string, unknown>>;
  [k: string]: unknown;
}

export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: JsonSchema;
}

export interface OperationObject {
  operationId: string;
  parameters?: ParameterObject[];
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { content?: Record<string, { schema: JsonSchema }>; headers?: Record<string, unknown> }>;
}

export const OPENAPI_PATH = join(__dirname, '..', '..', '..', 'openapi.yaml');

export function loadOpenApiText(path = OPENAPI_PATH): string {
  return readFileSync(path, 'utf8');
}

/** The document with every local $ref replaced by what it points at. */
export function loadOpenApi(path = OPENAPI_PATH): OpenApiDoc {
  const raw = parse(loadOpenApiText(path)) as OpenApiDoc;
  return dereference(raw, raw) as OpenApiDoc;
}

function dereference(node: unknown, root: unknown, seen: string[] = []): unknown {
  if (Array.isArray(node)) return node.map((n) => dereference(n, root, seen));
  if (node === null || typeof node !== 'object') return node;
  const obj = node as Record<string, unknown>;
  if (typeof obj.$ref === 'string') {
    const ref = obj.$ref;
    if (!ref.startsWith('#/')) throw new Error(`openapi: only local $ref is supported (${ref})`);
    if (seen.includes(ref)) throw new Error(`openapi: circular $ref ${ref}`);
    let target: unknown = root;
    for (const part of ref.slice(2).split('/')) target = (target as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (target === undefined) throw new Error(`openapi: $ref ${ref} points at nothing`);
    return dereference(target, root, [...seen, ref]);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = dereference(v, root, seen);
  return out;
}

export function operation(doc: OpenApiDoc, method: string, path: string): OperationObject {
  const op = doc.paths[path]?.[method.toLowerCase()];
  if (!op) throw new Error(`openapi: no operation ${method.toUpperCase()} ${path}`);
  return op;
}

/** Fastify route schemas (body, querystring, params, headers) for one operation. */
export function routeSchema(doc: OpenApiDoc, method: string, path: string): Record<string, JsonSchema> {
  const op = operation(doc, method, path);
  const schema: Record<string, JsonSchema> = {};
  const group = (where: ParameterObject['in']) => {
    const params = (op.parameters ?? []).filter((p) => p.in === where);
    if (!params.length) return undefined;
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const p of params) {
      const name = where === 'header' ? p.name.toLowerCase() : p.name;
      properties[name] = p.schema;
      if (p.required) required.push(name);
    }
    // Unknown query parameters are refused like unknown body fields; headers
    // naturally carry many others.
    return { type: 'object', properties, required, additionalProperties: where === 'header' };
  };
  const params = group('path');
  const query = group('query');
  const headers = group('header');
  if (params) schema.params = params;
  if (query) schema.querystring = query;
  if (headers) schema.headers = headers;
  const body = op.requestBody?.content['application/json']?.schema;
  if (body) schema.body = body;
  return schema;
}

/** Express-style path (/v1/restores/{id}) to Fastify's (/v1/restores/:id). */
export const fastifyPath = (p: string) => p.replace(/\{([^}]+)\}/g, ':$1');
