// The scopes an API key can hold. Scopes are independent: `admin` manages
// the tenant's keys, vCenter connections and webhooks, and does not by itself
// allow starting or reading restores.

export const SCOPES = ['restores:read', 'restores:write', 'backups:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s);
