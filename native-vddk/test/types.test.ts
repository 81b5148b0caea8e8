// Type tests of the public API: types-fixture.ts must compile cleanly under
// the repository's strict settings (its @ts-expect-error lines included).
import path from 'node:path';
import ts from 'typescript';

it('the public types accept documented usage and reject misuse', () => {
  const root = path.join(__dirname, '..', '..');
  const cfg = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.test.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!cfg) throw new Error('cannot read tsconfig.test.json');
  const program = ts.createProgram([path.join(__dirname, 'types-fixture.ts')], { ...cfg.options, noEmit: true });
  const messages = ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file ? path.relative(root, d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  expect(messages).toEqual([]);
}, 60_000);
