// vmrestore dashboard: vanilla JS over the same /v1 API as every other
// client, with the API key the user signed in with (sessionStorage: this tab
// only, gone on sign-out or when the tab closes). Every value that comes
// from the API is put on the page with textContent, never as HTML.
// Views are hash routes: #/restores[?state=&vm=], #/restores/<id>, #/new.

import { hintFor } from './hints.js';

const KEY_STORAGE = 'vmrestore.apiKey';
const ENDED = new Set(['succeeded', 'failed', 'cancelled', 'cleanup_pending']);
const VIEWS = ['view-signin', 'view-list', 'view-job', 'view-new'];
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- the API

const getKey = () => sessionStorage.getItem(KEY_STORAGE);

class ApiError extends Error {
  constructor(status, problem) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.status = status;
    this.code = typeof p.code === 'string' ? p.code : status ? `HTTP_${status}` : 'NETWORK';
    this.fieldErrors = Array.isArray(p.errors) ? p.errors : [];
    this.requestId = p.requestId || null;
  }
}

function authHeaders(key) {
  return { authorization: `Bearer ${key}` };
}

async function api(method, path, body, key = getKey()) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: { accept: 'application/json', ...authHeaders(key), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (err) {
    // A key with characters a header cannot carry fails here too.
    throw new ApiError(0, { code: 'NETWORK', detail: `the request could not be sent (${err && err.message ? err.message : 'network error'})` });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** A key refused mid-session (revoked, expired): back to the sign-in form, saying why. */
function authFailed(err) {
  if (!(err instanceof ApiError) || err.status !== 401) return false;
  signOut('Your API key is no longer accepted (UNAUTHENTICATED): sign in again.');
  return true;
}

/**
 * The job's live event stream. EventSource cannot send an Authorization
 * header, so this reads the text/event-stream with fetch(), and reconnects
 * after a drop with Last-Event-ID (the server resumes right after it). It
 * returns when the server ends the stream for an ended job, or on abort.
 */
async function streamEvents(jobId, { onEvent, onStatus, isOver, signal }) {
  let lastId = 0;
  let retryMs = 2000;
  while (!signal.aborted) {
    let endedNormally = false;
    try {
      const headers = { accept: 'text/event-stream', ...authHeaders(getKey()) };
      if (lastId > 0) headers['last-event-id'] = String(lastId);
      const res = await fetch(`/v1/restores/${encodeURIComponent(jobId)}/events`, { headers, signal, cache: 'no-store', credentials: 'omit' });
      if (!res.ok) {
        const problem = await res.json().catch(() => null);
        throw new ApiError(res.status, problem);
      }
      onStatus('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
          const msg = parseSseBlock(block);
          if (msg.retry) retryMs = msg.retry;
          if (msg.id) lastId = Number(msg.id);
          if (msg.data) {
            try {
              onEvent(JSON.parse(msg.data));
            } catch (err) {
              console.warn('bad event', err);
            }
          }
        }
      }
      endedNormally = true;
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404)) {
        onStatus('stopped', err);
        return;
      }
    }
    if (signal.aborted) return;
    if (endedNormally && (await isOver())) {
      onStatus('ended');
      return;
    }
    onStatus('reconnecting');
    await sleep(retryMs, signal);
  }
}

function parseSseBlock(block) {
  const out = { id: null, event: null, data: '', retry: null };
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'id' && /^\d+$/.test(value)) out.id = value;
    else if (field === 'event') out.event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) out.retry = Math.max(500, Number(value));
  }
  out.data = data.join('\n');
  return out;
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

// ---------------------------------------------------------------- formatting

function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
const fmtRate = (r) => (typeof r === 'number' && Number.isFinite(r) && r > 0 ? `${fmtBytes(r)}/s` : '–');
function fmtDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
const pct = (done, total) => (total > 0 ? Math.min(100, (done / total) * 100) : 0);
const fmtPct = (p) => `${Math.floor(p * 10) / 10} %`;

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function setState(node, state) {
  node.textContent = state ? state.replace(/_/g, ' ') : '';
  node.className = `state state-${state}`;
  node.dataset.state = state || '';
}

/** A progress bar: the fill's width is set through the CSSOM (allowed by the CSP). */
function setBar(bar, p, state) {
  bar.querySelector('.fill').style.width = `${p}%`;
  bar.setAttribute('aria-valuenow', String(Math.floor(p)));
  bar.classList.toggle('done', p >= 100);
  bar.classList.toggle('bad', state === 'failed' || state === 'cancelled' || state === 'cleanup_pending');
}
const newBar = () => el('div', { class: 'bar', role: 'progressbar', 'data-bar': '1' }, el('div', { class: 'fill' }));

function jobPercent(job) {
  const { bytesDone, bytesTotal, percent } = job.progress;
  if (bytesTotal > 0) return pct(bytesDone, bytesTotal);
  // A job that writes nothing (e.g. nothing changed) is complete when it succeeds.
  return job.state === 'succeeded' ? 100 : percent || 0;
}

function showError(node, err) {
  node.hidden = false;
  node.textContent = err instanceof ApiError ? `${err.message} (${err.code})${err.code !== 'NETWORK' ? ` — ${hintFor(err.code)}` : ''}` : String(err);
}

// ---------------------------------------------------------------- routing

let current = null;

function route() {
  if (current) current.stop();
  current = null;
  for (const v of VIEWS) $(v).hidden = true;
  const key = getKey();
  $('nav').hidden = !key;
  if (!key) return showSignIn();
  const hash = location.hash || '#/restores';
  const m = /^#\/restores\/([0-9a-fA-F-]{36})$/.exec(hash);
  if (m) current = showJob(m[1]);
  else if (hash === '#/new') current = showNew();
  else current = showList(new URLSearchParams(hash.split('?')[1] || ''));
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  route();
  if (message) {
    $('signin-error').hidden = false;
    $('signin-error').textContent = message;
  }
}

// ---------------------------------------------------------------- sign in

function showSignIn() {
  $('view-signin').hidden = false;
  $('signin-error').hidden = true;
  $('signin-key').focus();
}

async function signIn(e) {
  e.preventDefault();
  const key = $('signin-key').value.trim();
  const err = $('signin-error');
  err.hidden = true;
  $('signin-submit').disabled = true;
  try {
    // Any read the key's scope allows proves the key.
    await api('GET', '/v1/restores?limit=1', undefined, key);
    sessionStorage.setItem(KEY_STORAGE, key);
    $('signin-key').value = '';
    go(location.hash && location.hash !== '#/signin' ? location.hash : '#/restores');
  } catch (ex) {
    err.hidden = false;
    if (ex instanceof ApiError && ex.status === 401) err.textContent = 'This API key was not accepted (UNAUTHENTICATED). Check that you pasted the whole key (vmr_…) and that it has not been revoked.';
    else if (ex instanceof ApiError && ex.status === 403) err.textContent = 'This API key is valid but lacks the restores:read scope (FORBIDDEN_SCOPE): the dashboard needs it.';
    else if (ex instanceof ApiError && ex.status === 429) err.textContent = 'Too many attempts with this key (RATE_LIMITED): wait a minute and retry.';
    else if (ex instanceof ApiError && ex.code === 'NETWORK') err.textContent = 'The API could not be reached, or the key contains characters an API key cannot have.';
    else err.textContent = `Sign-in failed: ${ex.message}`;
  } finally {
    $('signin-submit').disabled = false;
  }
}

// ---------------------------------------------------------------- list

function showList(params) {
  $('view-list').hidden = false;
  const state = params.get('state') || '';
  const vm = params.get('vm') || '';
  $('filter-state').value = state;
  $('filter-vm').value = vm;
  const body = $('restores-body');
  body.replaceChildren();
  const rows = new Map();
  // Rate per job, from successive progress samples (bytes, the row's server time).
  const samples = new Map();
  let limit = 50;
  let stopped = false;
  let timer;

  function rateOf(job) {
    const t = Date.parse(job.updatedAt);
    const bytes = job.progress.bytesDone;
    const prev = samples.get(job.id);
    if (!prev || bytes < prev.bytes) {
      samples.set(job.id, { t, bytes, rate: null });
      return null;
    }
    if (bytes > prev.bytes && t > prev.t) {
      const inst = ((bytes - prev.bytes) * 1000) / (t - prev.t);
      const rate = prev.rate == null ? inst : prev.rate * 0.5 + inst * 0.5;
      samples.set(job.id, { t, bytes, rate });
      return rate;
    }
    return prev.rate;
  }

  function update(tr, job) {
    const c = tr.cells;
    tr.dataset.state = job.state;
    setState(c[4].firstChild, job.state);
    const p = jobPercent(job);
    setBar(c[5].querySelector('.bar'), p, job.state);
    c[5].querySelector('.pct').textContent = fmtPct(p);
    const running = job.state === 'running';
    const rate = running ? rateOf(job) : null;
    c[6].textContent = fmtRate(rate);
    const left = job.progress.bytesTotal - job.progress.bytesDone;
    c[7].textContent = running && rate > 0 && left >= 0 ? fmtDuration(left / rate) : '–';
    c[8].textContent = job.state === 'waiting_for_capacity' && job.waitingFor ? job.waitingFor : job.currentStep || (ENDED.has(job.state) ? '' : '–');
  }

  function rowFor(job) {
    const link = el('a', { href: `#/restores/${job.id}`, class: 'mono', text: job.id.slice(0, 8), title: job.id });
    const tr = el(
      'tr',
      { 'data-job-id': job.id },
      el('td', {}, link),
      el('td', { text: job.kind }),
      el('td', { class: 'mono', text: job.target.vm || '–' }),
      el('td', { class: 'mono', text: `${job.source.vm} @ ${job.source.point}` }),
      el('td', {}, el('span', { class: 'state' })),
      el('td', {}, el('span', { class: 'pct' }), newBar()),
      el('td'),
      el('td'),
      el('td', { class: 'mono' }),
      el('td', { text: fmtTime(job.createdAt) }),
    );
    if (job.label) link.after(el('div', { class: 'muted', text: job.label }));
    return tr;
  }

  async function load() {
    const q = new URLSearchParams({ limit: String(limit) });
    if (state) q.set('state', state);
    if (vm) q.set('vm', vm);
    let active = false;
    try {
      const page = await api('GET', `/v1/restores?${q}`);
      if (stopped) return;
      const seen = new Set();
      for (const job of page.items) {
        seen.add(job.id);
        let tr = rows.get(job.id);
        if (!tr) rows.set(job.id, (tr = rowFor(job)));
        update(tr, job);
        body.append(tr); // (re)placed in the API's order, newest first
        if (!ENDED.has(job.state)) active = true;
      }
      for (const [id, tr] of rows) if (!seen.has(id)) (tr.remove(), rows.delete(id));
      $('list-empty').hidden = page.items.length > 0;
      $('list-more').hidden = !page.nextCursor || limit >= 200;
      $('list-error').hidden = true;
      $('list-status').textContent = `updated ${new Date().toLocaleTimeString()}${active ? ' · live' : ''}`;
    } catch (err) {
      if (stopped || authFailed(err)) return;
      showError($('list-error'), err);
    }
    // Live: every second while a job is queued or running.
    if (!stopped) timer = setTimeout(load, active ? 1000 : 5000);
  }

  const more = () => {
    limit = Math.min(200, limit + 50);
    clearTimeout(timer);
    load();
  };
  $('list-more').onclick = more;
  load();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function applyFilters(e) {
  e.preventDefault();
  const q = new URLSearchParams();
  const state = $('filter-state').value;
  const vm = $('filter-vm').value.trim();
  if (state) q.set('state', state);
  if (vm) q.set('vm', vm);
  const s = q.toString();
  go(`#/restores${s ? `?${s}` : ''}`);
}

// ---------------------------------------------------------------- one job

function showJob(id) {
  $('view-job').hidden = false;
  $('job-id').textContent = id;
  for (const f of ['job-kind', 'job-vcenter', 'job-source', 'job-target', 'job-label', 'job-attempt', 'job-started', 'job-finished', 'job-bytes', 'job-live']) $(f).textContent = '';
  $('job-state').textContent = '';
  $('job-rate').textContent = '–';
  $('job-eta').textContent = '–';
  $('job-message').hidden = true;
  $('job-error').hidden = true;
  $('timeline-body').replaceChildren();
  setBar($('job-bar'), 0, null);
  $('job-percent').textContent = fmtPct(0);
  const cancelBtn = $('job-cancel');
  cancelBtn.disabled = true;

  const ctl = new AbortController();
  let job = null;
  /** Newest progress known: from the job or from a progress event, whichever is later. */
  let progress = null;
  let live = { rate: null, eta: null };
  const tasks = new Map(); // step -> [{ task, method }]
  const stepBytes = new Map(); // step -> { bytesDone, bytesTotal }
  let refreshTimer;
  let pollTimer;

  function renderProgress() {
    if (!job || !progress) return;
    const p = progress.bytesTotal > 0 ? pct(progress.bytesDone, progress.bytesTotal) : jobPercent(job);
    setBar($('job-bar'), p, job.state);
    $('job-percent').textContent = fmtPct(p);
    $('job-bytes').textContent = progress.bytesTotal > 0 ? `${fmtBytes(progress.bytesDone)} of ${fmtBytes(progress.bytesTotal)}` : ENDED.has(job.state) ? 'no bytes written' : 'no bytes to write yet';
    const running = job.state === 'running';
    $('job-rate').textContent = running ? fmtRate(live.rate) : '–';
    $('job-eta').textContent = running && p < 100 ? fmtDuration(live.eta) : '–';
  }

  function takeProgress(at, bytesDone, bytesTotal) {
    if (progress && at < progress.at) return;
    progress = { at, bytesDone, bytesTotal };
  }

  function render() {
    $('job-kind').textContent = job.kind;
    $('job-vcenter').textContent = job.vcenter || '–';
    $('job-source').textContent = `${job.source.vm} @ ${job.source.point}`;
    $('job-target').textContent = job.target.vm || '–';
    $('job-label').textContent = job.label || '–';
    $('job-attempt').textContent = String(job.attempt);
    $('job-started').textContent = fmtTime(job.startedAt);
    $('job-finished').textContent = fmtTime(job.finishedAt);
    setState($('job-state'), job.state);
    $('job-cancel-requested').hidden = !(job.cancelRequested && !ENDED.has(job.state));
    cancelBtn.disabled = ENDED.has(job.state) || job.cancelRequested;
    takeProgress(Date.parse(job.updatedAt), job.progress.bytesDone, job.progress.bytesTotal);
    renderProgress();
    if (job.error) {
      $('job-error').hidden = false;
      $('job-error-code').textContent = job.error.code;
      $('job-error-message').textContent = job.error.message;
      $('job-error-hint').textContent = hintFor(job.error.code);
    } else $('job-error').hidden = true;
    renderTimeline();
  }

  function renderTimeline() {
    const rows = (job.steps || []).map((s) => {
      const started = s.startedAt ? Date.parse(s.startedAt) : null;
      const finished = s.finishedAt ? Date.parse(s.finishedAt) : null;
      const duration = started == null ? null : ((finished ?? Date.now()) - started) / 1000;
      const icon = { succeeded: '✓', failed: '✗', running: '●', skipped: '–', pending: '○' }[s.state] || '';
      const taskList = el('ul', { class: 'tasks' });
      for (const t of tasks.get(s.name) || []) taskList.append(el('li', {}, el('span', { class: 'mono', text: t.task }), ` ${t.method}`));
      const b = stepBytes.get(s.name);
      const resultBytes = s.result && typeof s.result.bytes === 'number' ? s.result.bytes : null;
      const bytes = resultBytes != null ? fmtBytes(resultBytes) : b ? `${fmtBytes(b.bytesDone)} of ${fmtBytes(b.bytesTotal)}` : '';
      const errCell = el('td');
      if (s.error) errCell.append(el('code', { text: s.error.code }), el('div', { text: s.error.message }));
      return el(
        'tr',
        { class: `step-${s.state}`, 'data-step': s.name, 'data-phase': s.phase, 'data-state': s.state },
        el('td', { class: 'step-icon', text: icon }),
        el('td', { class: 'mono', text: s.name }),
        el('td', { text: s.phase }),
        el('td', {}, (() => {
          const sp = el('span');
          setState(sp, s.state);
          if (s.state === 'pending' && ENDED.has(job.state)) sp.textContent = 'not run';
          return sp;
        })()),
        el('td', { text: s.startedAt ? new Date(s.startedAt).toLocaleTimeString() : '–' }),
        el('td', { text: s.finishedAt ? new Date(s.finishedAt).toLocaleTimeString() : '–' }),
        el('td', { text: duration == null ? '–' : `${fmtDuration(duration)}${finished == null ? ' …' : ''}` }),
        el('td', { text: String(s.attempt) }),
        el('td', {}, taskList),
        el('td', { text: bytes }),
        errCell,
      );
    });
    $('timeline-body').replaceChildren(...rows);
  }

  async function refresh() {
    try {
      job = await api('GET', `/v1/restores/${encodeURIComponent(id)}`);
      if (ctl.signal.aborted) return;
      render();
    } catch (err) {
      if (ctl.signal.aborted || authFailed(err)) return;
      showError($('job-message'), err);
    }
  }
  const refreshSoon = () => {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = undefined;
      void refresh();
    }, 100);
  };

  function onEvent(ev) {
    if (ev.type === 'progress' && ev.data) {
      const d = ev.data;
      stepBytes.set(ev.step, { bytesDone: d.bytesDone, bytesTotal: d.bytesTotal });
      takeProgress(Date.parse(ev.at), d.bytesDone, d.bytesTotal);
      live = { rate: d.rateBytesPerSec ?? live.rate, eta: d.etaSeconds ?? live.eta };
      renderProgress();
      if (job) renderTimeline();
      return;
    }
    if (ev.type === 'vcenter.task' && ev.data && ev.step) {
      const list = tasks.get(ev.step) || [];
      if (!list.some((t) => t.task === ev.data.task)) list.push({ task: String(ev.data.task), method: String(ev.data.method || '') });
      tasks.set(ev.step, list);
      if (job) renderTimeline();
      return;
    }
    // step.*, job.*: the job's state or steps changed.
    refreshSoon();
  }

  const status = (s, err) => {
    $('job-live').textContent = { live: 'live', reconnecting: 'reconnecting…', ended: 'job ended', stopped: `stream stopped${err ? ` (${err.code})` : ''}` }[s] || s;
    if (s === 'stopped' && err) authFailed(err);
  };

  cancelBtn.onclick = async () => {
    if (!window.confirm('Cancel this restore? Cleanup steps still run; an in-place target is left powered off and partly written.')) return;
    cancelBtn.disabled = true;
    $('job-message').hidden = true;
    try {
      job = { ...job, ...(await api('POST', `/v1/restores/${encodeURIComponent(id)}/cancel`)), steps: job.steps };
      render();
      refreshSoon();
    } catch (err) {
      if (authFailed(err)) return;
      showError($('job-message'), err);
      refreshSoon();
    }
  };

  // The job first, then its events from the start (the stream replays them,
  // then follows live); a slow poll covers a stream that cannot connect.
  void refresh().then(() => {
    if (ctl.signal.aborted) return;
    void streamEvents(id, {
      onEvent,
      onStatus: status,
      signal: ctl.signal,
      isOver: async () => {
        await refresh();
        return !job || ENDED.has(job.state);
      },
    });
  });
  const poll = () => {
    pollTimer = setTimeout(async () => {
      if (!job || !ENDED.has(job.state)) await refresh();
      if (!ctl.signal.aborted) poll();
    }, 5000);
  };
  poll();

  return {
    stop() {
      ctl.abort();
      clearTimeout(refreshTimer);
      clearTimeout(pollTimer);
    },
  };
}

// ---------------------------------------------------------------- new restore

function showNew() {
  $('view-new').hidden = false;
  $('new-error').hidden = true;
  $('new-field-errors').replaceChildren();
  // Suggestions; a key without backups:read or admin simply gets none.
  const fill = (listId, values) => $(listId).replaceChildren(...values.map((v) => el('option', { value: v })));
  api('GET', '/v1/vcenters').then((r) => fill('vcenter-names', (r.items || []).map((v) => v.name)), () => undefined);
  api('GET', '/v1/backups').then((r) => fill('backup-vms', (r.items || []).map((v) => v.vm)), () => undefined);
  return { stop() {} };
}

function loadPoints() {
  const vm = $('new-source-vm').value.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(vm)) return;
  api('GET', `/v1/backups/${encodeURIComponent(vm)}/points`).then(
    (r) => $('backup-points').replaceChildren(...(r.items || []).map((p) => el('option', { value: p.point, label: `${p.point} (${p.kind || '?'})` }))),
    () => undefined,
  );
}

function kindChanged() {
  const inPlace = $('new-kind-in-place').checked;
  $('new-in-place-fields').hidden = !inPlace;
  $('new-new-vm-fields').hidden = inPlace;
  $('new-target-vm').required = inPlace;
  $('new-target-name').required = !inPlace;
}

async function submitNew(e) {
  e.preventDefault();
  const errBox = $('new-error');
  const fieldErrors = $('new-field-errors');
  errBox.hidden = true;
  fieldErrors.replaceChildren();
  const inPlace = $('new-kind-in-place').checked;
  const options = {};
  const transports = $('new-transports').value.split(/[\s,]+/).filter(Boolean);
  if (transports.length) options.transports = transports;
  const powerOn = $('new-power-on').value;
  if (powerOn) options.powerOn = powerOn === 'true';
  const target = {};
  if (inPlace) target.vm = $('new-target-vm').value.trim();
  else {
    target.name = $('new-target-name').value.trim();
    const ds = $('new-target-datastore').value.trim();
    if (ds) target.datastore = ds;
  }
  const body = {
    kind: inPlace ? 'in_place' : 'new_vm',
    vcenter: $('new-vcenter').value.trim(),
    source: { vm: $('new-source-vm').value.trim(), point: $('new-source-point').value.trim() },
    target,
    options,
  };
  const label = $('new-label').value.trim();
  if (label) body.label = label;
  $('new-submit').disabled = true;
  try {
    const job = await api('POST', '/v1/restores', body);
    go(`#/restores/${job.id}`);
  } catch (err) {
    if (authFailed(err)) return;
    showError(errBox, err);
    for (const f of err.fieldErrors || []) fieldErrors.append(el('li', {}, el('code', { text: f.field }), `: ${f.message}`));
  } finally {
    $('new-submit').disabled = false;
  }
}

// ---------------------------------------------------------------- start

$('signin-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', () => signOut(null));
$('filters').addEventListener('submit', applyFilters);
$('filter-state').addEventListener('change', applyFilters);
$('new-form').addEventListener('submit', submitNew);
$('new-source-vm').addEventListener('change', loadPoints);
$('new-kind-in-place').addEventListener('change', kindChanged);
$('new-kind-new-vm').addEventListener('change', kindChanged);
window.addEventListener('hashchange', route);
kindChanged();
route();
