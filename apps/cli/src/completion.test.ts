import { completionScript } from './completion';
import { COMMANDS, OPTIONS } from './spec';

describe('completion scripts', () => {
  it.each(['bash', 'zsh', 'fish'] as const)('%s: every command and each command’s options', (shell) => {
    const s = completionScript(shell);
    for (const c of COMMANDS) {
      expect(s).toContain(c.name);
      for (const o of c.options) expect(s).toContain(shell === 'fish' ? `-l ${o}` : `--${o}`);
    }
    // Fixed values are offered.
    for (const v of OPTIONS.state.values) expect(s).toContain(v);
  });

  it('help text cannot break the quoting', () => {
    for (const shell of ['bash', 'zsh', 'fish'] as const) {
      const s = completionScript(shell);
      // Every single-quoted string closes on its line.
      for (const line of s.split('\n')) expect((line.match(/'/g) ?? []).length % 2).toBe(0);
    }
  });
});
