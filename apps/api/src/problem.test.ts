import Fastify from 'fastify';
import { fieldErrors, frameworkErrors, registerProblemHandlers } from './problem';

describe('ajv errors to problem fields', () => {
  it('names missing, unknown and nested fields by dotted path', () => {
    const out = fieldErrors(
      [
        { instancePath: '', keyword: 'required', params: { missingProperty: 'source' } },
        { instancePath: '/source', keyword: 'additionalProperties', params: { additionalProperty: 'extra' } },
        { instancePath: '/options/transports/0', keyword: 'enum', params: { allowedValues: ['san', 'nbd'] }, message: 'must be equal to one of the allowed values' },
        { instancePath: '/vcenter', keyword: 'type', params: { type: 'string' }, message: 'must be string' },
      ],
      'body',
    );
    expect(out).toEqual([
      { in: 'body', field: 'source', message: 'is required' },
      { in: 'body', field: 'source.extra', message: 'is not a known field' },
      { in: 'body', field: 'options.transports.0', message: 'must be one of: san, nbd' },
      { in: 'body', field: 'vcenter', message: 'must be string' },
    ]);
  });
  it('maps Fastify contexts to OpenAPI locations', () => {
    expect(fieldErrors([{ instancePath: '/id', keyword: 'format', params: {}, message: 'must match format "uuid"' }], 'params')[0]).toEqual({ in: 'path', field: 'id', message: 'must match format "uuid"' });
    expect(fieldErrors([{ instancePath: '/limit', keyword: 'minimum', params: {}, message: 'must be >= 1' }], 'querystring')[0]!.in).toBe('query');
  });
  it('de-duplicates repeated errors', () => {
    const e = { instancePath: '/a', keyword: 'type', params: {}, message: 'must be string' };
    expect(fieldErrors([e, e], 'body')).toHaveLength(1);
  });
});

// Found by the fuzzer (test/integration/fuzz.test.ts): the router's own
// errors came out as Fastify's application/json, not as problems.
describe('router errors (frameworkErrors)', () => {
  const app = Fastify({ frameworkErrors });
  registerProblemHandlers(app);
  app.get('/v1/things/:id', async () => ({ ok: true }));
  afterAll(() => app.close());
  it.each([
    ['bad percent-encoding', '/v1/things/%zz'],
    ['a path parameter over maxParamLength', `/v1/things/${'x'.repeat(101)}`],
  ])('answers %s with a 400 problem naming the path', async (_name, url) => {
    const res = await app.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', errors: [{ in: 'path', field: '(path)' }] });
  });
});
