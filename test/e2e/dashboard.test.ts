import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { vsphere } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { ROOT } from '../support/env';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// The dashboard (/ui, issue #10) in a real headless Chromium (Debian's, driven
// by playwright-core) against the real api and worker processes and the vcsim
// harness: sign in, start an in-place restore from the form, watch it on the
// list and on its job page until the bar is full and every step done, cancel
// another one from its page. Screenshots go to test-results/dashboard/.

// The page's globals, for the functions run in the browser (page.evaluate,
// waitForFunction): the test project compiles without the DOM library.
declare const document: any;
declare const sessionStorage: any;

const SHOTS = join(ROOT, 'test-results', 'dashboard');
const VIEWPORT = { width: 1280, height: 1000 };
/** A label that would be markup if the page ever used innerHTML. */
const LABEL = '<img src=x id=injected>dashboard e2e';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
/** The bar's colours in style.css: --fill (running) and --track. */
const FILL = [0x2f, 0x80, 0xc8];
const TRACK = [0xe3, 0xe8, 0xef];

let renv: RestoreEnv;
let api: Proc & { url: string };
let worker: Proc | undefined;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** Console errors and CSP violations the page reported: none are expected. */
const pageErrors: string[] = [];
const vms: Record<string, string> = {};

const { http, ended } = apiCalls(() => api.url, () => renv.headers);
const apiKey = () => renv.headers.authorization.replace(/^Bearer /, '');

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // Small write batches: the write reports progress often, so the bar moves in steps.
  renv = await startRestoreEnv([], { VMRESTORE_WRITE_BATCH_EXTENTS: '2' });
  const c = await renv.client();
  try {
    for (const name of ['DC0_H0_VM0', 'DC0_H0_VM1']) vms[name] = (await vsphere.findVm(c, { inventoryPath: `DC0/vm/${name}` })).value;
  } finally {
    await c.close();
  }
  api = await startApi(renv.env);
  worker = await startWorkerProcess(renv.env);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], headless: true });
  context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
});
afterAll(async () => {
  await browser?.close();
  await stop(worker, 'SIGKILL');
  await stop(api);
  await renv?.close();
});

/** The width of the job page's bar fill as a fraction of the bar (what the user sees). */
const barFraction = () =>
  page.evaluate(() => {
    const bar = document.querySelector('#job-bar')!.getBoundingClientRect();
    const fill = document.querySelector('#job-bar .fill')!.getBoundingClientRect();
    return bar.width > 0 ? fill.width / bar.width : -1;
  });

it('serves the dashboard without a key, with a strict CSP and no inline script', async () => {
  const root = await fetch(`${api.url}/`, { redirect: 'manual' });
  expect([root.status, root.headers.get('location')]).toEqual([302, '/ui']);
  const res = await fetch(`${api.url}/ui`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  expect(res.headers.get('content-security-policy')).toMatch(/(^|; )default-src 'self'(;|$)/);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  const html = await res.text();
  expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i); // every script is a file of this origin
  expect(html).not.toMatch(/\son[a-z]+=/i); // no inline handlers
  expect(html).not.toMatch(/https?:\/\//); // nothing fetched from elsewhere
  const again = await fetch(`${api.url}/ui`, { headers: { 'if-none-match': res.headers.get('etag')! } });
  expect(again.status).toBe(304);
  const js = await fetch(`${api.url}/ui/app.js`);
  expect([js.status, js.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
  // Only the listed files: anything else under /ui is the API's 404.
  const other = await fetch(`${api.url}/ui/../package.json`);
  expect(other.status).toBe(404);
  expect((await fetch(`${api.url}/ui/index.ts`)).status).toBe(404);
  // The data behind it still needs a key.
  expect((await fetch(`${api.url}/v1/restores`)).status).toBe(401);
});

it('refuses a wrong key on the sign-in form and keeps nothing', async () => {
  await page.goto(`${api.url}/ui`);
  await page.locator('#view-signin').waitFor({ state: 'visible' });
  await page.fill('#signin-key', 'vmr_AAAAAAAAAAAA_notarealsecretatall');
  await page.click('#signin-submit');
  const msg = page.locator('#signin-error');
  await msg.waitFor({ state: 'visible' });
  expect(await msg.textContent()).toMatch(/not accepted \(UNAUTHENTICATED\)/);
  expect(await page.locator('#view-signin').isVisible()).toBe(true);
  expect(await page.locator('#nav').isVisible()).toBe(false);
  expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
});

it('starts an in-place restore from the form and shows it live until the bar is full and the timeline complete', async () => {
  const vm = vms.DC0_H0_VM0!;
  await renv.backupFor(vm, 'dash-vm', { incrementals: 2, seed: 61 });
  // Slow disk writes (the VDDK simulator waits on each one): the running
  // state lasts long enough to be seen, shot and visited on the list.
  renv.setVddk({ writeDelayMs: 100 });

  await page.goto(`${api.url}/ui`);
  await page.fill('#signin-key', apiKey());
  await page.click('#signin-submit');
  await page.locator('#view-list').waitFor({ state: 'visible' });
  expect(await page.evaluate(() => sessionStorage.length)).toBe(1);

  await page.click('#nav-new');
  await page.locator('#view-new').waitFor({ state: 'visible' });
  await page.fill('#new-vcenter', renv.vcenterName);
  await page.fill('#new-source-vm', 'dash-vm');
  await page.fill('#new-source-point', 'p2');
  await page.fill('#new-target-vm', vm);
  await page.fill('#new-transports', 'nbdssl');
  await page.fill('#new-label', LABEL);
  await page.click('#new-submit');
  await page.waitForURL(/#\/restores\/[0-9a-f-]{36}$/);
  const id = UUID.exec(page.url())![0];
  expect(await page.locator('#job-id').textContent()).toBe(id);
  const accepted = await http('GET', `/v1/restores/${id}`, '/v1/restores/{id}');
  expect(accepted.body).toMatchObject({ kind: 'in_place', vcenter: renv.vcenterName, source: { vm: 'dash-vm', point: 'p2' }, target: { vm }, label: LABEL });
  // API text is shown as text, never parsed as HTML.
  await page.locator('#job-label').filter({ hasText: LABEL }).waitFor();
  expect(await page.locator('#job-label img').count()).toBe(0);

  // Running, bar partly filled, rate and ETA known (from the stream's
  // progress events): shoot it, measuring the bar before and after the shot
  // (it only grows, so the shot shows a fraction in between).
  await page.waitForFunction(() => {
    const bar = document.querySelector('#job-bar')!.getBoundingClientRect();
    const fill = document.querySelector('#job-bar .fill')!.getBoundingClientRect();
    const running = document.querySelector('#job-state')!.getAttribute('data-state') === 'running';
    return running && fill.width > 0.05 * bar.width && fill.width < 0.7 * bar.width && /\/s$/.test(document.querySelector('#job-rate')!.textContent ?? '');
  }, undefined, { timeout: 60_000, polling: 50 });
  const before = await barFraction();
  const shot = await page.screenshot({ path: join(SHOTS, 'running.png'), fullPage: false });
  const after = await barFraction();
  const box = (await page.locator('#job-bar').boundingBox())!;
  expect(before).toBeGreaterThan(0);
  expect(after).toBeLessThan(1);
  expect(await page.locator('#job-cancel').isEnabled()).toBe(true);
  expect(await page.locator('#job-rate').textContent()).toMatch(/\/s$/);
  expect(await page.locator('#job-eta').textContent()).toMatch(/\d (ms|s|min)$/);

  // The file is a real PNG of the page: its size, not blank, and the bar in
  // it part blue (done), part grey (to do), in the measured proportion.
  const png = decodePng(readFileSync(join(SHOTS, 'running.png')));
  expect(Buffer.compare(shot, readFileSync(join(SHOTS, 'running.png')))).toBe(0);
  expect([png.width, png.height]).toEqual([VIEWPORT.width, VIEWPORT.height]);
  expect(png.distinctColours()).toBeGreaterThan(20);
  const y = Math.round(box.y + box.height / 2);
  let filled = 0;
  let track = 0;
  const x0 = Math.ceil(box.x + 8); // past the rounded ends
  const x1 = Math.floor(box.x + box.width - 8);
  for (let x = x0; x < x1; x++) {
    const p = png.pixel(x, y);
    if (near(p, FILL)) filled++;
    else if (near(p, TRACK)) track++;
  }
  expect(filled).toBeGreaterThan(0);
  expect(track).toBeGreaterThan(0);
  expect(filled + track).toBeGreaterThan((x1 - x0) * 0.95);
  const shown = (filled + 8) / box.width;
  expect(shown).toBeGreaterThanOrEqual(before - 0.02);
  expect(shown).toBeLessThanOrEqual(after + 0.02);

  // The list shows the job, running, with its bar; its link leads back.
  await page.click('#nav-restores');
  const row = page.locator(`#restores-body tr[data-job-id="${id}"]`);
  await row.waitFor({ state: 'visible' });
  expect(await row.getAttribute('data-state')).toBe('running');
  expect(await row.locator('td').nth(2).textContent()).toBe(vm);
  expect(await row.locator('td').nth(3).textContent()).toBe('dash-vm @ p2');
  expect(await row.locator('td').nth(0).textContent()).toContain(LABEL);
  expect(await page.locator('#injected').count()).toBe(0);
  const rowPct = Number((await row.locator('.bar').getAttribute('aria-valuenow')) ?? -1);
  expect(rowPct).toBeGreaterThanOrEqual(0);
  expect(rowPct).toBeLessThan(100);
  // Its rate and ETA, from the list's own successive samples.
  await page.waitForFunction((jobId) => {
    const cells = document.querySelector(`#restores-body tr[data-job-id="${jobId}"]`)?.cells;
    return !!cells && /\/s$/.test(cells[6].textContent) && /\d (ms|s|min)$/.test(cells[7].textContent);
  }, id, { timeout: 15_000, polling: 100 });
  // Filters: the VM filter keeps it, a state it is not in drops it.
  await page.fill('#filter-vm', vm);
  await page.selectOption('#filter-state', 'running');
  await row.waitFor({ state: 'visible' });
  await page.selectOption('#filter-state', 'failed');
  await page.locator('#list-empty').waitFor({ state: 'visible' });
  await page.selectOption('#filter-state', '');
  await row.locator('a').click();
  await page.waitForURL(new RegExp(`#/restores/${id}$`));

  // To the end, live: bar full, every step done.
  await page.locator('#job-state[data-state="succeeded"]').waitFor({ timeout: 90_000 });
  await page.waitForFunction(() => document.querySelector('#job-bar')!.getAttribute('aria-valuenow') === '100', undefined, { timeout: 10_000 });
  expect(await barFraction()).toBeGreaterThan(0.999);
  expect(await page.locator('#job-percent').textContent()).toBe('100 %');
  const job = await ended(id);
  expect(job.state).toBe('succeeded');
  await page.waitForFunction((n) => document.querySelectorAll('#timeline-body tr').length === n && !document.querySelector('#timeline-body tr[data-state="running"], #timeline-body tr[data-state="pending"]'), job.steps.length, { timeout: 10_000 });
  const steps = await page.$$eval('#timeline-body tr', (trs) =>
    trs.map((tr) => ({ name: tr.getAttribute('data-step'), state: tr.getAttribute('data-state'), cells: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '') })),
  );
  expect(steps.map((s) => `${s.name}:${s.state}`)).toEqual(job.steps.map((s: any) => `${s.name}:${s.state}`));
  expect(steps.every((s) => s.state === 'succeeded' || s.state === 'skipped')).toBe(true);
  const cell = (step: string, col: number) => steps.find((s) => s.name === step)!.cells[col]!;
  expect(cell('power_off', 8)).toMatch(/task-\d+ PowerOffVM_Task/); // the vCenter task of the step
  expect(cell('temp_snapshot', 8)).toMatch(/task-\d+ CreateSnapshot_Task/);
  expect(cell('write_disks', 9)).toMatch(/\d( |\.\d+ )(B|KiB|MiB|GiB)/); // the bytes it wrote
  for (const s of steps) expect(s.cells[4]).not.toBe('–'); // each started...
  for (const s of steps) expect(s.cells[5]).not.toBe('–'); // ...and ended
  expect(await page.locator('#job-cancel').isDisabled()).toBe(true);
  expect(await page.locator('#job-error').isVisible()).toBe(false);
  await page.screenshot({ path: join(SHOTS, 'succeeded.png'), fullPage: true });
  expect(decodePng(readFileSync(join(SHOTS, 'succeeded.png'))).width).toBe(VIEWPORT.width);
  renv.setVddk({ writeDelayMs: 0 });
}, 180_000);

it('cancels a running restore from its page, which then shows it cancelled with what to do', async () => {
  const vm = vms.DC0_H0_VM1!;
  await renv.backupFor(vm, 'dash-cancel', { incrementals: 1, seed: 62 });
  // The copy packs the 32 MiB disk's blocks into 4 MiB writes (8 of them): each slow enough that the cancel lands mid-disk.
  renv.setVddk({ writeDelayMs: 1500 });
  try {
    const r = await http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source: { vm: 'dash-cancel', point: 'p1' }, target: { vm }, options: { transports: ['nbdssl'] } });
    expect(r.status).toBe(202);
    await page.goto(`${api.url}/ui#/restores/${r.body.id}`);
    // In the middle of the disk write (verify_backup reports progress too, up to 100, before it).
    await page.waitForFunction(
      () => {
        const v = Number(document.querySelector('#job-bar')!.getAttribute('aria-valuenow'));
        return document.querySelector('tr[data-step="write_disks"]')?.getAttribute('data-state') === 'running' && v > 0 && v < 100;
      },
      undefined,
      { timeout: 60_000, polling: 50 },
    );
    expect(await page.locator('#job-state').getAttribute('data-state')).toBe('running');
    expect(await page.locator('#job-cancel').isEnabled()).toBe(true);
    page.once('dialog', (d) => void d.accept());
    await page.click('#job-cancel');
    await page.locator('#job-state[data-state="cancelled"]').waitFor({ timeout: 60_000 });
    expect(await page.locator('#job-cancel').isDisabled()).toBe(true);
    expect(await page.locator('#job-error-code').textContent()).toBe('CANCELLED');
    expect(await page.locator('#job-error-hint').textContent()).toMatch(/cancelled/i);
    expect(await page.locator('#job-bar').getAttribute('aria-valuenow')).not.toBe('100');
    const job = await ended(r.body.id);
    expect([job.state, job.cancelRequested]).toEqual(['cancelled', true]);
    // The timeline: the write interrupted, the cleanup steps run.
    await page.waitForFunction(() => document.querySelector('#timeline-body tr[data-step="write_disks"]')?.getAttribute('data-state') !== 'running', undefined, { timeout: 10_000 });
    const states = await page.$$eval('#timeline-body tr', (trs) => Object.fromEntries(trs.map((tr) => [tr.getAttribute('data-step'), tr.getAttribute('data-state')])));
    expect(states).toEqual(Object.fromEntries(job.steps.map((s: any) => [s.name, s.state])));
    expect(states.cleanup_temp_snapshot).toBe('succeeded');
    await page.screenshot({ path: join(SHOTS, 'cancelled.png'), fullPage: true });
  } finally {
    renv.setVddk({ writeDelayMs: 0 });
  }
});

it('signs out: the key is forgotten and the data views are gone', async () => {
  await page.click('#sign-out');
  await page.locator('#view-signin').waitFor({ state: 'visible' });
  expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  expect(await page.locator('#view-job').isVisible()).toBe(false);
  // No console error and no CSP violation in the whole session, apart from
  // the refused sign-in's 401, which the browser logs as a failed resource.
  expect(pageErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
});

// ------------------------------------------------------------ PNG reading

const near = (p: number[], c: number[]) => p.every((v, i) => Math.abs(v - c[i]!) <= 24);

/** A minimal PNG decoder (8-bit RGB/RGBA, not interlaced: what Chromium writes), to look at the shot's pixels. */
function decodePng(buf: Buffer) {
  expect(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  let off = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let colourType = 0;
  let interlace = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') [width, height, depth, colourType, interlace] = [data.readUInt32BE(0), data.readUInt32BE(4), data[8]!, data[9]!, data[12]!];
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  expect([depth, interlace]).toEqual([8, 0]);
  expect([2, 6]).toContain(colourType);
  const bpp = colourType === 6 ? 4 : 3;
  const stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe(height * (stride + 1));
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = px.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[i - bpp]! : 0;
      const b = prev ? prev[i]! : 0;
      const c = prev && i >= bpp ? prev[i - bpp]! : 0;
      let v = line[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`PNG filter ${filter}`);
      out[i] = v & 0xff;
    }
  }
  return {
    width,
    height,
    pixel: (x: number, y: number) => [...px.subarray(y * stride + x * bpp, y * stride + x * bpp + 3)],
    distinctColours() {
      const seen = new Set<number>();
      for (let i = 0; i < px.length; i += bpp * 7) seen.add((px[i]! << 16) | (px[i + 1]! << 8) | px[i + 2]!);
      return seen.size;
    },
  };
}
