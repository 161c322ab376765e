// Acceptance: re-copying one table of a running stream (resnapshot_table),
// start_stream with wait_for_snapshot, and snapshot progress, PostgreSQL ->
// SQLite, against the real test PostgreSQL (scripts/test exports
// DATAVOR_TEST_PG_*; without it every test fails), through the official SDK
// Client driving `datavor serve` over stdio.
//
//  1. A drifted target (rows deleted, values altered, a bogus row, all behind
//     Datavor's back) is repaired by resnapshot_table {wait: true} while a
//     writer inside PostgreSQL keeps inserting, updating and deleting rows of
//     the same 300,000-row table: the call returns when the copy is done
//     (finished, rows = the table's rows at copy time), sends increasing
//     progress notifications meanwhile, stream_status lists the finished
//     re-snapshot, and after the writer stops the target equals the source
//     value by value (the damage is gone, no write of the writer lost).
//  2. Changes committed before the copy but applied after it are replayed over
//     the copy: while a re-snapshot of a big table runs (the runner applies
//     nothing meanwhile), inserts, updates, a delete and key changes commit on
//     a second table (among them: a key change with an unchanged 1 MB TOASTed
//     value whose old key is then inserted again, and an update then a key
//     change of a row, both leaving its 1 MB value unchanged), whose
//     re-snapshot is then asked for; its copy already holds them, the stream
//     applies them after it, and the table must end at the source's rows.
//  3. Errors: a table not in the stream (the message names the stream's
//     tables), an unknown stream, a stopped stream, invalid arguments
//     (missing table, wrong types, unknown field) are isError results.
//  4. start_stream {wait_for_snapshot: true} on a 300,000-row ANALYZEd table
//     returns with the stream streaming and the snapshot complete; progress
//     notifications carry total = pg_class.reltuples and a "rows" message;
//     meanwhile stream_status shows snapshot_progress (kind initial) and
//     resnapshot_table is refused while the initial snapshot copies.
//  5. A key change of a row whose 1 MB TOASTed (uncompressed, STORAGE
//     EXTERNAL) column is unchanged moves the row and keeps that value in the
//     SQLite target, for snapshot rows and streamed rows.
//
// Run: node --test tests/node/stream_resnapshot.test.mjs   (with DATAVOR_TEST_PG_* set)
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BIN, requireExecutable, sleep, tempHome, textOf } from './lib.mjs';
import {
  WRITER_COLUMNS,
  WRITER_KINDS,
  cleanupSource,
  createWriterTable,
  diffTables,
  lsnToBig,
  psql,
  psqlValue,
  requirePg,
  sqlite,
  startServe,
  startWriter,
  waitForEqual,
  waitForStream,
  waitUntil,
  writeEmptyFile,
} from './stream_lib.mjs';

const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const CATCH_UP_MS = 60000;
// A copy at least this long must send a progress notification (the server
// polls a running copy every 500 ms while a call waits for it).
const MIN_COPY_S = 0.75;
const LIVE = ['starting', 'snapshot', 'streaming', 'running'];
const slotOf = (stream) => `datavor_${stream}`;
const md5 = (s) => crypto.createHash('md5').update(s, 'utf8').digest('hex');
const dropWriterSql = (table) =>
  `DROP TABLE IF EXISTS ${table}, ${table}_ctl, ${table}_audit; DROP FUNCTION IF EXISTS ${table}_audit_fn; DROP SEQUENCE IF EXISTS ${table}_ver, ${table}_id;`;

// 1 MB (1,048,576 chars) of text, different per seed.
const MB = (seed) => `(SELECT string_agg(md5(g::text || '${seed}'), '') FROM generate_series(1, 32768) g)`;

// A call whose progress notifications are collected (the SDK sends a
// progressToken when onprogress is given).
async function callWithProgress(srv, name, args, timeout = 180000) {
  const notes = [];
  const r = await srv.call(name, args, {
    timeout,
    resetTimeoutOnProgress: true,
    onprogress: (p) => notes.push({ ...p, at: Date.now() }),
  });
  return { r, notes };
}

function assertIncreasing(notes, what) {
  for (let i = 1; i < notes.length; i++) {
    assert.ok(notes[i].progress > notes[i - 1].progress, `${what}: progress did not increase: ${JSON.stringify(notes.slice(Math.max(0, i - 2), i + 1))}`);
  }
}

const count = async (pg, table) => Number(await psqlValue(pg, `SELECT count(*) FROM ${table};`));
const targetCount = async (file, table) => Number((await sqlite(file, `SELECT count(*) FROM "${table}";`)).trim());

// stream_lib's writer table (createWriterTable) with `rows` rows whose payload
// is `width` x 32 characters, loaded without the audit trigger (this test does
// not read the audit), then ANALYZEd.
async function createWideWriterTable(pg, table, rows, width) {
  await createWriterTable(pg, table, 0);
  await psql(
    pg,
    `ALTER TABLE ${table} DISABLE TRIGGER ${table}_audit_tg;
     INSERT INTO ${table} (id, ver, n, payload) SELECT g, nextval('${table}_ver'), 0, repeat(md5(g::text), ${width}) FROM generate_series(1, ${rows}) g;
     ALTER TABLE ${table} ENABLE TRIGGER ${table}_audit_tg;
     ANALYZE ${table};`,
  );
}

// waitForStream that fails at once, with the stream's error, when the stream fails.
async function waitForStreamOk(srv, name, pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = (await srv.callOk('stream_status', { name })).stream;
    if (st.state === 'failed') assert.fail(`stream ${name} failed while waiting for ${what}: ${st.last_error}\nstatus: ${JSON.stringify(st)}${srv.describe()}`);
    if (pred(st)) return st;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}\nstatus: ${JSON.stringify(st)}${srv.describe()}`);
    await sleep(100);
  }
}

const reltuples = async (pg, table) => Number(await psqlValue(pg, `SELECT reltuples::bigint FROM pg_class WHERE oid = '${table}'::regclass;`));

describe('PostgreSQL -> SQLite: resnapshot_table and wait_for_snapshot', () => {
  const s = { pg: null, tmp: null, srv: null };

  before(async () => {
    s.pg = requirePg();
    requireExecutable(BIN);
    s.tmp = tempHome('datavor-resnap-');
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
    const c = await s.srv.callOk('add_connection', { name: 'pg', url: s.pg.url, password: s.pg.password, sslmode: 'disable' });
    assert.equal(c.connection.kind, 'postgresql');
  });

  after(async () => {
    if (s.srv) {
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
  it('resnapshot_table repairs a drifted target while a writer keeps changing the table', async () => {
    const { pg, srv } = s;
    const ROWS = 300000;
    const table = `dv_rs_${U}`;
    const qualified = `public.${table}`;
    const stream = `rs_${U}`;
    const target = path.join(s.tmp.root, 'rs.db');
    let writer;
    try {
      await createWideWriterTable(pg, table, ROWS, 6);
      // The target table as the sink would create it, plus an index on the
      // (random) payload: it slows the copy down enough for progress notifications.
      await sqlite(
        target,
        `CREATE TABLE "${table}" ("id" INTEGER, "ver" INTEGER, "n" INTEGER, "payload" TEXT, "ts" TEXT, PRIMARY KEY ("id"));
         CREATE INDEX "${table}_payload" ON "${table}" (substr("payload", 1, 8));`,
      );
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'the initial snapshot to finish');
      writer = startWriter(pg, table, { rows: ROWS, sleepMs: 5 });
      await waitUntil(async () => (await writer.iterations()) >= 20, 20000, 'the writer to run', () => writer.h.describe());

      // Damage the target behind Datavor's back (the sink waits for the lock).
      await sqlite(
        target,
        `DELETE FROM "${table}" WHERE id BETWEEN 1001 AND 2000;
         UPDATE "${table}" SET payload = 'DAMAGED', n = -1 WHERE id % 997 = 0;
         INSERT INTO "${table}" (id, ver, n, payload, ts) VALUES (-5, 0, 0, 'bogus', 'not a time');`,
      );
      const damage = async () =>
        (await sqlite(
          target,
          `SELECT (SELECT count(*) FROM "${table}" WHERE id BETWEEN 1001 AND 2000) || ' ' ||
                  (SELECT count(*) FROM "${table}" WHERE payload = 'DAMAGED') || ' ' ||
                  (SELECT count(*) FROM "${table}" WHERE id = -5);`,
        )).trim().split(' ').map(Number);
      const [kept, damaged, bogus] = await damage();
      assert.ok(kept < 900 && damaged > 150 && bogus === 1, `the target was not damaged as planned (rows 1001-2000 left: ${kept}, DAMAGED: ${damaged}, bogus: ${bogus})`);

      const countBefore = await count(pg, table);
      const itBefore = await writer.iterations();
      const t0 = Date.now();
      const { r, notes } = await callWithProgress(srv, 'resnapshot_table', { name: stream, table, wait: true });
      const elapsed = (Date.now() - t0) / 1000;
      const itAfter = await writer.iterations();
      const countAfter = await count(pg, table);
      assert.notEqual(r.isError, true, `resnapshot_table returned isError: ${textOf(r)}${srv.describe()}`);
      const res = r.structuredContent;
      assert.ok(res, `resnapshot_table: no structuredContent: ${JSON.stringify(r)}`);
      assert.equal(res.name, stream);
      assert.equal(res.table, qualified);
      assert.equal(res.queued, true);
      assert.equal(res.finished, true, `finished: ${JSON.stringify(res)}`);
      assert.equal(res.state, 'streaming', `state after the re-snapshot: ${JSON.stringify(res)}`);
      // The writer's transactions never lower the row count, so the count at copy time is in between.
      assert.ok(Number.isInteger(res.rows) && res.rows >= countBefore && res.rows <= countAfter,
        `rows copied ${res.rows}: not between the source's ${countBefore} rows before the call and ${countAfter} after`);
      assert.ok(res.seconds > 0 && res.seconds <= elapsed + 0.5, `seconds ${res.seconds} (the call took ${elapsed} s)`);
      assert.ok(itAfter > itBefore, `the writer did not commit anything during the re-snapshot (iterations ${itBefore} -> ${itAfter})`);

      // Progress: increasing, with the table and the rows in the message; at
      // least one when the copy lasted long enough to span one of the server's
      // polls (every 500 ms while the call waits).
      if (res.seconds >= MIN_COPY_S) assert.ok(notes.length >= 1, `no progress notification during a re-snapshot of ${res.rows} rows that took ${res.seconds} s (call ${elapsed} s)`);
      else console.error(`# the re-snapshot took only ${res.seconds} s: too short to require a progress notification (make the table bigger)`);
      assertIncreasing(notes, 'resnapshot_table');
      for (const n of notes) {
        assert.ok(n.message?.includes(qualified) && n.message.includes('rows'), `progress message: ${JSON.stringify(n)}`);
        assert.ok(n.total === undefined || n.total >= n.progress, `progress total below progress: ${JSON.stringify(n)}`);
      }
      console.error(`# resnapshot of ${res.rows} rows in ${res.seconds} s, call ${elapsed} s, ${notes.length} progress notification(s), last: ${JSON.stringify(notes.at(-1))}, writer iterations during: ${itAfter - itBefore}`);

      // stream_status lists the finished re-snapshot, nothing pending or in progress.
      const st = (await srv.callOk('stream_status', { name: stream })).stream;
      assert.equal(st.state, 'streaming');
      const done = (st.resnapshots ?? []).filter((x) => x.table === qualified);
      assert.equal(done.length, 1, `stream_status.resnapshots: ${JSON.stringify(st.resnapshots)}`);
      assert.equal(done[0].rows, res.rows, `resnapshots[].rows vs the call's rows: ${JSON.stringify(done[0])}`);
      assert.ok(Math.abs(done[0].seconds - res.seconds) < 0.01, `resnapshots[].seconds: ${JSON.stringify(done[0])} vs ${res.seconds}`);
      const fin = Date.parse(done[0].finished_at);
      assert.match(done[0].finished_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      assert.ok(fin >= t0 - 1000 && fin <= Date.now() + 1000, `finished_at ${done[0].finished_at} not during the call`);
      assert.ok(!st.pending_resnapshots?.length, `pending_resnapshots after the copy: ${JSON.stringify(st.pending_resnapshots)}`);
      assert.equal(st.snapshot_progress, undefined, `snapshot_progress after the copy: ${JSON.stringify(st.snapshot_progress)}`);
      const ts = st.table_stats.find((t) => t.table === qualified);
      assert.equal(ts?.snapshot_rows, res.rows, `table_stats after the re-snapshot: ${JSON.stringify(ts)}`);
      assert.ok(ts.snapshot_rows_estimate >= ROWS * 0.9, `snapshot_rows_estimate of an ANALYZEd ${ROWS}-row table: ${JSON.stringify(ts)}`);

      // Stop the writer; the target must equal the source value by value.
      await writer.stop();
      await waitForEqual(() => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS), CATCH_UP_MS, `${table}: source vs repaired target`, () => srv.describe());
      const srcKept = await count(pg, `${table} WHERE id BETWEEN 1001 AND 2000`);
      assert.deepEqual(await damage(), [srcKept, 0, 0], 'rows 1001-2000 (as in the source), DAMAGED values and the bogus row after the re-snapshot');
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      if (writer?.running()) await writer.stop().catch(() => {});
      await cleanupSource(pg, { slots: [slotOf(stream)], publications: [slotOf(stream)], sql: dropWriterSql(table) });
    }
  });

  // ------------------------------------------------------------------ 2
  it('changes committed before a re-snapshot and applied after it are replayed over the copy', async () => {
    const { pg, srv } = s;
    const big = `dv_rpb_${U}`;
    const t = `dv_rpt_${U}`;
    const stream = `rp_${U}`;
    const target = path.join(s.tmp.root, 'rp.db');
    const cols = ['id', 'v', 'big'];
    const kinds = ['int', 'text', 'text'];
    try {
      await psql(
        pg,
        `CREATE TABLE ${big} (id int PRIMARY KEY, v text);
         INSERT INTO ${big} SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 500000) g;
         ANALYZE ${big};
         CREATE TABLE ${t} (id int PRIMARY KEY, v text, big text);
         ALTER TABLE ${t} ALTER COLUMN big SET STORAGE EXTERNAL;
         INSERT INTO ${t} VALUES (1, 'one', ${MB(1)}), (2, 'two', 'small 2'), (3, 'three', 'small 3'),
                                 (4, 'four', ${MB(4)}), (5, 'five', ${MB(5)}), (6, 'six', 'small 6');`,
      );
      const started = await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [big, t], wait_for_snapshot: true }, { timeout: 180000 });
      assert.equal(started.stream.state, 'streaming', `start_stream with wait_for_snapshot: ${JSON.stringify(started.stream)}`);
      await waitForEqual(() => diffTables(pg, t, target, t, cols, kinds), CATCH_UP_MS, `${t}: the snapshot`, () => srv.describe());

      // A re-snapshot of the big table: while it copies, the stream applies nothing.
      const q1 = await srv.callOk('resnapshot_table', { name: stream, table: big });
      assert.deepEqual({ ...q1, snapshot_progress: undefined }, { name: stream, table: `public.${big}`, queued: true, finished: false, state: 'streaming', snapshot_progress: undefined });
      await waitForStreamOk(srv, stream, (st) => st.snapshot_progress?.kind === 'resnapshot' && st.snapshot_progress.table === `public.${big}`, 20000, `the re-snapshot of ${big} to begin`);

      // Meanwhile, on the other table (each statement its own transaction):
      await psql(
        pg,
        `UPDATE ${t} SET id = 101 WHERE id = 1;                -- key change, the 1 MB value unchanged
         INSERT INTO ${t} VALUES (1, 'one again', 'small 1');  -- the old key used again
         UPDATE ${t} SET v = 'changed' WHERE id = 2;
         DELETE FROM ${t} WHERE id = 3;
         INSERT INTO ${t} VALUES (7, 'seven', ${MB(7)});
         UPDATE ${t} SET v = 'four, updated' WHERE id = 4;      -- the 1 MB value unchanged
         UPDATE ${t} SET id = 104, v = 'moved' WHERE id = 4;    -- then a key change and a new v, the 1 MB value unchanged
         UPDATE ${t} SET id = 105, big = 'small 5' WHERE id = 5; -- key change with every column sent
         UPDATE ${t} SET v = 'one, moved' WHERE id = 101;`,
      );
      const changesEnd = await psqlValue(pg, 'SELECT pg_current_wal_lsn();');
      // ... then its re-snapshot: its copy already holds those changes; the stream applies them after it.
      const q2 = await srv.callOk('resnapshot_table', { name: stream, table: t });
      assert.equal(q2.queued, true);
      assert.equal(q2.snapshot_progress?.table, `public.${big}`,
        `test premise: the re-snapshot of ${big} must still be copying when ${t}'s is asked for (make ${big} bigger): ${JSON.stringify(q2)}`);

      const st = await waitForStreamOk(srv, stream, (x) => (x.resnapshots ?? []).some((r) => r.table === `public.${t}`), CATCH_UP_MS, `the re-snapshot of ${t} to finish`);
      assert.deepEqual(st.resnapshots.map((r) => r.table), [`public.${big}`, `public.${t}`], `resnapshots: ${JSON.stringify(st.resnapshots)}`);
      assert.equal(st.resnapshots[1].rows, 7, `rows copied of ${t}: ${JSON.stringify(st.resnapshots[1])}`);
      // The copy already shows the end state; wait until the stream has applied those changes over it.
      const applied = await waitForStreamOk(srv, stream, (x) => x.applied_position && lsnToBig(x.applied_position) >= lsnToBig(changesEnd),
        CATCH_UP_MS, `the changes committed before the copy (up to ${changesEnd}) to be applied`);
      const ts = applied.table_stats.find((x) => x.table === `public.${t}`);
      assert.deepEqual([ts.inserts, ts.updates, ts.deletes], [2, 6, 1], `the changes committed before the copy were not applied after it (table_stats ${JSON.stringify(ts)})`);
      assert.equal(await diffTables(pg, t, target, t, cols, kinds), null, `${t}: source vs target after replaying the changes older than the copy`);
      assert.equal((await srv.callOk('stream_status', { name: stream })).stream.state, 'streaming');
      await waitForEqual(() => diffTables(pg, big, target, big, ['id', 'v'], ['int', 'text']), CATCH_UP_MS, `${big}: source vs target`, () => srv.describe());
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      await cleanupSource(pg, { slots: [slotOf(stream)], publications: [slotOf(stream)], sql: `DROP TABLE IF EXISTS ${big}, ${t};` });
    }
  });

  // ------------------------------------------------------------------ 3
  it('resnapshot_table errors: unknown table, unknown stream, stopped stream, invalid arguments', async () => {
    const { pg, srv } = s;
    const table = `dv_err_${U}`;
    const other = `dv_err_other_${U}`;
    const stream = `err_${U}`;
    const target = path.join(s.tmp.root, 'err.db');
    const isError = async (args, pattern, what) => {
      const r = await srv.call('resnapshot_table', args);
      assert.equal(r.isError, true, `${what}: resnapshot_table(${JSON.stringify(args)}) should be an isError result, got ${JSON.stringify(r).slice(0, 600)}`);
      assert.match(textOf(r), pattern, `${what}: error text`);
      return textOf(r);
    };
    try {
      await psql(pg, `CREATE TABLE ${table} (id int PRIMARY KEY, v text); INSERT INTO ${table} VALUES (1, 'a'), (2, 'b'), (3, 'c'); CREATE TABLE ${other} (id int PRIMARY KEY);`);
      const started = await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table], wait_for_snapshot: true });
      assert.equal(started.stream.state, 'streaming');

      // A table that exists on the source but is not in the stream: the message names the stream's tables.
      const msg = await isError({ name: stream, table: other }, new RegExp(`${other}.*not in this stream`), 'a table not in the stream');
      assert.ok(msg.includes(`public.${table}`), `the error does not name the stream's tables: ${msg}`);
      await isError({ name: stream, table: `public.${other}` }, /not in this stream/, 'a schema-qualified table not in the stream');
      await isError({ name: stream, table: `other_schema.${table}` }, /not in this stream/, 'the right name in another schema');
      await isError({ name: `nosuch_${U}`, table }, new RegExp(`No stream named nosuch_${U}`), 'an unknown stream');

      // Invalid arguments (checked against the input schema): an isError result naming the field.
      await isError({ name: stream }, /table/, 'missing table');
      await isError({ table }, /name/, 'missing name');
      await isError({ name: stream, table: 5 }, /table/, 'table of the wrong type');
      await isError({ name: stream, table: '' }, /table/, 'an empty table');
      await isError({ name: stream, table, wait: 'yes' }, /wait/, 'wait of the wrong type');
      await isError({ name: stream, table, bogus_field: 1 }, /bogus_field/, 'an unknown field');
      await isError({ name: 'bad name!', table }, /name/, 'a name against the pattern');

      // The stream is unharmed; a valid call with an unqualified name works.
      await psql(pg, `INSERT INTO ${table} VALUES (4, 'd');`);
      const ok = await srv.callOk('resnapshot_table', { name: stream, table, wait: true });
      assert.equal(ok.finished, true);
      assert.equal(ok.table, `public.${table}`);
      assert.equal(ok.rows, 4);
      await waitForEqual(() => diffTables(pg, table, target, table, ['id', 'v'], ['int', 'text']), CATCH_UP_MS, `${table}: after the re-snapshot`, () => srv.describe());

      // A stopped stream.
      await srv.callOk('stop_stream', { name: stream });
      await isError({ name: stream, table }, /not running/, 'a stopped stream');
      await isError({ name: stream, table, wait: true }, /not running/, 'a stopped stream, with wait');
    } finally {
      await srv.call('stop_stream', { name: stream, drop_slot: true }).catch(() => {});
      await cleanupSource(pg, { slots: [slotOf(stream)], publications: [slotOf(stream)], sql: `DROP TABLE IF EXISTS ${table}, ${other};` });
    }
  });

  // ------------------------------------------------------------------ 4
  it('start_stream with wait_for_snapshot returns once the snapshot is copied, with progress', async () => {
    const { pg, srv } = s;
    const ROWS = 300000;
    const table = `dv_wfs_${U}`;
    const qualified = `public.${table}`;
    const stream = `wfs_${U}`;
    const target = path.join(s.tmp.root, 'wfs.db');
    let stopWatch = false;
    try {
      await psql(
        pg,
        `CREATE TABLE ${table} (id int PRIMARY KEY, v text);
         INSERT INTO ${table} SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, ${ROWS}) g;
         ANALYZE ${table};`,
      );
      const estimate = await reltuples(pg, table);
      assert.ok(estimate > 0, `reltuples after ANALYZE: ${estimate}`);
      // The target table as the sink would create it, plus an index on the
      // (random) text: it slows the copy down enough for progress notifications.
      await sqlite(target, `CREATE TABLE "${table}" ("id" INTEGER, "v" TEXT, PRIMARY KEY ("id")); CREATE INDEX "${table}_v" ON "${table}" (substr("v", 1, 8));`);

      // While start_stream waits: stream_status shows the copy, and resnapshot_table is refused.
      const seen = {};
      const watch = (async () => {
        while (!stopWatch) {
          const r = await srv.call('stream_status', { name: stream });
          const st = r.isError ? null : r.structuredContent.stream;
          if (st?.state === 'snapshot') {
            seen.first ??= Date.now();
            seen.last = Date.now();
          }
          if (st?.state === 'snapshot' && st.snapshot_progress && !seen.progress) {
            seen.progress = st.snapshot_progress;
            seen.stats = st.table_stats;
            seen.refused = await srv.call('resnapshot_table', { name: stream, table });
            seen.stateAfter = (await srv.callOk('stream_status', { name: stream })).stream.state;
          }
          await sleep(50);
        }
      })();
      const t0 = Date.now();
      const { r, notes } = await callWithProgress(srv, 'start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table], wait_for_snapshot: true });
      const elapsed = (Date.now() - t0) / 1000;
      stopWatch = true;
      await watch;

      assert.notEqual(r.isError, true, `start_stream returned isError: ${textOf(r)}${srv.describe()}`);
      const res = r.structuredContent;
      assert.equal(res.started, true);
      assert.equal(res.stream.state, 'streaming', `state when start_stream returned: ${JSON.stringify(res.stream)}`);
      assert.equal(res.stream.snapshot_progress, undefined, `snapshot_progress when start_stream returned: ${JSON.stringify(res.stream.snapshot_progress)}`);
      // The snapshot is complete when the call returns.
      assert.equal(await targetCount(target, table), ROWS, 'target rows when start_stream returned');

      const copyNotes = notes.filter((n) => n.message?.startsWith(`${qualified}:`));
      console.error(`# wait_for_snapshot: ${ROWS} rows in ${elapsed} s, ${notes.length} notification(s) (${copyNotes.length} of the copy), last: ${JSON.stringify(notes.at(-1))}`);
      const copySeen = ((seen.last ?? 0) - (seen.first ?? 0)) / 1000;
      if (copySeen >= MIN_COPY_S) assert.ok(copyNotes.length >= 1, `no copy progress notification during a ${elapsed} s start_stream whose snapshot lasted at least ${copySeen} s (all: ${JSON.stringify(notes)})`);
      else console.error(`# stream_status showed the snapshot for only ${copySeen} s: too short to require a progress notification (make the table bigger)`);
      assertIncreasing(notes, 'start_stream');
      for (const n of copyNotes) {
        assert.equal(n.total, Math.max(estimate, n.progress), `progress total vs the estimate ${estimate}: ${JSON.stringify(n)}`);
        assert.ok(n.message.includes('rows'), `progress message: ${JSON.stringify(n)}`);
      }
      if (copyNotes.length) {
        assert.ok(copyNotes.some((n) => n.message.includes(`of ~${estimate} rows`)), `no message with "of ~${estimate} rows": ${JSON.stringify(copyNotes)}`);
        assert.ok(copyNotes.some((n) => /about \d+ s left/.test(n.message)) || copyNotes.every((n) => n.progress <= 1),
          `no ETA in the messages: ${JSON.stringify(copyNotes)}`);
      }

      assert.ok(seen.progress, `stream_status never showed state snapshot with snapshot_progress during a ${elapsed} s copy`);
      const p = seen.progress;
      assert.equal(p.kind, 'initial');
      assert.equal(p.tables_total, 1);
      assert.equal(p.rows_estimate, estimate);
      assert.ok(p.rows >= 0 && p.rows <= ROWS && p.bytes >= 0 && p.elapsed_seconds >= 0 && typeof p.eta_seconds === 'number', `snapshot_progress: ${JSON.stringify(p)}`);
      assert.ok(p.table === undefined || p.table === '' || p.table === qualified, `snapshot_progress.table: ${JSON.stringify(p)}`);
      assert.equal(seen.stats.find((x) => x.table === qualified)?.snapshot_rows_estimate, estimate, `table_stats during the copy: ${JSON.stringify(seen.stats)}`);
      assert.equal(seen.refused.isError, true,
        `resnapshot_table during the initial snapshot should be refused (state afterwards: ${seen.stateAfter}): ${JSON.stringify(seen.refused).slice(0, 600)}`);
      assert.match(textOf(seen.refused), /initial snapshot/, 'resnapshot_table during the initial snapshot: error text');

      const st = (await srv.callOk('stream_status', { name: stream })).stream;
      const ts = st.table_stats.find((x) => x.table === qualified);
      assert.equal(ts.snapshot_rows, ROWS, `table_stats: ${JSON.stringify(ts)}`);
      assert.equal(ts.snapshot_rows_estimate, estimate, `table_stats: ${JSON.stringify(ts)}`);
      assert.equal(st.resnapshots, undefined, `resnapshots: ${JSON.stringify(st.resnapshots)}`);
      assert.equal(await count(pg, table), await targetCount(target, table));
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      stopWatch = true;
      await cleanupSource(pg, { slots: [slotOf(stream)], publications: [slotOf(stream)], sql: `DROP TABLE IF EXISTS ${table};` });
    }
  });

  // ------------------------------------------------------------------ 5
  it('a key change keeps an unchanged 1 MB TOASTed value in SQLite (snapshot and streamed rows)', async () => {
    const { pg, srv } = s;
    const table = `dv_keytoast_${U}`;
    const stream = `kt_${U}`;
    const target = path.join(s.tmp.root, 'kt.db');
    const cols = ['id', 'v', 'big'];
    const kinds = ['int', 'text', 'text'];
    const srcRows = async () =>
      (await psql(pg, `SELECT id || ' ' || coalesce(v, '-') || ' ' || coalesce(length(big), -1) || ' ' || coalesce(md5(big), '-') FROM ${table} ORDER BY id;`)).trim().split('\n');
    const tgtRows = async () =>
      (await sqlite(target, `SELECT json_array(id, v, big) FROM "${table}" ORDER BY id;`))
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [id, v, big] = JSON.parse(l);
          return `${id} ${v ?? '-'} ${big === null ? -1 : big.length} ${big === null ? '-' : md5(big)}`;
        });
    try {
      await psql(
        pg,
        `CREATE TABLE ${table} (id int PRIMARY KEY, v text, big text);
         ALTER TABLE ${table} ALTER COLUMN big SET STORAGE EXTERNAL;
         INSERT INTO ${table} VALUES (1, 'one', ${MB('a')}), (2, 'two', ${MB('b')});`,
      );
      const started = await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table], wait_for_snapshot: true });
      assert.equal(started.stream.state, 'streaming');
      await psql(pg, `INSERT INTO ${table} VALUES (3, 'three', ${MB('c')}); INSERT INTO ${table} VALUES (4, 'four', ${MB('d')});`);
      // Stored out of line and uncompressed, so an update that does not set it sends it as unchanged TOAST.
      const sizes = (await psql(pg, `SELECT pg_column_size(big) FROM ${table} ORDER BY id;`)).trim().split('\n').map(Number);
      assert.ok(sizes.every((x) => x >= 1048576), `pg_column_size(big): ${sizes} (not stored uncompressed?)`);
      await waitForEqual(() => diffTables(pg, table, target, table, cols, kinds), CATCH_UP_MS, `${table}: snapshot and streamed rows`, () => srv.describe());
      const before = await tgtRows();

      await psql(
        pg,
        `UPDATE ${table} SET id = id + 100 WHERE id = 1;
         UPDATE ${table} SET id = 102, v = 'x' WHERE id = 2;
         UPDATE ${table} SET id = id + 100 WHERE id = 3;
         UPDATE ${table} SET id = 104, v = 'y' WHERE id = 4;`,
      );
      const want = await srcRows();
      assert.deepEqual(want.map((r) => r.split(' ').slice(0, 3).join(' ')), ['101 one 1048576', '102 x 1048576', '103 three 1048576', '104 y 1048576'], 'source rows after the key changes');
      await waitForEqual(async () => {
        const got = await tgtRows();
        return JSON.stringify(got) === JSON.stringify(want) ? null : `target (id v length md5):\n  ${got.join('\n  ')}\nsource:\n  ${want.join('\n  ')}`;
      }, CATCH_UP_MS, `${table}: the moved rows with their 1 MB values`, () => srv.describe());
      // Each moved row kept exactly the value it had under its old key.
      const md5Of = (rows, id) => rows.find((r) => r.startsWith(`${id} `)).split(' ')[3];
      for (const id of [1, 2, 3, 4]) assert.equal(md5Of(await tgtRows(), id + 100), md5Of(before, id), `row ${id} -> ${id + 100}: the 1 MB value changed`);
      assert.equal(await diffTables(pg, table, target, table, cols, kinds), null);
      const st = (await srv.callOk('stream_status', { name: stream })).stream;
      assert.equal(st.state, 'streaming', `state: ${JSON.stringify(st)}`);
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      await cleanupSource(pg, { slots: [slotOf(stream)], publications: [slotOf(stream)], sql: `DROP TABLE IF EXISTS ${table};` });
    }
  });
});
