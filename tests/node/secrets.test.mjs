// Acceptance: a password never leaks. It must not appear in anything Datavor
// writes (stdout, stderr, tool results, resources, prompts, log
// notifications, CLI output) nor in any file of its home directory except
// secrets.json, which must be mode 0600.
//
// Run: node --test tests/node/secrets.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import {
  BIN,
  CapturingStdioTransport,
  findAll,
  requireExecutable,
  run,
  serverEnv,
  startHttpServer,
  tempHome,
  testDb,
  textOf,
  walkFiles,
} from './lib.mjs';

const PG = testDb('pg');
// The main password: the real one when a test PostgreSQL runs (so test_connection
// really authenticates with it), otherwise a made-up one.
const PG_PASSWORD = PG?.password || 'Dv-MadeUp-Pw-4b7f1c9e';
const PG_URL = PG?.url || 'postgresql://postgres@127.0.0.1:1/postgres';
const FAKE_PASSWORD = 'Dv-Second-Pw-93ad2e71'; // for a connection that cannot connect
const EMBEDDED_PASSWORD = 'S3cr3t-embedded';
const EMBEDDED_URL = `postgresql://u:${EMBEDDED_PASSWORD}@127.0.0.1:1/db`;

// The strings to search for: each password raw and percent-encoded.
function needles() {
  const out = new Map();
  for (const [label, pw] of [
    ['PG password', PG_PASSWORD],
    ['second password', FAKE_PASSWORD],
    ['URL-embedded password', EMBEDDED_PASSWORD],
  ]) {
    if (!pw) continue;
    out.set(`${label} (raw)`, pw);
    const enc = encodeURIComponent(pw);
    if (enc !== pw) out.set(`${label} (percent-encoded)`, enc);
  }
  return out;
}

// Where a needle was found, with some context in which every password is redacted.
function leaks(where, text) {
  const found = [];
  const all = needles();
  let redacted = text;
  for (const [label, pw] of all) redacted = redacted.replaceAll(pw, `<${label}>`);
  for (const [label, pw] of all) {
    if (!text.includes(pw)) continue;
    const i = redacted.indexOf(`<${label}>`);
    const ctx = i === -1 ? '' : redacted.slice(Math.max(0, i - 80), i + label.length + 60);
    found.push(`${label} found in ${where}: ...${ctx}...`);
  }
  return found;
}

// Every string value inside a parsed JSON document.
function stringsIn(v) {
  if (typeof v === 'string') return [v];
  if (v && typeof v === 'object') return Object.values(v).flatMap(stringsIn);
  return [];
}

// Greps every file under the home except secrets.json, as bytes (context.db and
// its -wal/-shm files included), for each password in UTF-8 and UTF-16.
function scanHome(home, when) {
  const found = [];
  for (const f of walkFiles(home)) {
    if (path.basename(f) === 'secrets.json') continue;
    let bytes;
    try {
      bytes = fs.readFileSync(f);
    } catch (e) {
      if (e.code === 'ENOENT') continue; // e.g. a -wal file removed meanwhile
      throw e;
    }
    for (const [label, pw] of needles()) {
      const hits = findAll(bytes, Buffer.from(pw, 'utf8'));
      if (hits.length) found.push(`${label} in ${path.relative(home, f)} (${when}) at byte offset(s) ${hits.slice(0, 5).join(', ')}`);
      if (findAll(bytes, Buffer.from(pw, 'utf16le')).length) found.push(`${label} (UTF-16) in ${path.relative(home, f)} (${when})`);
    }
  }
  return found;
}

describe('passwords never leak', () => {
  const s = { tmp: null, transport: null, client: null, texts: [], logs: [], cli: [], http: null, exit: null, liveHomeLeaks: [] };
  const allTexts = () => s.texts.map(([w, t]) => [w, t]);

  async function callTool(name, args, opts) {
    const r = await s.client.callTool({ name, arguments: args }, CallToolResultSchema, opts);
    s.texts.push([`${name} result`, JSON.stringify(r)]);
    return r;
  }

  before(async () => {
    requireExecutable(BIN);
    s.tmp = tempHome('datavor-secrets-');
    s.transport = new CapturingStdioTransport(BIN, ['serve', '--home', s.tmp.home], {
      env: serverEnv(s.tmp.userHome),
      cwd: s.tmp.userHome,
    });
    s.client = new Client({ name: 'datavor-secrets-test', version: '1.0.0' }, { capabilities: {} });
    s.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => s.logs.push(JSON.stringify(n.params)));
    await s.client.connect(s.transport);
  });

  after(async () => {
    try {
      await s.client?.close();
    } catch {}
    if (s.http) await s.http.stop();
    s.tmp?.remove();
  });

  it('exercises every tool, resource and prompt over stdio', async () => {
    await s.client.setLoggingLevel('debug');
    const { tools } = await s.client.listTools();
    s.texts.push(['tools/list', JSON.stringify(tools)]);

    let r = await callTool('add_connection', { name: 'pg_secret', url: PG_URL, password: PG_PASSWORD, sslmode: 'disable' });
    assert.notEqual(r.isError, true, `add_connection pg_secret: ${textOf(r)}`);
    assert.equal(r.structuredContent.connection.password_source, 'secrets_file');

    r = await callTool('add_connection', { name: 'pg_fake', url: 'postgresql://u@127.0.0.1:1/db', password: FAKE_PASSWORD });
    assert.notEqual(r.isError, true, `add_connection pg_fake: ${textOf(r)}`);

    r = await callTool('add_connection', { name: 'pg_embedded', url: EMBEDDED_URL });
    assert.notEqual(r.isError, true, `add_connection with the password in the URL: ${textOf(r)}`);
    assert.equal(r.structuredContent.connection.password_source, 'secrets_file', 'a password inside the URL must move to the secrets file');
    assert.ok(r.structuredContent.connection.url.includes('u@127.0.0.1:1/db'), `stored URL: ${r.structuredContent.connection.url}`);

    // Again with replace, and a failing call that echoes arguments back in an error.
    await callTool('add_connection', { name: 'pg_embedded', url: EMBEDDED_URL, replace: true });
    await callTool('add_connection', { name: 'pg_embedded', url: `${EMBEDDED_URL}x` });
    await callTool('add_connection', { name: 'bad name', url: EMBEDDED_URL, password: FAKE_PASSWORD });
    await callTool('add_connection', { name: 'pg_bad', url: 'postgresql://u@127.0.0.1:1/db', password: FAKE_PASSWORD, bogus: true });

    await callTool('list_connections', {});
    const progress = [];
    r = await callTool('test_connection', { name: 'pg_secret', timeout_seconds: 15 }, { onprogress: (p) => progress.push(p), timeout: 60000 });
    s.texts.push(['progress notifications', JSON.stringify(progress)]);
    if (PG) assert.equal(r.structuredContent?.ok, true, `test_connection with the real password should pass: ${textOf(r)}`);
    await callTool('test_connection', { name: 'pg_fake', timeout_seconds: 5 });
    await callTool('test_connection', { name: 'pg_embedded', timeout_seconds: 5 });

    const { resources } = await s.client.listResources();
    const { resourceTemplates } = await s.client.listResourceTemplates();
    const uris = new Set(resources.map((x) => x.uri));
    for (const name of ['pg_secret', 'pg_fake', 'pg_embedded']) uris.add(`datavor://connections/${name}`);
    for (const uri of uris) {
      const c = await s.client.readResource({ uri });
      s.texts.push([`resource ${uri}`, JSON.stringify(c)]);
    }
    s.texts.push(['resources/templates/list', JSON.stringify(resourceTemplates)]);

    const { prompts } = await s.client.listPrompts();
    for (const p of prompts) {
      const args = {};
      for (const a of p.arguments ?? []) args[a.name] = a.name === 'connection' ? 'pg_secret' : 'public.t';
      try {
        const g = await s.client.getPrompt({ name: p.name, arguments: args });
        s.texts.push([`prompt ${p.name}`, JSON.stringify(g)]);
      } catch (e) {
        s.texts.push([`prompt ${p.name} error`, String(e)]);
      }
    }
    for (const value of ['', 'pg']) {
      const c = await s.client.complete({ ref: { type: 'ref/resource', uri: 'datavor://connections/{name}' }, argument: { name: 'name', value } });
      s.texts.push([`completion "${value}"`, JSON.stringify(c)]);
    }
  });

  it('CLI mirrors: connection list / connection test', async () => {
    const env = serverEnv(s.tmp.userHome);
    const list = await run(BIN, ['connection', 'list', '--home', s.tmp.home], { env, timeoutMs: 30000 });
    s.cli.push(['datavor connection list', list]);
    assert.equal(list.code, 0, `datavor connection list exited ${list.code}\n${list.stderr}`);
    assert.ok(list.stdout.includes('pg_secret'), `connection list does not show pg_secret:\n${list.stdout}`);
    for (const name of ['pg_secret', 'pg_fake', 'pg_embedded']) {
      const t = await run(BIN, ['connection', 'test', name, '--home', s.tmp.home], { env, timeoutMs: 60000 });
      s.cli.push([`datavor connection test ${name}`, t]);
      assert.ok(!t.timedOut, `connection test ${name} hung`);
      if (name === 'pg_secret' && PG) assert.equal(t.code, 0, `connection test pg_secret exited ${t.code}\n${t.stdout}\n${t.stderr}`);
    }
    // The stdio server still runs: its -wal/-shm files exist now.
    s.liveHomeLeaks.push(...scanHome(s.tmp.home, 'while the server ran'));
  });

  it('stdio server exits cleanly on stdin EOF', async () => {
    await s.client.close(); // ends stdin, waits up to 5 s
    s.exit = await s.transport.exited;
    assert.ok(!s.transport.killed, 'the server did not exit within 5 s of stdin EOF');
    assert.equal(s.exit.code, 0, `exit status on EOF: ${JSON.stringify(s.exit)}\n${s.transport.stderr().slice(-2000)}`);
  });

  it('Streamable HTTP server on the same home, with debug logging', async () => {
    s.http = await startHttpServer({ home: s.tmp.home, userHome: s.tmp.userHome });
    const c = new Client({ name: 'datavor-secrets-http', version: '1.0.0' }, { capabilities: {} });
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => s.logs.push(JSON.stringify(n.params)));
    await c.connect(new StreamableHTTPClientTransport(new URL(s.http.url)));
    await c.setLoggingLevel('debug');
    const r1 = await c.callTool({ name: 'add_connection', arguments: { name: 'pg_http', url: 'postgresql://u@127.0.0.1:1/db', password: FAKE_PASSWORD } });
    s.texts.push(['HTTP add_connection', JSON.stringify(r1)]);
    const r2 = await c.callTool({ name: 'test_connection', arguments: { name: 'pg_http', timeout_seconds: 5 } });
    s.texts.push(['HTTP test_connection', JSON.stringify(r2)]);
    const r3 = await c.readResource({ uri: 'datavor://connections' });
    s.texts.push(['HTTP resource', JSON.stringify(r3)]);
    await c.close();
    s.liveHomeLeaks.push(...scanHome(s.tmp.home, 'while the HTTP server ran'));
    await s.http.stop();
    s.texts.push(['HTTP server stdout', s.http.stdout()], ['HTTP server stderr', s.http.stderr()]);
    s.http = null;
  });

  it('no password in stdout, stderr, results, resources, prompts, logs or CLI output', () => {
    const found = [];
    found.push(...leaks('server stdout (all MCP messages)', s.transport.stdout()));
    found.push(...leaks('server stderr', s.transport.stderr()));
    for (const [where, text] of allTexts()) found.push(...leaks(where, text));
    for (const l of s.logs) found.push(...leaks('notifications/message', l));
    for (const [cmd, r] of s.cli) {
      found.push(...leaks(`${cmd} stdout`, r.stdout));
      found.push(...leaks(`${cmd} stderr`, r.stderr));
    }
    assert.ok(s.transport.stdout().length > 0, 'captured no stdout at all');
    assert.deepEqual(found, [], `password leaked:\n${found.join('\n')}`);
  });

  it('no password in any home file except secrets.json, which is 0600', () => {
    const files = walkFiles(s.tmp.home);
    assert.ok(files.length > 0, `no files in ${s.tmp.home}`);
    const secrets = files.filter((f) => path.basename(f) === 'secrets.json');
    assert.equal(secrets.length, 1, `expected exactly one secrets.json under the home, found: ${secrets.join(', ') || 'none'}\nfiles: ${files.join(', ')}`);
    const mode = fs.statSync(secrets[0]).mode & 0o777;
    assert.equal(mode, 0o600, `secrets.json mode is ${mode.toString(8)}, expected 600`);
    const stored = stringsIn(JSON.parse(fs.readFileSync(secrets[0], 'utf8')));
    assert.ok(stored.includes(PG_PASSWORD), 'secrets.json does not hold the password given in `password`');
    assert.ok(stored.includes(EMBEDDED_PASSWORD), 'secrets.json does not hold the password taken out of the URL');
    assert.ok(files.some((f) => path.basename(f) === 'context.db'), `no context.db under the home: ${files.join(', ')}`);

    const found = [...s.liveHomeLeaks, ...scanHome(s.tmp.home, 'after the server exited')];
    assert.deepEqual(found, [], `password written outside secrets.json:\n${found.join('\n')}`);
  });
});
