import { createHash } from 'node:crypto';
import { canonicalJson } from '../canonical-json';

/** Equal bodies hash equal whatever their key order. */
export { canonicalJson };

export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}
