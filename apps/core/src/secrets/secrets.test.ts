import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { decryptSecret, encryptSecret, needsRotation, parseKeyring, reencrypt, SecretError, secretContext, loadKeyring } from './index';

const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('base64');
const ctx = secretContext.vcenterPassword('0b6e6d0a-1111-4222-8333-444455556666');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as SecretError).code;
  }
  return undefined;
}
function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('did not throw');
}

describe('parseKeyring', () => {
  it('takes the first key as current and all for decryption', () => {
    const ring = parseKeyring(`k2:${k2}, k1:${k1}`);
    expect(ring.currentKeyId).toBe('k2');
    expect(ring.keyIds).toEqual(['k2', 'k1']);
    expect(ring.has('k1')).toBe(true);
  });

  it('accepts base64url keys', () => {
    const raw = randomBytes(32).toString('base64url');
    expect(parseKeyring(`a_b-1:${raw}`).currentKeyId).toBe('a_b-1');
  });

  it.each([
    ['', /required/],
    ['k1', /entry 1 must be "id:<base64 key>"/],
    [`k 1:${k1}`, /entry 1 has an invalid id/],
    [`:${k1}`, /entry 1 has an invalid id/],
    [`k1:${k1},k1:${k2}`, /key id "k1" is listed twice/],
    [`k1:${randomBytes(16).toString('base64')}`, /exactly 32 bytes/],
    [`k1:${randomBytes(33).toString('base64')}`, /exactly 32 bytes/],
    ['k1:not*base64', /exactly 32 bytes/],
    [`k1:${k1},`, /entry 2/],
  ])('refuses %j', (raw, message) => {
    expect(codeOf(() => parseKeyring(raw))).toBe('SECRET_KEYRING_INVALID');
    expect(messageOf(() => parseKeyring(raw))).toMatch(message);
  });

  it('refuses a non-canonical encoding of a key', () => {
    // 32 bytes need 43 base64 chars + "="; changing the last char's unused bits must not be accepted silently.
    const canonical = Buffer.alloc(32, 0).toString('base64'); // AAAA...A=
    const tweaked = canonical.slice(0, 42) + 'B=';
    expect(codeOf(() => parseKeyring(`k1:${tweaked}`))).toBe('SECRET_KEYRING_INVALID');
  });

  it('never prints key material in errors, inspect or JSON', () => {
    const short = randomBytes(31).toString('base64');
    const msg = messageOf(() => parseKeyring(`k1:${k1},k2:${short},k1:${k2}`));
    for (const secret of [k1, k2, short]) expect(msg).not.toContain(secret);
    const ring = parseKeyring(`k2:${k2},k1:${k1}`);
    const shown = inspect(ring) + JSON.stringify(ring) + JSON.stringify({ ring });
    for (const secret of [k1, k2, Buffer.from(k1, 'base64').toString('hex')]) expect(shown).not.toContain(secret);
    expect(shown).toContain('k2');
  });

  it('reads VMRESTORE_SECRET_KEYS', () => {
    expect(loadKeyring({ VMRESTORE_SECRET_KEYS: `x:${k1}` }).currentKeyId).toBe('x');
    expect(codeOf(() => loadKeyring({}))).toBe('SECRET_KEYRING_INVALID');
  });
});

describe('encryptSecret / decryptSecret', () => {
  const ring = parseKeyring(`k1:${k1}`);

  it('round-trips any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => {
        const { ciphertext, keyId } = encryptSecret(ring, s, ctx);
        expect(decryptSecret(ring, ciphertext, keyId, ctx)).toBe(s);
      }),
      { numRuns: 100 },
    );
  });

  it('lays out iv | tag | data and uses a fresh iv each time', () => {
    const a = encryptSecret(ring, 'hunter2', ctx);
    const b = encryptSecret(ring, 'hunter2', ctx);
    expect(a.keyId).toBe('k1');
    expect(a.ciphertext.length).toBe(12 + 16 + 'hunter2'.length);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
    expect(a.ciphertext.includes(Buffer.from('hunter2'))).toBe(false);
  });

  it('detects any flipped bit', () => {
    const { ciphertext } = encryptSecret(ring, 'the password', ctx);
    for (let i = 0; i < ciphertext.length; i++) {
      const t = Buffer.from(ciphertext);
      t[i] = t[i]! ^ 0x01;
      expect(codeOf(() => decryptSecret(ring, t, 'k1', ctx))).toBe('SECRET_DECRYPT_FAILED');
    }
  });

  it('refuses truncated ciphertext', () => {
    const { ciphertext } = encryptSecret(ring, 'x', ctx);
    expect(codeOf(() => decryptSecret(ring, ciphertext.subarray(0, 27), 'k1', ctx))).toBe('SECRET_DECRYPT_FAILED');
    expect(codeOf(() => decryptSecret(ring, ciphertext.subarray(0, ciphertext.length - 1), 'k1', ctx))).toBe('SECRET_DECRYPT_FAILED');
  });

  it('binds the ciphertext to its context: a copy in another row fails', () => {
    const { ciphertext } = encryptSecret(ring, 'the password', secretContext.vcenterPassword('a'));
    expect(codeOf(() => decryptSecret(ring, ciphertext, 'k1', secretContext.vcenterPassword('b')))).toBe('SECRET_DECRYPT_FAILED');
    expect(codeOf(() => decryptSecret(ring, ciphertext, 'k1', secretContext.webhook('a')))).toBe('SECRET_DECRYPT_FAILED');
  });

  it('binds the ciphertext to its key id: relabelling fails', () => {
    // The same key material under two ids: the label is authenticated too.
    const twin = parseKeyring(`k1:${k1},k9:${k1}`);
    const { ciphertext } = encryptSecret(twin, 's', ctx);
    expect(codeOf(() => decryptSecret(twin, ciphertext, 'k9', ctx))).toBe('SECRET_DECRYPT_FAILED');
  });

  it('names an unknown key id without showing anything secret', () => {
    const { ciphertext } = encryptSecret(ring, 'the password', ctx);
    expect(codeOf(() => decryptSecret(ring, ciphertext, 'gone', ctx))).toBe('SECRET_KEY_UNKNOWN');
    const msg = messageOf(() => decryptSecret(parseKeyring(`k2:${k2}`), ciphertext, 'k1', ctx));
    expect(msg).toMatch(/no key with id "k1"/);
    const bad = messageOf(() => decryptSecret(parseKeyring(`k1:${k2}`), ciphertext, 'k1', ctx));
    for (const s of ['the password', k1, k2, ciphertext.toString('base64'), ciphertext.toString('hex')]) expect(bad).not.toContain(s);
  });

  it('refuses an empty context', () => {
    expect(() => encryptSecret(ring, 's', '')).toThrow(/context/);
  });
});

describe('rotation', () => {
  const old = parseKeyring(`k1:${k1}`);
  const rotated = parseKeyring(`k2:${k2},k1:${k1}`);

  it('decrypts old ciphertexts after a new key is added and re-encrypts them under it', () => {
    const before = encryptSecret(old, 'the password', ctx);
    expect(needsRotation(rotated, before.keyId)).toBe(true);
    expect(decryptSecret(rotated, before.ciphertext, before.keyId, ctx)).toBe('the password');
    const after = reencrypt(rotated, before.ciphertext, before.keyId, ctx);
    expect(after?.keyId).toBe('k2');
    expect(needsRotation(rotated, after!.keyId)).toBe(false);
    // Once rotated, the old key can go.
    expect(decryptSecret(parseKeyring(`k2:${k2}`), after!.ciphertext, 'k2', ctx)).toBe('the password');
  });

  it('leaves a ciphertext under the current key alone, but still checks it', () => {
    const now = encryptSecret(rotated, 's', ctx);
    expect(reencrypt(rotated, now.ciphertext, now.keyId, ctx)).toBeNull();
    const t = Buffer.from(now.ciphertext);
    t[t.length - 1] = t[t.length - 1]! ^ 1;
    expect(codeOf(() => reencrypt(rotated, t, now.keyId, ctx))).toBe('SECRET_DECRYPT_FAILED');
  });
});
