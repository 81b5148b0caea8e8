import { Capacity, createRedis, loadKeyring, repositoryFromConfig, vsphere, type Config } from '@vmrestore/core';
import type { PlanRegistry } from '../plan';
import { verifyPlan } from './verify';
import { inPlacePlan, type RestoreDeps } from './in-place';
import { newVmPlan } from './new-vm';
import { exportPlan } from './export';

export type { RestoreDeps } from './in-place';

/** What the production plans need: made once per worker process, closed with it. */
export function restoreDeps(config: Config): RestoreDeps & { close(): Promise<void> } {
  const pool = new vsphere.VSpherePool({ maxSessions: config.restore.vsphereMaxSessions });
  let keyring = null;
  try {
    keyring = loadKeyring();
  } catch {
    keyring = null; // jobs that need vCenter passwords fail with SECRET_KEYRING_MISSING
  }
  // The limits every worker shares: leases in Redis under the queue's prefix.
  const redis = createRedis(config.redisUrl, 'worker');
  const capacity = new Capacity(redis, { prefix: config.queue.prefix, leaseMs: config.limits.leaseMs });
  return {
    config,
    keyring,
    repo: repositoryFromConfig(config),
    pool,
    capacity,
    close: async () => {
      await pool.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The production plans: in place (R1), as a new VM (R2-R5), chain verification. */
export function productionPlans(config: Config, deps: RestoreDeps = restoreDeps(config)): PlanRegistry {
  return {
    in_place: inPlacePlan(deps),
    new_vm: newVmPlan(deps),
    verify: verifyPlan(repositoryFromConfig(config)),
    export: exportPlan(deps),
  };
}
