// Acceptance 1 of issue 3, PostgreSQL -> PostgreSQL: through the official SDK
// client, add two connections (the source database and a second database as
// the target), start_stream, and check that every type round-trips exactly,
// with the same type coverage as the PostgreSQL -> SQLite test
// (stream_e2e.test.mjs): smallint/int/bigint, numeric(40,20) and free numeric
// (1000 digits, NaN, ±Infinity), real/double (extremes, NaN, ±Infinity),
// boolean, text/varchar/char (escapes, unicode, empty), bytea (all 256 bytes,
// empty), date, time, timetz, timestamp, timestamptz (infinities, BC),
// interval, uuid, json, jsonb, int[] and text[] (NULL elements, quoting,
// multi-dimensional), an enum, an array of that enum, inet, cidr, a domain,
// NULLs, and a 1 MB TOASTed text column left unchanged by updates.
//
// Snapshot rows (inserted before start_stream) and streamed rows, inserts,
// updates (an unchanged TOASTed value, a key change, all columns to NULL and
// back), deletes, one multi-statement transaction and TRUNCATE; after each
// phase the two databases are compared value by value: every column of every
// row in PostgreSQL's text form (COPY ... TO STDOUT with the stream's session
// settings, so both sides print with the same TimeZone, DateStyle,
// extra_float_digits, bytea_output and IntervalStyle). The target's column
// types are checked too: built-in types keep the source's type (format_type),
// user-defined ones (enum, array of enum, domain) become text (pg_sink.hpp).
// A second test changes the key of rows whose 1 MB TOASTed value is unchanged.
// Needs DATAVOR_TEST_PG_* (scripts/test); fails without.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { BIN, requireExecutable, tempHome } from './lib.mjs';
import { cleanupSource, parseCopyText, psql, psqlValue, qi, requirePg, sourceColumns, startServe, waitForEqual, waitForStream, waitUntil } from './stream_lib.mjs';

const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const CATCH_UP_MS = 30000;
const FIRST_USER_OID = 16384; // below: built-in types, which the target keeps
const slotOf = (stream) => `datavor_${stream}`;

// Every row of `table` in database `db`, each column as its text form (null for NULL), ordered by id.
async function rowsOf(pg, db, table, columns) {
  const out = await psql(pg, `COPY (SELECT ${columns.map(qi).join(', ')} FROM ${table} ORDER BY id) TO STDOUT;\n`, { db });
  return parseCopyText(out);
}

function show(s) {
  if (typeof s !== 'string') return JSON.stringify(s);
  return s.length > 120 ? `${JSON.stringify(s.slice(0, 100))}...(${s.length} chars)` : JSON.stringify(s);
}

// null when `table` holds the same rows with the same text in every column in
// both databases, else a readable list of differences. Column 0 is the key.
async function diffPg(pg, srcDb, tgtDb, table, columns, max = 15) {
  const tgtExists = (await psql(pg, `SELECT to_regclass('public.${table}') IS NOT NULL;`, { db: tgtDb })).trim();
  if (tgtExists !== 't') return `target table public.${table} does not exist in database ${tgtDb}`;
  const [src, tgt] = await Promise.all([rowsOf(pg, srcDb, table, columns), rowsOf(pg, tgtDb, table, columns)]);
  const problems = [];
  const byKey = new Map(tgt.map((r) => [r[0], r]));
  const seen = new Set();
  for (const s of src) {
    const t = byKey.get(s[0]);
    if (!t) {
      problems.push(`row ${s[0]}: missing in the target`);
      continue;
    }
    seen.add(s[0]);
    for (let i = 1; i < columns.length; i++) {
      if (s[i] !== t[i]) problems.push(`row ${s[0]} column ${columns[i]}: source ${show(s[i])}, target ${show(t[i])}`);
    }
  }
  for (const t of tgt) if (!seen.has(t[0])) problems.push(`row ${t[0]}: in the target but not in the source`);
  if (!problems.length) return null;
  return `${problems.length} difference(s) between ${srcDb}.${table} (${src.length} rows) and ${tgtDb}.${table} (${tgt.length} rows):\n  ` +
    problems.slice(0, max).join('\n  ') + (problems.length > max ? `\n  ... and ${problems.length - max} more` : '');
}

// "name=format_type" of every column of public.`table` in `db`, in column order.
async function declaredTypes(pg, db, table) {
  const out = await psql(
    pg,
    `SELECT attname || '=' || format_type(atttypid, atttypmod) FROM pg_attribute
      WHERE attrelid = 'public.${table}'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;`,
    { db },
  );
  return out.trim().split('\n');
}

// The primary key's columns of public.`table` in `db`, comma-separated.
async function primaryKey(pg, db, table) {
  return (await psql(
    pg,
    `SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM pg_index i
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = 'public.${table}'::regclass AND i.indisprimary;`,
    { db },
  )).trim();
}

describe('PostgreSQL -> PostgreSQL stream', () => {
  const s = { pg: null, tmp: null, srv: null };
  const lake = `dv_lake_${U}`;

  before(async () => {
    s.pg = requirePg();
    requireExecutable(BIN);
    await psql(s.pg, `CREATE DATABASE ${lake};`);
    s.tmp = tempHome('datavor-pgpg-');
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
    const pgc = await s.srv.callOk('add_connection', { name: 'src', url: s.pg.url, password: s.pg.password, sslmode: 'disable' });
    assert.equal(pgc.connection.kind, 'postgresql');
    const lakeUrl = s.pg.url.replace(/\/[^/?]*(\?|$)/, `/${lake}$1`);
    const tgt = await s.srv.callOk('add_connection', { name: 'lake', url: lakeUrl, password: s.pg.password, sslmode: 'disable' });
    assert.equal(tgt.connection.kind, 'postgresql');
  });

  after(async () => {
    if (s.srv) {
      try {
        const { streams } = await s.srv.callOk('list_streams', {});
        for (const st of streams) if (!['stopped', 'failed'].includes(st.state)) await s.srv.call('stop_stream', { name: st.name, drop_slot: true });
      } catch {}
      await s.srv.close();
    }
    if (s.pg) {
      await psql(s.pg, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${lake}';`).catch(() => {});
      await psql(s.pg, `DROP DATABASE IF EXISTS ${lake};`).catch((e) => console.error(`# drop ${lake}: ${e.message}`));
    }
    s.tmp?.remove();
  });

  // ------------------------------------------------------------------ 1
  it('every type round-trips exactly: snapshot, inserts, updates, key change, deletes, truncate', async () => {
    const { pg, srv } = s;
    const table = `dv_pgpg_${U}`;
    const stream = `pgpg_${U}`;
    const mood = `dv_pgmood_${U}`;
    const posint = `dv_pgposint_${U}`;
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
           c_int_arr int[], c_text_arr text[], c_enum ${mood}, c_enum_arr ${mood}[], c_inet inet, c_cidr cidr,
           c_domain ${posint}, c_big text);
         ALTER TABLE ${table} ALTER COLUMN c_big SET STORAGE EXTERNAL;`,
      );
      const cols = await sourceColumns(pg, table);
      const names = cols.map((c) => c.name);
      const MB = `(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 32768) g)`; // 1,048,576 chars
      const ALL_BYTES = `(SELECT decode(string_agg(lpad(to_hex(g), 2, '0'), ''), 'hex') FROM generate_series(0, 255) g)`;
      const NULLS = names.slice(1).map(() => 'NULL');
      // One row per entry: one SQL expression per column after id, in table order
      // (the values of stream_e2e.test.mjs, plus c_enum_arr).
      const rows = {
        // minimums and oddities
        1: [`-32768`, `-2147483648`, `-9223372036854775808`, `'-99999999999999999999.99999999999999999999'`,
            `('-0.' || repeat('0', 999) || '1')::numeric`, `'-3.40282347e+38'`, `'-1.7976931348623157e+308'`, `false`,
            `E'tab\\there\\nnew line\\r\\\\back\\\\slash "dq" ''sq'' \\u0001 ctl, unicode: é ü 日本 😀'`,
            `'ÄÖÜäöüß€日本'`, `'ab'`, `'\\x00ff10'`, `'4713-01-01 BC'`, `'00:00:00'`, `'00:00:00+15:59'`,
            `'1999-12-31 23:59:59.999999'`, `'2024-02-29 12:34:56.123456+05:30'`, `'-178000000 years'`,
            `'00000000-0000-0000-0000-000000000000'`, `'[]'`, `'{}'`, `'{}'`, `'{}'`, `'sad'`, `'{}'`, `'0.0.0.0/0'`,
            `'0.0.0.0/0'`, `1`, `NULL`],
        // maximums, specials and the 1 MB value
        2: [`32767`, `2147483647`, `9223372036854775807`, `'99999999999999999999.99999999999999999999'`,
            `(repeat('9', 1000) || '.' || repeat('1', 100))::numeric`, `'3.40282347e+38'`, `'1.7976931348623157e+308'`,
            `true`, `'plain'`, `'1234567890'`, `'abcde'`, ALL_BYTES, `'infinity'`, `'24:00:00'`,
            `'23:59:59.999999-15:59'`, `'infinity'`, `'-infinity'`, `'178000000 years 11 mons 30 days 23:59:59.999999'`,
            `'ffffffff-ffff-ffff-ffff-ffffffffffff'`, `'{"b": 1,   "a": [1, 2.50, "x\\ny", null, true]}'`,
            `'{"b": 1,   "a": [1, 2.50, "x\\ny", null, true]}'`, `'{{1,2},{3,NULL}}'`,
            `'{"a b","c,d",NULL,"q\\"uote","back\\\\slash","","NULL"}'`, `'it''s "quoted"'`,
            `'{sad,NULL,"it''s \\"quoted\\"",ok}'`, `'2001:db8::1/64'`, `'2001:db8::/32'`, `2147483647`, MB],
        // every nullable column NULL
        3: NULLS,
        // NaN, empty values, JSON null (not SQL NULL)
        4: [`0`, `0`, `0`, `'NaN'`, `'NaN'`, `'NaN'`, `'NaN'`, `true`, `''`, `''`, `''`, `'\\x'`, `'2000-02-29'`,
            `'12:34:56.789012'`, `'12:34:56.789012+05:30'`, `'2000-01-01 00:00:00'`, `'2000-01-01 00:00:00+00'`,
            `'0'`, `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`, `'null'`, `'"str"'`, `'{NULL}'`, `'{""}'`, `'ok'`,
            `'{NULL}'`, `'10.1.2.3'`, `'10.0.0.0/8'`, `42`, `''`],
        5: [`1`, `-1`, `1`, `'0.00000000000000000001'`, `'-Infinity'`, `'Infinity'`, `'Infinity'`, `false`, `'x'`,
            `'x'`, `'x'`, `'\\x41'`, `'1970-01-01'`, `'23:59:59.999999'`, `'23:59:59.999999+00'`,
            `'1970-01-01 00:00:00.000001'`, `'1970-01-01 00:00:00.000001+00'`, `'-1 days +02:00:00'`,
            `'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12'`, `'{"k":"v"}'`, `'{"k":"v", "a": {"z": 1, "b": 2}}'`,
            `'{-1,0,1}'`, `'{x}'`, `'sad'`, `'{{sad,ok},{ok,sad}}'`, `'::1'`, `'::/0'`, `7`, `'small'`],
        6: [`-1`, `1`, `-1`, `'1.5'`, `'Infinity'`, `'-Infinity'`, `'-Infinity'`, `true`, `'y'`, `'y'`, `'y'`,
            `'\\xdeadbeef'`, `'-infinity'`, `'00:00:00.000001'`, `'00:00:00.000001-00:30'`, `'-infinity'`,
            `'infinity'`, `'1 mon -1 days'`, `'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13'`, `'123'`, `'123.450'`,
            `'{2147483647,-2147483648}'`, `'{"{}","\\\\"}'`, `'ok'`, `'{ok}'`, `'255.255.255.255/32'`, `'192.168.0.0/16'`,
            `3`, `repeat('z', 3000)`],
        // streamed rows (inserted after start_stream)
        7: [`12`, `345`, `6789`, `'3.14159265358979323846'`, `'1e-1000'`, `'3.14159'`, `'0.1'`, `true`,
            `'streamed'`, `'streamed'`, `'s'`, `'\\x0a0d09'`, `'2024-01-01'`, `'01:02:03'`, `'01:02:03+01'`,
            `'2024-01-01 01:02:03.000004'`, `'2024-01-01 01:02:03.000004-08'`, `'1 year 2 mons 3 days 04:05:06.789'`,
            `'c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14'`, `'{"n": 1e400}'`, `'{"n": 1e400}'`, `'{1,NULL,3}'`,
            `'{NULL}'`, `'it''s "quoted"'`, `'{"it''s \\"quoted\\"",NULL}'`, `'fe80::1'`, `'fe80::/10'`, `9`, `'s'`],
        8: [`-2`, `-3`, `-4`, `'0.5'`, `'123456789012345678901234567890.123456789012345678901234567890'`,
            `'1e-45'`, `'5e-324'`, `false`, `repeat(E'multi\\nline ', 100)`, `'é'`, `'日本'`, ALL_BYTES,
            `'2024-02-29'`, `'23:00:00'`, `'23:00:00-03'`, `'2024-02-29 23:59:59'`, `'2024-02-29 23:59:59.5+14'`,
            `'-1 years -2 mons +3 days -04:05:06'`, `'d0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15'`,
            `'{"unicode": "\\u00e9\\u65e5"}'`, `'{"unicode": "\\u00e9\\u65e5"}'`, `'{{{1}}}'`, `'{" leading","trailing "}'`,
            `'sad'`, `'{sad,sad}'`, `'1.2.3.4/8'`, `'1.0.0.0/8'`, `11`, MB],
        9: [`100`, `100`, `100`, `'100'`, `'100'`, `'-1.17549435e-38'`, `'2.2250738585072014e-308'`, `true`,
            `'nine'`, `'nine'`, `'nine'`, `'\\x09'`, `'2000-01-01'`, `'09:09:09'`, `'09:09:09+09'`,
            `'2009-09-09 09:09:09'`, `'2009-09-09 09:09:09+09'`, `'9 days'`, `'e0eebc99-9c0b-4ef8-bb6d-6bb9bd380a16'`,
            `'9'`, `'9'`, `'{9}'`, `'{9}'`, `'ok'`, `'{ok,NULL}'`, `'9.9.9.9'`, `'9.9.9.0/24'`, `9`, MB],
        10: [`10`, `10`, `10`, `'10'`, `'10'`, `'-0.000123'`, `'-1e-300'`, `false`, `'ten'`, `'ten'`, `'ten'`,
             `'\\x10'`, `'2010-10-10'`, `'10:10:10'`, `'10:10:10-10'`, `'2010-10-10 10:10:10'`,
             `'2010-10-10 10:10:10-10'`, `'10 hours'`, `'f0eebc99-9c0b-4ef8-bb6d-6bb9bd380a17'`, `'10'`, `'10'`,
             `'{10}'`, `'{10}'`, `'sad'`, `'{}'`, `'10.10.10.10'`, `'10.10.10.0/24'`, `10`, `'ten'`],
        11: NULLS,
      };
      for (const [id, r] of Object.entries(rows)) assert.equal(r.length, names.length - 1, `row ${id} has ${r.length} values for ${names.length - 1} columns`);
      const insert = (ids) => ids.map((id) => `INSERT INTO ${table} VALUES (${id}, ${rows[id].join(', ')});`).join('\n');
      const diff = () => diffPg(pg, 'postgres', lake, table, names);

      // Snapshot rows, then the stream.
      await psql(pg, insert([1, 2, 3, 4, 5, 6]));
      const started = await srv.callOk('start_stream', { name: stream, source: 'src', target: 'lake', tables: [`public.${table}`] });
      assert.equal(started.started, true);
      assert.ok(!started.checks.some((c) => c.status === 'fail'), `failing checks: ${JSON.stringify(started.checks)}`);
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'state streaming after the snapshot');
      // The snapshot alone, before any streamed change.
      await waitForEqual(diff, CATCH_UP_MS, `${table}: the snapshot rows`, () => srv.describe());

      // The target's column types: built-in types as in the source, user-defined ones as text.
      const expectTypes = cols.map((c) => `${c.name}=${c.oid < FIRST_USER_OID ? c.type : 'text'}`);
      assert.deepEqual(await declaredTypes(pg, lake, table), expectTypes, 'target column types (built-in: the source type; enum, enum[], domain: text)');
      assert.equal(await primaryKey(pg, lake, table), 'id', 'target primary key');

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
      await waitForEqual(diff, CATCH_UP_MS, `${table}: source vs target after the streamed changes`, () => srv.describe());

      // The updates that did not touch the 1 MB column kept it: row 2 (a snapshot
      // row) and row 8 (a streamed row). Also covered by the comparison above.
      const big = (await psql(pg, `SELECT id || ' ' || length(c_big) || ' ' || md5(c_big) FROM ${table} WHERE id IN (2, 8) ORDER BY id;`, { db: lake })).trim();
      const srcBig = (await psql(pg, `SELECT id || ' ' || length(c_big) || ' ' || md5(c_big) FROM ${table} WHERE id IN (2, 8) ORDER BY id;`)).trim();
      assert.equal(big, srcBig, 'rows 2 and 8: the unchanged 1 MB values must survive the updates');
      assert.match(big, /^2 1048576 \w+\n8 1048576 \w+$/, 'rows 2 and 8 hold 1 MB values');

      const st = await waitForStream(srv, stream, (x) => x.table_stats?.length > 0, 5000, 'table stats');
      const ts = st.table_stats.find((t) => t.table === `public.${table}`);
      assert.ok(ts, `no table_stats for public.${table}: ${JSON.stringify(st.table_stats)}`);
      assert.equal(ts.snapshot_rows, 6, `snapshot_rows: ${JSON.stringify(ts)}`);
      assert.ok(ts.inserts >= 7 && ts.updates >= 8 && ts.deletes >= 3, `change counts: ${JSON.stringify(ts)}`);

      // TRUNCATE empties the target; the stream keeps going afterwards.
      await psql(pg, `TRUNCATE ${table};`);
      await waitUntil(async () => (await psql(pg, `SELECT count(*) FROM ${table};`, { db: lake })).trim() === '0', CATCH_UP_MS,
        'the target table to be empty after TRUNCATE', () => srv.describe());
      await psql(pg, insert([2, 9]));
      await waitForEqual(diff, CATCH_UP_MS, `${table} after TRUNCATE and two inserts`, () => srv.describe());
      const truncStats = (await srv.callOk('stream_status', { name: stream })).stream.table_stats.find((t) => t.table === `public.${table}`);
      assert.equal(truncStats.truncates, 1, `truncates: ${JSON.stringify(truncStats)}`);

      const stop = await srv.callOk('stop_stream', { name: stream, drop_slot: true });
      assert.deepEqual(stop, { name: stream, stopped: true, slot_dropped: true });
    } finally {
      await cleanupSource(pg, {
        slots: [slotOf(stream)],
        publications: [slotOf(stream)],
        sql: `DROP TABLE IF EXISTS ${table}; DROP TYPE IF EXISTS ${mood}; DROP DOMAIN IF EXISTS ${posint};`,
      });
    }
  });

  // ------------------------------------------------------------------ 2
  // A key change of a row whose TOASTed value is not touched: pgoutput sends
  // the new row with that column "unchanged" ('u') and, with the default
  // replica identity, an old image holding only the key. The target must end
  // up with the row under its new key and the 1 MB value intact.
  it('a key change keeps an unchanged 1 MB TOASTed value (snapshot and streamed rows)', async () => {
    const { pg, srv } = s;
    const table = `dv_pgkey_${U}`;
    const stream = `pgkey_${U}`;
    const names = ['id', 'v', 'big'];
    const MB = (seed) => `(SELECT string_agg(md5(g::text || '${seed}'), '') FROM generate_series(1, 32768) g)`;
    try {
      await psql(
        pg,
        `CREATE TABLE ${table} (id int PRIMARY KEY, v text, big text);
         ALTER TABLE ${table} ALTER COLUMN big SET STORAGE EXTERNAL;
         INSERT INTO ${table} VALUES (1, 'snapshot', ${MB('a')});`,
      );
      await srv.callOk('start_stream', { name: stream, source: 'src', target: 'lake', tables: [`public.${table}`] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'state streaming after the snapshot');
      await psql(
        pg,
        `INSERT INTO ${table} VALUES (2, 'streamed', ${MB('b')});
         UPDATE ${table} SET id = 101 WHERE id = 1;
         UPDATE ${table} SET id = 102, v = 'streamed, key changed' WHERE id = 2;`,
      );
      // Once the last change is in the target (each statement is its own
      // transaction, applied in commit order), the tables must be equal.
      await waitUntil(
        async () => (await psql(pg, `SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM ${table};`, { db: lake })).trim() ===
          '101:snapshot,102:streamed, key changed',
        CATCH_UP_MS, `${table}: the key changes in the target`, () => srv.describe());
      const d = await diffPg(pg, 'postgres', lake, table, names);
      if (d !== null) assert.fail(`${table}: key changes with an unchanged TOASTed value:\n${d}`);
      const stop = await srv.callOk('stop_stream', { name: stream, drop_slot: true });
      assert.equal(stop.slot_dropped, true);
    } finally {
      await cleanupSource(pg, { slots: [slotOf(stream)], publications: [slotOf(stream)], sql: `DROP TABLE IF EXISTS ${table};` });
    }
  });
});
