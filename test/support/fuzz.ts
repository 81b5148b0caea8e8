import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { loadOpenApi, type JsonSchema, type OpenApiDoc, type ParameterObject } from '@vmrestore/core';

// A request generator derived from openapi.yaml, for the API fuzz test
// (test/integration/fuzz.test.ts). Every operation of the contract gets
// requests made from its own parameters and body schema: valid by schema,
// and mutated (wrong types, missing and unknown fields, huge and odd strings,
// numbers at the limits, deep nesting, invalid JSON, other content types,
// bodies near the body limit, odd path ids and query parameters, bad keys).
//
// Generation is fast-check's, from a seed: the same seed gives the same
// requests. Ids of things the run creates are not known in advance, so a
// path parameter may name a pool ("restores/id") and a pick; the sender
// resolves it against what the API returned so far.

export interface FuzzOperation {
  method: string;
  /** The path template, as in openapi.yaml. */
  path: string;
  operationId: string;
  /** x-scopes: any one admits; empty for public operations. */
  scopes: string[];
  params: ParameterObject[];
  body?: { schema: JsonSchema; required: boolean };
}

/** A path parameter: a literal (already URL-encoded) or a pick from a pool of ids seen in responses. */
export type PathValue = { literal: string } | { pool: string; pick: number };

export type BodySpec =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'raw'; text: string }
  /** A JSON body padded to about `bytes` bytes (near the body limit). */
  | { kind: 'oversize'; bytes: number; value: Record<string, unknown> }
  /** `depth` nested arrays or objects. */
  | { kind: 'deep'; depth: number; shape: 'array' | 'object' };

/** Whose key the request carries. */
export type AuthKind = 'admin' | 'admin-x-api-key' | 'none' | 'unknown-key' | 'malformed' | 'limited' | 'revoked';

export interface FuzzRequest {
  /** null: a route that is not in the contract. */
  op: FuzzOperation | null;
  method: string;
  path: string;
  pathValues: Record<string, PathValue>;
  /** '' or '?...', already encoded. */
  query: string;
  headers: Record<string, string>;
  /** null: no Content-Type header. */
  contentType: string | null;
  body: BodySpec;
  auth: AuthKind;
  /** What was made invalid on purpose ('valid' when nothing). */
  mutation: string;
}

export interface FuzzOptions {
  /** Arbitraries that replace the schema's for a body field (dotted path, e.g. "source.vm"), most of the time. */
  hints?: Record<string, fc.Arbitrary<unknown>>;
  /** Values for a path parameter pool ("backups/vm"): used besides pool picks. */
  pathHints?: Record<string, fc.Arbitrary<string>>;
  bodyLimit: number;
}

/** Every operation of the contract. */
export function fuzzOperations(doc: OpenApiDoc = loadOpenApi()): FuzzOperation[] {
  const out: FuzzOperation[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (!op || typeof op !== 'object' || !('responses' in op)) continue;
      const json = op.requestBody?.content['application/json']?.schema;
      out.push({
        method: method.toUpperCase(),
        path,
        operationId: op.operationId,
        scopes: ((op as unknown as { 'x-scopes'?: string[] })['x-scopes'] ?? []).slice(),
        params: op.parameters ?? [],
        ...(json ? { body: { schema: json, required: op.requestBody?.required ?? false } } : {}),
      });
    }
  }
  return out;
}

/** The pool a path parameter's ids come from: the segment before it and its name ("restores/id"). */
export function poolOf(path: string, param: string): string {
  const segs = path.split('/');
  const i = segs.indexOf(`{${param}}`);
  return `${segs[i - 1]}/${param}`;
}

// ---------------------------------------------------------------- schema → arbitrary

const cap = (n: number | undefined, max: number) => (n === undefined ? max : Math.min(n, max));

function stringArb(s: JsonSchema): fc.Arbitrary<string> {
  const min = (s.minLength as number | undefined) ?? 0;
  const max = (s.maxLength as number | undefined) ?? 10_000;
  if (s.format === 'uuid') return fc.uuid();
  if (s.format === 'date-time') return fc.date({ noInvalidDate: true, min: new Date(0), max: new Date('2100-01-01') }).map((d) => d.toISOString());
  if (typeof s.pattern === 'string') {
    return fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length >= min && v.length <= max);
  }
  // Free text: mostly plain, sometimes valid by the schema yet awkward to store or show.
  const constraints = { minLength: min, maxLength: Math.max(min, cap(max, 40)) };
  return fc.oneof({ arbitrary: fc.string(constraints), weight: 3 }, { arbitrary: fc.string({ ...constraints, unit: awkwardChar }), weight: 1 });
}

/** Characters JSON carries but databases, terminals and logs may not: NUL, lone surrogates, controls, RTL, BOM. */
const awkwardChar = fc.oneof(
  { arbitrary: fc.constantFrom('\u0000', '\ud800', '\udfff', '\u202e', '\ufeff', '\u0007', '\n', '\r', '\t', '"', '\\', '%', 'é', '😀', '\u00a0', '\u2028'), weight: 1 },
  { arbitrary: fc.string({ minLength: 1, maxLength: 1 }), weight: 3 },
);

/** A value valid by `schema` (roughly: enough for the API's validator to accept most of them). */
export function arbFromSchema(schema: JsonSchema, field: string, hints: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const plain = plainArb(schema, field, hints);
  const hint = hints[field];
  const arb = hint ? fc.oneof({ arbitrary: hint, weight: 4 }, { arbitrary: plain, weight: 1 }) : plain;
  return schema.nullable ? fc.option(arb, { nil: null, freq: 8 }) : arb;
}

function plainArb(s: JsonSchema, field: string, hints: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as unknown[]));
  const alts = (s.oneOf ?? s.anyOf) as JsonSchema[] | undefined;
  if (alts) return fc.oneof(...alts.map((a) => arbFromSchema(a, field, hints)));
  const child = (name: string) => (field ? `${field}.${name}` : name);
  switch (s.type) {
    case 'string':
      return stringArb(s);
    case 'integer':
      return fc.integer({ min: (s.minimum as number | undefined) ?? -1_000_000, max: (s.maximum as number | undefined) ?? 1_000_000 });
    case 'number':
      return fc.double({ min: (s.minimum as number | undefined) ?? -1e6, max: (s.maximum as number | undefined) ?? 1e6, noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'array': {
      const items = arbFromSchema((s.items as JsonSchema) ?? {}, child('0'), hints);
      const constraints = { minLength: (s.minItems as number | undefined) ?? 0, maxLength: cap(s.maxItems as number | undefined, 5) };
      return s.uniqueItems ? fc.uniqueArray(items, { ...constraints, selector: (v) => JSON.stringify(v) }) : fc.array(items, constraints);
    }
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, JsonSchema>;
      const required = (s.required ?? []) as string[];
      const record = fc.record(
        Object.fromEntries(Object.entries(props).map(([k, v]) => [k, arbFromSchema(v, child(k), hints)])),
        { requiredKeys: required.filter((k) => k in props) },
      );
      const extra = s.additionalProperties;
      if (extra && typeof extra === 'object') {
        const names = (s.propertyNames as JsonSchema | undefined) ?? { type: 'string', minLength: 1, maxLength: 20 };
        const dict = fc.dictionary(stringArb({ type: 'string', ...names }), arbFromSchema(extra as JsonSchema, child('*'), hints), { maxKeys: 3 });
        return fc.tuple(record, dict).map(([r, d]) => ({ ...d, ...r }));
      }
      return record;
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

// ---------------------------------------------------------------- odd values

/** Text that is awkward for parsers, databases and loggers. */
export const oddString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udfffy',
    '\u202eevil',
    '\ufeffbom',
    '../../etc/passwd',
    '%00',
    '%s%s%n',
    '${jndi:ldap://127.0.0.1/x}',
    "'; DROP TABLE restore_jobs; --",
    '\r\nX-Injected: 1',
    '<script>alert(1)</script>',
    'null',
    '__proto__',
    'constructor',
    '💩'.repeat(50),
    'é'.repeat(100),
    '\\',
    '"',
  ),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
);

/** A long string of one unit: at most a few hundred KB. */
const hugeString: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 1_000, max: 300_000 }), fc.constantFrom('x', 'é', '😀', '\u0000', '"\\', 'ab '))
  .map(([n, u]) => u.repeat(Math.ceil(n / u.length)));

/** A wrong type for anything. */
const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom('5', 'true', '', '[]', '{}'),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);

/** Numbers at and beyond the usual limits, as JSON source text (some are not representable as doubles). */
const limitNumberText = fc.constantFrom(
  '-1',
  '0',
  '-0',
  '1.5',
  '2147483647',
  '2147483648',
  '-2147483649',
  '9007199254740991',
  '9007199254740993',
  '-9007199254740993',
  '1e308',
  '1e400',
  '-1e400',
  '5e-324',
  '123456789012345678901234567890',
  '0.0000000000000000000001',
  '1E2',
  '101',
  '3601',
);

// A value replaced by raw JSON text: a marker that survives JSON.stringify, swapped afterwards.
const RAW = '\u0001RAW:';
const RAW_END = '\u0001';
const rawToken = (text: string) => `${RAW}${text}${RAW_END}`;
const RAW_IN_JSON = /"\\u0001RAW:(.*?)\\u0001"/g;

/** JSON text of a value, with raw tokens put in as they are. */
export function toJson(value: unknown): string {
  return (JSON.stringify(value) ?? '').replace(RAW_IN_JSON, (_m, t: string) => t);
}

/** Every place in a JSON value (root first), as key paths. */
function places(value: unknown, at: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(at);
  if (Array.isArray(value)) value.forEach((v, i) => places(v, [...at, i], out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) places(v, [...at, k], out);
  return out;
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** `value` with the thing at `path` replaced (or removed, when `remove`). */
function setAt(value: unknown, path: Array<string | number>, next: unknown, remove = false): unknown {
  if (!path.length) return next;
  const root = clone(value) as Record<string | number, unknown>;
  let node = root;
  for (const p of path.slice(0, -1)) node = node[p] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (remove) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = next;
  return root;
}

type BodyMutation =
  | 'valid'
  | 'wrong-type'
  | 'missing-field'
  | 'extra-field'
  | 'huge-string'
  | 'odd-string'
  | 'number-limit'
  | 'deep-field'
  | 'deep-body'
  | 'invalid-json'
  | 'top-level'
  | 'oversized'
  | 'no-body';

const bodyMutation = fc.constantFrom<BodyMutation>(
  ...(Array(30).fill('valid') as BodyMutation[]),
  ...(Array(8).fill('wrong-type') as BodyMutation[]),
  ...(Array(6).fill('missing-field') as BodyMutation[]),
  ...(Array(6).fill('extra-field') as BodyMutation[]),
  ...(Array(3).fill('huge-string') as BodyMutation[]),
  ...(Array(10).fill('odd-string') as BodyMutation[]),
  ...(Array(6).fill('number-limit') as BodyMutation[]),
  'deep-field',
  'deep-field',
  'deep-body',
  'deep-body',
  ...(Array(5).fill('invalid-json') as BodyMutation[]),
  'top-level',
  'top-level',
  'top-level',
  'oversized',
  'oversized',
  'no-body',
  'no-body',
);

const invalidJson = fc.oneof(
  fc.constantFrom('{', '{"a":', '{"a":1,}', "{'a':1}", '{"a":1}}', 'nul', 'tru', '[1,2', '{"a":"\\x"}', '{"a":"\u0000"}', '\ufeff{}', '{"__proto__":{"x":1}}', 'NaN', '1e', '"\\ud800"', ' '),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.base64String({ maxLength: 80 }),
);

const topLevel = fc.constantFrom('null', '[]', '[{}]', '"x"', '0', 'true', '{}', '""');

/** A body for an operation, valid or mutated, and the name of the mutation. */
function bodyArb(op: FuzzOperation, opts: FuzzOptions): fc.Arbitrary<{ body: BodySpec; mutation: string }> {
  const schema = op.body!.schema;
  const valid = arbFromSchema(schema, '', opts.hints ?? {}) as fc.Arbitrary<Record<string, unknown>>;
  return fc
    .record({
      kind: bodyMutation,
      value: valid,
      pick: fc.nat(),
      wrong: wrongType,
      odd: oddString,
      huge: hugeString,
      number: limitNumberText,
      extraKey: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'extra', '', '\u0000', 'a.b'), fc.string({ maxLength: 12 })),
      depth: fc.integer({ min: 100, max: 200_000 }),
      shape: fc.constantFrom<'array' | 'object'>('array', 'object'),
      raw: invalidJson,
      top: topLevel,
      size: fc.constantFrom(-200, -1, 0, 1, 1000, 1 << 20),
    })
    .map((g): { body: BodySpec; mutation: string } => {
      const all = places(g.value);
      const at = all[g.pick % all.length]!;
      const of = (pred: (v: unknown) => boolean) => {
        const matching = all.filter((p) => pred(p.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], g.value)));
        return matching.length ? matching[g.pick % matching.length]! : null;
      };
      const json = (value: unknown, what: string) => ({ body: { kind: 'json' as const, value }, mutation: what });
      switch (g.kind) {
        case 'valid':
          return json(g.value, 'valid');
        case 'wrong-type':
          return json(setAt(g.value, at, g.wrong), `wrong-type@${at.join('.') || '(body)'}`);
        case 'missing-field': {
          const leaf = at.length ? at : Object.keys(g.value).slice(0, 1);
          return json(setAt(g.value, leaf, undefined, true), `missing@${leaf.join('.')}`);
        }
        case 'extra-field': {
          const obj = of((v) => !!v && typeof v === 'object' && !Array.isArray(v)) ?? [];
          return json(setAt(g.value, [...obj, g.extraKey], g.wrong), `extra@${[...obj, g.extraKey].join('.')}`);
        }
        case 'huge-string':
        case 'odd-string': {
          const str = of((v) => typeof v === 'string') ?? at;
          return json(setAt(g.value, str, g.kind === 'huge-string' ? g.huge : g.odd), `${g.kind}@${str.join('.')}`);
        }
        case 'number-limit': {
          const num = of((v) => typeof v === 'number') ?? at;
          return json(setAt(g.value, num, rawToken(g.number)), `number ${g.number}@${num.join('.') || '(body)'}`);
        }
        case 'deep-field': {
          const d = Math.min(g.depth, 20_000);
          const nested = g.shape === 'array' ? `${'['.repeat(d)}${']'.repeat(d)}` : `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`;
          return json(setAt(g.value, at, rawToken(nested)), `deep-${g.shape} ${d}@${at.join('.') || '(body)'}`);
        }
        case 'deep-body':
          return { body: { kind: 'deep', depth: g.depth, shape: g.shape }, mutation: `deep-body ${g.shape} ${g.depth}` };
        case 'invalid-json':
          return { body: { kind: 'raw', text: g.raw }, mutation: 'invalid-json' };
        case 'top-level':
          return { body: { kind: 'raw', text: g.top }, mutation: `top-level ${g.top}` };
        case 'oversized':
          return { body: { kind: 'oversize', bytes: opts.bodyLimit + g.size, value: g.value }, mutation: `oversized limit${g.size >= 0 ? '+' : ''}${g.size}` };
        case 'no-body':
          return { body: { kind: 'none' }, mutation: 'no-body' };
      }
    });
}

// ---------------------------------------------------------------- paths, queries, headers

/** Bytes of a string percent-encoded, except unreserved characters (lone surrogates become U+FFFD). */
export function percentEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const uuidLike: fc.Arbitrary<string> = fc.tuple(fc.uuid(), fc.nat(9)).map(([u, k]) =>
  [u.toUpperCase(), u.replace(/-/g, ''), `${u}0`, u.slice(1), '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', `{${u}}`, `${u}%20`, `%20${u}`, u.replace(/-/g, '%2D')][k]!,
);

/** Path segments that are not ids: already in URL form, some deliberately malformed. */
const junkSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('..', '.', '%', '%zz', '%00', '%2F', '%2e%2e', 'a%2Fb', '%C0%AE', '%FF', '~', "'", ';', ',', 'null', 'undefined', '0', '-1', 'x'.repeat(5000), '%E2%80%AE'),
  oddString.map(percentEncode),
  fc.string({ maxLength: 30 }).map(percentEncode),
);

function pathValueArb(op: FuzzOperation, p: ParameterObject, opts: FuzzOptions): fc.Arbitrary<{ v: PathValue; bad: boolean }> {
  const pool = poolOf(op.path, p.name);
  const good: Array<fc.WeightedArbitrary<{ v: PathValue; bad: boolean }>> = [
    { arbitrary: fc.nat().map((pick) => ({ v: { pool, pick }, bad: false })), weight: 6 },
    { arbitrary: fc.uuid().map((u) => ({ v: { literal: u }, bad: false })), weight: 2 },
  ];
  const hint = opts.pathHints?.[pool];
  if (hint) good.push({ arbitrary: hint.map((h) => ({ v: { literal: percentEncode(h) }, bad: false })), weight: 6 });
  else if (p.schema.format !== 'uuid') good.push({ arbitrary: stringArb(p.schema).map((s) => ({ v: { literal: percentEncode(s) }, bad: false })), weight: 2 });
  return fc.oneof(
    { arbitrary: fc.oneof(...good), weight: 8 },
    { arbitrary: fc.oneof(uuidLike, junkSegment).map((s) => ({ v: { literal: s }, bad: true })), weight: 2 },
  );
}

/** Bad text for a query parameter of this schema. */
function badQueryValue(s: JsonSchema): fc.Arbitrary<string> {
  const common = fc.oneof(fc.constantFrom('', ' ', 'null', '%00', '%zz', '[]', 'x'.repeat(10_000)), oddString.map(percentEncode));
  if (s.type === 'integer' || s.type === 'number') return fc.oneof(fc.constantFrom('-1', '0', '1.5', 'abc', '1e400', '99999999999999999999', '-9007199254740993', '0x10', 'Infinity', 'NaN', String(((s.maximum as number) ?? 0) + 1)), common);
  if (s.enum) return fc.oneof(fc.constantFrom('bogus', 'QUEUED', 'queued,running', 'running '), common);
  // A string such as a cursor: garbage, base64 that decodes to garbage, or too long.
  return fc.oneof(fc.base64String({ minLength: 4, maxLength: 100 }).map(percentEncode), fc.constantFrom('x'.repeat(513), 'eyJhIjoxfQ', 'eyJjcmVhdGVkQXQiOiJub3QgYSBkYXRlIiwiaWQiOiJ4In0', 'MjAyNi0wMS0wMVQwMDowMDowMFp8bm90LWEtdXVpZA'), common);
}

function queryArb(op: FuzzOperation, opts: FuzzOptions): fc.Arbitrary<{ query: string; bad: string | null }> {
  const qp = op.params.filter((p) => p.in === 'query');
  const parts = qp.map((p) =>
    fc.oneof(
      { arbitrary: fc.constant(null), weight: 16 },
      { arbitrary: arbFromSchema(p.schema, `query.${p.name}`, opts.hints ?? {}).map((v) => ({ text: `${p.name}=${percentEncode(String(v))}`, bad: null as string | null })), weight: 8 },
      { arbitrary: badQueryValue(p.schema).map((v) => ({ text: `${p.name}=${v}`, bad: `query ${p.name}` })), weight: 2 },
      { arbitrary: fc.tuple(badQueryValue(p.schema), badQueryValue(p.schema)).map(([a, b]) => ({ text: `${p.name}=${a}&${p.name}=${b}`, bad: `query ${p.name} twice` })), weight: 1 },
    ),
  );
  const extra = fc.oneof(
    { arbitrary: fc.constant(null), weight: 12 },
    { arbitrary: fc.constantFrom('unknown=1', 'limit[]=1', '__proto__[x]=1', '%zz=1', '&&==', 'a', '=', 'cursor'), weight: 1 },
  );
  return fc.tuple(fc.tuple(...parts), extra).map(([ps, x]) => {
    const given = ps.filter((p): p is { text: string; bad: string | null } => p !== null);
    const texts = given.map((p) => p.text);
    if (x) texts.push(x);
    const bad = [...given.map((p) => p.bad).filter(Boolean), ...(x ? [`query ${x}`] : [])].join(', ');
    return { query: texts.length ? `?${texts.join('&')}` : '', bad: bad || null };
  });
}

/** Header text that can travel over HTTP (no CR, LF or NUL; latin1 at most). */
const headerJunk = fc.oneof(
  fc.constantFrom('', ' ', 'x'.repeat(300), 'x'.repeat(8000), 'é', '\t', 'null', '../../x', '%00'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 20 }),
);

function headersArb(op: FuzzOperation | null, opts: FuzzOptions): fc.Arbitrary<{ headers: Record<string, string>; bad: string | null }> {
  const hp = op ? op.params.filter((p) => p.in === 'header') : [];
  const own = hp.map((p) =>
    fc.oneof(
      { arbitrary: fc.constant(null), weight: 4 },
      { arbitrary: stringArb(p.schema).map((v) => ({ name: p.name.toLowerCase(), value: v, bad: null as string | null })), weight: 4 },
      { arbitrary: headerJunk.map((v) => ({ name: p.name.toLowerCase(), value: v, bad: `header ${p.name}` })), weight: 2 },
    ),
  );
  // Never text/event-stream: a stream stays open until its job ends, and jobs here never run.
  const accept = fc.oneof(
    { arbitrary: fc.constant(null), weight: 6 },
    { arbitrary: fc.constantFrom('application/json', '*/*', 'text/html', 'application/xml', 'application/problem+json', 'text/plain;q=0.1', ''), weight: 1 },
  );
  const requestId = fc.oneof({ arbitrary: fc.constant(null), weight: 12 }, { arbitrary: headerJunk, weight: 1 });
  return fc.tuple(fc.tuple(...own), accept, requestId).map(([o, a, rid]) => {
    const headers: Record<string, string> = {};
    const bad: string[] = [];
    for (const h of o) {
      if (!h) continue;
      headers[h.name] = h.value;
      if (h.bad) bad.push(h.bad);
    }
    if (a !== null) headers.accept = a;
    if (rid !== null) {
      headers['x-request-id'] = rid;
      bad.push('header x-request-id');
    }
    return { headers, bad: bad.length ? bad.join(', ') : null };
  });
}

const contentTypeArb = fc.oneof(
  { arbitrary: fc.constant({ ct: 'application/json' as string | null, bad: false }), weight: 30 },
  { arbitrary: fc.constantFrom('application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json ; charset=UTF-8').map((ct) => ({ ct: ct as string | null, bad: false })), weight: 2 },
  {
    arbitrary: fc
      .constantFrom<string | null>(
        null,
        '',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/problem+json',
        'application/merge-patch+json',
        'application/jsonx',
        'json',
        'application/json; charset=utf-16',
        'application/json; charset=latin1',
        'application/octet-stream',
        '*/*',
        'application/json, text/plain',
      )
      .map((ct) => ({ ct, bad: true })),
    weight: 4,
  },
);

const authArb = fc.constantFrom<AuthKind>(...(Array(26).fill('admin') as AuthKind[]), 'admin-x-api-key', 'admin-x-api-key', 'none', 'none', 'unknown-key', 'malformed', 'limited', 'limited', 'limited', 'revoked');

/** Requests for one operation. */
export function requestArb(op: FuzzOperation, opts: FuzzOptions): fc.Arbitrary<FuzzRequest> {
  const pathParams = op.params.filter((p) => p.in === 'path');
  const pathValues = fc.tuple(...pathParams.map((p) => pathValueArb(op, p, opts)));
  const body: fc.Arbitrary<{ body: BodySpec; mutation: string }> = op.body
    ? bodyArb(op, opts)
    : fc.oneof(
        { arbitrary: fc.constant({ body: { kind: 'none' } as BodySpec, mutation: 'valid' }), weight: 19 },
        { arbitrary: fc.oneof(invalidJson, topLevel).map((text) => ({ body: { kind: 'raw', text } as BodySpec, mutation: 'unexpected body' })), weight: 1 },
      );
  return fc
    .record({ pv: pathValues, q: queryArb(op, opts), h: headersArb(op, opts), b: body, ct: contentTypeArb, auth: authArb })
    .map(({ pv, q, h, b, ct, auth }) => {
      const hasBody = b.body.kind !== 'none';
      const mutations = [
        ...(pv.some((x) => x.bad) ? ['path id'] : []),
        ...(q.bad ? [q.bad] : []),
        ...(h.bad ? [h.bad] : []),
        ...(b.mutation !== 'valid' ? [b.mutation] : []),
        ...(hasBody && ct.bad ? [`content-type ${JSON.stringify(ct.ct)}`] : []),
        ...(auth !== 'admin' && auth !== 'admin-x-api-key' ? [`auth ${auth}`] : []),
      ];
      return {
        op,
        method: op.method,
        path: op.path,
        pathValues: Object.fromEntries(pathParams.map((p, i) => [p.name, pv[i]!.v])),
        query: q.query,
        headers: h.headers,
        contentType: hasBody ? ct.ct : null,
        body: b.body,
        auth,
        mutation: mutations.length ? mutations.join('; ') : 'valid',
      };
    });
}

/** Requests to routes that are not in the contract: other methods on known paths, unknown paths. */
function strayArb(ops: FuzzOperation[]): fc.Arbitrary<FuzzRequest> {
  const paths = [...new Set(ops.map((o) => o.path))];
  return fc
    .record({
      path: fc.oneof(
        fc.constantFrom(...paths).map((p) => p.replace(/\{[^}]+\}/g, () => randomLikeId)),
        fc.constantFrom('/v1', '/v1/', '/v2/restores', '/v1/restores/x/y/z', '/v1/admin', '//v1//restores', '/v1/restores%2F', '/%2e%2e/etc/passwd', '/v1/RESTORES', '/.env'),
        junkSegment.map((s) => `/v1/${s}`),
      ),
      method: fc.constantFrom('PUT', 'PATCH', 'DELETE', 'POST', 'GET', 'OPTIONS', 'HEAD'),
      auth: authArb,
    })
    .map(({ path, method, auth }) => ({
      op: ops.find((o) => o.method === method && o.path === path) ?? null,
      method,
      path,
      pathValues: {},
      query: '',
      headers: {},
      contentType: null,
      body: { kind: 'none' },
      auth,
      mutation: 'stray route',
    }));
}
// A fixed id for stray paths: the route's existence is what is probed, not the id.
const randomLikeId = '3f1e9a52-8c47-4d6b-9b0e-2a5c7d9e1f30';

/** Requests for every operation, each about as often, plus a few stray routes. */
export function fuzzRequestArb(ops: FuzzOperation[], opts: FuzzOptions): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(...ops.map((op) => ({ arbitrary: requestArb(op, opts), weight: 10 })), { arbitrary: strayArb(ops), weight: 4 });
}

/** `count` requests from `seed`, made batch by batch (same seed, same requests). */
export function* fuzzRequests(arb: fc.Arbitrary<FuzzRequest>, seed: number, count: number, batch = 50): Generator<FuzzRequest> {
  for (let done = 0, b = 0; done < count; b++) {
    const n = Math.min(batch, count - done);
    for (const r of fc.sample(arb, { seed: (seed + b * 7919) | 0, numRuns: n })) yield r;
    done += n;
  }
}

// ---------------------------------------------------------------- to a concrete request

export interface SendContext {
  /** Ids seen in responses, by pool ("restores/id"). */
  pools: Record<string, string[]>;
  /** Ids that DELETE must never name (the run's own keys, the seeded vCenter and webhook). */
  keep: Set<string>;
  /** Authorization headers by kind. */
  auth: Record<AuthKind, Record<string, string>>;
}

export interface ConcreteRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

/** Loopback hosts only: a URL in a body never leads off this machine. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Rewrites every `url` field that parses to an address off this machine to 127.0.0.1 (a safety net under the hints). */
export function confineUrls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(confineUrls);
  if (!value || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'url' && typeof v === 'string') {
      let next = v;
      try {
        const u = new URL(v);
        if (u.hostname && !LOCAL_HOSTS.has(u.hostname)) {
          u.hostname = '127.0.0.1';
          next = u.toString();
        }
      } catch {
        // Not a URL: the API refuses it without any lookup.
      }
      out[k] = next;
    } else out[k] = confineUrls(v);
  }
  return out;
}

function payloadOf(body: BodySpec): string | undefined {
  switch (body.kind) {
    case 'none':
      return undefined;
    case 'raw':
      return body.text;
    case 'json':
      return toJson(confineUrls(body.value));
    case 'deep':
      return body.shape === 'array' ? `${'['.repeat(body.depth)}${']'.repeat(body.depth)}` : `${'{"a":'.repeat(body.depth)}1${'}'.repeat(body.depth)}`;
    case 'oversize': {
      const base = toJson(confineUrls({ ...body.value, label: '' }));
      const pad = Math.max(0, body.bytes - Buffer.byteLength(base));
      return base.replace('"label":""', `"label":"${'x'.repeat(pad)}"`);
    }
  }
}

/** The request to send, with pool picks resolved against what the API returned so far. */
export function concretize(r: FuzzRequest, ctx: SendContext): ConcreteRequest {
  let path = r.path;
  for (const [name, v] of Object.entries(r.pathValues)) {
    let text: string;
    if ('literal' in v) text = v.literal;
    else {
      const pool = ctx.pools[v.pool] ?? [];
      text = pool.length ? pool[v.pick % pool.length]! : randomUUID();
      if (r.method === 'DELETE' && ctx.keep.has(text)) text = randomUUID();
    }
    // An empty or dot segment would address another route (trailing slashes are ignored, dot
    // segments resolved by the URL parser), not this operation: send them percent-encoded.
    if (text === '') text = '_';
    if (text === '.' || text === '..') text = text.replace(/\./g, '%252E'); // %2E too is a dot segment to a WHATWG URL parser
    path = path.replace(`{${name}}`, text);
  }
  const payload = payloadOf(r.body);
  const headers: Record<string, string> = { ...r.headers, ...ctx.auth[r.auth] };
  if (payload !== undefined && r.contentType !== null) headers['content-type'] = r.contentType;
  return { method: r.method, url: path + r.query, headers, ...(payload !== undefined ? { payload } : {}) };
}
