// The CLI's commands and options, as data: the argument parser, the help
// text and the shell completion scripts are all made from this one table,
// so they cannot drift apart.

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  /** Placeholder in help, e.g. NAME. */
  arg?: string;
  /** Fixed values, offered by completion. */
  values?: readonly string[];
  /** Completion offers file names. */
  file?: boolean;
  help: string;
}

export const JOB_STATES = ['queued', 'running', 'waiting_for_capacity', 'succeeded', 'failed', 'cancelled', 'cleanup_pending'] as const;

export const OPTIONS = {
  api: { type: 'string', arg: 'URL', help: 'API base URL (default $VMRESTORE_API_URL or http://127.0.0.1:8080)' },
  'api-key': { type: 'string', arg: 'KEY', help: 'API key (default $VMRESTORE_API_KEY); prefer the variable, flags show in ps' },
  json: { type: 'boolean', help: 'machine-readable output (watch: one JSON object per line)' },
  help: { type: 'boolean', help: 'show help' },
  // submit
  kind: { type: 'string', arg: 'KIND', values: ['in_place', 'new_vm'], help: 'in_place or new_vm' },
  vcenter: { type: 'string', arg: 'NAME', help: 'vCenter connection name' },
  'source-vm': { type: 'string', arg: 'VM', help: 'VM id in the backup repository' },
  point: { type: 'string', arg: 'POINT', help: 'restore point id' },
  'target-vm': { type: 'string', arg: 'vm-N', help: 'in_place: the VM to restore (managed object id)' },
  'target-name': { type: 'string', arg: 'NAME', help: 'new_vm: name of the new VM' },
  folder: { type: 'string', arg: 'PATH', help: 'new_vm: inventory folder' },
  'resource-pool': { type: 'string', arg: 'PATH', help: 'new_vm: resource pool' },
  host: { type: 'string', arg: 'PATH', help: 'new_vm: host' },
  datastore: { type: 'string', arg: 'NAME', help: 'new_vm: datastore of the new disks' },
  transports: { type: 'string', arg: 'LIST', help: 'transport modes in order, e.g. nbdssl,nbd' },
  'power-on': { type: 'boolean', help: 'power the VM on at the end' },
  'no-power-on': { type: 'boolean', help: 'leave the VM powered off at the end' },
  label: { type: 'string', arg: 'TEXT', help: 'free text shown in lists' },
  'idempotency-key': { type: 'string', arg: 'KEY', help: 'resubmitting with the same key returns the same job' },
  'dry-run': { type: 'boolean', help: 'check and plan only, make no job' },
  file: { type: 'string', arg: 'FILE', file: true, help: 'the request body as JSON (- for stdin)' },
  watch: { type: 'boolean', help: 'follow the job until it ends (exit code from its outcome)' },
  // watch
  'reconnect-timeout': { type: 'string', arg: 'DURATION', help: 'how long watch keeps retrying an unreachable API (default 5m; e.g. 30s, 10m)' },
  interval: { type: 'string', arg: 'MS', help: 'polling interval when the API offers no event stream (default 1000)' },
  // list
  state: { type: 'string', arg: 'STATE', values: JOB_STATES, help: 'only jobs in this state' },
  vm: { type: 'string', arg: 'VM', help: 'list: only jobs of this VM; import/fixtures: the VM id' },
  limit: { type: 'string', arg: 'N', help: 'page size (1-200)' },
  cursor: { type: 'string', arg: 'CURSOR', help: 'the nextCursor of a previous page' },
  all: { type: 'boolean', help: 'follow every page' },
  // import, fixtures
  root: { type: 'string', arg: 'DIR', file: true, help: 'backup repository root' },
  parent: { type: 'string', arg: 'POINT', help: 'parent restore point of an incremental' },
  config: { type: 'string', arg: 'FILE', file: true, help: 'saved VirtualMachineConfigInfo (JSON)' },
  disk: { type: 'string', multiple: true, arg: 'KEY=IMAGE', file: true, help: 'disk image per device key' },
  metadata: { type: 'string', multiple: true, arg: 'KEY=FILE', file: true, help: 'disk metadata (JSON) per device key' },
  areas: { type: 'string', multiple: true, arg: 'KEY=FILE', file: true, help: 'changed areas (JSON) per device key' },
  'change-id': { type: 'string', multiple: true, arg: 'KEY=ID', help: 'CBT change id per device key' },
  'created-at': { type: 'string', arg: 'ISO-DATE', help: 'creation time of the point' },
  seed: { type: 'string', arg: 'N', help: 'random seed' },
  incrementals: { type: 'string', arg: 'N', help: 'number of incrementals' },
  expected: { type: 'string', arg: 'DIR', file: true, help: 'write the expected disk images here' },
  'no-checksums': { type: 'boolean', help: 'verify: skip the SHA-256 checks' },
  // admin, doctor
  tenant: { type: 'string', arg: 'NAME', help: 'tenant name' },
  name: { type: 'string', arg: 'NAME', help: 'API key name' },
  scopes: { type: 'string', arg: 'LIST', help: 'comma-separated scopes' },
  only: { type: 'string', arg: 'LIST', help: 'doctor: run only these checks (config,postgres,redis,api,vcenters,vddk,datastores,backups)' },
  timeout: { type: 'string', arg: 'DURATION', help: 'doctor: time limit of each check (default 10s); orphans sweep --watch: how long to wait (default 5m)' },
  strict: { type: 'boolean', help: 'doctor: warnings fail too (for healthchecks)' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

export interface CommandSpec {
  name: string;
  args?: string;
  summary: string;
  options: readonly OptionName[];
  /** Sub-commands offered by completion (import full|incremental, ...). */
  sub?: readonly string[];
}

const WATCH_OPTS = ['reconnect-timeout', 'interval'] as const;

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'submit',
    summary: 'start a restore, from flags or --file',
    options: ['kind', 'vcenter', 'source-vm', 'point', 'target-vm', 'target-name', 'folder', 'resource-pool', 'host', 'datastore', 'transports', 'power-on', 'no-power-on', 'label', 'idempotency-key', 'dry-run', 'file', 'watch', ...WATCH_OPTS],
  },
  { name: 'get', args: 'ID', summary: 'show a job with its steps', options: [] },
  { name: 'list', summary: 'list jobs, newest first', options: ['state', 'vm', 'limit', 'cursor', 'all'] },
  { name: 'watch', args: 'ID', summary: 'follow a job until it ends: progress bar, rate and ETA; survives API restarts', options: [...WATCH_OPTS] },
  { name: 'cancel', args: 'ID', summary: 'cancel a job (cleanup still runs)', options: ['watch', ...WATCH_OPTS] },
  { name: 'backups', summary: 'VMs in the backup repository', options: [] },
  { name: 'points', args: 'VM', summary: "a VM's restore points", options: [] },
  { name: 'point', args: 'VM POINT', summary: 'a restore point: disks, chain, saved config', options: [] },
  { name: 'verify', args: 'VM POINT', summary: "verify a point's whole chain (a job)", options: ['no-checksums', 'watch', ...WATCH_OPTS] },
  {
    name: 'import',
    args: 'full|incremental',
    summary: 'make a restore point from disk images (local files, no API)',
    options: ['root', 'vm', 'point', 'parent', 'config', 'disk', 'metadata', 'areas', 'change-id', 'created-at'],
    sub: ['full', 'incremental'],
  },
  { name: 'fixtures', summary: 'generate a realistic test chain (local files)', options: ['root', 'vm', 'incrementals', 'seed', 'expected'] },
  { name: 'orphans', args: '[sweep]', summary: 'what failed jobs left in vCenter (latest sweep); sweep: ask for one now', options: ['watch', 'interval', 'timeout'], sub: ['sweep'] },
  { name: 'doctor', summary: 'check this host: Postgres, Redis, API, vCenters, VDDK, datastore mounts', options: ['tenant', 'only', 'timeout', 'strict'] },
  { name: 'admin', args: 'tenant|key ...', summary: 'tenants and API keys, on the server host (DATABASE_URL)', options: ['tenant', 'name', 'scopes'], sub: ['tenant', 'key'] },
  { name: 'completion', args: 'bash|zsh|fish', summary: 'print a shell completion script', options: [], sub: ['bash', 'zsh', 'fish'] },
];

export const GLOBAL_OPTIONS: readonly OptionName[] = ['api', 'api-key', 'json', 'help'];

/** Exit codes, documented in --help and docs/cli.md. */
export const EXIT = { OK: 0, JOB_FAILED: 1, USAGE: 2, API_ERROR: 3, UNREACHABLE: 4, CHECKS_FAILED: 5 } as const;

export const EXIT_HELP: ReadonlyArray<[number, string]> = [
  [EXIT.OK, 'success (a watched job succeeded; doctor: no check failed)'],
  [EXIT.JOB_FAILED, 'the watched job failed, was cancelled, or ended with cleanup pending'],
  [EXIT.USAGE, 'usage error: unknown command or option, missing argument, unreadable --file'],
  [EXIT.API_ERROR, 'the API refused the request (4xx/5xx problem), or the backup is invalid'],
  [EXIT.UNREACHABLE, 'the API is unreachable (watch: for longer than --reconnect-timeout)'],
  [EXIT.CHECKS_FAILED, 'doctor: at least one check failed (with --strict: or warned)'],
];

/** The option table for node:util parseArgs. */
export function parseArgsOptions(): Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> {
  const out: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(OPTIONS) as Array<[string, OptionSpec]>) out[name] = o.multiple ? { type: o.type, multiple: true } : { type: o.type };
  return out;
}

function optionUsage(name: OptionName): string {
  const o: OptionSpec = OPTIONS[name];
  return `--${name}${o.arg ? ` ${o.arg}` : ''}`;
}

export function usage(): string {
  const lines = ['usage: vmrestore <command> [options]', '', 'commands:'];
  for (const c of COMMANDS) {
    lines.push(`  ${`${c.name}${c.args ? ` ${c.args}` : ''}`.padEnd(26)} ${c.summary}`);
    const opts = c.options.map(optionUsage);
    // Wrap the options under the command, indented.
    let line = '';
    for (const o of opts) {
      if (line && line.length + o.length + 1 > 70) {
        lines.push(`${' '.repeat(29)}${line}`);
        line = '';
      }
      line = line ? `${line} ${o}` : o;
    }
    if (line) lines.push(`${' '.repeat(29)}${line}`);
  }
  lines.push('', 'admin:  admin tenant create NAME | admin tenant list');
  lines.push('        admin key create --tenant NAME --name KEYNAME --scopes restores:read,restores:write,backups:read,admin');
  lines.push('        admin key list --tenant NAME | admin key revoke KEY_ID');
  lines.push('', 'global options:');
  for (const g of GLOBAL_OPTIONS) lines.push(`  ${optionUsage(g).padEnd(26)} ${OPTIONS[g].help}`);
  lines.push('', 'exit codes:');
  for (const [code, text] of EXIT_HELP) lines.push(`  ${code}  ${text}`);
  lines.push('', 'docs: docs/cli.md');
  return lines.join('\n');
}
