import { ConfigError } from '../config';
import { generateApiKey, hashApiKey, parseApiKey, checkScopes } from './keys';
import { loadSecurityConfig } from './config';

describe('API keys', () => {
  it('are vmr_<12 base62>_<43 base62>, random, and parse back to their prefix', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).toMatch(/^vmr_[A-Za-z0-9]{12}_[A-Za-z0-9]{43}$/);
    expect(a.key).not.toBe(b.key);
    expect(parseApiKey(a.key)).toEqual({ prefix: a.prefix });
    expect(hashApiKey(a.key)).toMatch(/^[0-9a-f]{64}$/);
  });
  it.each(['', 'vmr_', 'vmr_abc_def', `vmr_${'a'.repeat(12)}_${'b'.repeat(31)}`, `xmr_${'a'.repeat(12)}_${'b'.repeat(40)}`, `vmr_${'a'.repeat(12)}_${'b'.repeat(40)} `])(
    'refuses malformed %j',
    (k) => expect(parseApiKey(k)).toBeNull(),
  );
  it('checks scopes', () => {
    expect(checkScopes(['admin', 'admin', 'restores:read'])).toEqual(['admin', 'restores:read']);
    expect(() => checkScopes([])).toThrow(/at least one/);
    expect(() => checkScopes(['root'])).toThrow(/unknown scope/);
  });
});

describe('security config', () => {
  it('defaults: auth required, 600 a minute, CORS off, no private webhooks', () => {
    expect(loadSecurityConfig({})).toEqual({ auth: 'required', rateLimitPerMin: 600, corsOrigins: [], webhookAllowPrivate: false });
  });
  it('reads every variable', () => {
    expect(
      loadSecurityConfig({ VMRESTORE_AUTH: 'disabled', VMRESTORE_RATE_LIMIT_PER_MIN: '0', VMRESTORE_CORS_ORIGINS: 'https://a.example, http://localhost:3000', VMRESTORE_WEBHOOK_ALLOW_PRIVATE: 'true' }),
    ).toEqual({ auth: 'disabled', rateLimitPerMin: 0, corsOrigins: ['https://a.example', 'http://localhost:3000'], webhookAllowPrivate: true });
  });
  it('lists every problem', () => {
    try {
      loadSecurityConfig({ VMRESTORE_AUTH: 'off', VMRESTORE_RATE_LIMIT_PER_MIN: '-1', VMRESTORE_CORS_ORIGINS: '*,https://a.example/', VMRESTORE_WEBHOOK_ALLOW_PRIVATE: 'yes' });
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toHaveLength(5);
    }
  });
});
