import { permanent, JOB_ERROR_CODES, repositoryFromConfig, type Config } from '@vmrestore/core';
import type { PlanRegistry, StepDef } from '../plan';
import { verifyPlan } from './verify';

// The production plans. The restore steps themselves (vSphere client, disk
// writer, repository, ConfigSpec builder) are not built yet; until they are,
// a restore fails at its first step and says so, rather than pretend.
const notBuilt = (what: string, issue: string): StepDef => ({
  name: 'preflight',
  run: async () => {
    throw permanent(JOB_ERROR_CODES.NOT_IMPLEMENTED, `${what} is not built yet (${issue}); this job did not touch vCenter`);
  },
});

export function productionPlans(config: Config): PlanRegistry {
  return {
    in_place: () => ({ steps: [notBuilt('in-place restore (MISSION R1)', 'issue #6')], cleanup: [] }),
    new_vm: () => ({ steps: [notBuilt('restore as a new VM (MISSION R2-R5)', 'issue #7')], cleanup: [] }),
    verify: verifyPlan(repositoryFromConfig(config)),
  };
}
