// MCP Inspector v2 CLI against `datavor serve` over stdio and Streamable HTTP:
// tools/list in --strict mode (tool-schema portability lint: any finding is
// printed, errors exit 6) and tools/call list_connections. Each run must exit
// 0 and print no warning lines.
//
// Run: node --test tests/node/inspector.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BIN, HERE, node22, requireExecutable, run, serverEnv, startHttpServer, tempHome } from './lib.mjs';

const LAUNCHER = path.join(HERE, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');

// Lines that are warnings. stdout carries the tools' JSON (whose descriptions
// mention "warn" as a check status), so there only lines that start with one count.
function warningLines(stdout, stderr) {
  const bad = [];
  for (const l of stderr.split('\n')) if (/warn|schema portability/i.test(l)) bad.push(`stderr: ${l}`);
  for (const l of stdout.split('\n')) if (/^\W*(warn(ing)?\b|schema portability)/i.test(l)) bad.push(`stdout: ${l}`);
  return bad;
}

describe('MCP Inspector CLI', () => {
  const s = { tmp: null, http: null, token: `insp-${Math.random().toString(36).slice(2)}` };

  // Runs `mcp-inspector --cli ARGS` under Node 22 with a private $HOME.
  async function inspector(args) {
    const env = serverEnv(s.tmp.userHome, { NO_COLOR: '1', CI: '1' });
    const r = await run(node22(), [LAUNCHER, '--cli', ...args], { env, cwd: s.tmp.root, timeoutMs: 90000 });
    r.describe = `\n--- mcp-inspector --cli ${args.join(' ')}\n--- exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout:\n${r.stdout.slice(-4000)}\n--- stderr:\n${r.stderr.slice(-4000)}`;
    return r;
  }

  function parseJsonOut(r) {
    try {
      return JSON.parse(r.stdout);
    } catch (e) {
      assert.fail(`inspector stdout is not one JSON document (${e.message})${r.describe}`);
    }
  }

  function checkToolsList(r) {
    assert.equal(r.code, 0, `tools/list --strict failed (exit 6 means a schema portability error)${r.describe}`);
    assert.deepEqual(warningLines(r.stdout, r.stderr), [], `warnings printed${r.describe}`);
    const out = parseJsonOut(r);
    const names = (out.result?.tools ?? []).map((t) => t.name);
    for (const n of ['add_connection', 'list_connections', 'test_connection', 'remove_connection']) {
      assert.ok(names.includes(n), `${n} missing from the inspector's tools/list: ${names}${r.describe}`);
    }
    const findings = (out.schemaFindings ?? []).flatMap((f) => f.findings.map((x) => `${f.toolName}: ${x.severity} ${x.rule} at ${x.path}: ${x.issue}`));
    assert.deepEqual(findings, [], `schema portability findings${r.describe}`);
  }

  function checkListConnections(r) {
    assert.equal(r.code, 0, `tools/call list_connections failed${r.describe}`);
    assert.deepEqual(warningLines(r.stdout, r.stderr), [], `warnings printed${r.describe}`);
    const out = parseJsonOut(r);
    assert.notEqual(out.result?.isError, true, `list_connections returned isError${r.describe}`);
    assert.ok(Array.isArray(out.result?.structuredContent?.connections), `no structuredContent.connections${r.describe}`);
  }

  before(async () => {
    requireExecutable(BIN);
    assert.ok(fs.existsSync(LAUNCHER), `${LAUNCHER} missing; run "npm ci" in ${HERE}`);
    s.tmp = tempHome('datavor-inspector-');
    s.http = await startHttpServer({ home: s.tmp.home, userHome: s.tmp.userHome, token: s.token });
  });

  after(async () => {
    if (s.http) await s.http.stop();
    s.tmp?.remove();
  });

  // The stdio target: `-e` sets the server's environment (the inspector does not pass its own through).
  const stdioTarget = () => ['-e', `HOME=${s.tmp.userHome}`, '--', BIN, 'serve', '--home', s.tmp.home];

  it('stdio: tools/list --strict', async () => {
    checkToolsList(await inspector(['--method', 'tools/list', '--strict', '--format', 'json', ...stdioTarget()]));
  });

  it('stdio: tools/call list_connections', async () => {
    checkListConnections(await inspector(['--method', 'tools/call', '--tool-name', 'list_connections', '--format', 'json', ...stdioTarget()]));
  });

  it('stdio: tools/call add_connection then list_connections shows it', async () => {
    const db = path.join(s.tmp.root, 'insp.db');
    const add = await inspector([
      '--method', 'tools/call', '--tool-name', 'add_connection',
      '--tool-args-json', JSON.stringify({ name: 'insp_sqlite', url: `sqlite:${db}` }),
      '--format', 'json', ...stdioTarget(),
    ]);
    assert.equal(add.code, 0, `add_connection failed${add.describe}`);
    assert.deepEqual(warningLines(add.stdout, add.stderr), [], `warnings printed${add.describe}`);
    const list = await inspector(['--method', 'tools/call', '--tool-name', 'list_connections', '--format', 'json', ...stdioTarget()]);
    checkListConnections(list);
    const names = parseJsonOut(list).result.structuredContent.connections.map((c) => c.name);
    assert.ok(names.includes('insp_sqlite'), `insp_sqlite not listed: ${names}`);
  });

  const httpArgs = () => [s.http.url, '--transport', 'http', '--header', `Authorization: Bearer ${s.token}`];

  it('http: tools/list --strict', async () => {
    checkToolsList(await inspector(['--method', 'tools/list', '--strict', '--format', 'json', ...httpArgs()]));
  });

  it('http: tools/call list_connections', async () => {
    checkListConnections(await inspector(['--method', 'tools/call', '--tool-name', 'list_connections', '--format', 'json', ...httpArgs()]));
  });

  it('http: without the bearer token the inspector cannot connect', async () => {
    const r = await inspector(['--method', 'tools/list', '--format', 'json', s.http.url, '--transport', 'http']);
    assert.notEqual(r.code, 0, `tools/list without the token succeeded${r.describe}`);
  });
});
