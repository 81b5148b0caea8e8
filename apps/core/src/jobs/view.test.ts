import { percent } from './view';

describe('progress percent', () => {
  it.each([
    [0n, 0n, 0],
    [5n, 0n, 0],
    [1n, 3n, 33.33],
    [3n, 3n, 100],
    [4n, 3n, 100],
    [2n ** 40n, 2n ** 41n, 50],
  ])('%s of %s is %s', (done, total, want) => {
    expect(percent(done, total)).toBe(want);
  });
});
