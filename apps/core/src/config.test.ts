import { ConfigError, loadConfig, localDatastoreDir } from './config';

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
  it('reads the timeouts of steps, stalls, Postgres waits and repository reads (docs/resilience.md)', () => {
    const d = loadConfig(base);
    expect([d.worker.stepTimeoutMs, d.worker.stallTimeoutMs, d.worker.stepAbortGraceMs, d.worker.dbWaitMs]).toEqual([1_800_000, 600_000, 60_000, 600_000]);
    expect([d.restore.vddkStallTimeoutMs, d.restore.backupReadTimeoutMs]).toEqual([300_000, 60_000]);
    const c = loadConfig({ ...base, VMRESTORE_STEP_TIMEOUT_MS: '5000', VMRESTORE_STALL_TIMEOUT_MS: '2000', VMRESTORE_VDDK_STALL_TIMEOUT_MS: '1500', VMRESTORE_BACKUP_READ_TIMEOUT_MS: '700' });
    expect([c.worker.stepTimeoutMs, c.worker.stallTimeoutMs, c.restore.vddkStallTimeoutMs, c.restore.backupReadTimeoutMs]).toEqual([5000, 2000, 1500, 700]);
    expect(() => loadConfig({ ...base, VMRESTORE_STEP_TIMEOUT_MS: '0' })).toThrow(/VMRESTORE_STEP_TIMEOUT_MS must be an integer/);
  });
  it('reads the orphan sweep settings (docs/orphans.md): every 15 minutes by default, 0 turns it off', () => {
    const d = loadConfig(base);
    expect([d.worker.orphanSweepIntervalMs, d.worker.orphanRequestPollMs, d.worker.orphanSweepTenantId]).toEqual([900_000, 10_000, null]);
    const tenant = '4D3C2B1A-0000-4000-8000-000000000001';
    const c = loadConfig({ ...base, VMRESTORE_ORPHAN_SWEEP_INTERVAL_MS: '0', VMRESTORE_ORPHAN_REQUEST_POLL_MS: '250', VMRESTORE_ORPHAN_SWEEP_TENANT: tenant });
    expect([c.worker.orphanSweepIntervalMs, c.worker.orphanRequestPollMs, c.worker.orphanSweepTenantId]).toEqual([0, 250, tenant.toLowerCase()]);
    expect(() => loadConfig({ ...base, VMRESTORE_ORPHAN_SWEEP_INTERVAL_MS: '-1' })).toThrow(/VMRESTORE_ORPHAN_SWEEP_INTERVAL_MS must be an integer/);
    expect(() => loadConfig({ ...base, VMRESTORE_ORPHAN_SWEEP_TENANT: 'acme' })).toThrow(/VMRESTORE_ORPHAN_SWEEP_TENANT must be a tenant id/);
  });
  it('reads VMRESTORE_FILE_DIRECT_IO: auto by default, on or off, nothing else', () => {
    expect(loadConfig(base).restore.fileDirectIo).toBe('auto');
    expect(loadConfig({ ...base, VMRESTORE_FILE_DIRECT_IO: 'off' }).restore.fileDirectIo).toBe('off');
    expect(() => loadConfig({ ...base, VMRESTORE_FILE_DIRECT_IO: 'yes' })).toThrow(/VMRESTORE_FILE_DIRECT_IO must be one of auto, on, off \(got "yes"\)/);
  });
  it('refuses a stall interval longer than the lock', () => {
    expect(() => loadConfig({ ...base, VMRESTORE_LOCK_DURATION_MS: '2000', VMRESTORE_STALLED_INTERVAL_MS: '5000' })).toThrow(/STALLED_INTERVAL/);
  });
});

describe('datastore directories of the file target', () => {
  it('maps a datastore per vCenter first (names repeat across vCenters), then by name', () => {
    const base = { DATABASE_URL: 'postgresql://u:p@localhost:5432/db', REDIS_URL: 'redis://localhost:6379' };
    const c = loadConfig({ ...base, VMRESTORE_DATASTORE_PATHS: 'vc1.example.com/LocalDS_0=/mnt/a;vc2.example.com:8443/LocalDS_0=/mnt/b;LocalDS_0=/mnt/plain;ds9=/mnt/9' });
    expect(localDatastoreDir(c, 'https://VC1.example.com/sdk', 'LocalDS_0')).toBe('/mnt/a');
    expect(localDatastoreDir(c, 'https://vc2.example.com:8443/sdk', 'LocalDS_0')).toBe('/mnt/b');
    expect(localDatastoreDir(c, 'https://vc3.example.com/sdk', 'LocalDS_0')).toBe('/mnt/plain');
    expect(localDatastoreDir(c, null, 'ds9')).toBe('/mnt/9');
    expect(localDatastoreDir(c, 'https://vc1.example.com/sdk', 'nope')).toBeUndefined();
  });
});
