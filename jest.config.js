// Four projects, one per kind of test, so each can be run alone:
//   unit         pure logic beside its source (apps/*/src/**/*.test.ts), no servers
//   native       the C++ addon through its TypeScript facade (native-vddk/test)
//   integration  against real Postgres, Redis and vcsim (test/integration)
//   e2e          through the HTTP API into the worker and vcsim (test/e2e)
const tsJest = ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }];
const moduleNameMapper = {
  '^@vmrestore/core$': '<rootDir>/apps/core/src/index.ts',
  '^@vmrestore/core/(.*)$': '<rootDir>/apps/core/src/$1',
  '^@vmrestore/api$': '<rootDir>/apps/api/src/index.ts',
  '^@vmrestore/worker$': '<rootDir>/apps/worker/src/index.ts',
  '^@vmrestore/native-vddk$': '<rootDir>/native-vddk/src/index.ts',
};
// A few dependencies ship ESM only (fine for Node 20's require(esm), which
// jest's module runtime does not use): jest compiles them to CommonJS.
const esmOnly = ['cookie'];
const common = {
  rootDir: __dirname,
  transform: {
    '^.+\\.ts$': tsJest,
    '^.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022', isolatedModules: true } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  moduleNameMapper,
  testEnvironment: 'node',
};

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/apps/*/src/**/*.test.ts'] },
    { ...common, displayName: 'native', testMatch: ['<rootDir>/native-vddk/test/**/*.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/support/slow-timeout.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/slow-timeout.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/slow-timeout.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
    },
  ],
};
