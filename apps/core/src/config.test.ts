import { ConfigError, loadConfig } from './config';

const base = { DATABASE_URL: 'postgresql://u@127.0.0.1:5432/db', REDIS_URL: 'redis://127.0.0.1:6379' };

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig(base);
    expect(c.api).toEqual({ host: '127.0.0.1', port: 8080, bodyLimitBytes: 1048576, publicUrl: null });
    expect(c.queue.attempts).toBe(5);
    expect(c.queue.stalledIntervalMs).toBeLessThanOrEqual(c.queue.lockDurationMs);
  });
  it('reports every problem at once, naming each variable', () => {
    try {
      loadConfig({ REDIS_URL: 'http://x', VMRESTORE_PORT: 'eighty', LOG_LEVEL: 'loud', VMRESTORE_QUEUE_PREFIX: 'a b' });
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const problems = (e as ConfigError).problems.join('\n');
      expect(problems).toMatch(/DATABASE_URL is required/);
      expect(problems).toMatch(/REDIS_URL must use redis: or rediss:/);
      expect(problems).toMatch(/VMRESTORE_PORT must be an integer/);
      expect(problems).toMatch(/LOG_LEVEL/);
      expect(problems).toMatch(/VMRESTORE_QUEUE_PREFIX/);
    }
  });
  it('never echoes a database password in its errors', () => {
    expect(() => loadConfig({ ...base, DATABASE_URL: 'mysql://u:hunter2@h/db' })).toThrow(/DATABASE_URL must use/);
    try {
      loadConfig({ ...base, DATABASE_URL: 'mysql://u:hunter2@h/db' });
    } catch (e) {
      expect(String(e)).not.toContain('hunter2');
    }
  });
  it('reads the metrics settings: worker listener, optional token, operator tenant', () => {
    expect(loadConfig(base).ops).toEqual({ metricsToken: null, workerMetricsHost: '127.0.0.1', workerMetricsPort: 9464, operatorTenant: 'default' });
    const c = loadConfig({ ...base, VMRESTORE_METRICS_TOKEN: 'scrape-token-0123456789', VMRESTORE_WORKER_METRICS_PORT: '0', VMRESTORE_WORKER_METRICS_HOST: '0.0.0.0', VMRESTORE_OPERATOR_TENANT: 'ops' });
    expect(c.ops).toEqual({ metricsToken: 'scrape-token-0123456789', workerMetricsHost: '0.0.0.0', workerMetricsPort: 0, operatorTenant: 'ops' });
    expect(() => loadConfig({ ...base, VMRESTORE_WORKER_METRICS_PORT: '70000' })).toThrow(/VMRESTORE_WORKER_METRICS_PORT must be an integer/);
  });
  it('refuses a short metrics token without echoing it', () => {
    try {
      loadConfig({ ...base, VMRESTORE_METRICS_TOKEN: 'hunter2' });
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect(String(e)).toMatch(/VMRESTORE_METRICS_TOKEN must be 16 to 256/);
      expect(String(e)).not.toContain('hunter2');
    }
  });
  it('refuses a stall interval longer than the lock', () => {
    expect(() => loadConfig({ ...base, VMRESTORE_LOCK_DURATION_MS: '2000', VMRESTORE_STALLED_INTERVAL_MS: '5000' })).toThrow(/STALLED_INTERVAL/);
  });
});
