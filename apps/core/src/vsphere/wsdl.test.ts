import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as soap from 'soap';
import { vim25Schema, wsdlDir } from './schema';

const GOVMOMI_TYPES = '/usr/share/gocode/src/github.com/vmware/govmomi/vim25/types';

describe('the shipped vim25 WSDL and XSD', () => {
  test('the soap package loads the WSDL; its operations are the schema\'s', async () => {
    const client = await soap.createClientAsync(join(wsdlDir(), 'vim25.wsdl'));
    const port = (client.describe() as Record<string, Record<string, Record<string, { input: Record<string, unknown> }>>>).VimService!.VimPort!;
    const ops = Object.keys(port);
    expect(ops).toEqual(expect.arrayContaining(['Login', 'RetrievePropertiesEx', 'CreateSnapshot_Task', 'ReconfigVM_Task', 'CreateVM_Task', 'QueryConfigTarget', 'CancelTask']));
    for (const op of ops) expect(vim25Schema().elements.has(op)).toBe(true);
    expect(Object.keys(port.CreateSnapshot_Task!.input).filter((k) => !k.startsWith('target'))).toEqual(['_this', 'name', 'description', 'memory', 'quiesce']);
  }, 30_000);

  test('element order follows govmomi (schema order): spot checks', () => {
    const s = vim25Schema();
    expect(s.fields('VirtualDisk').map((f) => f.name).slice(0, 8)).toEqual(['key', 'deviceInfo', 'backing', 'connectable', 'slotInfo', 'controllerKey', 'unitNumber', 'capacityInKB']);
    expect(s.fields('VirtualMachineConfigSpec').map((f) => f.name).slice(0, 4)).toEqual(['changeVersion', 'name', 'version', 'createDate']);
  });

  (existsSync(GOVMOMI_TYPES) ? test : test.skip)('regenerating from govmomi gives the shipped files byte for byte', () => {
    const out = mkdtempSync(join(tmpdir(), 'vim25-'));
    try {
      execFileSync(process.execPath, [join(wsdlDir(), 'generate.mjs'), GOVMOMI_TYPES], { env: { ...process.env, OUT_DIR: out }, stdio: 'pipe' });
      for (const f of ['vim25.xsd', 'vim25.wsdl']) expect(readFileSync(join(out, f), 'utf8')).toBe(readFileSync(join(wsdlDir(), f), 'utf8'));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
