import { loadKeyring, permanent, JOB_ERROR_CODES, repositoryFromConfig, vsphere, type Config } from '@vmrestore/core';
import type { PlanRegistry, StepDef } from '../plan';
import { verifyPlan } from './verify';
import { inPlacePlan, type RestoreDeps } from './in-place';

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
  return { config, keyring, repo: repositoryFromConfig(config), pool, close: () => pool.close() };
}

// The production plans. The restore steps themselves (vSphere client, disk
// writer, repository, ConfigSpec builder) are not built yet; until they are,
// a restore fails at its first step and says so, rather than pretend.
const notBuilt = (what: string, issue: string): StepDef => ({
  name: 'preflight',
  run: async () => {
    throw permanent(JOB_ERROR_CODES.NOT_IMPLEMENTED, `${what} is not built yet (${issue}); this job did not touch vCenter`);
  },
});

export function productionPlans(config: Config, deps: RestoreDeps = restoreDeps(config)): PlanRegistry {
  return {
    in_place: inPlacePlan(deps),
    new_vm: () => ({ steps: [notBuilt('restore as a new VM (MISSION R2-R5)', 'issue #7')], cleanup: [] }),
    verify: verifyPlan(repositoryFromConfig(config)),
  };
}
