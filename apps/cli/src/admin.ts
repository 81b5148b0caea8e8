import { AuthError, createApiKey, createDb, createTenant, findTenant, listApiKeys, listTenants, revokeApiKey, SCOPES, type Db } from '@vmrestore/core';

// `vmrestore admin ...`: tenants and API keys, straight against the database
// (DATABASE_URL), on the server host. This is how the first key of a tenant
// is made: the API itself only lets an admin key manage its own tenant.

export class AdminUsageError extends Error {}

export interface AdminArgs {
  tenant?: string;
  name?: string;
  scopes?: string;
  json?: boolean;
}

export interface AdminResult {
  human: string;
  data: unknown;
}

const ADMIN_USAGE = `admin tenant create NAME | admin tenant list
admin key create --tenant NAME --name KEYNAME --scopes ${SCOPES.join(',')}
admin key list --tenant NAME | admin key revoke KEY_ID`;

export async function runAdmin(positionals: string[], args: AdminArgs, env: Record<string, string | undefined> = process.env): Promise<AdminResult> {
  const [, noun, verb, target] = positionals;
  const url = env.DATABASE_URL;
  if (!url) throw new AdminUsageError('admin commands run on the server host against DATABASE_URL, which is not set');
  if (!noun || !verb) throw new AdminUsageError(`admin needs a command:\n${ADMIN_USAGE}`);
  const db = createDb(url, { max: 2 });
  try {
    return await dispatch(db, noun, verb, target, args);
  } finally {
    await db.$disconnect();
  }
}

async function dispatch(db: Db, noun: string, verb: string, target: string | undefined, args: AdminArgs): Promise<AdminResult> {
  const need = (v: string | undefined, what: string): string => {
    if (!v) throw new AdminUsageError(`admin ${noun} ${verb} needs ${what}`);
    return v;
  };
  switch (`${noun} ${verb}`) {
    case 'tenant create': {
      const t = await createTenant(db, need(target, 'a tenant NAME'));
      return { human: `tenant created: ${t.name} (${t.id})`, data: { id: t.id, name: t.name, createdAt: t.createdAt.toISOString() } };
    }
    case 'tenant list': {
      const ts = await listTenants(db);
      return { human: ts.length ? ts.map((t) => `${t.id}  ${t.name}`).join('\n') : 'no tenants', data: { items: ts.map((t) => ({ id: t.id, name: t.name, createdAt: t.createdAt.toISOString() })) } };
    }
    case 'key create': {
      const tenant = await findTenant(db, need(args.tenant, '--tenant NAME'));
      const scopes = need(args.scopes, `--scopes (some of ${SCOPES.join(',')})`).split(',').map((s) => s.trim()).filter(Boolean);
      const { view, key } = await createApiKey(db, tenant.id, { name: need(args.name, '--name KEYNAME'), scopes });
      return {
        human: `${key}\n\nkey ${view.id} (${view.prefix}) for tenant ${tenant.name}, scopes ${view.scopes.join(',')}.\nThis is the only time the key is shown: store it now.`,
        data: { ...view, tenant: tenant.name, key },
      };
    }
    case 'key list': {
      const tenant = await findTenant(db, need(args.tenant, '--tenant NAME'));
      const keys = await listApiKeys(db, tenant.id);
      const rows = keys.map((k) => `${k.id}  vmr_${k.prefix}_…  ${k.name.padEnd(20)} ${k.scopes.join(',').padEnd(44)} ${k.revokedAt ? `revoked ${k.revokedAt}` : `last used ${k.lastUsedAt ?? 'never'}`}`);
      return { human: rows.length ? rows.join('\n') : `no keys for tenant ${tenant.name}`, data: { items: keys } };
    }
    case 'key revoke': {
      const view = await revokeApiKey(db, null, need(target, 'a KEY_ID'));
      return { human: `revoked: ${view.id} (vmr_${view.prefix}_…)`, data: view };
    }
    default:
      throw new AdminUsageError(`unknown admin command "${noun} ${verb}":\n${ADMIN_USAGE}`);
  }
}

export { AuthError };
