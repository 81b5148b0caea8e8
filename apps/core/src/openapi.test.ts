import { fastifyPath, loadOpenApi, routeSchema } from './openapi';

describe('openapi.yaml as route schemas', () => {
  const doc = loadOpenApi();
  it('resolves every $ref', () => {
    expect(JSON.stringify(doc)).not.toContain('$ref');
  });
  it('builds body, headers, params and query schemas', () => {
    const post = routeSchema(doc, 'post', '/v1/restores');
    expect(post.body).toMatchObject({ type: 'object', additionalProperties: false, required: ['kind', 'vcenter', 'source'] });
    expect(post.headers).toMatchObject({ properties: { 'idempotency-key': expect.any(Object) }, additionalProperties: true });
    const list = routeSchema(doc, 'get', '/v1/restores');
    expect(list.querystring).toMatchObject({ additionalProperties: false, properties: { limit: { default: 50 } } });
    const get = routeSchema(doc, 'get', '/v1/restores/{id}');
    expect(get.params).toMatchObject({ required: ['id'], properties: { id: { format: 'uuid' } } });
  });
  it('converts paths', () => {
    expect(fastifyPath('/v1/restores/{id}/cancel')).toBe('/v1/restores/:id/cancel');
  });
  it('documents a problem response for every 4xx/5xx', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, res] of Object.entries(op.responses)) {
          if (Number(status) >= 400 && path !== '/readyz') {
            expect([`${method} ${path} ${status}`, Object.keys(res.content ?? {})]).toEqual([`${method} ${path} ${status}`, ['application/problem+json']]);
          }
        }
      }
    }
  });
});
