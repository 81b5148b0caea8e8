import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { canonicalJson } from '../canonical-json';
import { parseKeyring, publicSigningKeys, signDocument, verifyDocument } from './index';

const ring = (...ids: string[]) => parseKeyring(ids.map((id) => `${id}:${randomBytes(32).toString('base64')}`).join(','));

describe('report signing (Ed25519 derived from the keyring)', () => {
  it('signs canonical JSON: key order does not matter, any change breaks the signature', () => {
    const k = ring('k1');
    const doc = { b: [1, { y: 2, x: 'é' }], a: 'job', n: null };
    const sig = signDocument(k, doc);
    const [pub] = publicSigningKeys(k);
    expect(sig).toMatchObject({ alg: 'Ed25519', keyId: 'k1' });
    expect(verifyDocument(pub!.publicKeyPem, { a: 'job', n: null, b: [1, { x: 'é', y: 2 }] }, sig)).toBe(true);
    expect(verifyDocument(pub!.publicKeyPem, { ...doc, a: 'jobs' }, sig)).toBe(false);
    expect(verifyDocument(pub!.publicKeyPem, { ...doc, b: [1, { y: 3, x: 'é' }] }, sig)).toBe(false);
    expect(canonicalJson({ b: 1, a: [undefined, 2], c: undefined })).toBe('{"a":[null,2],"b":1}');
  });

  it('is the same key in every process of a deployment, another for another keyring; old keys still verify after a rotation', () => {
    const raw = `k1:${randomBytes(32).toString('base64')}`;
    const a = parseKeyring(raw);
    const b = parseKeyring(raw);
    expect(publicSigningKeys(a)[0]!.publicKeyPem).toBe(publicSigningKeys(b)[0]!.publicKeyPem);
    expect(publicSigningKeys(ring('k1'))[0]!.publicKeyPem).not.toBe(publicSigningKeys(a)[0]!.publicKeyPem);
    const sig = signDocument(a, { x: 1 });
    const rotated = parseKeyring(`k2:${randomBytes(32).toString('base64')},${raw}`);
    const keys = publicSigningKeys(rotated);
    expect(keys.map((k) => [k.keyId, k.current])).toEqual([['k2', true], ['k1', false]]);
    expect(verifyDocument(keys.find((k) => k.keyId === sig.keyId)!.publicKeyPem, { x: 1 }, sig)).toBe(true);
    expect(signDocument(rotated, { x: 1 }).keyId).toBe('k2');
  });

  it('canonical JSON parses back to the same value', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => expect(JSON.parse(canonicalJson(v))).toEqual(JSON.parse(JSON.stringify(v)))));
  });
});
