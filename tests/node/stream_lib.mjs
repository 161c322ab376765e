// Helpers for the PostgreSQL -> SQLite stream end-to-end tests
// (stream_e2e.test.mjs): psql and sqlite3 through their CLIs, COPY text
// parsing, source-vs-target table comparison, a background writer that runs
// inside PostgreSQL, and a `datavor serve` driven by the official SDK Client.
//
// Source values are read with COPY ... TO STDOUT in a session with the same
// settings the stream uses (PGOPTIONS below), so they are each type's output
// function text, exactly what pgoutput and the snapshot COPY deliver.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { BIN, CapturingStdioTransport, requireExecutable, run, serverEnv, sleep, spawnCaptured, textOf, withTimeout } from './lib.mjs';

// ---------------------------------------------------------------- the test PostgreSQL

// The server scripts/test starts. These are acceptance tests: without it they fail.
export function requirePg() {
  const e = process.env;
  const missing = ['HOST', 'PORT', 'USER', 'PASSWORD', 'URL'].filter((k) => !e[`DATAVOR_TEST_PG_${k}`]);
  if (missing.length) {
    throw new Error(
      `DATAVOR_TEST_PG_{${missing.join(',')}} not set: the stream end-to-end tests need the test PostgreSQL. ` +
        'Run them through scripts/test, or: source scripts/lib/servers.sh; datavor_start_pg pg; node --test tests/node/stream_e2e.test.mjs',
    );
  }
  return {
    host: e.DATAVOR_TEST_PG_HOST,
    port: e.DATAVOR_TEST_PG_PORT,
    user: e.DATAVOR_TEST_PG_USER,
    password: e.DATAVOR_TEST_PG_PASSWORD,
    url: e.DATAVOR_TEST_PG_URL,
  };
}

// The stream's session settings (connectors/pg/pg_source.cpp), plus synchronous
// commits: a logical slot only sends flushed WAL, and the test server runs with
// synchronous_commit = off (changes would arrive up to 200 ms late).
export const PGOPTIONS =
  '-c TimeZone=UTC -c DateStyle=ISO,YMD -c extra_float_digits=3 -c bytea_output=hex -c IntervalStyle=postgres ' +
  '-c synchronous_commit=on';

function psqlArgs(pg, user, db = 'postgres') {
  return ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', String(pg.port), '-U', user ?? pg.user, '-d', db];
}

function psqlEnv(pg, password) {
  return { ...serverEnv(null), PGPASSWORD: password ?? pg.password, PGOPTIONS, PGCONNECT_TIMEOUT: '10' };
}

// Runs SQL (statements one by one, from stdin) in database `db` (default
// postgres); resolves stdout. Throws with stderr on failure.
export async function psql(pg, sql, { user, password, db, timeoutMs = 120000 } = {}) {
  const r = await run('psql', [...psqlArgs(pg, user, db), '-f', '-'], { env: psqlEnv(pg, password), input: sql, timeoutMs });
  if (r.code !== 0) {
    throw new Error(`psql failed (code ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}\n--- SQL:\n${sql.slice(0, 2000)}`);
  }
  return r.stdout;
}

// A psql that runs `sql` in the background (e.g. a writer loop); stop() waits for it.
export function psqlBackground(pg, sql) {
  const h = spawnCaptured('psql', [...psqlArgs(pg), '-c', sql], { env: psqlEnv(pg) });
  return h;
}

// One value, trimmed.
export async function psqlValue(pg, sql) {
  return (await psql(pg, sql)).trim();
}

// One COPY text field (PostgreSQL's escapes) -> string, or null for \N.
function unescapeCopy(field) {
  if (field === '\\N') return null;
  if (!field.includes('\\')) return field;
  let out = '';
  for (let i = 0; i < field.length; i++) {
    const c = field[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = field[++i];
    const simple = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' }[e];
    if (simple !== undefined) out += simple;
    else if (e >= '0' && e <= '7') {
      let v = Number(e);
      for (let d = 0; d < 2 && field[i + 1] >= '0' && field[i + 1] <= '7'; d++) v = v * 8 + Number(field[++i]);
      out += String.fromCharCode(v);
    } else out += e; // \\ and any other escaped character stand for themselves
  }
  return out;
}

// Parses COPY ... TO STDOUT (text format) into rows of string|null.
export function parseCopyText(text) {
  if (text === '') return [];
  assert.ok(text.endsWith('\n'), 'COPY output does not end with a newline');
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => line.split('\t').map(unescapeCopy));
}

// The source table's rows (each column's text form), ordered by `orderBy`.
export async function sourceRows(pg, table, columns, orderBy = 'id') {
  const cols = columns.map((c) => `"${c}"`).join(', ');
  const out = await psql(pg, `COPY (SELECT ${cols} FROM ${table} ORDER BY ${orderBy}) TO STDOUT;\n`);
  return parseCopyText(out);
}

// Column name -> {type: format_type, oid: pg_type oid of the column (a domain's own oid)}.
export async function sourceColumns(pg, table) {
  const out = await psql(
    pg,
    `SELECT json_agg(json_build_object('name', attname, 'type', format_type(atttypid, atttypmod), 'oid', atttypid::int) ORDER BY attnum)
       FROM pg_attribute WHERE attrelid = '${table}'::regclass AND attnum > 0 AND NOT attisdropped;\n`,
  );
  return JSON.parse(out.trim());
}

// ---------------------------------------------------------------- the SQLite target

// Runs SQL with the sqlite3 CLI (busy timeout, bail on error); resolves stdout.
export async function sqlite(file, sql, { timeoutMs = 60000 } = {}) {
  const r = await run('sqlite3', ['-batch', '-bail', '-noheader', '-list', file], {
    input: `.timeout 10000\n${sql}\n`,
    timeoutMs,
    env: serverEnv(null),
  });
  if (r.code !== 0) throw new Error(`sqlite3 ${file} failed (code ${r.code}): ${r.stderr.trim()}\n--- SQL:\n${sql.slice(0, 2000)}`);
  return r.stdout;
}

export const qi = (name) => `"${name.replaceAll('"', '""')}"`;

// The target table's rows as stored: per column {type: typeof(), text}, where
// text is hex(blob) for a BLOB, the shortest exact text of the double for a
// REAL (read bit for bit with the CLI's ieee754_to_blob: SQLite's own printf
// is not exact near the ends of the range), CAST(.. AS TEXT) for an INTEGER,
// the value for TEXT and null for NULL. Rows ordered by `orderBy`.
export async function targetRows(file, table, columns, orderBy = '"id"') {
  const parts = columns.map((c) => {
    const q = qi(c);
    return `typeof(${q}), CASE typeof(${q}) WHEN 'null' THEN NULL WHEN 'blob' THEN hex(${q}) WHEN 'real' THEN hex(ieee754_to_blob(${q})) ELSE CAST(${q} AS TEXT) END`;
  });
  const out = await sqlite(file, `SELECT json_array(${parts.join(', ')}) FROM ${qi(table)} ORDER BY ${orderBy};`);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const a = JSON.parse(l);
      const row = [];
      for (let i = 0; i < a.length; i += 2) {
        const text = a[i] === 'real' ? String(Buffer.from(a[i + 1], 'hex').readDoubleBE(0)) : a[i + 1];
        row.push({ type: a[i], text });
      }
      return row;
    });
}

export async function targetTableExists(file, table) {
  if (!fs.existsSync(file)) return false;
  const out = await sqlite(file, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '${table.replaceAll("'", "''")}';`);
  return out.trim() === '1';
}

// The documented mapping (connectors/sqlite/sqlite_sink.hpp) of a PostgreSQL
// column to how SQLite stores it, by the column's type oid.
//   int2/int4/int8/oid -> INTEGER;  boolean -> INTEGER 0/1;  bytea -> BLOB;
//   real/double -> REAL, but NaN, Infinity and -Infinity stay TEXT;
//   everything else (numeric, text types, date/time, interval, uuid, json,
//   arrays, enums, inet, cidr, domains: a domain has its own oid) -> TEXT in
//   PostgreSQL's text form.
const OID = { bool: 16, bytea: 17, int8: 20, int2: 21, int4: 23, oid: 26, float4: 700, float8: 701 };
export function kindOf(oid) {
  switch (oid) {
    case OID.bool:
      return 'bool';
    case OID.bytea:
      return 'bytea';
    case OID.int2:
    case OID.int4:
    case OID.int8:
    case OID.oid:
      return 'int';
    case OID.float4:
    case OID.float8:
      return 'float';
    default:
      return 'text';
  }
}
export const DECLARED_TYPE = { bool: 'INTEGER', bytea: 'BLOB', int: 'INTEGER', float: 'REAL', text: 'TEXT' };

// null when the target cell stores exactly the source's text form `src`, else why not.
export function cellMismatch(kind, src, tgt) {
  if (src === null) return tgt.type === 'null' ? null : `expected NULL, target has ${tgt.type} ${show(tgt.text)}`;
  if (tgt.type === 'null') return `expected ${show(src)}, target has NULL`;
  switch (kind) {
    case 'bool': {
      const want = { t: '1', f: '0' }[src];
      return tgt.type === 'integer' && tgt.text === want ? null : `boolean ${src}: expected integer ${want}, target has ${tgt.type} ${show(tgt.text)}`;
    }
    case 'bytea': {
      const want = src.startsWith('\\x') ? src.slice(2).toLowerCase() : `<not hex: ${src}>`;
      return tgt.type === 'blob' && tgt.text.toLowerCase() === want ? null : `bytea ${show(src)}: target has ${tgt.type} ${show(tgt.text)}`;
    }
    case 'int':
      return tgt.type === 'integer' && tgt.text === src ? null : `integer ${src}: target has ${tgt.type} ${show(tgt.text)}`;
    case 'float':
      if (['NaN', 'Infinity', '-Infinity'].includes(src))
        return tgt.type === 'text' && tgt.text === src ? null : `float ${src}: expected text ${src}, target has ${tgt.type} ${show(tgt.text)}`;
      // The same double (PostgreSQL prints the shortest text that reads back exactly).
      return tgt.type === 'real' && Number(tgt.text) === Number(src) ? null : `float ${src}: target has ${tgt.type} ${show(tgt.text)}`;
    default:
      return tgt.type === 'text' && tgt.text === src ? null : `expected text ${show(src)}, target has ${tgt.type} ${show(tgt.text)}`;
  }
}

function show(s) {
  if (typeof s !== 'string') return JSON.stringify(s);
  return s.length > 120 ? `${JSON.stringify(s.slice(0, 100))}...(${s.length} chars)` : JSON.stringify(s);
}

// Compares every row and column of a source table with its target table.
// `keyIndex` is the position of the (single-column, integer) key in `columns`.
// Resolves null when they are identical, else a readable list of differences.
export async function diffTables(pg, srcTable, file, tgtTable, columns, kinds, { keyIndex = 0, max = 12 } = {}) {
  const order = qi(columns[keyIndex]);
  const [src, tgt] = await Promise.all([
    sourceRows(pg, srcTable, columns, order),
    targetTableExists(file, tgtTable).then((ok) => (ok ? targetRows(file, tgtTable, columns, order) : null)),
  ]);
  if (tgt === null) return `target table ${tgtTable} does not exist in ${file}`;
  const problems = [];
  const byKey = new Map(tgt.map((r) => [r[keyIndex].text, r]));
  const seen = new Set();
  for (const s of src) {
    const key = s[keyIndex];
    const t = byKey.get(key);
    if (!t) {
      problems.push(`row ${key}: missing in the target`);
      continue;
    }
    seen.add(key);
    for (let i = 0; i < columns.length; i++) {
      const m = cellMismatch(kinds[i], s[i], t[i]);
      if (m) problems.push(`row ${key} column ${columns[i]}: ${m}`);
    }
  }
  for (const t of tgt) if (!seen.has(t[keyIndex].text)) problems.push(`row ${t[keyIndex].text}: in the target but not in the source`);
  if (!problems.length) return null;
  return `${problems.length} difference(s) between ${srcTable} (${src.length} rows) and the target ${tgtTable} (${tgt.length} rows):\n  ` +
    problems.slice(0, max).join('\n  ') + (problems.length > max ? `\n  ... and ${problems.length - max} more` : '');
}

// Polls `diff()` (null = equal) until it is null; fails with the last difference.
export async function waitForEqual(diff, timeoutMs, what, context = () => '') {
  const deadline = Date.now() + timeoutMs;
  let last = 'never compared';
  for (;;) {
    try {
      last = await diff();
    } catch (e) {
      last = `compare failed: ${e.message}`;
    }
    if (last === null) return;
    if (Date.now() > deadline) assert.fail(`${what}: not equal after ${timeoutMs} ms:\n${last}${context()}`);
    await sleep(200);
  }
}

// Polls an async predicate until it returns a truthy value (which is returned).
// Polls `pred` until it returns a truthy value (returned); unlike waitUntil,
// an assertion thrown by `pred` fails at once.
export async function until(pred, timeoutMs, what, context = () => '', { everyMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${context()}`);
    await sleep(everyMs);
  }
}

export async function waitUntil(pred, timeoutMs, what, context = () => '') {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const v = await pred();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError.message})` : ''}${context()}`);
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------- LSNs and slots

// 'X/Y' -> BigInt.
export function lsnToBig(text) {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(text ?? '');
  assert.ok(m, `not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

// The slot's row in pg_replication_slots, or null.
export async function slotInfo(pg, slot) {
  const out = await psqlValue(
    pg,
    `SELECT json_build_object('active', active, 'active_pid', active_pid, 'confirmed_flush_lsn', confirmed_flush_lsn::text, 'plugin', plugin)
       FROM pg_replication_slots WHERE slot_name = '${slot}';`,
  );
  return out ? JSON.parse(out) : null;
}

// The stream's committed position in the target's _datavor_offsets, or null.
export async function targetPosition(file, stream) {
  if (!fs.existsSync(file)) return null;
  const out = await sqlite(
    file,
    `SELECT CASE WHEN EXISTS (SELECT 1 FROM sqlite_master WHERE name = '_datavor_offsets')
       THEN (SELECT json_object('position', position, 'position_int', position_int) FROM _datavor_offsets WHERE stream = '${stream}') END;`,
  );
  return out.trim() ? JSON.parse(out.trim()) : null;
}

// Drops what a test left on the source: the slot (terminating its walsender
// if needed), the publication, and the given SQL objects.
export async function cleanupSource(pg, { slots = [], publications = [], sql = '' } = {}) {
  const stmts = [];
  for (const s of slots) {
    stmts.push(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '${s}' AND active_pid IS NOT NULL;`);
  }
  if (slots.length) stmts.push('SELECT pg_sleep(0.2);');
  for (const s of slots) stmts.push(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${s}';`);
  for (const p of publications) stmts.push(`DROP PUBLICATION IF EXISTS ${qi(p)};`);
  if (sql) stmts.push(sql);
  try {
    await psql(pg, stmts.join('\n'));
  } catch (e) {
    console.error(`# cleanup failed: ${e.message}`);
  }
}

// ---------------------------------------------------------------- a writer inside PostgreSQL

// Creates `table` (id bigint key, ver, n, payload, ts) with `rows` rows, a
// control table, a version sequence and an audit trigger that records every
// committed row version (insert/update: the new ver; delete: the old ver) in
// `table`_audit, which is not published.
export async function createWriterTable(pg, table, rows) {
  await psql(
    pg,
    `CREATE SEQUENCE ${table}_ver;
     CREATE SEQUENCE ${table}_id START 10000000;
     CREATE TABLE ${table} (id bigint PRIMARY KEY, ver bigint NOT NULL, n int NOT NULL, payload text, ts timestamptz NOT NULL DEFAULT clock_timestamp());
     CREATE TABLE ${table}_ctl (stop boolean NOT NULL, iterations bigint NOT NULL);
     INSERT INTO ${table}_ctl VALUES (false, 0);
     CREATE TABLE ${table}_audit (op char(1) NOT NULL, id bigint NOT NULL, ver bigint NOT NULL);
     CREATE FUNCTION ${table}_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $f$
     BEGIN
       IF TG_OP = 'DELETE' THEN INSERT INTO ${table}_audit VALUES ('D', OLD.id, OLD.ver); RETURN OLD; END IF;
       INSERT INTO ${table}_audit VALUES ('W', NEW.id, NEW.ver); RETURN NEW;
     END $f$;
     CREATE TRIGGER ${table}_audit_tg AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_audit_fn();
     INSERT INTO ${table} (id, ver, n, payload)
       SELECT g, nextval('${table}_ver'), 0, md5(g::text) FROM generate_series(1, ${rows}) g;
     ANALYZE ${table};`,
  );
}

// Starts a writer that loops inside PostgreSQL, one transaction per
// iteration: an insert, an update of a random existing row and, every third
// iteration, a delete; every 10th iteration is a bigger transaction (5
// updates). Each write takes a new `ver`. stop() sets the flag and waits.
export function startWriter(pg, table, { rows, sleepMs = 2 } = {}) {
  const sql = `DO $w$
DECLARE i bigint := 0; k bigint;
BEGIN
  LOOP
    i := i + 1;
    INSERT INTO ${table} (id, ver, n, payload) VALUES (nextval('${table}_id'), nextval('${table}_ver'), 0, 'w' || i);
    UPDATE ${table} SET ver = nextval('${table}_ver'), n = n + 1, payload = md5(random()::text), ts = clock_timestamp()
      WHERE id = 1 + floor(random() * ${rows})::bigint;
    IF i % 3 = 0 THEN
      DELETE FROM ${table} WHERE id = (SELECT max(id) - 1 FROM ${table});
    END IF;
    IF i % 10 = 0 THEN
      FOR k IN 1..5 LOOP
        UPDATE ${table} SET ver = nextval('${table}_ver'), n = n + 1 WHERE id = 1 + floor(random() * ${rows})::bigint;
      END LOOP;
    END IF;
    UPDATE ${table}_ctl SET iterations = i;
    COMMIT;
    EXIT WHEN (SELECT stop FROM ${table}_ctl);
    PERFORM pg_sleep(${sleepMs / 1000});
  END LOOP;
END
$w$;`;
  const h = psqlBackground(pg, sql);
  return {
    h,
    async iterations() {
      return Number(await psqlValue(pg, `SELECT iterations FROM ${table}_ctl;`));
    },
    async stop() {
      await psql(pg, `UPDATE ${table}_ctl SET stop = true;`);
      const r = await withTimeout(h.exited, 30000, `writer on ${table} to stop`);
      await psql(pg, `UPDATE ${table}_ctl SET stop = false;`);
      assert.equal(r.code, 0, `the writer failed: ${h.describe()}`);
    },
    running: () => h.proc.exitCode === null && h.proc.signalCode === null,
  };
}

export const WRITER_COLUMNS = ['id', 'ver', 'n', 'payload', 'ts'];
export const WRITER_KINDS = ['int', 'int', 'int', 'text', 'text'];

// Pre-creates the writer's target table in SQLite (the types the sink would
// choose) with triggers that log every write the sink makes into
// _test_writes(op, id, ver): 'W' for an insert or update (the new ver), 'D'
// for a delete (the old ver). Written in the sink's own transactions, so a
// crash rolls a log entry back together with its change.
export async function createTargetWithWriteLog(file, table) {
  await sqlite(
    file,
    `PRAGMA journal_mode=WAL;
     CREATE TABLE ${qi(table)} ("id" INTEGER, "ver" INTEGER, "n" INTEGER, "payload" TEXT, "ts" TEXT, PRIMARY KEY ("id"));
     CREATE TABLE _test_writes (seq INTEGER PRIMARY KEY, op TEXT NOT NULL, id INTEGER NOT NULL, ver INTEGER NOT NULL);
     CREATE TRIGGER _test_w_ins AFTER INSERT ON ${qi(table)} BEGIN INSERT INTO _test_writes (op, id, ver) VALUES ('W', NEW.id, NEW.ver); END;
     CREATE TRIGGER _test_w_upd AFTER UPDATE ON ${qi(table)} BEGIN INSERT INTO _test_writes (op, id, ver) VALUES ('W', NEW.id, NEW.ver); END;
     CREATE TRIGGER _test_w_del AFTER DELETE ON ${qi(table)} BEGIN INSERT INTO _test_writes (op, id, ver) VALUES ('D', OLD.id, OLD.ver); END;`,
  );
}

// Exactly-once check on the write logs: no change was applied twice, none
// was invented, and every change committed on the source with ver > minVer
// (i.e. after the snapshot) was applied.
export async function checkWriteLog(pg, table, file, minVer) {
  const tgt = (await sqlite(file, "SELECT op || ' ' || id || ' ' || ver FROM _test_writes;")).split('\n').filter(Boolean);
  const src = (await psql(pg, `SELECT op || ' ' || id || ' ' || ver FROM ${table}_audit;`)).split('\n').filter(Boolean);
  const srcSet = new Set(src);
  const counts = new Map();
  for (const w of tgt) counts.set(w, (counts.get(w) ?? 0) + 1);
  const twice = [...counts].filter(([, n]) => n > 1).map(([w, n]) => `${w} (x${n})`);
  const invented = [...counts.keys()].filter((w) => !srcSet.has(w));
  const missing = src.filter((w) => BigInt(w.split(' ')[2]) > BigInt(minVer) && !counts.has(w));
  const problems = [];
  if (twice.length) problems.push(`${twice.length} change(s) applied more than once (op id ver): ${twice.slice(0, 10).join(', ')}`);
  if (invented.length) problems.push(`${invented.length} target write(s) match no source change: ${invented.slice(0, 10).join(', ')}`);
  if (missing.length) problems.push(`${missing.length} source change(s) after the snapshot never applied: ${missing.slice(0, 10).join(', ')}`);
  return { problems, sourceChanges: src.length, targetWrites: tgt.length, checkedAfterSnapshot: src.filter((w) => BigInt(w.split(' ')[2]) > BigInt(minVer)).length };
}

// ---------------------------------------------------------------- datavor serve over stdio with the SDK client

// Starts `datavor serve --home HOME` and connects the official SDK Client.
// The transport keeps the server's stderr; log notifications are kept too.
export async function startServe({ home, userHome, env = {} }) {
  requireExecutable(BIN);
  const transport = new CapturingStdioTransport(BIN, ['serve', '--home', home], { env: serverEnv(userHome, env), cwd: userHome });
  const client = new Client({ name: 'datavor-stream-e2e', version: '1.0.0' }, { capabilities: {} });
  const logs = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(`${n.params.level}: ${typeof n.params.data === 'string' ? n.params.data : JSON.stringify(n.params.data)}`);
  });
  const s = {
    client,
    transport,
    logs,
    get pid() {
      return transport.proc?.pid;
    },
    describe() {
      const err = transport.stderr();
      return `\n--- datavor serve (pid ${s.pid}) stderr (last 3000 chars):\n${err.slice(-3000)}\n--- log notifications (last 30):\n${logs.slice(-30).join('\n')}`;
    },
    call(name, args, opts = {}) {
      return client.callTool({ name, arguments: args }, CallToolResultSchema, { timeout: 60000, ...opts });
    },
    // A call that must succeed; resolves its structuredContent.
    async callOk(name, args, opts) {
      const r = await s.call(name, args, opts);
      assert.notEqual(r.isError, true, `${name}(${JSON.stringify(args, (k, v) => (k === 'password' ? '***' : v))}) returned isError: ${textOf(r)}\n${JSON.stringify(r.structuredContent ?? {}).slice(0, 3000)}${s.describe()}`);
      assert.ok(r.structuredContent, `${name}: no structuredContent`);
      return r.structuredContent;
    },
    // SIGKILL, then wait for the process to be gone.
    async kill9() {
      transport.proc.kill('SIGKILL');
      const r = await withTimeout(transport.exited, 10000, 'datavor serve to die after SIGKILL');
      assert.equal(r.signal, 'SIGKILL', `datavor serve was not killed by SIGKILL: ${JSON.stringify(r)}`);
      try {
        await client.close();
      } catch {}
    },
    // Closes stdin (the server saves running streams as running and exits).
    async close() {
      try {
        await client.close();
      } catch {}
      return transport.exited;
    },
  };
  try {
    await withTimeout(client.connect(transport), 15000, 'initialize datavor serve');
    await client.listTools(); // the SDK then validates structuredContent against each outputSchema
  } catch (e) {
    e.message += s.describe();
    try {
      transport.proc?.kill('SIGKILL');
    } catch {}
    throw e;
  }
  return s;
}

// Polls stream_status until `pred(stream)` holds; resolves the stream.
export async function waitForStream(srv, name, pred, timeoutMs, what) {
  let last;
  return waitUntil(
    async () => {
      last = (await srv.callOk('stream_status', { name })).stream;
      if (last.state === 'failed' && !pred(last)) assert.fail(`stream ${name} failed: ${last.last_error}${srv.describe()}`);
      return pred(last) ? last : null;
    },
    timeoutMs,
    `stream ${name}: ${what}`,
    () => `\nlast status: ${JSON.stringify(last)}${srv.describe()}`,
  );
}

export function writeEmptyFile(file) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '');
}

// ---------------------------------------------------------------- several writer tables in one target

// Like createTargetWithWriteLog, for several writer tables (createWriterTable)
// streamed into one SQLite file: each target table is pre-created and its
// triggers log into one _test_writes(seq, tbl, op, id, ver), so `seq` is the
// order in which the sink wrote, across tables.
export async function createTargetWithWriteLogs(file, tables) {
  const stmts = [
    'PRAGMA journal_mode=WAL;',
    'CREATE TABLE _test_writes (seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, op TEXT NOT NULL, id INTEGER NOT NULL, ver INTEGER NOT NULL);',
  ];
  for (const t of tables) {
    const lit = `'${t.replaceAll("'", "''")}'`;
    stmts.push(
      `CREATE TABLE ${qi(t)} ("id" INTEGER, "ver" INTEGER, "n" INTEGER, "payload" TEXT, "ts" TEXT, PRIMARY KEY ("id"));`,
      `CREATE TRIGGER ${qi(`_test_w_ins_${t}`)} AFTER INSERT ON ${qi(t)} BEGIN INSERT INTO _test_writes (tbl, op, id, ver) VALUES (${lit}, 'W', NEW.id, NEW.ver); END;`,
      `CREATE TRIGGER ${qi(`_test_w_upd_${t}`)} AFTER UPDATE ON ${qi(t)} BEGIN INSERT INTO _test_writes (tbl, op, id, ver) VALUES (${lit}, 'W', NEW.id, NEW.ver); END;`,
      `CREATE TRIGGER ${qi(`_test_w_del_${t}`)} AFTER DELETE ON ${qi(t)} BEGIN INSERT INTO _test_writes (tbl, op, id, ver) VALUES (${lit}, 'D', OLD.id, OLD.ver); END;`,
    );
  }
  await sqlite(file, stmts.join('\n'));
}

// checkWriteLog over createTargetWithWriteLogs' log. `cuts` maps each table to
// its minVer (the ver sequence's last_value when streaming began). No change
// applied twice, none invented (e.g. from a rolled-back transaction or
// savepoint: its versions never reach the source's audit table), and every
// committed source change with ver > minVer applied.
export async function checkWriteLogs(pg, file, cuts) {
  const lines = (text) => text.split('\n').filter(Boolean);
  const tgt = lines(await sqlite(file, "SELECT tbl || ' ' || op || ' ' || id || ' ' || ver FROM _test_writes;"));
  const src = [];
  const minVer = new Map();
  for (const [table, cut] of Object.entries(cuts)) {
    for (const w of lines(await psql(pg, `SELECT op || ' ' || id || ' ' || ver FROM ${table}_audit;`))) src.push(`${table} ${w}`);
    minVer.set(table, BigInt(cut));
  }
  const srcSet = new Set(src);
  const counts = new Map();
  for (const w of tgt) counts.set(w, (counts.get(w) ?? 0) + 1);
  const after = (w) => {
    const [table, , , ver] = w.split(' ');
    return BigInt(ver) > minVer.get(table);
  };
  const twice = [...counts].filter(([, n]) => n > 1).map(([w, n]) => `${w} (x${n})`);
  const invented = [...counts.keys()].filter((w) => !srcSet.has(w));
  const missing = src.filter((w) => after(w) && !counts.has(w));
  const problems = [];
  if (twice.length) problems.push(`${twice.length} change(s) applied more than once (table op id ver): ${twice.slice(0, 10).join(', ')}`);
  if (invented.length) problems.push(`${invented.length} target write(s) match no committed source change: ${invented.slice(0, 10).join(', ')}`);
  if (missing.length) problems.push(`${missing.length} committed source change(s) after the snapshot never applied: ${missing.slice(0, 10).join(', ')}`);
  return { problems, sourceChanges: src.length, targetWrites: tgt.length, checkedAfterSnapshot: src.filter(after).length };
}

// The slot's counters in pg_stat_replication_slots (spill_*, stream_*,
// total_*), as numbers, or null when the view has no row for it.
export async function slotStats(pg, slot) {
  const out = await psqlValue(
    pg,
    `SELECT json_build_object('spill_txns', spill_txns, 'spill_count', spill_count, 'spill_bytes', spill_bytes,
                              'stream_txns', stream_txns, 'stream_count', stream_count, 'stream_bytes', stream_bytes,
                              'total_txns', total_txns, 'total_bytes', total_bytes)
       FROM pg_stat_replication_slots WHERE slot_name = '${slot}';`,
  );
  return out ? JSON.parse(out) : null;
}

// ---------------------------------------------------------------- fault helpers (stream_faults.test.mjs)

// Every inspect_ledger entry matching `query`, page by page (500 a page).
export async function ledgerEntries(srv, query) {
  const out = [];
  let cursor;
  for (;;) {
    const page = await srv.callOk('inspect_ledger', { ...query, limit: 500, ...(cursor ? { cursor } : {}) });
    out.push(...page.entries);
    if (!page.next_cursor) return out;
    cursor = page.next_cursor;
  }
}

// Holds an exclusive lock on a SQLite file from another process (the sqlite3
// CLI inside BEGIN EXCLUSIVE; in WAL mode readers still read, writers get
// SQLITE_BUSY). Resolves once the lock is held; release() commits and waits
// for the process to exit.
export async function lockSqlite(file) {
  const h = spawnCaptured('sqlite3', ['-batch', '-bail', file], { env: serverEnv(null), stdin: 'pipe' });
  h.proc.stdin.write(".timeout 20000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n");
  const deadline = Date.now() + 30000;
  while (!h.stdout().includes('locked')) {
    if (h.proc.exitCode !== null) assert.fail(`sqlite3 could not lock ${file}${h.describe()}`);
    if (Date.now() > deadline) {
      h.proc.kill('SIGKILL');
      assert.fail(`sqlite3 did not get an exclusive lock on ${file} within 30 s${h.describe()}`);
    }
    await sleep(50);
  }
  return {
    h,
    async release() {
      h.proc.stdin.end('COMMIT;\n');
      const r = await withTimeout(h.exited, 15000, `sqlite3 holding ${file} to commit and exit`);
      assert.equal(r.code, 0, `the lock holder on ${file} failed${h.describe()}`);
    },
  };
}

// The resident set size of a process, in kB (VmRSS in /proc/PID/status).
export function rssKb(pid) {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

// SQL that drops what createWriterTable made.
export const dropWriterSql = (table) =>
  `DROP TABLE IF EXISTS ${table}, ${table}_ctl, ${table}_audit; DROP FUNCTION IF EXISTS ${table}_audit_fn; DROP SEQUENCE IF EXISTS ${table}_ver, ${table}_id;`;

// ---------------------------------------------------------------- kill -9 under a mixed workload (stream_kill20.test.mjs)

// A seeded pseudo-random generator (mulberry32): numbers in [0, 1), the same
// sequence for the same 32-bit seed, so a failing run can be replayed.
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A writer for a createWriterTable table (`rows` pre-populated rows) that
// makes exactly-counted row changes, looping inside PostgreSQL until it has
// made `changes` of them (rows inserted + updated + deleted, by ROW_COUNT):
// one transaction per iteration with 1-8 inserts, updates of 1-8 random
// existing rows (pre-populated or inserted by the writer), 0-3 deletes of
// random rows, in 5% of them a primary-key change, every 200th a 500-row
// update; and at each count in `big` one transaction of ~25,000 changes
// (updates of a key range, inserts, deletes: past the 20,000 changes at which
// Datavor spools a transaction to disk). Every write takes a new `ver`, so the
// audit trigger sees each change. random() is seeded (`seed` in [-1, 1]), so
// the workload repeats. At most `rate` changes per second in the small
// transactions (0: no limit; the big ones are not paced).
// The control row's `changes` column counts what is committed
// (`big_changes` the part made by the big transactions). After each
// commit the writer, the table's only writer, records in `table`_marks the
// WAL insert position L and the last ver V: every ver > V commits past L
// (writerCutAt turns a snapshot's position into the tightest cut).
// dropMixedWriterSql drops what it adds.
export async function startMixedWriter(pg, table, { rows, changes, rate = 0, seed = 0, big = [] }) {
  await psql(
    pg,
    `ALTER TABLE ${table}_ctl ADD COLUMN IF NOT EXISTS changes bigint NOT NULL DEFAULT 0,
                              ADD COLUMN IF NOT EXISTS big_changes bigint NOT NULL DEFAULT 0;
     CREATE TABLE IF NOT EXISTS ${table}_marks (lsn pg_lsn NOT NULL, ver bigint NOT NULL);`,
  );
  const pick = (maxid) =>
    `CASE WHEN random() < 0.3 AND ${maxid} >= 10000000 THEN 10000000 + floor(random() * (${maxid} - 9999999)) ELSE 1 + floor(random() * ${rows}) END::bigint`;
  const sql = `DO $w$
DECLARE
  c bigint := 0; i bigint := 0; rc bigint; b int := 1; s bigint;
  c0 bigint; bigc bigint := 0; -- changes made by the big transactions (not paced)
  maxid bigint := 0; lag double precision;
  big bigint[] := ARRAY[${big.map((x) => Math.floor(x)).join(',')}]::bigint[];
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM setseed(${seed});
  WHILE c < ${changes} LOOP
    i := i + 1;
    IF b <= coalesce(array_length(big, 1), 0) AND c >= big[b] THEN
      b := b + 1;
      c0 := c;
      s := 1 + floor(random() * (${rows} - 24000))::bigint;
      UPDATE ${table} SET ver = nextval('${table}_ver'), n = n + 1 WHERE id BETWEEN s AND s + 23000;
      GET DIAGNOSTICS rc = ROW_COUNT; c := c + rc;
      INSERT INTO ${table} (id, ver, n, payload) SELECT nextval('${table}_id'), nextval('${table}_ver'), 0, 'big ' || g FROM generate_series(1, 1500) g;
      GET DIAGNOSTICS rc = ROW_COUNT; c := c + rc;
      DELETE FROM ${table} WHERE id BETWEEN s + 23001 AND s + 23600;
      GET DIAGNOSTICS rc = ROW_COUNT; c := c + rc;
      bigc := bigc + (c - c0);
    ELSE
      INSERT INTO ${table} (id, ver, n, payload)
        SELECT nextval('${table}_id'), nextval('${table}_ver'), 0, md5(random()::text) FROM generate_series(1, 1 + floor(random() * 8)::int);
      GET DIAGNOSTICS rc = ROW_COUNT; c := c + rc;
      maxid := currval('${table}_id');
      UPDATE ${table} SET ver = nextval('${table}_ver'), n = n + 1, payload = md5(random()::text), ts = clock_timestamp()
        WHERE id = ANY (ARRAY(SELECT ${pick('maxid')} FROM generate_series(1, 1 + floor(random() * 8)::int)));
      GET DIAGNOSTICS rc = ROW_COUNT; c := c + rc;
      DELETE FROM ${table} WHERE id = ANY (ARRAY(SELECT ${pick('maxid')} FROM generate_series(1, floor(random() * 4)::int)));
      GET DIAGNOSTICS rc = ROW_COUNT; c := c + rc;
      IF random() < 0.05 THEN
        s := ${pick('maxid')};
        UPDATE ${table} SET id = nextval('${table}_id'), ver = nextval('${table}_ver') WHERE id = s;
        GET DIAGNOSTICS rc = ROW_COUNT; c := c + rc;
      END IF;
      IF i % 200 = 0 THEN
        UPDATE ${table} SET ver = nextval('${table}_ver'), n = n + 1
          WHERE id = ANY (ARRAY(SELECT 1 + floor(random() * ${rows})::bigint FROM generate_series(1, 500)));
        GET DIAGNOSTICS rc = ROW_COUNT; c := c + rc;
      END IF;
    END IF;
    UPDATE ${table}_ctl SET iterations = i, changes = c, big_changes = bigc;
    COMMIT;
    -- Everything up to ver V is committed below WAL position L: any later ver commits past L.
    INSERT INTO ${table}_marks VALUES (pg_current_wal_insert_lsn(), (SELECT last_value FROM ${table}_ver));
    EXIT WHEN (SELECT stop FROM ${table}_ctl);
${rate > 0 ? `    lag := (c - bigc)::double precision / ${rate} - extract(epoch FROM clock_timestamp() - t0);
    IF lag > 0.002 THEN PERFORM pg_sleep(lag); END IF;
` : ''}  END LOOP;
END
$w$;`;
  const h = psqlBackground(pg, sql);
  return {
    h,
    async changes() {
      return Number(await psqlValue(pg, `SELECT changes FROM ${table}_ctl;`));
    },
    running: () => h.proc.exitCode === null && h.proc.signalCode === null,
    // Waits for the writer to finish its changes; fails if it failed.
    async done(timeoutMs) {
      const r = await withTimeout(h.exited, timeoutMs, `writer on ${table} to make its changes`);
      assert.equal(r.code, 0, `the writer failed: ${h.describe()}`);
    },
    async stop() {
      if (!this.running()) return;
      await psql(pg, `UPDATE ${table}_ctl SET stop = true;`);
      await withTimeout(h.exited, 30000, `writer on ${table} to stop`);
    },
  };
}

// checkWriteLog (createTargetWithWriteLog's log) for a stream whose initial
// snapshot may have been interrupted and started over: only the target's
// writes with seq > `fromSeq` (the log's last seq when the last interrupted
// attempt died; 0 when none was) are the final snapshot and the streaming
// after it. Their leading run of deletes is that attempt emptying the table
// (the rows an interrupted attempt left), not changes: it is counted as
// `emptied` and left out. Among the rest no (op, id, ver) may appear twice,
// none may be unknown to the source, and every source change with ver > cut
// (committed after the final snapshot) must be there. Writes of interrupted
// attempts (seq <= fromSeq) must still match source changes. With
// `extended` (after extendWriteLogs) a delete counts as after the cut by its
// at_ver, and `keyChangeDeletes` counts the segment's deletes that are the
// old rows of primary-key changes.
export async function checkWriteLogSince(pg, table, file, { cut, fromSeq = 0, extended = false }) {
  const lines = (text) => text.split('\n').filter(Boolean);
  // "op id ver" and when it was made: at_ver after extendWriteLogs, else ver.
  const rows = lines(
    await psql(pg, `SELECT op || ' ' || id || ' ' || ver || ' ' || ${extended ? 'coalesce(at_ver, ver)' : 'ver'} FROM ${table}_audit;`, {
      timeoutMs: 300000,
    }),
  );
  const src = rows.map((r) => r.slice(0, r.lastIndexOf(' ')));
  const madeAt = new Map(rows.map((r, i) => [src[i], Number(r.slice(r.lastIndexOf(' ') + 1))]));
  const srcSet = new Set(src);
  const earlier = lines(await sqlite(file, `SELECT op || ' ' || id || ' ' || ver FROM _test_writes WHERE seq <= ${fromSeq} AND op = 'W';`, { timeoutMs: 300000 }));
  const tgt = lines(await sqlite(file, `SELECT op || ' ' || id || ' ' || ver FROM _test_writes WHERE seq > ${fromSeq} ORDER BY seq;`, { timeoutMs: 300000 }));
  let emptied = 0;
  while (emptied < tgt.length && tgt[emptied].startsWith('D ')) emptied++;
  const counts = new Map();
  for (let i = emptied; i < tgt.length; i++) counts.set(tgt[i], (counts.get(tgt[i]) ?? 0) + 1);
  const after = (w) => madeAt.get(w) > Number(cut);
  const twice = [...counts].filter(([, n]) => n > 1).map(([w, n]) => `${w} (x${n})`);
  const invented = [...counts.keys()].filter((w) => !srcSet.has(w));
  const inventedEarlier = earlier.filter((w) => !srcSet.has(w));
  const missing = src.filter((w) => after(w) && !counts.has(w));
  let keyChangeDeletes = 0;
  if (extended) {
    const moved = new Set(lines(await psql(pg, `SELECT 'D ' || id || ' ' || ver FROM ${table}_audit WHERE keychange;`, { timeoutMs: 300000 })));
    for (const w of counts.keys()) if (moved.has(w)) keyChangeDeletes++;
  }
  const problems = [];
  if (twice.length) problems.push(`${twice.length} change(s) applied more than once (op id ver): ${twice.slice(0, 10).join(', ')}`);
  if (invented.length) problems.push(`${invented.length} target write(s) match no committed source change: ${invented.slice(0, 10).join(', ')}`);
  if (inventedEarlier.length) problems.push(`${inventedEarlier.length} write(s) of an interrupted snapshot match no source row version: ${inventedEarlier.slice(0, 10).join(', ')}`);
  if (missing.length) problems.push(`${missing.length} committed source change(s) after the snapshot never applied: ${missing.slice(0, 10).join(', ')}`);
  return {
    problems,
    sourceChanges: src.length,
    targetWrites: tgt.length - emptied,
    emptied,
    interruptedWrites: earlier.length,
    keyChangeDeletes,
    checkedAfterSnapshot: src.filter(after).length,
  };
}

// Makes the write logs of a createWriterTable table and its
// createTargetWithWriteLog target exact about deletes:
//  - a primary-key change counts as what it is, the old row version going and
//    a new one coming: the source's audit trigger also records 'D' (old id,
//    old ver) when an update changes the key, and the target gets a trigger
//    that does the same for an UPDATE that moves a row, so a sink that
//    deletes the old key and writes the new one and a sink that updates the
//    key in place leave the same entries (marked `keychange` in the audit);
//  - each audit entry gets `at_ver`, the ver sequence's last value when it
//    was made (a write's own ver; for a delete, the newest ver then): with a
//    single writer a delete with at_ver above a cut committed after it, so
//    checkWriteLogSince can miss no delete either.
export async function extendWriteLogs(pg, table, file) {
  await psql(
    pg,
    `ALTER TABLE ${table}_audit ADD COLUMN keychange boolean NOT NULL DEFAULT false, ADD COLUMN at_ver bigint;
     CREATE OR REPLACE FUNCTION ${table}_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $f$
     DECLARE now_ver bigint := (SELECT last_value FROM ${table}_ver);
     BEGIN
       IF TG_OP = 'DELETE' THEN INSERT INTO ${table}_audit VALUES ('D', OLD.id, OLD.ver, false, now_ver); RETURN OLD; END IF;
       IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN INSERT INTO ${table}_audit VALUES ('D', OLD.id, OLD.ver, true, now_ver); END IF;
       INSERT INTO ${table}_audit VALUES ('W', NEW.id, NEW.ver, false, NEW.ver); RETURN NEW;
     END $f$;`,
  );
  await sqlite(
    file,
    `CREATE TRIGGER _test_w_key AFTER UPDATE ON ${qi(table)} WHEN OLD.id IS NOT NEW.id
       BEGIN INSERT INTO _test_writes (op, id, ver) VALUES ('D', OLD.id, OLD.ver); END;`,
  );
}

// The ver below which a snapshot taken at WAL position `lsn` may hold a
// change and above which every change committed after it (startMixedWriter's
// marks: the first mark at or past `lsn`), or null when no mark is past it.
export async function writerCutAt(pg, table, lsn) {
  const v = await psqlValue(pg, `SELECT ver FROM ${table}_marks WHERE lsn >= '${lsn}'::pg_lsn ORDER BY lsn LIMIT 1;`);
  return v === '' ? null : v;
}

// SQL that drops what createWriterTable and startMixedWriter made.
export const dropMixedWriterSql = (table) => `${dropWriterSql(table)} DROP TABLE IF EXISTS ${table}_marks;`;
