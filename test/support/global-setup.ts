import { serviceEnv } from './env';

// Integration and e2e suites need the project's Postgres and Redis (started
// and migrated by scripts/test.sh). Fail once, clearly, if they are missing.
export default async function globalSetup(): Promise<void> {
  const env = serviceEnv();
  process.env.DATABASE_URL = env.DATABASE_URL;
  process.env.REDIS_URL = env.REDIS_URL;
  if (env.VMRESTORE_SECRET_KEYS) process.env.VMRESTORE_SECRET_KEYS = env.VMRESTORE_SECRET_KEYS;
}
