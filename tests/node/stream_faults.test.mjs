// Acceptance: faults a PostgreSQL -> SQLite stream survives (issue 4), against
// the real test PostgreSQL (scripts/test exports DATAVOR_TEST_PG_*; without it
// every test fails), through the official SDK Client driving `datavor serve`
// over stdio. One server and one home (ledger.db) for the whole file.
//
//  1. 1% of the rows violate a target constraint (a BEFORE INSERT/UPDATE
//     trigger that RAISEs on v = 'bad': unlike a CHECK it can be dropped,
//     which is "fixing the constraint"), in small transactions and in one
//     20,500-row transaction (spooled, applied in parts): every good row is
//     applied value by value, the stream keeps streaming, inspect_ledger lists
//     exactly the bad keys (class data, code sqlite:<constraint code>) and the
//     later changes to them as held (in the same transaction and after);
//     summary mode counts them per class. After the trigger is dropped,
//     retry_failed applies all of them in order (target = source exactly), a
//     second retry_failed is a no-op, and dismiss_failed releases a new bad
//     key so that its later update is applied, not held.
//  2. The walsender is killed (pg_terminate_backend) 10 times under a writer:
//     the stream reconnects each time (state degraded meanwhile, `reconnects`
//     counts them), and the write logs show no change lost or applied twice;
//     the ledger has a `degraded` lifecycle entry per reconnect.
//  3. The SQLite target is locked by another process for 20 s (the issue says
//     60 s; 20 s keeps the file short and still spans several retries;
//     DATAVOR_TEST_OUTAGE_S=60 runs the length) while a writer keeps
//     writing: the stream shows degraded with the lock as the reason, the
//     server's RSS stays within 50 MB of where it was, and after the release
//     it catches up with nothing lost or doubled. Meanwhile stream_status
//     answers within 3 s (the server stays usable) and the announced waits
//     double from one reconnect to the next (1 s doubling to 30 s).
//  4. The slot dropped behind Datavor's back while the stream is paused:
//     resume_stream ends in `failed`, with an error naming the missing slot
//     and the fix (re-snapshot), never streaming.
//  5. ledger.db locked by another process for ~6 s while changes flow: the
//     stream pauses (degraded, the ledger's reason, the target does not move),
//     then streams again; the batch entries account for every change exactly
//     and `datavor ledger verify` says the ledger is intact.
//  6. `datavor ledger verify` exits 0 on the whole run's ledger, and 3 naming
//     the entry on a copy where one entry's message was altered.
//
// "Nothing lost, nothing twice" is checked with write logs (stream_lib.mjs:
// createWriterTable, createTargetWithWriteLog, checkWriteLog).
//
// Run: node --test tests/node/stream_faults.test.mjs   (with DATAVOR_TEST_PG_* set)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BIN, requireExecutable, run, serverEnv, sleep, tempDir, tempHome } from './lib.mjs';
import {
  WRITER_COLUMNS,
  WRITER_KINDS,
  checkWriteLog,
  cleanupSource,
  createTargetWithWriteLog,
  createWriterTable,
  diffTables,
  dropWriterSql,
  ledgerEntries,
  lockSqlite,
  psql,
  psqlValue,
  requirePg,
  rssKb,
  slotInfo,
  sqlite,
  startServe,
  startWriter,
  waitForEqual,
  waitForStream,
  waitUntil,
  until,
} from './stream_lib.mjs';

const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const CATCH_UP_MS = 60000;
const LIVE = ['starting', 'snapshot', 'streaming', 'running', 'degraded'];
const slotOf = (stream) => `datavor_${stream}`;
const idOf = (entry) => String(JSON.parse(entry.row_key).id);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

describe('faults a PostgreSQL -> SQLite stream survives', () => {
  const s = { pg: null, tmp: null, srv: null, failedSeq: null };
  const status = async (name) => (await s.srv.callOk('stream_status', { name })).stream;
  const datavor = (args) => run(BIN, args, { env: serverEnv(s.tmp.userHome), cwd: s.tmp.userHome, timeoutMs: 60000 });

  before(async () => {
    s.pg = requirePg();
    requireExecutable(BIN);
    s.tmp = tempHome('datavor-faults-');
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
    await s.srv.callOk('add_connection', { name: 'pg', url: s.pg.url, password: s.pg.password, sslmode: 'disable' });
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
  it('1% of rows rejected by the target: the rest applied, bad keys set aside and held, retried, dismissed', { timeout: 180000 }, async () => {
    const { pg, srv } = s;
    const table = `dv_bad_${U}`;
    const stream = `bad_${U}`;
    const slot = slotOf(stream);
    const target = path.join(s.tmp.root, 'bad.db');
    const cols = ['id', 'v', 'n'];
    const kinds = ['int', 'text', 'int'];
    const qt = `public.${table}`;
    const triggers = `CREATE TRIGGER bad_ins BEFORE INSERT ON "${table}" WHEN NEW.v = 'bad' BEGIN SELECT RAISE(ABORT, 'bad row'); END;
       CREATE TRIGGER bad_upd BEFORE UPDATE ON "${table}" WHEN NEW.v = 'bad' BEGIN SELECT RAISE(ABORT, 'bad row'); END;`;
    const rows = (from, to) =>
      `INSERT INTO ${table} SELECT g, CASE WHEN g % 100 = 7 THEN 'bad' ELSE 'good ' || g END, 0 FROM generate_series(${from}, ${to}) g;`;
    try {
      await psql(
        pg,
        `CREATE TABLE ${table} (id bigint PRIMARY KEY, v text NOT NULL, n int NOT NULL);
         CREATE VIEW ${table}_good AS SELECT * FROM ${table} WHERE id % 100 <> 7;`,
      );
      await sqlite(target, `PRAGMA journal_mode=WAL;
        CREATE TABLE "${table}" ("id" INTEGER, "v" TEXT, "n" INTEGER, PRIMARY KEY ("id"));
        ${triggers}`);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'streaming after the (empty) snapshot');

      // 25,500 rows, 255 of them bad (id % 100 = 7): five 1,000-row
      // transactions, one of which also updates its own bad row 2207, then one
      // 20,500-row transaction (spilled to the spool, applied in parts).
      for (let k = 0; k < 5; k++) {
        const ins = rows(k * 1000 + 1, k * 1000 + 1000);
        await psql(pg, k === 2 ? `BEGIN; ${ins} UPDATE ${table} SET v = 'fixed in the same transaction', n = 1 WHERE id = 2207; COMMIT;` : ins);
      }
      await psql(pg, rows(5001, 25500));
      // Later changes: good rows updated and one deleted; bad keys 107
      // (updated to a value the target would take) and 207 (deleted) must wait.
      await psql(
        pg,
        `UPDATE ${table} SET n = n + 1, v = v || ' updated' WHERE id % 50 = 3;
         UPDATE ${table} SET v = 'was bad, now updated', n = 2 WHERE id = 107;
         DELETE FROM ${table} WHERE id = 207;
         DELETE FROM ${table} WHERE id = 5;`,
      );
      const badKeys = new Set();
      for (let id = 7; id <= 25500; id += 100) badKeys.add(String(id));
      assert.equal(badKeys.size, 255);
      const heldWant = { 107: 'u', 207: 'd', 2207: 'u' };
      const openCount = async () => sum((await srv.callOk('inspect_ledger', { stream, summary: true })).summary.map((c) => c.open));
      await waitUntil(async () => (await openCount()) >= 258, CATCH_UP_MS, '258 failed rows (255 data + 3 held) in the ledger', () => srv.describe());
      await waitForEqual(() => diffTables(pg, `${table}_good`, target, table, cols, kinds), CATCH_UP_MS, 'every good row applied', () => srv.describe());

      // Nothing of a bad key reached the target.
      assert.equal((await sqlite(target, `SELECT count(*) FROM "${table}" WHERE id % 100 = 7;`)).trim(), '0', 'a bad key reached the target');
      const st = await status(stream);
      assert.equal(st.state, 'streaming', `the stream must keep streaming: ${JSON.stringify(st)}`);
      assert.equal(st.reconnects, 0, `a data error must not reconnect: ${JSON.stringify(st)}`);
      assert.equal(st.rows_set_aside, 258, `rows_set_aside: ${JSON.stringify(st)}`);
      assert.equal(st.held_keys, 255, `held_keys: ${JSON.stringify(st)}`);

      // The ledger lists exactly the bad keys (data) and the changes behind them (held).
      const open = await ledgerEntries(srv, { stream, kind: 'failed', status: 'open' });
      assert.equal(open.length, 258, `open failed rows: ${open.length}`);
      const data = open.filter((e) => e.error_class === 'data');
      const held = open.filter((e) => e.error_class === 'held');
      assert.equal(data.length, 255, `class data: ${data.length}; classes: ${[...new Set(open.map((e) => e.error_class))]}`);
      assert.deepEqual(new Set(data.map(idOf)), badKeys, 'the data failures are exactly the bad keys');
      for (const e of data) {
        assert.equal(e.table, qt, JSON.stringify(e));
        assert.equal(e.op, 'c', JSON.stringify(e));
        assert.equal(e.status, 'open', JSON.stringify(e));
        assert.match(e.code, /^sqlite:\d+$/, `code: ${JSON.stringify(e)}`);
        assert.equal(Number(e.code.slice(7)) & 0xff, 19, `the code must be a SQLITE_CONSTRAINT code: ${JSON.stringify(e)}`);
        assert.match(e.message, /bad row/, JSON.stringify(e));
        assert.deepEqual(e.details.change.after, [idOf(e), 'bad', '0'], `row image: ${JSON.stringify(e.details)}`);
        assert.ok(e.position, JSON.stringify(e));
      }
      assert.deepEqual(Object.fromEntries(held.map((e) => [idOf(e), e.op])), heldWant, `held entries: ${JSON.stringify(held)}`);
      const dataSeq = new Map(data.map((e) => [idOf(e), e.seq]));
      for (const e of held) {
        assert.equal(e.table, qt);
        assert.ok(e.seq > dataSeq.get(idOf(e)), `held ${e.row_key} (seq ${e.seq}) must come after its failed insert (seq ${dataSeq.get(idOf(e))})`);
      }
      // Summary mode: counts per class.
      const summary = (await srv.callOk('inspect_ledger', { stream, summary: true })).summary;
      const byClass = (c) => summary.filter((x) => x.error_class === c);
      assert.deepEqual(new Set(summary.map((x) => x.error_class)), new Set(['data', 'held']), JSON.stringify(summary));
      assert.equal(sum(byClass('data').map((x) => x.open)), 255, JSON.stringify(summary));
      assert.equal(sum(byClass('data').map((x) => x.total)), 255, JSON.stringify(summary));
      assert.equal(sum(byClass('held').map((x) => x.open)), 3, JSON.stringify(summary));
      assert.ok(byClass('data').every((x) => x.table === qt && /^sqlite:\d+$/.test(x.code)), JSON.stringify(summary));
      // The 20,500-row transaction went through the spool's careful path.
      const batches = await ledgerEntries(srv, { stream, kind: 'batch' });
      const large = batches.filter((b) => b.details?.large === true);
      assert.equal(large.length, 1, `one large (spooled) batch: ${JSON.stringify(large.map((b) => b.details))}`);
      assert.equal(large[0].details.set_aside, 205, JSON.stringify(large[0].details));
      assert.equal(large[0].details.changes, 20500 - 205, JSON.stringify(large[0].details));
      s.failedSeq = data[100].seq;

      // Fix the constraint, retry: everything applies, in order.
      await sqlite(target, `DROP TRIGGER bad_ins; DROP TRIGGER bad_upd;`);
      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'streaming after the trigger was dropped');
      const retried = await srv.callOk('retry_failed', { stream }, { timeout: 120000 });
      assert.deepEqual(retried.still_failing, [], JSON.stringify(retried.still_failing.slice(0, 5)));
      assert.deepEqual([...retried.applied].sort((a, b) => a - b), open.map((e) => e.seq).sort((a, b) => a - b), 'retry_failed must apply every open row');
      assert.equal(retried.open_left, 0);
      const exact = await diffTables(pg, table, target, table, cols, kinds);
      assert.equal(exact, null, `after retry_failed the target must equal the source: ${exact}`);
      assert.equal((await sqlite(target, `SELECT v || '|' || n FROM "${table}" WHERE id IN (107, 2207) ORDER BY id;`)).trim(), 'was bad, now updated|2\nfixed in the same transaction|1');
      assert.equal((await ledgerEntries(srv, { stream, kind: 'failed', status: 'open' })).length, 0);
      assert.equal((await ledgerEntries(srv, { stream, kind: 'failed', status: 'retried' })).length, 258);
      assert.equal((await status(stream)).held_keys, 0);

      // Idempotent: a second retry finds nothing to do, and changes nothing.
      const again = await srv.callOk('retry_failed', { stream }, { timeout: 120000 });
      assert.deepEqual(again, { stream, applied: [], still_failing: [], open_left: 0 });
      assert.equal(await diffTables(pg, table, target, table, cols, kinds), null, 'the second retry changed the target');
      const retries = await ledgerEntries(srv, { stream, kind: 'retry' });
      assert.equal(retries.length, 2, JSON.stringify(retries));
      assert.equal(retries[0].details.resolved.length, 258);
      assert.deepEqual(retries[1].details, { resolved: [], failed: [] });

      // dismiss_failed: a new bad row, dismissed; its key's next change is applied, not held.
      await sqlite(target, triggers);
      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'streaming after the trigger came back');
      await psql(pg, `INSERT INTO ${table} VALUES (900007, 'bad', 0);`);
      const fresh = await waitUntil(
        async () => (await ledgerEntries(srv, { stream, kind: 'failed', status: 'open' }))[0],
        CATCH_UP_MS,
        'the new bad row in the ledger',
        () => srv.describe(),
      );
      assert.equal(fresh.row_key, '{"id":"900007"}', JSON.stringify(fresh));
      assert.equal(fresh.error_class, 'data');
      const reason = `known bad test row ${U}`;
      const dismissed = await srv.callOk('dismiss_failed', { stream, seqs: [fresh.seq], reason });
      assert.deepEqual(dismissed, { stream, dismissed: [fresh.seq], open_left: 0 });
      const dismissedRows = await ledgerEntries(srv, { stream, kind: 'failed', row_key: fresh.row_key });
      assert.deepEqual(dismissedRows.map((e) => [e.seq, e.status]), [[fresh.seq, 'dismissed']]);
      const dismissEntry = (await ledgerEntries(srv, { stream, kind: 'dismiss' })).at(-1);
      assert.equal(dismissEntry?.message, reason, JSON.stringify(dismissEntry));
      assert.deepEqual(dismissEntry.details.resolved, [fresh.seq]);
      await psql(pg, `UPDATE ${table} SET v = 'good now', n = 3 WHERE id = 900007;`);
      await waitForEqual(() => diffTables(pg, table, target, table, cols, kinds), CATCH_UP_MS, 'the update after the dismissal applied', () => srv.describe());
      const keyEntries = await ledgerEntries(srv, { stream, kind: 'failed', row_key: fresh.row_key });
      assert.equal(keyEntries.length, 1, `the update after the dismissal was set aside: ${JSON.stringify(keyEntries)}`);
      const end = await status(stream);
      assert.equal(end.state, 'streaming');
      assert.equal(end.held_keys, 0, JSON.stringify(end));
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP VIEW IF EXISTS ${table}_good; DROP TABLE IF EXISTS ${table};` });
    }
  });

  // ------------------------------------------------------------------ 2
  it('the walsender killed 10 times under a writer: reconnects, nothing lost or doubled', { timeout: 180000 }, async () => {
    const { pg, srv } = s;
    const table = `dv_kill_${U}`;
    const stream = `kill_${U}`;
    const slot = slotOf(stream);
    const target = path.join(s.tmp.root, 'kill.db');
    let writer;
    try {
      await createWriterTable(pg, table, 500);
      await createTargetWithWriteLog(target, table);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      const cut = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      writer = startWriter(pg, table, { rows: 500, sleepMs: 5 });
      const states = new Set();
      for (let i = 1; i <= 10; i++) {
        // The stream moves before each kill (it really resumed).
        const before = (await status(stream)).changes;
        const moving = await until(async () => {
          const x = await status(stream);
          states.add(x.state);
          return x.state === 'streaming' && x.changes > before && x;
        }, CATCH_UP_MS, `kill ${i}: the stream applying changes`, () => srv.describe());
        const info = await waitUntil(async () => (await slotInfo(pg, slot))?.active_pid, CATCH_UP_MS, `kill ${i}: an active walsender`);
        await psql(pg, `SELECT pg_terminate_backend(${info});`);
        await until(
          async () => {
            const x = await status(stream);
            states.add(x.state);
            if (x.state === 'failed') assert.fail(`kill ${i}: the stream failed: ${x.last_error}${srv.describe()}`);
            const now = await slotInfo(pg, slot);
            return x.reconnects >= moving.reconnects + 1 && x.state === 'streaming' && now?.active_pid && now.active_pid !== info;
          },
          CATCH_UP_MS,
          `kill ${i}: the stream back (a new walsender, streaming)`,
          () => srv.describe(),
        );
      }
      await writer.stop();
      await waitForEqual(() => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS), CATCH_UP_MS, 'after 10 kills', () => srv.describe());
      const log = await checkWriteLog(pg, table, target, cut);
      assert.deepEqual(log.problems, [], `exactly-once violated across walsender kills (${JSON.stringify({ ...log, problems: undefined })})`);
      assert.ok(log.checkedAfterSnapshot >= 200, `changes after the snapshot: ${log.checkedAfterSnapshot}`);

      const st = await status(stream);
      assert.equal(st.state, 'streaming');
      assert.ok(st.reconnects >= 10, `reconnects: ${st.reconnects}`);
      assert.ok(states.has('degraded'), `stream_status never showed degraded while reconnecting (states seen: ${[...states]})`);
      assert.match(st.last_error, /replication stream|connection|terminat/i, `last_error after the kills: ${st.last_error}`);
      const life = await ledgerEntries(srv, { stream, kind: 'lifecycle' });
      const degraded = life.filter((e) => e.op === 'degraded');
      assert.equal(degraded.length, st.reconnects, `one degraded lifecycle entry per reconnect: ${life.map((e) => e.op).join(' ')}`);
      assert.ok(degraded.every((e) => e.message), JSON.stringify(degraded[0]));
      assert.ok(life.filter((e) => e.op === 'resume').length >= 10, `resume entries: ${life.map((e) => e.op).join(' ')}`);
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      if (writer?.running()) await writer.stop().catch(() => {});
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: dropWriterSql(table) });
    }
  });

  // ------------------------------------------------------------------ 3
  it('the target locked for 20 s: degraded with the reason, bounded memory, then caught up', { timeout: 180000 }, async () => {
    const { pg, srv } = s;
    const table = `dv_tlock_${U}`;
    const stream = `tlock_${U}`;
    const slot = slotOf(stream);
    const target = path.join(s.tmp.root, 'tlock.db');
    // The issue asks for 60 s; 20 s keeps this file short (DATAVOR_TEST_OUTAGE_S=60 runs it as the issue says).
    const OUTAGE_MS = Number(process.env.DATAVOR_TEST_OUTAGE_S || 20) * 1000;
    let writer;
    let lock;
    try {
      await createWriterTable(pg, table, 500);
      await createTargetWithWriteLog(target, table);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      const cut = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      writer = startWriter(pg, table, { rows: 500, sleepMs: 5 });
      await waitUntil(async () => Number(await sqlite(target, 'SELECT count(*) FROM _test_writes;')) > 100, CATCH_UP_MS, 'the stream applying the writer');
      const rssBefore = rssKb(srv.pid);
      const itersBefore = await writer.iterations();

      lock = await lockSqlite(target);
      const t0 = Date.now();
      let rssMax = rssBefore;
      let sawDegraded = null;
      const seenStates = new Set();
      const latencies = []; // stream_status round trips while the target is locked
      const waitOf = new Map(); // reconnect number -> the wait it announced
      while (Date.now() - t0 < OUTAGE_MS) {
        const asked = Date.now();
        const x = await status(stream);
        latencies.push(Date.now() - asked);
        seenStates.add(x.state);
        if (x.state === 'failed') assert.fail(`the stream failed while the target was locked: ${x.last_error}${srv.describe()}`);
        if (x.state === 'degraded') {
          sawDegraded ??= x;
          const m = /reconnecting in (\d+) s/.exec(x.degraded_reason ?? '');
          if (m) waitOf.set(x.reconnects, Number(m[1]));
        }
        rssMax = Math.max(rssMax, rssKb(srv.pid));
        await sleep(300);
      }
      const itersDuring = (await writer.iterations()) - itersBefore;
      assert.ok(sawDegraded, `stream_status never showed degraded while the target was locked (states: ${[...seenStates]})${srv.describe()}`);
      assert.match(sawDegraded.degraded_reason ?? '', /locked/i, `degraded_reason: ${JSON.stringify(sawDegraded)}`);
      assert.match(sawDegraded.last_error, /locked/i, `last_error: ${JSON.stringify(sawDegraded)}`);
      assert.ok(itersDuring > 100, `the writer did not keep writing during the outage (${itersDuring} iterations)`);
      assert.ok(rssMax - rssBefore < 50 * 1024, `RSS grew from ${rssBefore} kB to ${rssMax} kB while the target was locked`);
      await lock.release();
      lock = null;
      const t1 = Date.now();

      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'streaming after the lock was released');
      await writer.stop();
      await waitForEqual(() => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS), CATCH_UP_MS, 'caught up after the outage', () => srv.describe());
      const caughtUpS = (Date.now() - t1) / 1000;
      const log = await checkWriteLog(pg, table, target, cut);
      assert.deepEqual(log.problems, [], `exactly-once violated across the target outage (${JSON.stringify({ ...log, problems: undefined })})`);
      const waits = [...waitOf].sort((a, b) => a[0] - b[0]);
      console.error(
        `# target outage: RSS ${rssBefore} -> max ${rssMax} kB; stream_status round trips ${latencies.join(',')} ms; ` +
          `announced waits by reconnect ${JSON.stringify(waits)}; caught up ${caughtUpS.toFixed(1)} s after release; ${log.checkedAfterSnapshot} changes checked`,
      );
      assert.equal((await status(stream)).state, 'streaming');
      // The server stays responsive while a target is down (one stdio server
      // carries every tool call and every stream).
      assert.ok(
        Math.max(...latencies) < 3000,
        `stream_status took up to ${Math.max(...latencies)} ms while the target was locked (round trips: ${latencies.join(', ')} ms): the MCP server must keep answering during a target outage`,
      );
      // Backoff: 1 s doubling to 30 s while the failures repeat.
      for (let i = 1; i < waits.length; i++) {
        const [[k0, w0], [k1, w1]] = [waits[i - 1], waits[i]];
        if (k1 !== k0 + 1) continue;
        assert.equal(w1, Math.min(2 * w0, 30), `reconnect ${k1} waited ${w1} s after reconnect ${k0} waited ${w0} s: the backoff must double while the target stays locked (${JSON.stringify(waits)})`);
      }
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      if (lock) await lock.release().catch(() => {});
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      if (writer?.running()) await writer.stop().catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: dropWriterSql(table) });
    }
  });

  // ------------------------------------------------------------------ 4
  it('a slot dropped behind Datavor\'s back fails the stream with the fix, never streaming', { timeout: 120000 }, async () => {
    const { pg, srv } = s;
    const table = `dv_slot_${U}`;
    const stream = `slot_${U}`;
    const slot = slotOf(stream);
    const target = path.join(s.tmp.root, 'slot.db');
    const cols = ['id', 'v'];
    const kinds = ['int', 'text'];
    try {
      await psql(pg, `CREATE TABLE ${table} (id int PRIMARY KEY, v text); INSERT INTO ${table} SELECT g, 's' || g FROM generate_series(1, 10) g;`);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      await psql(pg, `INSERT INTO ${table} VALUES (11, 'streamed');`);
      await waitForEqual(() => diffTables(pg, table, target, table, cols, kinds), CATCH_UP_MS, 'before the pause', () => srv.describe());

      assert.deepEqual(await srv.callOk('pause_stream', { name: stream }), { name: stream, paused: true });
      await waitUntil(async () => (await slotInfo(pg, slot))?.active === false, 15000, `slot ${slot} inactive while paused`);
      await psql(pg, `INSERT INTO ${table} VALUES (12, 'while paused'); SELECT pg_drop_replication_slot('${slot}');`);
      assert.equal(await slotInfo(pg, slot), null, 'the slot is still there (test bug)');

      const resumed = await srv.callOk('resume_stream', { name: stream });
      assert.notEqual(resumed.stream.state, 'streaming', JSON.stringify(resumed.stream));
      const states = [];
      const failed = await until(async () => {
        const x = await status(stream);
        states.push(x.state);
        return x.state === 'failed' && x;
      }, CATCH_UP_MS, 'the stream to fail without its slot', () => srv.describe());
      assert.ok(!states.includes('streaming'), `the stream streamed without its slot: ${states.join(' ')}`);
      assert.match(failed.last_error, new RegExp(`replication slot ${slot} is gone`), `last_error: ${failed.last_error}`);
      assert.match(failed.last_error, /re-snapshot/i, `last_error must say how to fix it: ${failed.last_error}`);
      const listed = (await srv.callOk('list_streams', {})).streams.find((x) => x.name === stream);
      assert.equal(listed?.state, 'failed', JSON.stringify(listed));
      assert.match(listed.last_error, /is gone/, JSON.stringify(listed));
      assert.equal(await slotInfo(pg, slot), null, 'a failed resume must not create a new slot silently');
      assert.equal((await sqlite(target, `SELECT count(*) FROM "${table}" WHERE id = 12;`)).trim(), '0');
      const errors = (await ledgerEntries(srv, { stream, kind: 'lifecycle' })).filter((e) => e.op === 'error');
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.match(errors[0].message, /is gone/);
      assert.match(failed.last_error, /resume_stream with resnapshot: true/, `the fix must name the call: ${failed.last_error}`);

      // The fix, as the error names it: start over with a new slot and a fresh copy.
      await psql(pg, `UPDATE ${table} SET v = 'changed while failed' WHERE id = 3; DELETE FROM ${table} WHERE id = 4;`);
      await sqlite(target, `INSERT INTO "${table}" VALUES (999, 'stale row only the target has');`);
      await srv.callOk('resume_stream', { name: stream, resnapshot: true });
      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'streaming after starting over');
      await psql(pg, `INSERT INTO ${table} VALUES (13, 'after the new copy');`);
      await waitForEqual(() => diffTables(pg, table, target, table, cols, kinds), CATCH_UP_MS, 'the target equal to the source after starting over', () => srv.describe());
      assert.ok(await slotInfo(pg, slot), 'starting over must create a new slot');
      const over = (await ledgerEntries(srv, { stream, kind: 'lifecycle' })).filter((e) => e.op === 'start_over');
      assert.equal(over.length, 1, JSON.stringify(over));
      // Running: starting over is refused with the way to do it.
      const refused = await srv.call('resume_stream', { name: stream, resnapshot: true });
      assert.equal(refused.isError, true, JSON.stringify(refused));
      assert.match(refused.content[0].text, /stop_stream it first/);
      await srv.callOk('stop_stream', { name: stream });
    } finally {
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${table};` });
    }
  });

  // ------------------------------------------------------------------ 5
  it('ledger.db locked: the stream pauses (degraded), then streams on with every batch in the ledger', { timeout: 180000 }, async () => {
    const { pg, srv } = s;
    const table = `dv_llock_${U}`;
    const stream = `llock_${U}`;
    const slot = slotOf(stream);
    const target = path.join(s.tmp.root, 'llock.db');
    const ledgerFile = path.join(s.tmp.home, 'ledger.db');
    let writer;
    let lock;
    try {
      await createWriterTable(pg, table, 300);
      await createTargetWithWriteLog(target, table);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      const cut = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      const auditBefore = Number(await psqlValue(pg, `SELECT count(*) FROM ${table}_audit;`));
      writer = startWriter(pg, table, { rows: 300, sleepMs: 5 });
      await waitUntil(async () => Number(await sqlite(target, 'SELECT count(*) FROM _test_writes;')) > 50, CATCH_UP_MS, 'the stream applying the writer');

      assert.ok(fs.existsSync(ledgerFile), `no ${ledgerFile}`);
      lock = await lockSqlite(ledgerFile);
      const t0 = Date.now();
      const paused = await until(async () => {
        const x = await status(stream);
        if (x.state === 'failed') assert.fail(`the stream failed while the ledger was locked: ${x.last_error}`);
        return x.state === 'degraded' && x;
      }, 20000, 'degraded while ledger.db is locked', () => srv.describe());
      assert.match(paused.degraded_reason ?? '', /ledger/i, JSON.stringify(paused));
      assert.match(paused.degraded_reason, /locked/i, JSON.stringify(paused));
      // Paused: the target does not move while the ledger cannot record it.
      const writesAt = (await sqlite(target, 'SELECT count(*) FROM _test_writes;')).trim();
      await sleep(1500);
      assert.equal((await sqlite(target, 'SELECT count(*) FROM _test_writes;')).trim(), writesAt, 'the target moved while the ledger could not write');
      assert.equal((await status(stream)).state, 'degraded');
      await sleep(Math.max(0, 6000 - (Date.now() - t0)));
      await lock.release();
      lock = null;

      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'streaming after the ledger was unlocked');
      await writer.stop();
      await waitForEqual(() => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS), CATCH_UP_MS, 'caught up after the ledger lock', () => srv.describe());
      const log = await checkWriteLog(pg, table, target, cut);
      assert.deepEqual(log.problems, [], `exactly-once violated across the ledger lock (${JSON.stringify({ ...log, problems: undefined })})`);
      const changes = Number(await psqlValue(pg, `SELECT count(*) FROM ${table}_audit;`)) - auditBefore;
      let inLedger = 0;
      await waitUntil(async () => {
        inLedger = sum((await ledgerEntries(srv, { stream, kind: 'batch' })).map((b) => b.details.changes));
        return inLedger >= changes;
      }, 20000, `batch entries for all ${changes} changes`, () => `\nin the ledger: ${inLedger}${srv.describe()}`);
      assert.equal(inLedger, changes, 'the batch entries must account for every streamed change exactly once');
      const st = await status(stream);
      assert.equal(st.state, 'streaming');
      assert.equal(st.reconnects, 0, 'a locked ledger is waited for, not reconnected');
      const v = await datavor(['ledger', 'verify', '--home', s.tmp.home]);
      assert.equal(v.code, 0, `datavor ledger verify: ${v.stdout}${v.stderr}`);
      assert.match(v.stdout, /^ledger intact: \d+ entries chained/, v.stdout);
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      if (lock) await lock.release().catch(() => {});
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      if (writer?.running()) await writer.stop().catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: dropWriterSql(table) });
    }
  });

  // ------------------------------------------------------------------ 6
  it('datavor ledger verify: intact after the run, broken (exit 3, naming the entry) after tampering', { timeout: 60000 }, async () => {
    const v = await datavor(['ledger', 'verify', '--home', s.tmp.home]);
    assert.equal(v.code, 0, `datavor ledger verify: ${v.stdout}${v.stderr}`);
    const m = /^ledger intact: (\d+) entries chained/.exec(v.stdout);
    assert.ok(m, v.stdout);
    assert.ok(Number(m[1]) > 300, `entries: ${m[1]}`);

    const copy = tempDir('datavor-ledger-copy-');
    try {
      const home = path.join(copy.dir, 'home');
      fs.mkdirSync(home);
      const file = path.join(home, 'ledger.db');
      await sqlite(path.join(s.tmp.home, 'ledger.db'), `.backup '${file}'`);
      const clean = await datavor(['ledger', 'verify', '--home', home]);
      assert.equal(clean.code, 0, `an untouched copy must verify: ${clean.stdout}${clean.stderr}`);
      const seq = s.failedSeq ?? Math.floor(Number(m[1]) / 2);
      assert.equal((await sqlite(file, `UPDATE entries SET message = 'x' WHERE seq = ${seq}; SELECT changes();`)).trim(), '1');
      const broken = await datavor(['ledger', 'verify', '--home', home]);
      assert.equal(broken.code, 3, `verify of a tampered ledger: exit ${broken.code}: ${broken.stdout}${broken.stderr}`);
      assert.match(broken.stdout, new RegExp(`BROKEN at entry ${seq}\\b`), broken.stdout);
    } finally {
      copy.remove();
    }
  });
});
