// Acceptance: PostgreSQL change data capture into SQLite, end to end, against
// the real test PostgreSQL (scripts/test exports DATAVOR_TEST_PG_*; without it
// every test fails). Streams are started with the official SDK Client over
// stdio (`datavor serve --home TMP`) or with `datavor stream run`.
//
//  - every type round-trips exactly (snapshot and streaming, updates with an
//    unchanged 1 MB TOASTed value, key change, deletes, truncate);
//  - the snapshot handover under concurrent writes loses and doubles nothing;
//  - kill -9 of the server mid-stream, three times: nothing lost, nothing
//    applied twice, and the slot never confirms past what the target holds;
//  - pause/resume, stop_stream with and without drop_slot;
//  - start_stream refuses a source that fails its prerequisites, with fixes;
//  - `datavor stream run` stops cleanly on SIGTERM and resumes without duplicates;
//  - a JSON-lines target on a pipe (no place for a position) resumes from the
//    slot after a restart: the changes made while it was down all arrive.
//
// "Nothing lost, nothing twice" is checked with write logs: a trigger on the
// source table records every committed row version (each write takes a new
// `ver` from a sequence) and triggers on the pre-created target table record
// every write the sink makes, in the sink's own transactions. No (op, id, ver)
// may appear twice in the target's log, none may be unknown to the source, and
// every source version created after the snapshot must have been applied.
//
// Run: node --test tests/node/stream_e2e.test.mjs   (with DATAVOR_TEST_PG_* set)
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BIN, requireExecutable, serverEnv, sleep, spawnCaptured, tempHome, textOf, withTimeout } from './lib.mjs';
import {
  DECLARED_TYPE,
  WRITER_COLUMNS,
  WRITER_KINDS,
  checkWriteLog,
  checkWriteLogs,
  cleanupSource,
  createTargetWithWriteLog,
  createTargetWithWriteLogs,
  createWriterTable,
  diffTables,
  kindOf,
  lsnToBig,
  psql,
  psqlValue,
  requirePg,
  slotInfo,
  sourceColumns,
  sqlite,
  startServe,
  startWriter,
  targetPosition,
  waitForEqual,
  waitForStream,
  waitUntil,
  writeEmptyFile,
} from './stream_lib.mjs';

// Unique per run: table, stream, slot and publication names never collide with
// another run against the same server.
const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const CATCH_UP_MS = 30000;
const LIVE = ['starting', 'snapshot', 'streaming', 'running'];

const slotOf = (stream) => `datavor_${stream}`;

describe('PostgreSQL -> SQLite streams', () => {
  const s = { pg: null, tmp: null, srv: null, target: null };

  before(async () => {
    s.pg = requirePg();
    requireExecutable(BIN);
    s.tmp = tempHome('datavor-stream-');
    s.target = path.join(s.tmp.root, 'target.db');
    writeEmptyFile(s.target);
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
    const pgConn = await s.srv.callOk('add_connection', { name: 'pg', url: s.pg.url, password: s.pg.password, sslmode: 'disable' });
    assert.equal(pgConn.connection.kind, 'postgresql');
    const tgt = await s.srv.callOk('add_connection', { name: 'tgt', url: `sqlite:${s.target}` });
    assert.equal(tgt.connection.kind, 'sqlite');
  });

  after(async () => {
    if (s.srv) {
      // Stop whatever a failed test left running (slots are dropped per test).
      try {
        const { streams } = await s.srv.callOk('list_streams', {});
        for (const st of streams) if (LIVE.includes(st.state)) await s.srv.call('stop_stream', { name: st.name, drop_slot: true });
      } catch {}
      const exit = await s.srv.close();
      if (exit.code !== 0) console.error(`# datavor serve exited with ${JSON.stringify(exit)}${s.srv.describe()}`);
    }
    s.tmp?.remove();
  });

  // ------------------------------------------------------------------ 1
  it('every type round-trips exactly through an SDK-started stream', async () => {
    const { pg, srv } = s;
    const table = `dv_types_${U}`;
    const stream = `types_${U}`;
    const mood = `dv_mood_${U}`;
    const posint = `dv_posint_${U}`;
    const cleanup = () =>
      cleanupSource(pg, {
        slots: [slotOf(stream)],
        publications: [slotOf(stream)],
        sql: `DROP TABLE IF EXISTS ${table}; DROP TYPE IF EXISTS ${mood}; DROP DOMAIN IF EXISTS ${posint};`,
      });
    try {
      // c_big is stored out of line and uncompressed, so an update that does not
      // touch it sends it as "unchanged TOAST" ('u'), and the sink must keep it.
      await psql(
        pg,
        `CREATE TYPE ${mood} AS ENUM ('sad', 'ok', 'it''s "quoted"');
         CREATE DOMAIN ${posint} AS int CHECK (VALUE > 0);
         CREATE TABLE ${table} (
           id int PRIMARY KEY,
           c_smallint smallint, c_int int, c_bigint bigint,
           c_num numeric(40,20), c_num_free numeric,
           c_real real, c_double double precision,
           c_bool boolean, c_text text, c_varchar varchar(10), c_char char(5),
           c_bytea bytea, c_date date, c_time time, c_timetz timetz, c_ts timestamp, c_tstz timestamptz,
           c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb,
           c_int_arr int[], c_text_arr text[], c_enum ${mood}, c_inet inet, c_cidr cidr, c_domain ${posint},
           c_big text);
         ALTER TABLE ${table} ALTER COLUMN c_big SET STORAGE EXTERNAL;`,
      );
      const cols = await sourceColumns(pg, table);
      const names = cols.map((c) => c.name);
      const kinds = cols.map((c) => kindOf(c.oid));
      const MB = `(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 32768) g)`; // 1,048,576 chars
      const ALL_BYTES = `(SELECT decode(string_agg(lpad(to_hex(g), 2, '0'), ''), 'hex') FROM generate_series(0, 255) g)`;
      const NULLS = names.slice(1).map(() => 'NULL');
      // One row per entry: the id, then one SQL expression per column in table order.
      const rows = {
        // minimums and oddities
        1: [`-32768`, `-2147483648`, `-9223372036854775808`, `'-99999999999999999999.99999999999999999999'`,
            `('-0.' || repeat('0', 999) || '1')::numeric`, `'-3.40282347e+38'`, `'-1.7976931348623157e+308'`, `false`,
            `E'tab\\there\\nnew line\\r\\\\back\\\\slash "dq" ''sq'' \\u0001 ctl, unicode: é ü 日本 😀'`,
            `'ÄÖÜäöüß€日本'`, `'ab'`, `'\\x00ff10'`, `'4713-01-01 BC'`, `'00:00:00'`, `'00:00:00+15:59'`,
            `'1999-12-31 23:59:59.999999'`, `'2024-02-29 12:34:56.123456+05:30'`, `'-178000000 years'`,
            `'00000000-0000-0000-0000-000000000000'`, `'[]'`, `'{}'`, `'{}'`, `'{}'`, `'sad'`, `'0.0.0.0/0'`,
            `'0.0.0.0/0'`, `1`, `NULL`],
        // maximums, specials and the 1 MB value
        2: [`32767`, `2147483647`, `9223372036854775807`, `'99999999999999999999.99999999999999999999'`,
            `(repeat('9', 1000) || '.' || repeat('1', 100))::numeric`, `'3.40282347e+38'`, `'1.7976931348623157e+308'`,
            `true`, `'plain'`, `'1234567890'`, `'abcde'`, ALL_BYTES, `'infinity'`, `'24:00:00'`,
            `'23:59:59.999999-15:59'`, `'infinity'`, `'-infinity'`, `'178000000 years 11 mons 30 days 23:59:59.999999'`,
            `'ffffffff-ffff-ffff-ffff-ffffffffffff'`, `'{"b": 1,   "a": [1, 2.50, "x\\ny", null, true]}'`,
            `'{"b": 1,   "a": [1, 2.50, "x\\ny", null, true]}'`, `'{{1,2},{3,NULL}}'`,
            `'{"a b","c,d",NULL,"q\\"uote","back\\\\slash","","NULL"}'`, `'it''s "quoted"'`, `'2001:db8::1/64'`,
            `'2001:db8::/32'`, `2147483647`, MB],
        // every nullable column NULL
        3: NULLS,
        // NaN, empty values, JSON null (not SQL NULL)
        4: [`0`, `0`, `0`, `'NaN'`, `'NaN'`, `'NaN'`, `'NaN'`, `true`, `''`, `''`, `''`, `'\\x'`, `'2000-02-29'`,
            `'12:34:56.789012'`, `'12:34:56.789012+05:30'`, `'2000-01-01 00:00:00'`, `'2000-01-01 00:00:00+00'`,
            `'0'`, `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`, `'null'`, `'"str"'`, `'{NULL}'`, `'{""}'`, `'ok'`,
            `'10.1.2.3'`, `'10.0.0.0/8'`, `42`, `''`],
        5: [`1`, `-1`, `1`, `'0.00000000000000000001'`, `'-Infinity'`, `'Infinity'`, `'Infinity'`, `false`, `'x'`,
            `'x'`, `'x'`, `'\\x41'`, `'1970-01-01'`, `'23:59:59.999999'`, `'23:59:59.999999+00'`,
            `'1970-01-01 00:00:00.000001'`, `'1970-01-01 00:00:00.000001+00'`, `'-1 days +02:00:00'`,
            `'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12'`, `'{"k":"v"}'`, `'{"k":"v", "a": {"z": 1, "b": 2}}'`,
            `'{-1,0,1}'`, `'{x}'`, `'sad'`, `'::1'`, `'::/0'`, `7`, `'small'`],
        6: [`-1`, `1`, `-1`, `'1.5'`, `'Infinity'`, `'-Infinity'`, `'-Infinity'`, `true`, `'y'`, `'y'`, `'y'`,
            `'\\xdeadbeef'`, `'-infinity'`, `'00:00:00.000001'`, `'00:00:00.000001-00:30'`, `'-infinity'`,
            `'infinity'`, `'1 mon -1 days'`, `'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13'`, `'123'`, `'123.450'`,
            `'{2147483647,-2147483648}'`, `'{"{}","\\\\"}'`, `'ok'`, `'255.255.255.255/32'`, `'192.168.0.0/16'`, `3`,
            `repeat('z', 3000)`],
        // streamed rows (inserted after start_stream)
        7: [`12`, `345`, `6789`, `'3.14159265358979323846'`, `'1e-1000'`, `'3.14159'`, `'0.1'`, `true`,
            `'streamed'`, `'streamed'`, `'s'`, `'\\x0a0d09'`, `'2024-01-01'`, `'01:02:03'`, `'01:02:03+01'`,
            `'2024-01-01 01:02:03.000004'`, `'2024-01-01 01:02:03.000004-08'`, `'1 year 2 mons 3 days 04:05:06.789'`,
            `'c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14'`, `'{"n": 1e400}'`, `'{"n": 1e400}'`, `'{1,NULL,3}'`,
            `'{NULL}'`, `'it''s "quoted"'`, `'fe80::1'`, `'fe80::/10'`, `9`, `'s'`],
        8: [`-2`, `-3`, `-4`, `'0.5'`, `'123456789012345678901234567890.123456789012345678901234567890'`,
            `'1e-45'`, `'5e-324'`, `false`, `repeat(E'multi\\nline ', 100)`, `'é'`, `'日本'`, ALL_BYTES,
            `'2024-02-29'`, `'23:00:00'`, `'23:00:00-03'`, `'2024-02-29 23:59:59'`, `'2024-02-29 23:59:59.5+14'`,
            `'-1 years -2 mons +3 days -04:05:06'`, `'d0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15'`,
            `'{"unicode": "\\u00e9\\u65e5"}'`, `'{"unicode": "\\u00e9\\u65e5"}'`, `'{{{1}}}'`, `'{" leading","trailing "}'`,
            `'sad'`, `'1.2.3.4/8'`, `'1.0.0.0/8'`, `11`, MB],
        9: [`100`, `100`, `100`, `'100'`, `'100'`, `'-1.17549435e-38'`, `'2.2250738585072014e-308'`, `true`,
            `'nine'`, `'nine'`, `'nine'`, `'\\x09'`, `'2000-01-01'`, `'09:09:09'`, `'09:09:09+09'`,
            `'2009-09-09 09:09:09'`, `'2009-09-09 09:09:09+09'`, `'9 days'`, `'e0eebc99-9c0b-4ef8-bb6d-6bb9bd380a16'`,
            `'9'`, `'9'`, `'{9}'`, `'{9}'`, `'ok'`, `'9.9.9.9'`, `'9.9.9.0/24'`, `9`, MB],
        10: [`10`, `10`, `10`, `'10'`, `'10'`, `'-0.000123'`, `'-1e-300'`, `false`, `'ten'`, `'ten'`, `'ten'`,
             `'\\x10'`, `'2010-10-10'`, `'10:10:10'`, `'10:10:10-10'`, `'2010-10-10 10:10:10'`,
             `'2010-10-10 10:10:10-10'`, `'10 hours'`, `'f0eebc99-9c0b-4ef8-bb6d-6bb9bd380a17'`, `'10'`, `'10'`,
             `'{10}'`, `'{10}'`, `'sad'`, `'10.10.10.10'`, `'10.10.10.0/24'`, `10`, `'ten'`],
        11: NULLS,
      };
      for (const [id, r] of Object.entries(rows)) assert.equal(r.length, names.length - 1, `row ${id} has ${r.length} values for ${names.length - 1} columns`);
      const insert = (ids) =>
        ids.map((id) => `INSERT INTO ${table} VALUES (${id}, ${rows[id].join(', ')});`).join('\n');

      // Snapshot rows, then the stream.
      await psql(pg, insert([1, 2, 3, 4, 5, 6]));
      const started = await srv.callOk('start_stream', { name: stream, source: 'pg', target: 'tgt', tables: [table] });
      assert.equal(started.started, true);
      assert.ok(LIVE.includes(started.stream.state), `state after start_stream: ${started.stream.state}`);
      assert.ok(!started.checks.some((c) => c.status === 'fail'), `failing checks: ${JSON.stringify(started.checks)}`);
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'state streaming after the snapshot');

      // Streamed inserts, updates, a key change, deletes, and one multi-statement transaction.
      await psql(pg, insert([7, 8, 9, 10, 11]));
      await psql(
        pg,
        `UPDATE ${table} SET c_int = c_int + 1, c_text = 'updated, c_big untouched' WHERE id = 8;
         UPDATE ${table} SET c_bool = NOT c_bool, c_real = 'NaN', c_double = '-0.5' WHERE id = 2;
         UPDATE ${table} SET c_big = 'small now', c_jsonb = '{"x": [1, 2]}' WHERE id = 9;
         UPDATE ${table} SET (${names.slice(1).join(', ')}) = (${NULLS.join(', ')}) WHERE id = 10;
         UPDATE ${table} SET (${names.slice(1).join(', ')}) = (${rows[7].join(', ')}) WHERE id = 3;
         UPDATE ${table} SET id = 104 WHERE id = 4;
         DELETE FROM ${table} WHERE id IN (5, 11);
         BEGIN;
         INSERT INTO ${table} VALUES (12, ${rows[9].join(', ')});
         UPDATE ${table} SET c_text = 'in one transaction' WHERE id = 12;
         INSERT INTO ${table} VALUES (13, ${rows[6].join(', ')});
         DELETE FROM ${table} WHERE id = 12;
         UPDATE ${table} SET c_varchar = 'last' WHERE id = 1;
         COMMIT;`,
      );
      const expectIds = (await psqlValue(pg, `SELECT string_agg(id::text, ',' ORDER BY id) FROM ${table};`)).split(',');
      assert.deepEqual(expectIds, ['1', '2', '3', '6', '7', '8', '9', '10', '13', '104'], 'source rows after the changes');

      await waitForEqual(() => diffTables(pg, table, s.target, table, names, kinds), CATCH_UP_MS, `${table}: source vs target`, () => srv.describe());

      // The mapping as documented in connectors/sqlite/sqlite_sink.hpp.
      const declared = (await sqlite(s.target, `SELECT name || '=' || type FROM pragma_table_info('${table}');`)).trim().split('\n');
      assert.deepEqual(declared, names.map((n, i) => `${n}=${DECLARED_TYPE[kinds[i]]}`), 'declared SQLite column types');
      // The update that did not touch the 1 MB column kept it (also covered by the comparison above).
      const big = (await sqlite(s.target, `SELECT length(c_big) || ' ' || c_text FROM ${table} WHERE id = 8;`)).trim();
      assert.equal(big, '1048576 updated, c_big untouched', 'row 8: the unchanged 1 MB value must survive the update');

      const st = await waitForStream(srv, stream, (x) => x.table_stats?.length > 0, 5000, 'table stats');
      const ts = st.table_stats.find((t) => t.table === `public.${table}`);
      assert.ok(ts, `no table_stats for public.${table}: ${JSON.stringify(st.table_stats)}`);
      assert.equal(ts.snapshot_rows, 6, `snapshot_rows: ${JSON.stringify(ts)}`);
      assert.ok(ts.inserts >= 7 && ts.updates >= 8 && ts.deletes >= 3, `change counts: ${JSON.stringify(ts)}`);
      assert.ok(lsnToBig(st.applied_position) > 0n, `applied_position: ${st.applied_position}`);

      // TRUNCATE empties the target; the stream keeps going afterwards.
      await psql(pg, `TRUNCATE ${table};`);
      await waitUntil(async () => (await sqlite(s.target, `SELECT count(*) FROM ${table};`)).trim() === '0', CATCH_UP_MS, 'the target table to be empty after TRUNCATE', () => srv.describe());
      await psql(pg, insert([9]));
      await waitForEqual(() => diffTables(pg, table, s.target, table, names, kinds), CATCH_UP_MS, `${table} after TRUNCATE and one insert`, () => srv.describe());
      const truncStats = (await srv.callOk('stream_status', { name: stream })).stream.table_stats.find((t) => t.table === `public.${table}`);
      assert.equal(truncStats.truncates, 1, `truncates: ${JSON.stringify(truncStats)}`);

      const stop = await srv.callOk('stop_stream', { name: stream, drop_slot: true });
      assert.deepEqual(stop, { name: stream, stopped: true, slot_dropped: true });
    } finally {
      await cleanup();
    }
  });

  // ------------------------------------------------------------------ 2
  it('snapshot handover under concurrent writes loses nothing and doubles nothing (two tables copied in parallel)', async () => {
    const { pg, srv } = s;
    const base = `dv_handover_${U}`;
    const tables = [base, `${base}_b`];
    const stream = `handover_${U}`;
    const target = path.join(s.tmp.root, 'handover.db');
    const ROWS = 50000;
    const writers = [];
    try {
      for (const table of tables) await createWriterTable(pg, table, ROWS);
      await createTargetWithWriteLogs(target, tables);
      for (const table of tables) writers.push(startWriter(pg, table, { rows: ROWS, sleepMs: 1 }));
      for (const w of writers) await waitUntil(async () => (await w.iterations()) > 20, 10000, 'the writers to get going', () => w.h.describe());
      const before = await Promise.all(writers.map((w) => w.iterations()));
      const started = await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables });
      assert.equal(started.started, true);
      const streaming = await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      // Every version with a larger ver was written after the snapshot point.
      const cuts = {};
      for (const table of tables) cuts[table] = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      const during = await Promise.all(writers.map((w) => w.iterations()));
      for (let i = 0; i < tables.length; i++) {
        assert.ok(writers[i].running(), `the writer of ${tables[i]} stopped during the snapshot: ${writers[i].h.describe()}`);
        assert.ok(during[i] > before[i], `the writer of ${tables[i]} made no progress during the initial copy (${before[i]} -> ${during[i]})`);
        const snap = streaming.table_stats.find((t) => t.table === `public.${tables[i]}`);
        assert.ok(snap?.snapshot_rows >= ROWS - 1000, `snapshot_rows: ${JSON.stringify(streaming.table_stats)}`);
      }
      await sleep(3000);
      for (const w of writers) await w.stop();
      const total = await Promise.all(writers.map((w) => w.iterations()));

      for (let i = 0; i < tables.length; i++) {
        const table = tables[i];
        assert.ok(total[i] > during[i], `the writer of ${table} made no progress after the snapshot (${during[i]} -> ${total[i]})`);
        await waitForEqual(() => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS), CATCH_UP_MS, `${table}: source vs target`, () => srv.describe());
        console.error(`# handover ${table}: ${total[i]} writer transactions (${before[i]} before start_stream, ${during[i] - before[i]} during the copy)`);
      }
      const log = await checkWriteLogs(pg, target, cuts);
      assert.deepEqual(log.problems, [], `exactly-once violated (${JSON.stringify({ ...log, problems: undefined })})`);
      assert.ok(log.checkedAfterSnapshot > 200, `too few changes after the snapshot to mean anything: ${log.checkedAfterSnapshot}`);
      console.error(`# handover: ${log.sourceChanges} source changes, ${log.targetWrites} target writes`);

      const stop = await srv.callOk('stop_stream', { name: stream, drop_slot: true });
      assert.equal(stop.slot_dropped, true);
    } finally {
      for (const w of writers) if (w?.running()) await w.h.stop();
      await cleanupSource(pg, {
        slots: [slotOf(stream)],
        publications: [slotOf(stream)],
        sql: tables
          .map((table) => `DROP TABLE IF EXISTS ${table}, ${table}_ctl, ${table}_audit; DROP FUNCTION IF EXISTS ${table}_audit_fn; DROP SEQUENCE IF EXISTS ${table}_ver, ${table}_id;`)
          .join('\n'),
      });
    }
  });

  // ------------------------------------------------------------------ 3
  it('kill -9 of datavor serve mid-stream, restart: target identical, nothing twice, nothing missing', async () => {
    const { pg } = s;
    const table = `dv_kill_${U}`;
    const stream = `kill_${U}`;
    const slot = slotOf(stream);
    const ROWS = 5000;
    const tmp = tempHome('datavor-stream-kill-');
    const target = path.join(tmp.root, 'kill.db');
    let srv;
    let writer;
    const violations = [];
    let samples = 0;
    // The slot must never confirm a position the target has not committed:
    // read the slot first, then the target (which only moves forward).
    const sample = async (when) => {
      const slotNow = await slotInfo(pg, slot);
      const pos = await targetPosition(target, stream);
      if (!slotNow?.confirmed_flush_lsn || !pos) return;
      samples++;
      if (lsnToBig(slotNow.confirmed_flush_lsn) > lsnToBig(pos.position)) {
        violations.push(`${when}: slot confirmed_flush_lsn ${slotNow.confirmed_flush_lsn} > target position ${pos.position}`);
      }
    };
    let sampling = false;
    const sampler = async () => {
      while (sampling) {
        try {
          await sample('while streaming');
        } catch {}
        await sleep(100);
      }
    };
    try {
      await createWriterTable(pg, table, ROWS);
      await createTargetWithWriteLog(target, table);
      srv = await startServe({ home: tmp.home, userHome: tmp.userHome });
      await srv.callOk('add_connection', { name: 'pg', url: pg.url, password: pg.password, sslmode: 'disable' });
      writer = startWriter(pg, table, { rows: ROWS, sleepMs: 2 });
      const started = await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      assert.equal(started.started, true);
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      const cut = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      sampling = true;
      const sampling1 = sampler();

      for (let round = 1; round <= 3; round++) {
        if (!writer.running()) writer = startWriter(pg, table, { rows: ROWS, sleepMs: 2 });
        // Mid-stream: the writer is busy and the stream is applying.
        await sleep(700 + Math.floor(Math.random() * 800));
        const applied = (await srv.callOk('stream_status', { name: stream })).stream;
        assert.equal(applied.state, 'streaming', `round ${round}: not streaming before the kill: ${JSON.stringify(applied)}`);
        await srv.kill9();
        const w0 = await writer.iterations();
        // After the kill: once the walsender has gone, the slot holds at most what the target committed.
        await waitUntil(async () => (await slotInfo(pg, slot))?.active === false, 15000, `round ${round}: slot ${slot} to become inactive after the kill`);
        await sample(`round ${round} after kill -9`);
        await sleep(500); // keep writing while no server runs
        assert.ok((await writer.iterations()) > w0, `round ${round}: the writer did not write while the server was down`);

        srv = await startServe({ home: tmp.home, userHome: tmp.userHome });
        const listed = (await srv.callOk('list_streams', {})).streams.find((x) => x.name === stream);
        assert.ok(listed, `round ${round}: stream not listed after the restart`);
        assert.ok(LIVE.includes(listed.state), `round ${round}: stream not running after the restart: ${JSON.stringify(listed)}${srv.describe()}`);
        await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, `round ${round}: streaming after the restart`);
        await sleep(300);
        await writer.stop();
        await waitForEqual(() => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS), CATCH_UP_MS, `round ${round}: ${table} source vs target`, () => srv.describe());
        const log = await checkWriteLog(pg, table, target, cut);
        assert.deepEqual(log.problems, [], `round ${round}: exactly-once violated (${JSON.stringify({ ...log, problems: undefined })})`);
        console.error(`# kill round ${round}: ${log.sourceChanges} source changes, ${log.targetWrites} target writes, ${log.checkedAfterSnapshot} after the snapshot`);
      }
      sampling = false;
      await sampling1;
      assert.deepEqual(violations, [], `the slot confirmed past the target's _datavor_offsets.position (${samples} samples)`);
      assert.ok(samples > 10, `too few slot/position samples: ${samples}`);

      const stop = await srv.callOk('stop_stream', { name: stream, drop_slot: true });
      assert.equal(stop.slot_dropped, true);
    } finally {
      sampling = false;
      if (writer?.running()) await writer.h.stop();
      if (srv) await srv.close();
      await cleanupSource(pg, {
        slots: [slot],
        publications: [slot],
        sql: `DROP TABLE IF EXISTS ${table}, ${table}_ctl, ${table}_audit; DROP FUNCTION IF EXISTS ${table}_audit_fn; DROP SEQUENCE IF EXISTS ${table}_ver, ${table}_id;`,
      });
      tmp.remove();
    }
  });

  // The same invariant when the stream's tables are quiet but the source writes
  // other WAL (keepalives then carry a WAL end past the last applied change):
  // the slot may only move to a position the target has committed, and it
  // must still move (a quiet stream must not pin the source's WAL).
  it('while its tables are idle, the slot never confirms past the target position', async () => {
    const { pg, srv } = s;
    const table = `dv_idle_${U}`;
    const other = `dv_idle_other_${U}`;
    const stream = `idle_${U}`;
    const slot = slotOf(stream);
    const target = path.join(s.tmp.root, 'idle.db');
    try {
      await psql(pg, `CREATE TABLE ${table} (id int PRIMARY KEY, v text); CREATE TABLE ${other} (id int); INSERT INTO ${table} VALUES (1, 'one');`);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      await psql(pg, `INSERT INTO ${table} VALUES (2, 'two');`);
      await waitForEqual(() => diffTables(pg, table, target, table, ['id', 'v'], ['int', 'text']), CATCH_UP_MS, 'catch-up', () => srv.describe());
      const startLsn = lsnToBig(await psqlValue(pg, 'SELECT pg_current_wal_lsn();'));
      const seen = [];
      let advanced = false;
      const deadline = Date.now() + 15000;
      for (let i = 0; !advanced || i < 8; i++) {
        assert.ok(Date.now() < deadline, `the slot did not advance past ${startLsn.toString(16)} within 15 s while its tables were idle, so it pins WAL (samples: ${seen.join(', ')})`);
        await psql(pg, `INSERT INTO ${other} VALUES (${i});`); // WAL the stream does not publish
        await sleep(250);
        const slotNow = await slotInfo(pg, slot);
        const pos = await targetPosition(target, stream);
        seen.push(`${slotNow.confirmed_flush_lsn} vs ${pos.position}`);
        assert.ok(
          lsnToBig(slotNow.confirmed_flush_lsn) <= lsnToBig(pos.position),
          `slot ${slot} confirmed_flush_lsn ${slotNow.confirmed_flush_lsn} passed the target's _datavor_offsets.position ${pos.position} (samples: ${seen.join(', ')})`,
        );
        if (lsnToBig(slotNow.confirmed_flush_lsn) > startLsn) advanced = true;
      }
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${table}, ${other};` });
    }
  });

  // ------------------------------------------------------------------ 4
  it('pause and resume continue exactly where the stream stopped', async () => {
    const { pg, srv } = s;
    const table = `dv_pause_${U}`;
    const stream = `pause_${U}`;
    const slot = slotOf(stream);
    const target = path.join(s.tmp.root, 'pause.db');
    const change = (i) =>
      `INSERT INTO ${table} (id, ver, n, payload) VALUES (nextval('${table}_id'), nextval('${table}_ver'), ${i}, 'p${i}');
       UPDATE ${table} SET ver = nextval('${table}_ver'), n = n + 1 WHERE id = ${1 + (i % 50)};
       DELETE FROM ${table} WHERE id = ${51 + i};`;
    const some = (from, to) => Array.from({ length: to - from }, (_, k) => change(from + k)).join('\n');
    const diff = () => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS);
    try {
      await createWriterTable(pg, table, 200);
      await createTargetWithWriteLog(target, table);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      const cut = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      await psql(pg, some(0, 20));
      await waitForEqual(diff, CATCH_UP_MS, 'before the pause', () => srv.describe());

      const paused = await srv.callOk('pause_stream', { name: stream });
      assert.deepEqual(paused, { name: stream, paused: true });
      assert.equal((await srv.callOk('stream_status', { name: stream })).stream.state, 'paused');
      const whilePaused = (await sqlite(target, `SELECT count(*) || ' ' || (SELECT count(*) FROM _test_writes) FROM ${table};`)).trim();
      // The slot stays, and nobody reads it.
      await waitUntil(async () => (await slotInfo(pg, slot))?.active === false, 10000, `slot ${slot} kept and inactive while paused`);

      await psql(pg, some(20, 60));
      await sleep(1500);
      assert.equal((await sqlite(target, `SELECT count(*) || ' ' || (SELECT count(*) FROM _test_writes) FROM ${table};`)).trim(), whilePaused, 'the target changed while the stream was paused');
      assert.notEqual(await diff(), null, 'the source did not change while paused (test bug)');

      const resumed = await srv.callOk('resume_stream', { name: stream });
      assert.ok(LIVE.includes(resumed.stream.state), `state after resume_stream: ${JSON.stringify(resumed.stream)}`);
      await psql(pg, some(60, 70));
      await waitForEqual(diff, CATCH_UP_MS, 'after resume', () => srv.describe());
      const st = (await srv.callOk('stream_status', { name: stream })).stream;
      assert.equal(st.state, 'streaming');
      const log = await checkWriteLog(pg, table, target, cut);
      assert.deepEqual(log.problems, [], `exactly-once violated across pause/resume (${JSON.stringify({ ...log, problems: undefined })})`);
      assert.ok(log.checkedAfterSnapshot >= 140, `changes after the snapshot: ${log.checkedAfterSnapshot}`);
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      await cleanupSource(pg, {
        slots: [slot],
        publications: [slot],
        sql: `DROP TABLE IF EXISTS ${table}, ${table}_ctl, ${table}_audit; DROP FUNCTION IF EXISTS ${table}_audit_fn; DROP SEQUENCE IF EXISTS ${table}_ver, ${table}_id;`,
      });
    }
  });

  it('stop_stream with drop_slot removes the replication slot', async () => {
    const { pg, srv } = s;
    const table = `dv_stop_${U}`;
    const stream = `stop_${U}`;
    const slot = slotOf(stream);
    const target = path.join(s.tmp.root, 'stop.db');
    try {
      await psql(pg, `CREATE TABLE ${table} (id int PRIMARY KEY, v text); INSERT INTO ${table} VALUES (1, 'one');`);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      const live = await slotInfo(pg, slot);
      assert.ok(live, `slot ${slot} not in pg_replication_slots while streaming`);
      assert.equal(live.plugin, 'pgoutput');

      // A plain stop keeps the slot (the stream can resume without losing changes).
      const stop1 = await srv.callOk('stop_stream', { name: stream });
      assert.deepEqual(stop1, { name: stream, stopped: true, slot_dropped: false });
      assert.ok(await slotInfo(pg, slot), `slot ${slot} was dropped by stop_stream without drop_slot`);
      const listed = (await srv.callOk('list_streams', {})).streams.find((x) => x.name === stream);
      assert.equal(listed?.state, 'stopped', `list_streams: ${JSON.stringify(listed)}`);

      // Resume, then stop with drop_slot.
      await srv.callOk('resume_stream', { name: stream });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'streaming after resume');
      await psql(pg, `INSERT INTO ${table} VALUES (2, 'two');`);
      await waitForEqual(() => diffTables(pg, table, target, table, ['id', 'v'], ['int', 'text']), CATCH_UP_MS, 'after resume', () => srv.describe());
      const stop2 = await srv.callOk('stop_stream', { name: stream, drop_slot: true });
      assert.deepEqual(stop2, { name: stream, stopped: true, slot_dropped: true });
      assert.equal(await slotInfo(pg, slot), null, `slot ${slot} still in pg_replication_slots after stop_stream drop_slot`);
      assert.equal((await srv.callOk('stream_status', { name: stream })).stream.state, 'stopped');
    } finally {
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${table};` });
    }
  });

  // ------------------------------------------------------------------ 5
  it('start_stream refuses a source that fails its prerequisites', async () => {
    const { pg, srv } = s;
    const nopk = `dv_nopk_${U}`;
    const okTable = `dv_prereq_${U}`;
    const role = `dv_norepl_${U}`;
    const rolePw = `pw-${U}-Zq9`;
    const streamA = `nopk_${U}`;
    const streamB = `norepl_${U}`;
    const target = path.join(s.tmp.root, 'prereq.db');
    const slotsNow = async () => (await psql(pg, `SELECT slot_name FROM pg_replication_slots WHERE slot_name IN ('${slotOf(streamA)}', '${slotOf(streamB)}');`)).trim();
    const pubsNow = async () => (await psql(pg, `SELECT pubname FROM pg_publication WHERE pubname IN ('${slotOf(streamA)}', '${slotOf(streamB)}');`)).trim();
    try {
      await psql(
        pg,
        `CREATE TABLE ${nopk} (a int, b text);
         CREATE TABLE ${okTable} (id int PRIMARY KEY, b text);
         CREATE ROLE ${role} LOGIN PASSWORD '${rolePw}';
         GRANT SELECT ON ${okTable} TO ${role};`,
      );

      // A table with neither a primary key nor REPLICA IDENTITY FULL.
      const a = await srv.call('start_stream', { name: streamA, source: 'pg', target: `sqlite:${target}`, tables: [nopk] });
      assert.equal(a.isError, true, `start_stream on a table without a key must fail: ${textOf(a)}`);
      assert.equal(a.structuredContent?.started, false, JSON.stringify(a.structuredContent));
      const ri = a.structuredContent.checks.find((c) => c.id === 'replica_identity');
      assert.equal(ri?.status, 'fail', `replica_identity check: ${JSON.stringify(a.structuredContent.checks)}`);
      assert.ok(ri.fix?.includes(`ALTER TABLE "public"."${nopk}" REPLICA IDENTITY FULL;`), `replica_identity fix: ${ri.fix}`);

      // A role without REPLICATION.
      await srv.callOk('add_connection', {
        name: `norepl_${U}`,
        url: `postgresql://${role}@${pg.host}:${pg.port}/postgres`,
        password: rolePw,
        sslmode: 'disable',
      });
      const b = await srv.call('start_stream', { name: streamB, source: `norepl_${U}`, target: `sqlite:${target}`, tables: [okTable] });
      assert.equal(b.isError, true, `start_stream with a role without REPLICATION must fail: ${textOf(b)}`);
      assert.equal(b.structuredContent?.started, false);
      const rr = b.structuredContent.checks.find((c) => c.id === 'replication_role');
      assert.equal(rr?.status, 'fail', `replication_role check: ${JSON.stringify(b.structuredContent.checks)}`);
      assert.equal(rr.fix, `ALTER ROLE "${role}" REPLICATION;`);

      // Nothing was created or saved.
      assert.equal(await slotsNow(), '', 'a refused start_stream left a replication slot behind');
      assert.equal(await pubsNow(), '', 'a refused start_stream left a publication behind');
      const names = (await srv.callOk('list_streams', {})).streams.map((x) => x.name);
      assert.ok(!names.includes(streamA) && !names.includes(streamB), `refused streams were saved: ${names}`);
    } finally {
      await srv.call('remove_connection', { name: `norepl_${U}` }).catch(() => {});
      await cleanupSource(pg, {
        slots: [slotOf(streamA), slotOf(streamB)],
        publications: [slotOf(streamA), slotOf(streamB)],
        sql: `DROP TABLE IF EXISTS ${nopk}, ${okTable}; DROP ROLE IF EXISTS ${role};`,
      });
    }
  });

  // ------------------------------------------------------------------ 6
  it('the CLI stream run stops cleanly on SIGTERM and resumes without duplicates', async () => {
    const { pg } = s;
    const table = `dv_cli_${U}`;
    const stream = `cli_${U}`;
    const slot = slotOf(stream);
    const tmp = tempHome('datavor-stream-cli-');
    const target = path.join(tmp.root, 'cli.db');
    const url = `postgresql://${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/postgres`;
    const argv = ['stream', 'run', '--source', url, '--target', `sqlite:${target}`, '--tables', table, '--name', stream, '--home', tmp.home];
    const diff = () => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS);
    const change = (i) =>
      `INSERT INTO ${table} (id, ver, n, payload) VALUES (nextval('${table}_id'), nextval('${table}_ver'), ${i}, 'c${i}');
       UPDATE ${table} SET ver = nextval('${table}_ver'), n = n + 1 WHERE id = ${1 + (i % 100)};
       DELETE FROM ${table} WHERE id = ${101 + i};`;
    const some = (from, to) => Array.from({ length: to - from }, (_, k) => change(from + k)).join('\n');
    let h;
    const runOnce = async (label) => {
      h = spawnCaptured(BIN, argv, { env: serverEnv(tmp.userHome), cwd: tmp.userHome });
      await waitUntil(() => h.stderr().includes(`stream ${stream}: streaming`) || h.proc.exitCode !== null, CATCH_UP_MS, `${label}: the CLI stream to report streaming`, h.describe);
      assert.equal(h.proc.exitCode, null, `${label}: datavor stream run exited early${h.describe()}`);
      return h;
    };
    const sigterm = async (label) => {
      h.proc.kill('SIGTERM');
      const r = await withTimeout(h.exited, 15000, `${label}: datavor stream run to exit after SIGTERM`);
      assert.deepEqual(r, { code: 0, signal: null }, `${label}: exit status after SIGTERM${h.describe()}`);
      assert.match(h.stderr(), new RegExp(`stream ${stream}: stopped`), `${label}: no final "stopped" status line${h.describe()}`);
    };
    try {
      await createWriterTable(pg, table, 300);
      await createTargetWithWriteLog(target, table);

      await runOnce('first run');
      const cut = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      await psql(pg, some(0, 30));
      await waitForEqual(diff, CATCH_UP_MS, 'first run', h.describe);
      await sigterm('first run');
      assert.match(h.stderr(), /snapshot of 1 table/, `first run: no snapshot${h.describe()}`);
      const slotAfter = await slotInfo(pg, slot);
      assert.ok(slotAfter && slotAfter.active === false, `slot after SIGTERM: ${JSON.stringify(slotAfter)}`);

      await psql(pg, some(30, 80)); // while nothing runs
      await runOnce('second run');
      await psql(pg, some(80, 100));
      await waitForEqual(diff, CATCH_UP_MS, 'second run', h.describe);
      assert.doesNotMatch(h.stderr(), /snapshot of/, `second run took a new snapshot instead of resuming${h.describe()}`);
      await sigterm('second run');

      const log = await checkWriteLog(pg, table, target, cut);
      assert.deepEqual(log.problems, [], `exactly-once violated across the CLI restart (${JSON.stringify({ ...log, problems: undefined })})`);
      assert.ok(log.checkedAfterSnapshot >= 200, `changes after the snapshot: ${log.checkedAfterSnapshot}`);
    } finally {
      if (h && h.proc.exitCode === null) await h.stop();
      await cleanupSource(pg, {
        slots: [slot],
        publications: [slot],
        sql: `DROP TABLE IF EXISTS ${table}, ${table}_ctl, ${table}_audit; DROP FUNCTION IF EXISTS ${table}_audit_fn; DROP SEQUENCE IF EXISTS ${table}_ver, ${table}_id;`,
      });
      tmp.remove();
    }
  });
  // ------------------------------------------------------------------ 7
  it('a JSON-lines target on a pipe resumes from the slot: changes made while it was down arrive', async () => {
    const { pg } = s;
    const table = `dv_pipe_${U}`;
    const stream = `pipe_${U}`;
    const slot = slotOf(stream);
    const tmp = tempHome('datavor-stream-pipe-');
    const url = `postgresql://${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/postgres`;
    const argv = ['stream', 'run', '--source', url, '--target', 'jsonl:-', '--tables', table, '--name', stream, '--home', tmp.home];
    const events = (h) =>
      h
        .stdout()
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l));
    const idsOf = (h, op) => new Set(events(h).filter((e) => e.op === op).map((e) => Number(e.after.id)));
    const insert = (from, to) => psql(pg, `INSERT INTO ${table} SELECT g, g * 10 FROM generate_series(${from}, ${to}) g;`);
    const runs = [];
    const runOnce = async (label) => {
      const h = spawnCaptured(BIN, argv, { env: serverEnv(tmp.userHome), cwd: tmp.userHome });
      runs.push(h);
      await waitUntil(() => h.stderr().includes(`stream ${stream}: streaming`) || h.proc.exitCode !== null, CATCH_UP_MS, `${label}: the stream to report streaming`, h.describe);
      assert.equal(h.proc.exitCode, null, `${label}: datavor stream run exited early${h.describe()}`);
      return h;
    };
    const sigterm = async (h, label) => {
      h.proc.kill('SIGTERM');
      const r = await withTimeout(h.exited, 15000, `${label}: datavor stream run to exit after SIGTERM`);
      assert.deepEqual(r, { code: 0, signal: null }, `${label}: exit status after SIGTERM${h.describe()}`);
    };
    try {
      await psql(pg, `CREATE TABLE ${table} (id int PRIMARY KEY, v int); INSERT INTO ${table} SELECT g, g FROM generate_series(1, 20) g;`);
      const first = await runOnce('first run');
      await insert(101, 150);
      await waitUntil(() => idsOf(first, 'c').size === 50, CATCH_UP_MS, 'first run: 50 inserts on stdout', first.describe);
      assert.equal(idsOf(first, 'r').size, 20, `first run: the snapshot's 20 rows${first.describe()}`);
      await sigterm(first, 'first run');

      await insert(151, 400); // nothing reads: the slot keeps it
      const second = await runOnce('second run');
      await insert(401, 450);
      await waitUntil(() => idsOf(second, 'c').has(450), CATCH_UP_MS, 'second run: the insert made after its start', second.describe);
      assert.match(second.stderr(), /keeps no position; resuming from the source/, `second run: no resume note${second.describe()}`);
      assert.equal(idsOf(second, 'r').size, 0, `second run took a new snapshot${second.describe()}`);
      const seen = new Set([...idsOf(first, 'c'), ...idsOf(second, 'c')]);
      const missing = [];
      for (let id = 101; id <= 450; id++) if (!seen.has(id)) missing.push(id);
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} inserts never arrived (first: ${missing.slice(0, 5)})${second.describe()}`);
      await sigterm(second, 'second run');
    } finally {
      for (const h of runs) if (h.proc.exitCode === null) await h.stop();
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${table};` });
      tmp.remove();
    }
  });
});
