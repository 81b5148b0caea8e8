import Ajv from 'ajv';
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

export function validatorCompiler(): FastifySchemaCompiler<Record<string, unknown>> {
  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  return ({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? strict : coercing;
    return ajv.compile(schema) as ReturnType<FastifySchemaCompiler<Record<string, unknown>>>;
  };
}
