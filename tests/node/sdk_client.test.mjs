// The official MCP TypeScript SDK client against `datavor serve`, once over
// stdio and once over Streamable HTTP: discovery, every tool with valid and
// invalid arguments, structuredContent vs outputSchema (SDK + our own ajv),
// resources and subscriptions, prompts, completion, progress, cancellation.
//
// Run: node --test tests/node/sdk_client.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import {
  BIN,
  TOOL_NAMES,
  blackhole,
  compileSchema,
  requireExecutable,
  schemaFiles,
  serverEnv,
  sleep,
  startHttpServer,
  tempHome,
  testDb,
  textOf,
  withTimeout,
} from './lib.mjs';

const PG = testDb('pg');
const MARIADB = testDb('mariadb');
const NO_PG = !PG && 'DATAVOR_TEST_PG_URL is not set';
const NO_MARIADB = !MARIADB && 'DATAVOR_TEST_MARIADB_URL is not set';
const FILES = schemaFiles();
const PW_ENV = 'DV_NODE_TEST_PG_PASSWORD'; // env var of the server process used with password_env

// Arguments as shown in failure messages, without passwords.
function show(args) {
  return JSON.stringify(args, (k, v) => (k === 'password' ? '***' : v));
}

async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pred()) return;
    await sleep(25);
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

function describeTransport(kind) {
  describe(`SDK client over ${kind}`, () => {
    const s = {
      client: null,
      transport: null,
      server: null, // HTTP only: the spawned process
      stderr: [], // stdio: chunks of the server's stderr
      tmp: null,
      sqlitePath: null,
      listed: new Map(), // tool name -> definition from tools/list
      validators: new Map(), // tool name -> [validate fn from tools/list, validate fn from mcp-schema file]
      updates: [], // URIs of notifications/resources/updated
      progress: [], // params of every notifications/progress, as received by the transport
    };

    const serverLog = () => {
      const text = s.server ? s.server.stderr() : Buffer.concat(s.stderr).toString('utf8');
      return `\n--- datavor stderr (last 3000 chars):\n${text.slice(-3000)}`;
    };

    // it() that appends the server's stderr to any failure.
    function step(name, opts, fn) {
      if (typeof opts === 'function') [fn, opts] = [opts, {}];
      it(name, opts, async (t) => {
        try {
          await fn(t);
        } catch (e) {
          if (e && typeof e === 'object' && typeof e.message === 'string') e.message += serverLog();
          throw e;
        }
      });
    }

    const call = (name, args, opts) => s.client.callTool({ name, arguments: args }, CallToolResultSchema, opts);

    // Calls a tool that must succeed; checks structuredContent against both schemas.
    async function callOk(name, args, opts) {
      const r = await call(name, args, opts);
      assert.notEqual(r.isError, true, `${name}(${show(args)}) returned isError: ${textOf(r)}`);
      checkStructured(name, r, args);
      return r.structuredContent;
    }

    function checkStructured(name, r, args) {
      assert.ok(
        r.structuredContent && typeof r.structuredContent === 'object',
        `${name}(${show(args)}) returned no structuredContent: ${JSON.stringify(r).slice(0, 500)}`,
      );
      assert.ok(
        r.content.some((c) => c.type === 'text' && c.text.length > 0),
        `${name}: result has no text content (clients without structuredContent support see nothing)`,
      );
      const [fromList, fromFile] = s.validators.get(name) ?? [];
      assert.ok(fromList, `${name}: no outputSchema from tools/list to validate against`);
      const e1 = fromList(r.structuredContent);
      assert.equal(e1, null, `${name}: structuredContent does not match the listed outputSchema: ${e1}\n${JSON.stringify(r.structuredContent)}`);
      if (fromFile) {
        const e2 = fromFile(r.structuredContent);
        assert.equal(e2, null, `${name}: structuredContent does not match mcp-schema/${name}.json: ${e2}`);
      }
    }

    before(async () => {
      requireExecutable(BIN);
      s.tmp = tempHome(`datavor-sdk-${kind}-`);
      s.sqlitePath = path.join(s.tmp.root, 'main.db');
      fs.writeFileSync(s.sqlitePath, ''); // a zero-length file is an empty SQLite database
      const extraEnv = PG ? { [PW_ENV]: PG.password } : {};
      s.client = new Client({ name: 'datavor-node-tests', version: '1.0.0' }, { capabilities: {} });
      s.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => s.updates.push(n.params.uri));
      if (kind === 'stdio') {
        s.transport = new StdioClientTransport({
          command: BIN,
          args: ['serve', '--home', s.tmp.home],
          env: serverEnv(s.tmp.userHome, extraEnv),
          cwd: s.tmp.userHome,
          stderr: 'pipe',
        });
        s.transport.stderr.on('data', (b) => s.stderr.push(b));
      } else {
        s.server = await startHttpServer({ home: s.tmp.home, userHome: s.tmp.userHome, env: extraEnv });
        s.transport = new StreamableHTTPClientTransport(new URL(s.server.url));
      }
      try {
        await withTimeout(s.client.connect(s.transport), 15000, `initialize over ${kind}`);
      } catch (e) {
        e.message += serverLog();
        throw e;
      }
      // Record progress notifications as they arrive, before the SDK handles them.
      const dispatch = s.transport.onmessage;
      s.transport.onmessage = (msg, extra) => {
        if (msg?.method === 'notifications/progress') s.progress.push(msg.params);
        dispatch?.(msg, extra);
      };
    });

    after(async () => {
      try {
        await s.client?.close();
      } catch {}
      if (s.server) await s.server.stop();
      s.tmp?.remove();
    });

    step('initialize: server info, protocol version and capabilities', () => {
      const info = s.client.getServerVersion();
      assert.equal(info?.name, 'datavor', `serverInfo.name: ${JSON.stringify(info)}`);
      assert.ok(info.version, 'serverInfo.version is empty');
      const caps = s.client.getServerCapabilities();
      assert.ok(caps?.tools, `no tools capability: ${JSON.stringify(caps)}`);
      assert.equal(caps.resources?.subscribe, true, `resources.subscribe: ${JSON.stringify(caps.resources)}`);
      assert.equal(caps.resources?.listChanged, true, `resources.listChanged: ${JSON.stringify(caps.resources)}`);
      assert.ok(caps.prompts, 'no prompts capability');
      assert.ok(caps.logging, 'no logging capability');
      assert.ok(caps.completions, 'no completions capability');
      if (kind === 'http') {
        assert.equal(s.transport.protocolVersion, '2025-11-25', 'negotiated protocol version');
        assert.ok(s.transport.sessionId, 'the server issued no Mcp-Session-Id');
      }
    });

    step('ping and logging/setLevel return {}', async () => {
      assert.deepEqual(await s.client.ping(), {});
      assert.deepEqual(await s.client.setLoggingLevel('info'), {});
    });

    step('tools/list: the four connection tools with schemas and annotations', async () => {
      const { tools } = await s.client.listTools();
      for (const t of tools) s.listed.set(t.name, t);
      for (const name of TOOL_NAMES) {
        const t = s.listed.get(name);
        assert.ok(t, `tool ${name} missing from tools/list (got ${[...s.listed.keys()].join(', ')})`);
        assert.ok(t.description?.length > 20, `${name}: description missing or too short`);
        assert.equal(t.inputSchema?.type, 'object', `${name}: inputSchema.type must be "object"`);
        assert.equal(t.outputSchema?.type, 'object', `${name}: outputSchema.type must be "object"`);
        for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint']) {
          assert.equal(typeof t.annotations?.[hint], 'boolean', `${name}: annotations.${hint} must be a boolean, got ${JSON.stringify(t.annotations)}`);
        }
      }
      for (const t of tools) {
        // Every listed schema must compile; remember validators for the calls below.
        let fromList;
        try {
          compileSchema(t.inputSchema);
          if (t.outputSchema) fromList = compileSchema(t.outputSchema);
        } catch (e) {
          assert.fail(`${t.name}: its schema does not compile with ajv: ${e.message}`);
        }
        const file = FILES[t.name];
        s.validators.set(t.name, [fromList, file?.outputSchema ? compileSchema(file.outputSchema) : null]);
      }
      assert.equal(s.listed.get('list_connections').annotations.readOnlyHint, true, 'list_connections must be read-only');
      assert.equal(s.listed.get('remove_connection').annotations.destructiveHint, true, 'remove_connection must be destructive');
    });

    step('tools/list matches mcp-schema/*.json', { skip: Object.keys(FILES).length === 0 && 'mcp-schema/ not found' }, () => {
      for (const name of TOOL_NAMES) {
        const file = FILES[name];
        if (!file) continue;
        const t = s.listed.get(name);
        assert.deepEqual(t.inputSchema, file.inputSchema, `${name}: listed inputSchema differs from mcp-schema/${name}.json`);
        assert.deepEqual(t.outputSchema, file.outputSchema, `${name}: listed outputSchema differs from mcp-schema/${name}.json`);
        assert.deepEqual(t.annotations, file.annotations, `${name}: listed annotations differ from mcp-schema/${name}.json`);
      }
    });

    step('add_connection: sqlite, created, idempotent, replace', async () => {
      const url = `sqlite:${s.sqlitePath}`;
      const a = await callOk('add_connection', { name: 'sqlite_main', url });
      assert.equal(a.created, true);
      assert.equal(a.connection.name, 'sqlite_main');
      assert.equal(a.connection.kind, 'sqlite');
      assert.equal(a.connection.password_source, 'none');

      const again = await callOk('add_connection', { name: 'sqlite_main', url });
      assert.equal(again.created, false, 'adding the same name and URL again must report created: false');

      const other = `sqlite:${path.join(s.tmp.root, 'other.db')}`;
      const conflict = await call('add_connection', { name: 'sqlite_main', url: other });
      assert.equal(conflict.isError, true, `a different URL under an existing name without replace must fail: ${textOf(conflict)}`);
      assert.match(textOf(conflict), /replace/, 'the error should point at replace: true');

      const replaced = await callOk('add_connection', { name: 'sqlite_main', url: other, replace: true });
      assert.equal(replaced.created, false);
      assert.match(replaced.connection.url, /other\.db/);
      await callOk('add_connection', { name: 'sqlite_main', url, replace: true });
    });

    step('add_connection: postgresql with password (secrets file) and with password_env', { skip: NO_PG }, async () => {
      const a = await callOk('add_connection', { name: 'pg_main', url: PG.url, password: PG.password, sslmode: 'disable' });
      assert.equal(a.created, true);
      assert.equal(a.connection.kind, 'postgresql');
      assert.equal(a.connection.password_source, 'secrets_file');
      assert.ok(!a.connection.url.includes(PG.password) || PG.password === '', 'the URL shown must not contain the password');

      const b = await callOk('add_connection', { name: 'pg_env', url: PG.url, password_env: PW_ENV });
      assert.equal(b.connection.password_source, 'env');
      assert.equal(b.connection.password_env, PW_ENV);
    });

    step('add_connection: mariadb', { skip: NO_MARIADB }, async () => {
      const a = await callOk('add_connection', { name: 'maria_main', url: MARIADB.url, password: MARIADB.password });
      assert.equal(a.connection.kind, 'mariadb');
      assert.equal(a.connection.password_source, 'secrets_file');
    });

    step('list_connections: all and filtered by kind', async () => {
      const all = await callOk('list_connections', {});
      const names = all.connections.map((c) => c.name);
      assert.ok(names.includes('sqlite_main'), `sqlite_main not listed: ${names}`);
      if (PG) assert.ok(names.includes('pg_main') && names.includes('pg_env'), `PG connections not listed: ${names}`);
      const sq = await callOk('list_connections', { kind: 'sqlite' });
      assert.ok(sq.connections.length >= 1);
      assert.ok(sq.connections.every((c) => c.kind === 'sqlite'), `kind filter leaked: ${JSON.stringify(sq.connections)}`);
      const pg = await callOk('list_connections', { kind: 'postgresql' });
      assert.equal(pg.connections.length, PG ? 2 : 0, `postgresql connections: ${JSON.stringify(pg.connections)}`);
    });

    step('test_connection: sqlite', async () => {
      const r = await callOk('test_connection', { name: 'sqlite_main' });
      assert.equal(r.connection, 'sqlite_main');
      assert.equal(r.kind, 'sqlite');
      assert.ok(r.checks.length >= 1, 'no checks reported');
      assert.ok(r.summary.length > 0, 'empty summary');
    });

    step('test_connection: postgresql with progress notifications', { skip: NO_PG }, async (t) => {
      const progress = [];
      const seenBefore = new Set(s.progress);
      const r = await callOk('test_connection', { name: 'pg_main', timeout_seconds: 20 }, {
        onprogress: (p) => progress.push(p),
        timeout: 90000,
      });
      const bad = r.checks.filter((c) => c.status === 'fail');
      assert.equal(r.ok, true, `test_connection on the CI PostgreSQL (wal_level=logical, superuser) failed: ${JSON.stringify(bad)}\nsummary: ${r.summary}`);
      assert.equal(r.kind, 'postgresql');
      assert.ok(r.server_version, 'server_version missing for a reachable PostgreSQL');
      assert.ok(r.checks.length >= 3, `expected several checks, got ${JSON.stringify(r.checks)}`);
      for (const c of r.checks.filter((c) => c.status === 'fail' || c.status === 'warn')) {
        assert.ok(c.fix || c.status === 'warn', `failing check ${c.id} has no fix`);
      }
      // What reached the wire (recorded before the SDK's dispatch): over stdio the
      // SDK drops progress that arrives in the same read as the response, so
      // onprogress alone may see fewer (or none).
      const wire = s.progress.filter((p) => !seenBefore.has(p));
      assert.ok(wire.length >= 1, 'no notifications/progress arrived for a call with a progressToken');
      const tokens = new Set(wire.map((p) => JSON.stringify(p.progressToken)));
      assert.equal(tokens.size, 1, `progress notifications carry different tokens: ${[...tokens]}`);
      assert.equal(typeof wire[0].progressToken, 'number', 'the SDK sent an integer progressToken; it must be echoed unchanged');
      for (let i = 1; i < wire.length; i++) {
        assert.ok(wire[i].progress > wire[i - 1].progress, `progress must increase: ${JSON.stringify(wire)}`);
      }
      if (kind === 'http') assert.ok(progress.length >= 1, `onprogress was never called (wire saw ${wire.length})`);
      assert.ok(progress.length <= wire.length);
      t.diagnostic(`${r.checks.length} checks; progress: ${wire.length} on the wire, ${progress.length} via onprogress`);
    });

    step('test_connection: postgresql with password_env', { skip: NO_PG }, async () => {
      const r = await callOk('test_connection', { name: 'pg_env', timeout_seconds: 20 });
      assert.equal(r.ok, true, `password_env connection failed: ${r.summary} ${JSON.stringify(r.checks.filter((c) => c.status === 'fail'))}`);
    });

    step('test_connection: mariadb', { skip: NO_MARIADB }, async () => {
      const r = await callOk('test_connection', { name: 'maria_main', timeout_seconds: 20 }, { timeout: 90000 });
      assert.equal(r.kind, 'mariadb');
      assert.ok(r.server_version, 'server_version missing for a reachable MariaDB');
      assert.ok(r.checks.length >= 3, `expected several checks, got ${JSON.stringify(r.checks)}`);
    });

    step('test_connection: unknown connection name is a tool error', async () => {
      const r = await call('test_connection', { name: 'no_such_conn' });
      assert.equal(r.isError, true, `expected isError for an unknown connection, got ${JSON.stringify(r).slice(0, 400)}`);
      assert.match(textOf(r), /no_such_conn/, 'the error should name the connection');
    });

    step('remove_connection: removed, then removed: false', async () => {
      await callOk('add_connection', { name: 'tmp_remove', url: `sqlite:${path.join(s.tmp.root, 'rm.db')}` });
      const r1 = await callOk('remove_connection', { name: 'tmp_remove' });
      assert.deepEqual(r1, { name: 'tmp_remove', removed: true });
      const r2 = await callOk('remove_connection', { name: 'tmp_remove' });
      assert.deepEqual(r2, { name: 'tmp_remove', removed: false });
      const { connections } = await callOk('list_connections', {});
      assert.ok(!connections.some((c) => c.name === 'tmp_remove'), 'removed connection still listed');
    });

    step('invalid arguments give isError results naming the field', async (t) => {
      const cases = [
        ['add_connection', { url: 'sqlite:/tmp/x.db' }, 'name', 'missing required'],
        ['add_connection', { name: 'bad1' }, 'url', 'missing required'],
        ['add_connection', { name: 'bad1', url: 42 }, 'url', 'wrong type'],
        ['add_connection', { name: 'bad1', url: 'sqlite:/tmp/x.db', replace: 'yes' }, 'replace', 'wrong type'],
        ['add_connection', { name: 'bad1', url: 'sqlite:/tmp/x.db', bogus_field: 1 }, 'bogus_field', 'unknown field'],
        ['add_connection', { name: 'bad name!', url: 'sqlite:/tmp/x.db' }, 'name', 'pattern'],
        ['add_connection', { name: 'bad1', url: 'sqlite:/tmp/x.db', sslmode: 'sometimes' }, 'sslmode', 'enum'],
        ['list_connections', { kind: 7 }, 'kind', 'wrong type'],
        ['list_connections', { kind: 'oracle' }, 'kind', 'enum'],
        ['list_connections', { extra_thing: true }, 'extra_thing', 'unknown field'],
        ['test_connection', {}, 'name', 'missing required'],
        ['test_connection', { name: 'sqlite_main', timeout_seconds: 'ten' }, 'timeout_seconds', 'wrong type'],
        ['test_connection', { name: 'sqlite_main', timeout_seconds: 0 }, 'timeout_seconds', 'below minimum'],
        ['test_connection', { name: 'sqlite_main', tables: 'public.t' }, 'tables', 'wrong type'],
        ['test_connection', { name: 'sqlite_main', nope_field: 1 }, 'nope_field', 'unknown field'],
        ['remove_connection', {}, 'name', 'missing required'],
        ['remove_connection', { name: 123 }, 'name', 'wrong type'],
        ['remove_connection', { name: 'sqlite_main', zzz_extra: 1 }, 'zzz_extra', 'unknown field'],
      ];
      for (const [tool, args, field, why] of cases) {
        await t.test(`${tool} ${why} (${field})`, async () => {
          const r = await call(tool, args);
          assert.equal(r.isError, true, `${tool}(${show(args)}) [${why}] should be an isError result, got ${JSON.stringify(r).slice(0, 400)}`);
          assert.ok(textOf(r).includes(field), `${tool}(${show(args)}) [${why}]: error text does not name "${field}": ${textOf(r)}`);
        });
      }
      const { connections } = await callOk('list_connections', {});
      assert.ok(!connections.some((c) => c.name === 'bad1'), 'an invalid add_connection call saved a connection');
      assert.ok(connections.some((c) => c.name === 'sqlite_main'), 'remove_connection with an extra field removed the connection');
    });

    step('unknown tool is JSON-RPC error -32602', async () => {
      await assert.rejects(call('no_such_tool', {}), (e) => {
        assert.equal(e.code, -32602, `expected code -32602, got ${e.code}: ${e.message}`);
        return true;
      });
    });

    step('resources: list, templates, read', async () => {
      const { resources } = await s.client.listResources();
      const conns = resources.find((r) => r.uri === 'datavor://connections');
      assert.ok(conns, `datavor://connections not in resources/list: ${JSON.stringify(resources)}`);
      assert.equal(conns.mimeType, 'application/json');
      assert.ok(conns.name, 'resource without a name');

      const { resourceTemplates } = await s.client.listResourceTemplates();
      const tpl = resourceTemplates.find((r) => r.uriTemplate === 'datavor://connections/{name}');
      assert.ok(tpl, `template datavor://connections/{name} missing: ${JSON.stringify(resourceTemplates)}`);
      assert.ok(tpl.name, 'template without a name');

      const all = await s.client.readResource({ uri: 'datavor://connections' });
      assert.equal(all.contents.length, 1);
      assert.equal(all.contents[0].uri, 'datavor://connections');
      assert.equal(all.contents[0].mimeType, 'application/json');
      const parsed = JSON.parse(all.contents[0].text);
      assert.ok(all.contents[0].text.includes('sqlite_main'), `datavor://connections does not mention sqlite_main: ${all.contents[0].text}`);
      assert.ok(parsed && typeof parsed === 'object');

      const one = await s.client.readResource({ uri: 'datavor://connections/sqlite_main' });
      assert.equal(one.contents[0].uri, 'datavor://connections/sqlite_main');
      const c = JSON.parse(one.contents[0].text);
      assert.ok(JSON.stringify(c).includes('sqlite_main'), `connection resource: ${one.contents[0].text}`);

      await assert.rejects(s.client.readResource({ uri: 'datavor://connections/no_such_conn' }), (e) => {
        assert.equal(e.code, -32002, `unknown resource: expected -32002, got ${e.code}: ${e.message}`);
        return true;
      });
    });

    step('prompts: list and get with required arguments', async () => {
      const { prompts } = await s.client.listPrompts();
      assert.ok(prompts.length >= 1, 'no prompts');
      for (const p of prompts) {
        assert.ok(p.name && p.description, `prompt without name/description: ${JSON.stringify(p)}`);
        const args = {};
        for (const a of p.arguments ?? []) {
          if (!a.required) continue;
          args[a.name] = a.name === 'connection' ? 'sqlite_main' : /table/.test(a.name) ? 'public.t' : 'test';
        }
        const r = await s.client.getPrompt({ name: p.name, arguments: args });
        assert.ok(r.messages.length >= 1, `${p.name}: no messages`);
        for (const m of r.messages) {
          assert.ok(['user', 'assistant'].includes(m.role), `${p.name}: bad role ${m.role}`);
          assert.ok(m.content, `${p.name}: message without content`);
        }
        if (args.connection) assert.ok(JSON.stringify(r.messages).includes('sqlite_main'), `${p.name}: the connection argument is not used`);
        const required = (p.arguments ?? []).filter((a) => a.required);
        if (required.length) {
          await assert.rejects(s.client.getPrompt({ name: p.name, arguments: {} }), (e) => {
            assert.equal(e.code, -32602, `${p.name} without required arguments: expected -32602, got ${e.code}`);
            return true;
          });
        }
      }
      await assert.rejects(s.client.getPrompt({ name: 'no_such_prompt' }), (e) => e.code === -32602);
    });

    step('completion/complete: prompt argument and resource template', async () => {
      await callOk('add_connection', { name: 'sqlite_second', url: `sqlite:${path.join(s.tmp.root, 'second.db')}` });
      const { prompts } = await s.client.listPrompts();
      const p = prompts.find((x) => (x.arguments ?? []).some((a) => a.name === 'connection'));
      assert.ok(p, `no prompt has a "connection" argument: ${JSON.stringify(prompts)}`);
      const r1 = await s.client.complete({ ref: { type: 'ref/prompt', name: p.name }, argument: { name: 'connection', value: 'sqlite_' } });
      assert.deepEqual([...r1.completion.values].sort(), ['sqlite_main', 'sqlite_second'], `prompt completion: ${JSON.stringify(r1)}`);
      const r2 = await s.client.complete({ ref: { type: 'ref/prompt', name: p.name }, argument: { name: 'connection', value: 'sqlite_m' } });
      assert.deepEqual(r2.completion.values, ['sqlite_main']);
      const r3 = await s.client.complete({
        ref: { type: 'ref/resource', uri: 'datavor://connections/{name}' },
        argument: { name: 'name', value: 'sqlite_s' },
      });
      assert.deepEqual(r3.completion.values, ['sqlite_second'], `template completion: ${JSON.stringify(r3)}`);
      const r4 = await s.client.complete({ ref: { type: 'ref/prompt', name: p.name }, argument: { name: 'connection', value: 'zzz' } });
      assert.deepEqual(r4.completion.values, []);
      const r5 = await s.client.complete({ ref: { type: 'ref/prompt', name: p.name }, argument: { name: 'connection', value: '' } });
      assert.ok(r5.completion.values.includes('sqlite_main') && r5.completion.values.includes('sqlite_second'), `empty prefix: ${JSON.stringify(r5)}`);
    });

    step('resources/subscribe: add/remove send notifications/resources/updated; unsubscribe stops them', async () => {
      assert.deepEqual(await s.client.subscribeResource({ uri: 'datavor://connections' }), {});
      s.updates.length = 0;
      await callOk('add_connection', { name: 'watched', url: `sqlite:${path.join(s.tmp.root, 'watched.db')}` });
      await waitFor(() => s.updates.includes('datavor://connections'), 5000, 'notifications/resources/updated after add_connection');
      s.updates.length = 0;
      await callOk('remove_connection', { name: 'watched' });
      await waitFor(() => s.updates.includes('datavor://connections'), 5000, 'notifications/resources/updated after remove_connection');

      assert.deepEqual(await s.client.unsubscribeResource({ uri: 'datavor://connections' }), {});
      s.updates.length = 0;
      await callOk('add_connection', { name: 'unwatched', url: `sqlite:${path.join(s.tmp.root, 'unwatched.db')}` });
      await sleep(500);
      assert.ok(!s.updates.includes('datavor://connections'), 'notifications/resources/updated still sent after unsubscribe');
      await callOk('remove_connection', { name: 'unwatched' });
    });

    let bh;
    step('cancellation: an aborted test_connection rejects quickly and the server keeps serving', async (t) => {
      bh = await blackhole();
      await callOk('add_connection', { name: 'silent', url: `postgresql://x@127.0.0.1:${bh.port}/db`, sslmode: 'disable' });
      const ac = new AbortController();
      const t0 = Date.now();
      const timer = setTimeout(() => ac.abort('cancelled by test'), 300);
      let outcome;
      try {
        const r = await call('test_connection', { name: 'silent', timeout_seconds: 60 }, { signal: ac.signal, timeout: 70000 });
        outcome = `resolved after ${Date.now() - t0} ms: ${JSON.stringify(r).slice(0, 400)}`;
      } catch (e) {
        outcome = e;
      } finally {
        clearTimeout(timer);
      }
      const elapsed = Date.now() - t0;
      assert.ok(outcome instanceof Error, `test_connection against a server that never answers should still be running at 300 ms, but it ${outcome}`);
      assert.ok(elapsed < 5000, `the aborted call took ${elapsed} ms to reject`);
      t.diagnostic(`rejected after ${elapsed} ms: ${outcome.message}`);
      const t1 = Date.now();
      const { tools } = await withTimeout(s.client.listTools(), 5000, 'tools/list after a cancelled call');
      assert.ok(tools.length >= 4);
      assert.ok(Date.now() - t1 < 5000);
      // The server must still run tool calls (the cancelled one freed its slot).
      await callOk('list_connections', {});
    });

    step('cancellation: the server closes its connection to the silent database', async (t) => {
      assert.ok(bh, 'previous step did not run');
      try {
        assert.ok(bh.sockets.length >= 1, 'Datavor never opened a TCP connection to the silent server within 300 ms');
        await waitFor(() => bh.sockets.every((x) => x.closedAt), 5000, 'Datavor to close the TCP connection of the cancelled test_connection');
        t.diagnostic(`${bh.sockets.length} socket(s), closed ${bh.sockets.map((x) => x.closedAt - x.acceptedAt).join(', ')} ms after accept`);
      } finally {
        await bh.close();
        await callOk('remove_connection', { name: 'silent' });
      }
    });

    if (kind === 'http') {
      step('HTTP: DELETE ends the session; the old session id then gets 404', async () => {
        const sid = s.transport.sessionId;
        const res = await fetch(s.server.url, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } });
        await res.arrayBuffer();
        if (res.status === 405) return; // allowed: the server does not let clients end sessions
        assert.ok(res.ok, `DELETE /mcp: HTTP ${res.status}`);
        const res2 = await fetch(s.server.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-session-id': sid,
            'mcp-protocol-version': '2025-11-25',
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list', params: {} }),
        });
        await res2.arrayBuffer();
        assert.equal(res2.status, 404, 'a request on a terminated session must get HTTP 404');
      });
    }
  });
}

describeTransport('stdio');
describeTransport('http');

// Raw HTTP checks the SDK does not cover: bearer token, older protocol versions.
describe('Streamable HTTP: token and protocol versions', () => {
  const initBody = (v) =>
    JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: v, capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  const post = (url, body, headers = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body,
    });

  // The JSON-RPC message in a JSON or SSE response body.
  async function rpcResult(res) {
    const text = await res.text();
    if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      for (const ev of text.split(/\n\n/)) {
        const data = ev
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trim())
          .join('\n');
        if (data) {
          const m = JSON.parse(data);
          if ('result' in m || 'error' in m) return m;
        }
      }
      throw new Error(`no JSON-RPC response in SSE body: ${text}`);
    }
    return JSON.parse(text);
  }

  for (const [how, opts] of [
    ['--token', (tok) => ({ token: tok })],
    ['DATAVOR_TOKEN', (tok) => ({ env: { DATAVOR_TOKEN: tok } })],
  ]) {
    it(`${how}: requests need Authorization: Bearer`, async () => {
      requireExecutable(BIN);
      const tmp = tempHome('datavor-token-');
      const tok = `tok-${Math.random().toString(36).slice(2)}`;
      const srv = await startHttpServer({ home: tmp.home, userHome: tmp.userHome, ...opts(tok) });
      try {
        const none = await post(srv.url, initBody('2025-11-25'));
        await none.arrayBuffer();
        assert.equal(none.status, 401, `no token: expected 401, got ${none.status}${srv.describe()}`);
        const wrong = await post(srv.url, initBody('2025-11-25'), { authorization: 'Bearer wrong' });
        await wrong.arrayBuffer();
        assert.equal(wrong.status, 401, `wrong token: expected 401, got ${wrong.status}`);

        const client = new Client({ name: 'token-test', version: '1.0.0' }, { capabilities: {} });
        await client.connect(new StreamableHTTPClientTransport(new URL(srv.url), { requestInit: { headers: { authorization: `Bearer ${tok}` } } }));
        const { tools } = await client.listTools();
        assert.ok(tools.some((t) => t.name === 'list_connections'));
        await client.close();

        const bare = new Client({ name: 'token-test', version: '1.0.0' }, { capabilities: {} });
        await assert.rejects(bare.connect(new StreamableHTTPClientTransport(new URL(srv.url))), 'connecting without the token must fail');
        assert.ok(!srv.stderr().includes(tok), 'the token appears in the server log');
      } finally {
        await srv.stop();
        tmp.remove();
      }
    });
  }

  it('initialize accepts 2025-11-25, 2025-06-18 and 2025-03-26', async () => {
    requireExecutable(BIN);
    const tmp = tempHome('datavor-versions-');
    const srv = await startHttpServer({ home: tmp.home, userHome: tmp.userHome });
    try {
      for (const v of ['2025-11-25', '2025-06-18', '2025-03-26']) {
        const res = await post(srv.url, initBody(v));
        assert.equal(res.status, 200, `initialize ${v}: HTTP ${res.status}${srv.describe()}`);
        const m = await rpcResult(res);
        assert.equal(m.result?.protocolVersion, v, `initialize ${v}: ${JSON.stringify(m)}`);
      }
    } finally {
      await srv.stop();
      tmp.remove();
    }
  });
});
