import { createPrivateKey, createPublicKey, hkdfSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../canonical-json';
import type { Keyring } from './keyring';

// The service's signing key: an Ed25519 key derived (HKDF-SHA256) from each
// key of VMRESTORE_SECRET_KEYS, so every worker and API process of one
// deployment signs with the same key and nothing new must be stored. Only
// the public half ever leaves the process (GET /v1/report-keys); anyone can
// check a restore report with it, offline.

const INFO = 'vmrestore restore-report signing v1';
// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410).
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function signingKey(keyring: Keyring, keyId: string = keyring.currentKeyId): SigningKey {
  const seed = Buffer.from(hkdfSync('sha256', keyring.key(keyId), Buffer.alloc(0), INFO, 32));
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  seed.fill(0);
  return { keyId, privateKey, publicKey: createPublicKey(privateKey) };
}

export interface DocumentSignature {
  alg: 'Ed25519';
  keyId: string;
  /** base64 of the Ed25519 signature over canonicalJson(document). */
  value: string;
}

export function signDocument(keyring: Keyring, document: unknown): DocumentSignature {
  const k = signingKey(keyring);
  return { alg: 'Ed25519', keyId: k.keyId, value: sign(null, Buffer.from(canonicalJson(document)), k.privateKey).toString('base64') };
}

/** Checks a signature with a public key (PEM, as GET /v1/report-keys gives it). */
export function verifyDocument(publicKeyPem: string, document: unknown, signature: Pick<DocumentSignature, 'value'>): boolean {
  return verify(null, Buffer.from(canonicalJson(document)), createPublicKey(publicKeyPem), Buffer.from(signature.value, 'base64'));
}

/** The public keys of every key in the ring: reports signed before a rotation still check. */
export function publicSigningKeys(keyring: Keyring): Array<{ keyId: string; alg: 'Ed25519'; current: boolean; publicKeyPem: string }> {
  return keyring.keyIds.map((keyId) => ({
    keyId,
    alg: 'Ed25519' as const,
    current: keyId === keyring.currentKeyId,
    publicKeyPem: signingKey(keyring, keyId).publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  }));
}
