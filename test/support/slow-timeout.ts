// Integration, e2e and native suites start servers and processes: give
// their tests time (jest's per-project testTimeout is not honoured).
jest.setTimeout(120_000);
