import { canonicalJson, requestHash } from './request-hash';

describe('request hashing for Idempotency-Key', () => {
  it('ignores key order at every level', () => {
    expect(requestHash({ a: 1, b: { c: [1, { d: 2, e: 3 }], f: 'x' } })).toBe(requestHash({ b: { f: 'x', c: [1, { e: 3, d: 2 }] }, a: 1 }));
  });
  it('keeps array order and values significant', () => {
    expect(requestHash({ t: ['nbd', 'san'] })).not.toBe(requestHash({ t: ['san', 'nbd'] }));
    expect(requestHash({ a: 1 })).not.toBe(requestHash({ a: '1' }));
  });
  it('drops undefined like JSON does', () => {
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
  });
});
