import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SecretError } from './errors';
import type { Keyring } from './keyring';

// AES-256-GCM. Stored ciphertext: iv (12 bytes) | tag (16 bytes) | data.
// The associated data binds the ciphertext to its key id and to a context
// naming the row and field (e.g. "vcenter:<id>:password"), so a ciphertext
// copied into another row, or relabelled with another key id, fails to decrypt.

const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface EncryptedSecret {
  ciphertext: Buffer<ArrayBuffer>;
  keyId: string;
}

function aad(keyId: string, context: string): Buffer {
  return Buffer.from(`vmrestore-secret:v1:${keyId}:${context}`, 'utf8');
}

function checkContext(context: string): void {
  if (typeof context !== 'string' || context.length === 0) throw new TypeError('a secret needs a non-empty context (e.g. "webhook:<id>:secret")');
}

/** Encrypts under the keyring's current key. */
export function encryptSecret(keyring: Keyring, plaintext: string, context: string): EncryptedSecret {
  checkContext(context);
  const keyId = keyring.currentKeyId;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyring.key(keyId), iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(keyId, context));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { ciphertext: Buffer.concat([iv, cipher.getAuthTag(), data]), keyId };
}

/**
 * Decrypts a stored secret. SECRET_KEY_UNKNOWN: keyId is not in the keyring
 * (a key was removed too early). SECRET_DECRYPT_FAILED: wrong key, wrong
 * context, truncated or tampered ciphertext.
 */
export function decryptSecret(keyring: Keyring, ciphertext: Uint8Array, keyId: string, context: string): string {
  checkContext(context);
  const key = keyring.key(keyId);
  const buf = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  const fail = () => new SecretError('SECRET_DECRYPT_FAILED', `the secret for ${describe(context)} cannot be decrypted with key "${keyId}" (tampered, truncated, or stored for another row)`);
  if (buf.length < IV_BYTES + TAG_BYTES) throw fail();
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(keyId, context));
    decipher.setAuthTag(buf.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(buf.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw fail();
  }
}

/** Context strings name rows ("webhook:<uuid>:secret"); keep them short in messages. */
function describe(context: string): string {
  return `"${context.replace(/[^\x20-\x7e]/g, '?').slice(0, 120)}"`;
}

export function needsRotation(keyring: Keyring, keyId: string): boolean {
  return keyring.needsRotation(keyId);
}

/**
 * Re-encrypts under the current key. Returns null when the ciphertext is
 * already under the current key (nothing to write).
 */
export function reencrypt(keyring: Keyring, ciphertext: Uint8Array, keyId: string, context: string): EncryptedSecret | null {
  if (!keyring.needsRotation(keyId)) {
    decryptSecret(keyring, ciphertext, keyId, context); // still refuse a broken row
    return null;
  }
  return encryptSecret(keyring, decryptSecret(keyring, ciphertext, keyId, context), context);
}

/** The contexts used by the stored secrets, in one place. */
export const secretContext = {
  webhook: (webhookId: string) => `webhook:${webhookId}:secret`,
  vcenterPassword: (connectionId: string) => `vcenter:${connectionId}:password`,
};
