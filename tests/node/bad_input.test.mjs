// Acceptance 4 of issue 2: bad input keeps the server up and gets the right
// answer, on the raw wire (no SDK in between), over stdio and HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { BIN, requireExecutable, tempHome, serverEnv, blackhole, startHttpServer } from './lib.mjs';

const INIT = { jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bad-input', version: '1' } } };

// A raw stdio peer: write lines, await messages by predicate.
function rawStdio(home, userHome) {
  requireExecutable(BIN);
  const proc = spawn(BIN, ['serve', '--home', home], { env: serverEnv(userHome), stdio: ['pipe', 'pipe', 'pipe'] });
  const messages = [];
  const waiters = [];
  let stderr = '';
  proc.stderr.on('data', (b) => (stderr += b));
  readline.createInterface({ input: proc.stdout }).on('line', (line) => {
    const m = JSON.parse(line); // the server must only ever write JSON lines
    messages.push(m);
    for (const w of [...waiters]) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
  });
  return {
    proc,
    messages,
    stderr: () => stderr,
    send(obj) { proc.stdin.write((typeof obj === 'string' ? obj : JSON.stringify(obj)) + '\n'); },
    next(pred, ms = 10000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.push(w);
        setTimeout(() => reject(new Error('timed out; got ' + JSON.stringify(messages).slice(-2000) + '\nstderr: ' + stderr)), ms);
      });
    },
  };
}

test('stdio: malformed input is answered with the right JSON-RPC error and the server stays up', async () => {
  const h = tempHome();
  const s = rawStdio(h.home, h.userHome);
  try {
    // A tool call before initialize.
    s.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_connections', arguments: {} } });
    assert.equal((await s.next((m) => m.id === 1)).error.code, -32600);
    s.send(INIT);
    assert.equal((await s.next((m) => m.id === 'init')).result.protocolVersion, '2025-11-25');
    s.send({ jsonrpc: '2.0', method: 'notifications/initialized' });

    s.send('{"jsonrpc": "2.0", "id": 2, "method": "ping"'); // truncated JSON
    const parse = await s.next((m) => m.error?.code === -32700);
    assert.equal(parse.id, null);
    s.send({ jsonrpc: '1.0', id: 3, method: 'ping' });
    assert.equal((await s.next((m) => m.id === 3)).error.code, -32600);
    s.send({ jsonrpc: '2.0', id: { no: 'objects' }, method: 'ping' });
    assert.equal((await s.next((m) => m.error?.code === -32600 && m.id === null)).error.code, -32600);
    s.send({ jsonrpc: '2.0', id: 4 });
    assert.equal((await s.next((m) => m.id === 4)).error.code, -32600);
    s.send({ jsonrpc: '2.0', id: 5, method: 'no/such/method' });
    assert.equal((await s.next((m) => m.id === 5)).error.code, -32601);
    s.send({ jsonrpc: '2.0', id: 6, method: 'logging/setLevel', params: { level: 'loud' } });
    assert.equal((await s.next((m) => m.id === 6)).error.code, -32602);
    s.send({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: { cursor: 'not-a-cursor' } });
    assert.equal((await s.next((m) => m.id === 7)).error.code, -32602);
    s.send('[{"jsonrpc":"2.0","id":8,"method":"ping"}]'); // batches are not part of 2025-11-25
    assert.equal((await s.next((m) => m.error?.code === -32600 && /batch/i.test(m.error.message))).id, null);

    // A line over the 4 MiB limit is refused and skipped; the next line works.
    s.send(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping', params: { pad: 'x'.repeat(5 * 1024 * 1024) } }));
    const big = await s.next((m) => m.error?.code === -32600 && /longer than/.test(m.error.message));
    assert.equal(big.id, null);
    s.send({ jsonrpc: '2.0', id: 10, method: 'ping' });
    assert.deepEqual((await s.next((m) => m.id === 10)).result, {});

    // A duplicate id while the first request still runs: the second is refused, the first completes.
    const hole = await blackhole();
    try {
      s.send({ jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'add_connection', arguments: { name: 'silent', url: `postgresql://x@127.0.0.1:${hole.port}/db` } } });
      await s.next((m) => m.id === 11);
      s.send({ jsonrpc: '2.0', id: 12, method: 'tools/call', params: { name: 'test_connection', arguments: { name: 'silent', timeout_seconds: 2 } } });
      s.send({ jsonrpc: '2.0', id: 12, method: 'ping' });
      const dup = await s.next((m) => m.id === 12 && m.error);
      assert.equal(dup.error.code, -32600);
      const first = await s.next((m) => m.id === 12 && m.result, 15000);
      assert.equal(first.result.structuredContent.ok, false);
      assert.equal(first.result.structuredContent.checks[0].id, 'reachable');
      assert.equal(first.result.structuredContent.checks[0].status, 'fail');
    } finally {
      await hole.close();
    }

    // A cancel for an unknown id is ignored (no answer to a notification) and the server goes on.
    s.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 999, reason: 'nothing' } });
    s.send({ jsonrpc: '2.0', id: 13, method: 'ping' });
    assert.deepEqual((await s.next((m) => m.id === 13)).result, {});
    assert.equal(s.messages.filter((m) => m.id === 999).length, 0);

    // Invalid tool arguments: a tool result with isError naming the field.
    s.send({ jsonrpc: '2.0', id: 14, method: 'tools/call', params: { name: 'add_connection', arguments: { name: 'x', url: 5 } } });
    const bad = await s.next((m) => m.id === 14);
    assert.equal(bad.result.isError, true);
    assert.match(bad.result.content[0].text, /\/url/);
    assert.match(bad.result.content[0].text, /string/);

    s.proc.stdin.end();
    const code = await new Promise((r) => s.proc.once('exit', r));
    assert.equal(code, 0, 'exits cleanly when stdin closes');
  } finally {
    s.proc.kill('SIGKILL');
    h.remove();
  }
});

test('http: malformed requests get HTTP and JSON-RPC errors; the server stays up', async () => {
  const h = tempHome();
  const srv = await startHttpServer({ home: h.home, userHome: h.userHome });
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const post = (body, extra = {}) => fetch(srv.url, { method: 'POST', headers: { ...headers, ...extra }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  try {
    let r = await post('{not json');
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, -32700);
    r = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    assert.equal(r.status, 400, 'no session id');
    r = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': 'nope' });
    assert.equal(r.status, 404, 'unknown session');
    r = await post(INIT, { 'mcp-protocol-version': '1999-01-01' });
    assert.equal(r.status, 400, 'unsupported protocol version header');
    r = await post(INIT, { 'content-type': 'text/plain' });
    assert.equal(r.status, 415);
    r = await post(INIT, { origin: 'http://evil.example.com' });
    assert.equal(r.status, 403);
    r = await fetch(srv.url, { method: 'PUT', headers, body: '{}' });
    assert.equal(r.status, 405);
    r = await post('x'.repeat(5 * 1024 * 1024));
    assert.equal(r.status, 413);

    r = await post(INIT);
    assert.equal(r.status, 200);
    const sid = r.headers.get('mcp-session-id');
    assert.ok(sid && sid.length >= 32, 'session id issued');
    await r.json();
    const s = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    r = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, s);
    assert.equal(r.status, 202);
    r = await post({ jsonrpc: '2.0', id: 2, method: 'bogus' }, s);
    assert.equal((await r.json()).error.code, -32601);
    r = await post({ jsonrpc: '2.0', id: 3, method: 'initialize', params: INIT.params }, s);
    assert.equal((await r.json()).error.code, -32600, 'second initialize on a session');
    r = await post({ jsonrpc: '2.0', id: 4, method: 'ping' }, s);
    assert.deepEqual((await r.json()).result, {});
  } finally {
    await srv.stop();
    h.remove();
  }
});
