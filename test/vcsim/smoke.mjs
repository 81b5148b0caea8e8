#!/usr/bin/env node
// Smoke test of the vcsim harness, with node built-ins only (raw SOAP over
// https). It starts test/vcsim/bin/vcsim-harness (build it first with
// scripts/build-vcsim.sh), then checks, in order:
//   1. the JSON start line, the certificate thumbprints, Login;
//   2. the model VM's disk is [LocalDS_0] VM/VM.vmdk with real files;
//   3. CreateSnapshot makes VM-000001.vmdk (backing + files), bytes written
//      into the delta reach the base after RemoveSnapshot;
//   4. a write behind the snapshot (base CID changed) makes RemoveSnapshot
//      fail with "CID mismatch"; RevertToSnapshot then RemoveSnapshot works;
//   5. a chain of two snapshots: remove the older one, then RemoveAll;
//   6. fault injection (task fault and call fault), the call log, session
//      expiry and re-login;
//   7. QueryConfigTarget lists the free LUNs; CreateVM_Task makes real disks;
//   8. SIGTERM stops the harness with exit code 0.
// Usage: node test/vcsim/smoke.mjs   (exit code 0 = all passed)
// Written to be turned into jest integration tests: each step is a function.

import { spawn } from 'node:child_process';
import https from 'node:https';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, 'bin', 'vcsim-harness');

// ---------------------------------------------------------------- harness

function startHarness(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`harness exited early (${code}): ${err}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        child.removeAllListeners('exit');
        resolve({ child, info: JSON.parse(out.slice(0, nl)), stderr: () => err });
      }
    });
  });
}

function stopHarness(child) {
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.kill('SIGTERM');
  });
}

// ---------------------------------------------------------------- control API

async function control(info, method, p, body) {
  const url = new URL(p, info.control);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, json: data ? JSON.parse(data) : null }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

// ---------------------------------------------------------------- SOAP

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const unesc = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

/** First text of <name ...>text</name>, or undefined. */
function tag(xml, name) {
  const m = xml.match(new RegExp(`<${name}(?:\\s[^>]*)?>([^<]*)</${name}>`));
  return m ? unesc(m[1]) : undefined;
}
function tags(xml, name) {
  return [...xml.matchAll(new RegExp(`<${name}(?:\\s[^>]*)?>([^<]*)</${name}>`, 'g'))].map((m) => unesc(m[1]));
}

class Vim {
  constructor(info) {
    this.url = new URL(info.url);
    this.info = info;
    this.cookie = null;
    this.peer = null;
  }

  /** Calls a vim25 method; `args` is the XML of the arguments after _this. */
  call(method, thisType, thisValue, args = '') {
    const body = '<?xml version="1.0" encoding="UTF-8"?>'
      + '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
      + ' xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
      + `<soapenv:Body><${method} xmlns="urn:vim25"><_this type="${thisType}">${esc(thisValue)}</_this>${args}</${method}>`
      + '</soapenv:Body></soapenv:Envelope>';
    const headers = { 'content-type': 'text/xml; charset=utf-8', SOAPAction: 'urn:vim25/7.0' };
    if (this.cookie) headers.cookie = this.cookie;
    return new Promise((resolve, reject) => {
      const req = https.request(this.url, { method: 'POST', headers, rejectUnauthorized: false }, (res) => {
        // Pin the self-signed certificate by the thumbprints from the start line.
        const cert = res.socket.getPeerCertificate();
        this.peer = { sha1: cert.fingerprint, sha256: cert.fingerprint256 };
        for (const c of res.headers['set-cookie'] || []) {
          if (c.startsWith('vmware_soap_session=')) this.cookie = c.split(';')[0];
        }
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { data += d; });
        res.on('end', () => {
          if (res.statusCode === 200) return resolve(data);
          const e = new Error(`${method}: ${tag(data, 'faultstring')}`);
          e.status = res.statusCode;
          e.faultType = (data.match(/<(\w+)Fault xmlns="urn:vim25"/) || [])[1];
          e.xml = data;
          reject(e);
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async connect() {
    const sc = await this.call('RetrieveServiceContent', 'ServiceInstance', 'ServiceInstance');
    const ref = (name) => tag(sc, name);
    this.sc = {
      propertyCollector: ref('propertyCollector'),
      searchIndex: ref('searchIndex'),
      sessionManager: ref('sessionManager'),
      rootFolder: ref('rootFolder'),
    };
    return sc;
  }

  login() {
    return this.call('Login', 'SessionManager', this.sc.sessionManager,
      `<userName>${esc(this.info.username)}</userName><password>${esc(this.info.password)}</password>`);
  }

  /** RetrievePropertiesEx of paths on one object; returns the raw XML. */
  props(type, value, paths) {
    const pathSet = paths.map((p) => `<pathSet>${p}</pathSet>`).join('');
    return this.call('RetrievePropertiesEx', 'PropertyCollector', this.sc.propertyCollector,
      `<specSet><propSet><type>${type}</type>${pathSet}</propSet><objectSet><obj type="${type}">${value}</obj></objectSet></specSet><options></options>`);
  }

  async findByInventoryPath(p) {
    const res = await this.call('FindByInventoryPath', 'SearchIndex', this.sc.searchIndex, `<inventoryPath>${esc(p)}</inventoryPath>`);
    return tag(res, 'returnval');
  }

  /** Starts a *_Task method and waits; resolves to {state, result, error, faultType}. */
  async task(method, thisType, thisValue, args = '') {
    const res = await this.call(method, thisType, thisValue, args);
    const task = tag(res, 'returnval');
    for (let i = 0; i < 200; i++) {
      const info = await this.props('Task', task, ['info']);
      const state = tag(info, 'state');
      if (state === 'success' || state === 'error') {
        return {
          task,
          state,
          result: tag(info, 'result'),
          error: tag(info, 'localizedMessage'),
          faultType: (info.match(/<fault [^>]*type="(\w+)"/) || [])[1],
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${method}: task ${task} did not finish`);
  }

  /** File names of the first VirtualDisk's backing chain, top first. */
  async diskChain(vm) {
    const xml = await this.props('VirtualMachine', vm, ['config.hardware.device']);
    const start = xml.search(/type="VirtualDisk"/);
    assert.ok(start >= 0, 'VM has a VirtualDisk');
    const block = xml.slice(start, xml.indexOf('</VirtualDevice>', start));
    return tags(block, 'fileName');
  }
}

// ---------------------------------------------------------------- disk files

function localPath(info, dsPath) {
  const m = dsPath.match(/^\[([^\]]+)\] (.*)$/);
  assert.ok(m, `datastore path ${dsPath}`);
  return path.join(info.datastores[m[1]], m[2]);
}
function readDescriptor(file) {
  const text = fs.readFileSync(file, 'utf8');
  const get = (k) => (text.match(new RegExp(`^${k}="?([^"\\n]*)"?$`, 'm')) || [])[1];
  const extent = text.match(/^RW (\d+) FLAT "([^"]+)" 0$/m);
  return { text, CID: get('CID'), parentCID: get('parentCID'), hint: get('parentFileNameHint'),
    sectors: Number(extent[1]), flat: path.join(path.dirname(file), extent[2]) };
}
function writeAt(file, offset, str) {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from(str), 0, str.length, offset);
  fs.closeSync(fd);
}
function readAt(file, offset, len) {
  const fd = fs.openSync(file, 'r');
  const b = Buffer.alloc(len);
  fs.readSync(fd, b, 0, len, offset);
  fs.closeSync(fd);
  return b.toString();
}
/** What the VDDK simulator does on a first write: new CID, atomic rewrite. */
function bumpCID(file) {
  const text = fs.readFileSync(file, 'utf8').replace(/^CID=.*$/m, 'CID=0badc1d0');
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

// ---------------------------------------------------------------- steps

const MiB = 1024 * 1024;
let step = 0;
const ok = (msg) => console.log(`ok ${++step} - ${msg}`);

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vcsim-smoke-'));
  const { child, info, stderr } = await startHarness(['-dir', dir, '-username', 'smoke', '-password', 's3cret', '-luns', '2']);
  try {
    assert.match(info.url, /^https:\/\/127\.0\.0\.1:\d+\/sdk$/);
    assert.match(info.control, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(info.datastores.LocalDS_0.startsWith(dir));
    ok(`start line: ${info.url}, control ${info.control}, LocalDS_0 -> ${info.datastores.LocalDS_0}`);

    const vim = new Vim(info);
    await vim.connect();
    assert.equal(vim.peer.sha1, info.thumbprintSha1);
    assert.equal(vim.peer.sha256, info.thumbprintSha256);
    await assert.rejects(vim.call('Login', 'SessionManager', vim.sc.sessionManager,
      '<userName>smoke</userName><password>wrong</password>'), /Login/);
    await vim.login();
    ok('thumbprints match the served certificate; wrong password refused; Login ok');

    // --- 2. disk layout of a model VM
    const vm = await vim.findByInventoryPath('DC0/vm/DC0_H0_VM0');
    assert.ok(vm, 'found DC0_H0_VM0');
    let chain = await vim.diskChain(vm);
    assert.deepEqual(chain, ['[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk']);
    const baseFile = localPath(info, chain[0]);
    const base = readDescriptor(baseFile);
    assert.equal(base.parentCID, 'ffffffff');
    assert.match(base.CID, /^[0-9a-f]{8}$/);
    assert.equal(fs.statSync(base.flat).size, base.sectors * 512);
    ok(`${chain[0]}: descriptor CID=${base.CID}, flat ${base.sectors * 512} bytes (sparse)`);

    // --- 3. snapshot, write into the delta, consolidate
    let t = await vim.task('CreateSnapshot_Task', 'VirtualMachine', vm,
      '<name>smoke</name><memory>false</memory><quiesce>false</quiesce>');
    assert.equal(t.state, 'success');
    const snap1 = t.result;
    chain = await vim.diskChain(vm);
    assert.deepEqual(chain, ['[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0-000001.vmdk', '[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk']);
    const deltaFile = localPath(info, chain[0]);
    let delta = readDescriptor(deltaFile);
    assert.equal(delta.parentCID, readDescriptor(baseFile).CID);
    assert.equal(delta.hint, 'DC0_H0_VM0.vmdk');
    assert.equal(path.basename(delta.flat), 'DC0_H0_VM0-000001-flat.vmdk');
    assert.equal(fs.statSync(delta.flat).size, base.sectors * 512);
    const layout = await vim.props('VirtualMachine', vm, ['layoutEx.disk']);
    assert.equal(tags(layout, 'fileKey').length, 4, 'layoutEx.disk chain lists 2 descriptors + 2 extents');
    ok(`CreateSnapshot ${snap1}: backing ${chain[0]} (parent ${chain[1]}), delta files exist, parentCID ok`);

    writeAt(delta.flat, 1 * MiB, 'DELTA-DATA');
    t = await vim.task('RemoveSnapshot_Task', 'VirtualMachineSnapshot', snap1, '<removeChildren>false</removeChildren>');
    assert.equal(t.state, 'success', t.error);
    chain = await vim.diskChain(vm);
    assert.deepEqual(chain, ['[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk']);
    assert.equal(readAt(base.flat, 1 * MiB, 10), 'DELTA-DATA');
    assert.ok(!fs.existsSync(deltaFile) && !fs.existsSync(delta.flat));
    ok('RemoveSnapshot consolidated: base flat has the delta bytes, delta files gone, backing restored');

    // --- 4. CID mismatch after a write behind the snapshot
    t = await vim.task('CreateSnapshot_Task', 'VirtualMachine', vm,
      '<name>temp</name><memory>false</memory><quiesce>false</quiesce>');
    const snap2 = t.result;
    chain = await vim.diskChain(vm);
    assert.equal(chain[0], '[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0-000001.vmdk');
    writeAt(base.flat, 2 * MiB, 'SAN-WRITE');
    bumpCID(baseFile);
    t = await vim.task('RemoveSnapshot_Task', 'VirtualMachineSnapshot', snap2, '<removeChildren>false</removeChildren>');
    assert.equal(t.state, 'error');
    assert.match(t.error, /CID mismatch/);
    assert.deepEqual(await vim.diskChain(vm), chain, 'backing unchanged after the failed remove');
    ok(`RemoveSnapshot after a write behind the snapshot fails: ${t.faultType}: "${t.error.slice(0, 60)}..."`);

    t = await vim.task('RevertToSnapshot_Task', 'VirtualMachineSnapshot', snap2);
    assert.equal(t.state, 'success', t.error);
    delta = readDescriptor(deltaFile);
    assert.equal(delta.parentCID, '0badc1d0');
    assert.equal(readAt(delta.flat, 2 * MiB, 9), 'SAN-WRITE');
    t = await vim.task('RemoveSnapshot_Task', 'VirtualMachineSnapshot', snap2, '<removeChildren>false</removeChildren>');
    assert.equal(t.state, 'success', t.error);
    assert.deepEqual(await vim.diskChain(vm), ['[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk']);
    assert.equal(readAt(base.flat, 2 * MiB, 9), 'SAN-WRITE');
    ok('RevertToSnapshot remade the delta from the parent; RemoveSnapshot then succeeds');

    // --- 5. chain of two snapshots
    const a = (await vim.task('CreateSnapshot_Task', 'VirtualMachine', vm, '<name>a</name><memory>false</memory><quiesce>false</quiesce>')).result;
    const b = (await vim.task('CreateSnapshot_Task', 'VirtualMachine', vm, '<name>b</name><memory>false</memory><quiesce>false</quiesce>')).result;
    chain = await vim.diskChain(vm);
    assert.deepEqual(chain.map((f) => f.split('/')[1]), ['DC0_H0_VM0-000002.vmdk', 'DC0_H0_VM0-000001.vmdk', 'DC0_H0_VM0.vmdk']);
    writeAt(readDescriptor(localPath(info, chain[1])).flat, 3 * MiB, 'IN-A');
    writeAt(readDescriptor(localPath(info, chain[0])).flat, 4 * MiB, 'IN-B');
    t = await vim.task('RemoveSnapshot_Task', 'VirtualMachineSnapshot', a, '<removeChildren>false</removeChildren>');
    assert.equal(t.state, 'success', t.error);
    chain = await vim.diskChain(vm);
    assert.deepEqual(chain.map((f) => f.split('/')[1]), ['DC0_H0_VM0-000002.vmdk', 'DC0_H0_VM0.vmdk']);
    assert.equal(readDescriptor(localPath(info, chain[0])).hint, 'DC0_H0_VM0.vmdk');
    assert.equal(readAt(base.flat, 3 * MiB, 4), 'IN-A');
    t = await vim.task('RemoveAllSnapshots_Task', 'VirtualMachine', vm);
    assert.equal(t.state, 'success', t.error);
    assert.deepEqual(await vim.diskChain(vm), ['[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk']);
    assert.equal(readAt(base.flat, 4 * MiB, 4), 'IN-B');
    const snapProp = await vim.props('VirtualMachine', vm, ['snapshot']);
    assert.ok(!/currentSnapshot/.test(snapProp));
    ok(`chain of 2 (${b} on ${a}): removing the older reparents -000002 on the base; RemoveAll consolidates all`);

    // --- 6. faults, call log, sessions
    await control(info, 'DELETE', '/calls');
    let r = await control(info, 'POST', '/faults', { method: 'PowerOffVM_Task', moref: vm, count: 1, fault: 'InvalidPowerState', message: 'injected: cannot power off' });
    assert.equal(r.status, 201);
    t = await vim.task('PowerOffVM_Task', 'VirtualMachine', vm);
    assert.equal(t.state, 'error');
    assert.equal(t.faultType, 'InvalidPowerState');
    assert.equal(t.error, 'injected: cannot power off');
    t = await vim.task('PowerOffVM_Task', 'VirtualMachine', vm);
    assert.equal(t.state, 'success', 'count 1: the second call is real');
    ok('injected InvalidPowerState fails the PowerOffVM_Task task once, then the real call runs');

    await control(info, 'POST', '/faults', { method: 'RetrievePropertiesEx', fault: 'NotAuthenticated' });
    await assert.rejects(vim.props('VirtualMachine', vm, ['name']), (e) => e.status === 500 && e.faultType === 'NotAuthenticated');
    await control(info, 'POST', '/faults', { method: 'PowerOnVM_Task', fault: 'TaskInProgress', delayMs: 200 });
    const t0 = Date.now();
    t = await vim.task('PowerOnVM_Task', 'VirtualMachine', vm);
    assert.ok(Date.now() - t0 >= 200 && t.faultType === 'TaskInProgress');
    assert.equal((await control(info, 'POST', '/faults', { method: 'X', fault: 'NoSuchFault' })).status, 400);
    ok('NotAuthenticated faults the call itself (HTTP 500); delayMs delays; unknown fault names are refused');

    const calls = (await control(info, 'GET', '/calls')).json;
    const powerOffs = calls.filter((c) => c.method === 'PowerOffVM_Task');
    assert.equal(powerOffs.length, 2);
    assert.equal(powerOffs[0].moref, vm);
    assert.equal(powerOffs[0].injectedFault, 'InvalidPowerState');
    assert.equal((await control(info, 'GET', '/calls?method=PowerOnVM_Task')).json.length, 1);
    ok(`GET /calls logged ${calls.length} calls (PowerOffVM_Task x2 on ${vm})`);

    r = await control(info, 'POST', '/sessions/expire');
    assert.ok(r.json.expired >= 1);
    await assert.rejects(vim.props('VirtualMachine', vm, ['name']), (e) => e.faultType === 'NotAuthenticated');
    vim.cookie = null;
    await vim.login();
    assert.equal(tag(await vim.props('VirtualMachine', vm, ['name']), 'val'), 'DC0_H0_VM0');
    ok(`POST /sessions/expire ended ${r.json.expired} session(s): NotAuthenticated, then re-login works`);

    // --- 7. config target and CreateVM
    const envb = tag(await vim.props('VirtualMachine', vm, ['environmentBrowser']), 'val');
    const ct = await vim.call('QueryConfigTarget', 'EnvironmentBrowser', envb);
    const names = tags(ct, 'canonicalName');
    assert.equal(names.length, 2);
    assert.match(names[0], /^naa\.6000c29[0-9a-f]{25}$/);
    assert.ok(tags(ct, 'name').includes('LocalDS_0'), 'datastores are in the config target');
    const ctUuids = tags(ct, 'uuid');
    const host = tag(await vim.props('VirtualMachine', vm, ['runtime.host']), 'val');
    const hostLuns = await vim.props('HostSystem', host, ['config.storageDevice.scsiLun']);
    assert.ok(hostLuns.includes(names[0]), 'host lists the LUN');
    assert.ok(!hostLuns.includes(ctUuids[0]), 'host reports a different uuid');
    ok(`QueryConfigTarget: scsiDisk ${names.join(', ')} (uuid ${ctUuids[0].slice(0, 16)}..., differs from the host's)`);

    const folder = await vim.findByInventoryPath('DC0/vm');
    const pool = await vim.findByInventoryPath('DC0/host/DC0_H0/Resources');
    const disk = (key, unit, kb) => '<deviceChange><operation>add</operation><fileOperation>create</fileOperation>'
      + `<device xsi:type="VirtualDisk"><key>${key}</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName></fileName><diskMode>persistent</diskMode></backing>`
      + `<controllerKey>-44</controllerKey><unitNumber>${unit}</unitNumber><capacityInKB>${kb}</capacityInKB></device></deviceChange>`;
    t = await vim.task('CreateVM_Task', 'Folder', folder,
      '<config><name>smoke-new</name><guestId>otherGuest</guestId><files><vmPathName>[LocalDS_0]</vmPathName></files>'
      + '<numCPUs>1</numCPUs><memoryMB>64</memoryMB>'
      + '<deviceChange><operation>add</operation><device xsi:type="VirtualLsiLogicController"><key>-44</key><busNumber>0</busNumber><sharedBus>noSharing</sharedBus></device></deviceChange>'
      + disk(-1000000, 0, 8192) + disk(-100, 1, 4096)
      + `</config><pool type="ResourcePool">${pool}</pool>`);
    assert.equal(t.state, 'success', t.error);
    const dev = await vim.props('VirtualMachine', t.result, ['config.hardware.device']);
    const files = tags(dev, 'fileName');
    assert.deepEqual(files, ['[LocalDS_0] smoke-new/smoke-new.vmdk', '[LocalDS_0] smoke-new/smoke-new_1.vmdk']);
    const d0 = readDescriptor(localPath(info, files[0]));
    const d1 = readDescriptor(localPath(info, files[1]));
    assert.equal(fs.statSync(d0.flat).size, 8192 * 1024);
    assert.equal(fs.statSync(d1.flat).size, 4096 * 1024);
    ok(`CreateVM_Task ${t.result}: ${files.join(', ')} with real descriptors and flats`);

    // RDM from the config target (MISSION R4); the host's uuid is refused.
    const hostUuid = tags(hostLuns, 'uuid').find((u) => u.includes(names[0].slice(4)));
    assert.ok(hostUuid && hostUuid !== ctUuids[0]);
    const rdmVm = (name, lunUuid) => '<config>'
      + `<name>${name}</name><guestId>otherGuest</guestId><files><vmPathName>[LocalDS_0]</vmPathName></files>`
      + '<deviceChange><operation>add</operation><device xsi:type="VirtualLsiLogicController"><key>-44</key><busNumber>0</busNumber><sharedBus>noSharing</sharedBus></device></deviceChange>'
      + disk(-100, 0, 4096)
      + '<deviceChange><operation>add</operation><fileOperation>create</fileOperation>'
      + '<device xsi:type="VirtualDisk"><key>-101</key><backing xsi:type="VirtualDiskRawDiskMappingVer1BackingInfo"><fileName></fileName>'
      + `<lunUuid>${lunUuid}</lunUuid><deviceName>${names[0]}</deviceName><compatibilityMode>physicalMode</compatibilityMode><diskMode></diskMode></backing>`
      + '<controllerKey>-44</controllerKey><unitNumber>1</unitNumber></device></deviceChange>'
      + `</config><pool type="ResourcePool">${pool}</pool>`;
    t = await vim.task('CreateVM_Task', 'Folder', folder, rdmVm('smoke-rdm-bad', hostUuid));
    assert.equal(t.state, 'error');
    assert.equal(t.faultType, 'InvalidDeviceSpec');
    t = await vim.task('CreateVM_Task', 'Folder', folder, rdmVm('smoke-rdm', ctUuids[0]));
    assert.equal(t.state, 'success', t.error);
    const rdmRef = t.result;
    let rdmDev = await vim.props('VirtualMachine', rdmRef, ['config.hardware.device']);
    assert.ok(rdmDev.includes('type="VirtualDiskRawDiskMappingVer1BackingInfo"'));
    assert.equal(tag(rdmDev, 'lunUuid'), ctUuids[0]);
    // The simulator's own layout code cannot handle RDMs; these go through the shield.
    t = await vim.task('CreateSnapshot_Task', 'VirtualMachine', rdmRef, '<name>r</name><memory>false</memory><quiesce>false</quiesce>');
    assert.equal(t.state, 'success', t.error);
    t = await vim.task('RemoveAllSnapshots_Task', 'VirtualMachine', rdmRef);
    assert.equal(t.state, 'success', t.error);
    t = await vim.task('ReconfigVM_Task', 'VirtualMachine', rdmRef, `<spec>${disk(-200, 2, 2048)}</spec>`);
    assert.equal(t.state, 'success', t.error);
    rdmDev = await vim.props('VirtualMachine', rdmRef, ['config.hardware.device']);
    assert.ok(rdmDev.includes('type="VirtualDiskRawDiskMappingVer1BackingInfo"'));
    assert.deepEqual(tags(rdmDev, 'fileName'), ['[LocalDS_0] smoke-rdm/smoke-rdm.vmdk', '[LocalDS_0] smoke-rdm/smoke-rdm_1.vmdk', '[LocalDS_0] smoke-rdm/smoke-rdm_2.vmdk']);
    assert.ok(fs.existsSync(localPath(info, '[LocalDS_0] smoke-rdm/smoke-rdm_2-flat.vmdk')));
    ok(`RDM CreateVM with the config-target lunUuid works (${rdmRef}); the host's uuid gives InvalidDeviceSpec; snapshot + reconfigure ok`);
  } catch (e) {
    console.error(`not ok - ${e.stack}\n--- harness stderr ---\n${stderr()}`);
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  }

  // --- 8. clean exit
  const { code } = await stopHarness(child);
  assert.equal(code, 0);
  assert.ok(!fs.existsSync(info.datastores.LocalDS_0), 'datastore dir removed on exit (no -keep)');
  fs.rmSync(dir, { recursive: true, force: true });
  ok('SIGTERM: exit code 0');
  console.log(`# all ${step} checks passed`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
