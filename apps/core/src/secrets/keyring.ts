import { inspect } from 'node:util';
import { SecretError } from './errors';

// Keys for encrypting secrets at rest, from VMRESTORE_SECRET_KEYS:
//   "k2:<base64 of 32 bytes>,k1:<base64 of 32 bytes>"
// The first key is current (new ciphertexts use it); every key listed can
// decrypt, so an old key stays in the list until all rows are re-encrypted.
// Key material never appears in an error, a log line, JSON or inspect output.

export const SECRET_KEYS_ENV = 'VMRESTORE_SECRET_KEYS';
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
export const KEY_BYTES = 32;

export class Keyring {
  readonly #keys: ReadonlyMap<string, Buffer>;
  /** Id of the key new ciphertexts are made with. */
  readonly currentKeyId: string;

  /** Use parseKeyring; this takes ownership of the buffers. */
  constructor(entries: ReadonlyArray<readonly [string, Buffer]>) {
    const first = entries[0];
    if (!first) throw new SecretError('SECRET_KEYRING_INVALID', 'the keyring has no keys');
    this.#keys = new Map(entries);
    this.currentKeyId = first[0];
  }

  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  has(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  /** The raw key; for the cipher functions in this folder only. */
  key(keyId: string): Buffer {
    const k = this.#keys.get(keyId);
    if (!k) throw new SecretError('SECRET_KEY_UNKNOWN', `no key with id "${safeId(keyId)}" in ${SECRET_KEYS_ENV}`);
    return k;
  }

  /** True when a ciphertext made under keyId should be re-encrypted under the current key. */
  needsRotation(keyId: string): boolean {
    return keyId !== this.currentKeyId;
  }

  toJSON(): { currentKeyId: string; keyIds: string[] } {
    return { currentKeyId: this.currentKeyId, keyIds: this.keyIds };
  }

  [inspect.custom](): string {
    return `Keyring { current: ${this.currentKeyId}, keys: [${this.keyIds.join(', ')}] }`;
  }
}

/** An id from a database row, shortened and stripped so it is safe to show. */
function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, '?').slice(0, 64);
}

/**
 * Parses "id:base64,id:base64" strictly: ids of letters, digits, _ and -,
 * unique; each key exactly 32 bytes of canonical base64 (or base64url).
 * Every problem is listed by entry position and id, never by key material.
 */
export function parseKeyring(raw: string | undefined): Keyring {
  if (raw === undefined || raw.trim() === '') {
    throw new SecretError('SECRET_KEYRING_INVALID', `${SECRET_KEYS_ENV} is required: "id:<base64 of 32 bytes>[,id:...]", the first key is current`);
  }
  const problems: string[] = [];
  const entries: Array<[string, Buffer]> = [];
  const seen = new Set<string>();
  raw.split(',').forEach((part, i) => {
    const where = `entry ${i + 1}`;
    const entry = part.trim();
    const colon = entry.indexOf(':');
    if (colon < 0) {
      problems.push(`${where} must be "id:<base64 key>"`);
      return;
    }
    const id = entry.slice(0, colon);
    const b64 = entry.slice(colon + 1);
    if (!KEY_ID.test(id)) {
      problems.push(`${where} has an invalid id (1-64 of A-Z a-z 0-9 _ -)`);
      return;
    }
    if (seen.has(id)) problems.push(`${where}: key id "${id}" is listed twice`);
    seen.add(id);
    const key = decodeKey(b64);
    if (!key) {
      problems.push(`${where} (id "${id}"): the key must be base64 of exactly ${KEY_BYTES} bytes`);
      return;
    }
    entries.push([id, key]);
  });
  if (problems.length) throw new SecretError('SECRET_KEYRING_INVALID', `${SECRET_KEYS_ENV} is invalid: ${problems.join('; ')}`);
  return new Keyring(entries);
}

function decodeKey(b64: string): Buffer | null {
  if (!BASE64.test(b64)) return null;
  const std = b64.replace(/-/g, '+').replace(/_/g, '/');
  const buf = Buffer.from(std, 'base64');
  if (buf.length !== KEY_BYTES) return null;
  // Reject non-canonical encodings (stray bits, odd padding): the string must round-trip.
  if (buf.toString('base64').replace(/=+$/, '') !== std.replace(/=+$/, '')) return null;
  return buf;
}

/** The keyring from the environment (VMRESTORE_SECRET_KEYS). */
export function loadKeyring(env: Record<string, string | undefined> = process.env): Keyring {
  return parseKeyring(env[SECRET_KEYS_ENV]);
}
