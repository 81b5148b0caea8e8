import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

// Bodies are validated strictly: no type coercion ("5" is not a number), no
// removal of unknown fields (they are refused), defaults filled in. Query
// strings and paths arrive as text, so there numbers and booleans are coerced.
function makeAjv(coerce: boolean) {
  const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: coerce ? 'array' : false, removeAdditional: false });
  addFormats(ajv);
  return ajv;
}

// Text Postgres cannot store (NUL, in text and jsonb alike) or that is not
// Unicode at all (an unpaired surrogate, which jsonb refuses): JSON allows
// both, so they pass the schema and then failed in the database as a 500.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSTORABLE_MESSAGE = 'must not contain NUL characters or unpaired surrogates';

const pointer = (key: string | number) => `/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;

/** Ajv-shaped errors for every string (value or property name) holding unstorable text. */
export function unstorableText(data: unknown): ErrorObject[] {
  const errors: ErrorObject[] = [];
  const stack: Array<[unknown, string]> = [[data, '']];
  while (stack.length) {
    const [value, at] = stack.pop()!;
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) errors.push({ instancePath: at, schemaPath: '#', keyword: 'unstorableText', params: {}, message: UNSTORABLE_MESSAGE });
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push([v, at + pointer(i)]));
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (UNSTORABLE.test(k)) errors.push({ instancePath: at + pointer(k), schemaPath: '#', keyword: 'unstorableText', params: {}, message: UNSTORABLE_MESSAGE });
        else stack.push([v, at + pointer(k)]);
      }
    }
  }
  return errors.reverse();
}

/** The schema's validator, then the text check on what it accepted. */
function withTextCheck(validate: ValidateFunction): ValidateFunction {
  const wrapped = ((data: unknown, ctx?: Parameters<ValidateFunction>[1]) => {
    if (!validate(data, ctx)) {
      wrapped.errors = validate.errors;
      return false;
    }
    const errors = unstorableText(data);
    wrapped.errors = errors.length ? errors : null;
    return errors.length === 0;
  }) as ValidateFunction;
  // Fastify passes the parent object (so defaults can replace a missing root) only to Ajv validators.
  Object.assign(wrapped, { schema: validate.schema, schemaEnv: validate.schemaEnv });
  return wrapped;
}

export function validatorCompiler(): FastifySchemaCompiler<Record<string, unknown>> {
  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  return ({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? strict : coercing;
    return withTextCheck(ajv.compile(schema)) as ReturnType<FastifySchemaCompiler<Record<string, unknown>>>;
  };
}
