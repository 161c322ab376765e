// Acceptance: the CLI `datavor ledger retry`, and a Datavor home that is
// locked or full, against the real test PostgreSQL (scripts/test exports
// DATAVOR_TEST_PG_*; without it every test fails), PostgreSQL -> SQLite,
// through the official SDK Client driving `datavor serve` over stdio. Each
// test has its own home.
//
//  1. `datavor ledger retry`: a target trigger rejects 1% of the rows (and a
//     later update of a bad key is held). (a) While `datavor serve` runs the
//     stream, the CLI refuses (exit 1) pointing to the retry_failed tool, and
//     changes nothing. (b) With serve closed (the stream saved as running)
//     and one bad key still rejected, `ledger retry --json` exits 4:
//     still_failing is exactly that key's failed row and its held change,
//     every other open row applied. (c) With the cause gone, `ledger retry`
//     exits 0: target = source exactly, no open failed rows, `ledger verify`
//     intact; another retry is "nothing to retry". (d) `--seqs` naming an
//     entry that is not open fails (exit 1) naming it. Then serve restarts on
//     the same home and the stream resumes and streams a new row.
//  2. context.db held under BEGIN EXCLUSIVE by another process while a stream
//     runs: rows keep streaming (streaming does not need context.db),
//     pause_stream is an error result saying context.db could not record it
//     and that the stream keeps running (and it does). After the release
//     pause_stream works, list_streams shows paused, and after a serve restart
//     the stream is still paused (the state was recorded).
//  3. The home on a full filesystem (an 8 MB tmpfs filled up; root only, the
//     target SQLite lives outside it): the stream pauses (degraded, the
//     ledger and the full disk as the reason) and the target stops moving;
//     once space is freed it streams on, target = source, the batch entries
//     account for every change exactly, `ledger verify` intact.
//
// Run: node --test tests/node/stream_home_faults.test.mjs   (with DATAVOR_TEST_PG_* set)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { BIN, requireExecutable, run, serverEnv, sleep, tempHome } from './lib.mjs';
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
const slotOf = (stream) => `datavor_${stream}`;
const idOf = (entry) => String(JSON.parse(entry.row_key).id);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const byNum = (a, b) => a - b;

// A home, its serve, the `pg` connection, and the CLI on the same home.
async function setup(prefix) {
  const pg = requirePg();
  requireExecutable(BIN);
  const tmp = tempHome(prefix);
  const h = {
    pg,
    tmp,
    srv: null,
    async serve() {
      h.srv = await startServe({ home: tmp.home, userHome: tmp.userHome });
      return h.srv;
    },
    // `datavor ARGS --home HOME`; resolves {code, stdout, stderr}.
    cli: (args, timeoutMs = 90000) =>
      run(BIN, [...args, '--home', tmp.home], { env: serverEnv(tmp.userHome), cwd: tmp.userHome, timeoutMs }),
    status: async (name) => (await h.srv.callOk('stream_status', { name })).stream,
    async close() {
      if (!h.srv) return null;
      const srv = h.srv;
      h.srv = null;
      const exit = await srv.close();
      assert.equal(exit.code, 0, `datavor serve exited with ${JSON.stringify(exit)}${srv.describe()}`);
      return exit;
    },
  };
  return h;
}

const cliText = (r) => `exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr.slice(-3000)}`;

describe('datavor ledger retry, and a home that is locked or full', () => {
  // ------------------------------------------------------------------ 1
  it('datavor ledger retry: refused while serve runs the stream, then partial (exit 4), complete (exit 0), idempotent', { timeout: 240000 }, async () => {
    const h = await setup('datavor-retry-cli-');
    const { pg } = h;
    const table = `dv_rcli_${U}`;
    const stream = `rcli_${U}`;
    const slot = slotOf(stream);
    const target = path.join(h.tmp.root, 'retry.db');
    const cols = ['id', 'v', 'n'];
    const kinds = ['int', 'text', 'int'];
    const goodView = `${table}_good`;
    try {
      const srv = await h.serve();
      await srv.callOk('add_connection', { name: 'pg', url: pg.url, password: pg.password, sslmode: 'disable' });
      await psql(
        pg,
        `CREATE TABLE ${table} (id bigint PRIMARY KEY, v text NOT NULL, n int NOT NULL);
         CREATE VIEW ${goodView} AS SELECT * FROM ${table} WHERE id % 100 <> 7;`,
      );
      await sqlite(target, `PRAGMA journal_mode=WAL;
        CREATE TABLE "${table}" ("id" INTEGER, "v" TEXT, "n" INTEGER, PRIMARY KEY ("id"));
        CREATE TRIGGER bad_ins BEFORE INSERT ON "${table}" WHEN NEW.v = 'bad' BEGIN SELECT RAISE(ABORT, 'bad row'); END;
        CREATE TRIGGER bad_upd BEFORE UPDATE ON "${table}" WHEN NEW.v = 'bad' BEGIN SELECT RAISE(ABORT, 'bad row'); END;`);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'streaming after the (empty) snapshot');

      // 300 rows in three transactions, 1% bad (7, 107, 207); then good rows
      // updated, and bad key 107 updated to a value the target would take:
      // held behind its failed insert.
      for (let k = 0; k < 3; k++) {
        await psql(pg, `INSERT INTO ${table} SELECT g, CASE WHEN g % 100 = 7 THEN 'bad' ELSE 'good ' || g END, 0 FROM generate_series(${k * 100 + 1}, ${k * 100 + 100}) g;`);
      }
      await psql(pg, `UPDATE ${table} SET n = n + 1, v = v || ' updated' WHERE id % 25 = 3;
                      UPDATE ${table} SET v = 'was bad, now updated', n = 2 WHERE id = 107;`);
      await waitUntil(async () => (await ledgerEntries(srv, { stream, kind: 'failed', status: 'open' })).length >= 4, CATCH_UP_MS, '4 open failed rows (3 data + 1 held)', () => srv.describe());
      await waitForEqual(() => diffTables(pg, goodView, target, table, cols, kinds), CATCH_UP_MS, 'every good row applied', () => srv.describe());
      const open = await ledgerEntries(srv, { stream, kind: 'failed', status: 'open' });
      const data = open.filter((e) => e.error_class === 'data');
      const held = open.filter((e) => e.error_class === 'held');
      assert.deepEqual(data.map(idOf).sort(), ['107', '207', '7'], `class data: ${JSON.stringify(open)}`);
      assert.deepEqual(held.map((e) => [idOf(e), e.op]), [['107', 'u']], `held: ${JSON.stringify(open)}`);
      assert.equal(open.length, 4, JSON.stringify(open));
      const seqOf = Object.fromEntries(data.map((e) => [idOf(e), e.seq]));
      const heldSeq = held[0].seq;
      const openSeqs = open.map((e) => e.seq).sort(byNum);
      const targetRows = async () => sqlite(target, `SELECT id || '|' || v || '|' || n FROM "${table}" ORDER BY id;`);

      // (a) serve holds the stream (and its slot): the CLI refuses, pointing to retry_failed, and changes nothing.
      const before = await targetRows();
      const lifecycleBefore = new Set((await ledgerEntries(srv, { stream, kind: 'lifecycle' })).map((e) => e.seq));
      const refused = await h.cli(['ledger', 'retry', '--stream', stream]);
      assert.equal(refused.code, 1, `ledger retry while serve runs the stream must fail:\n${cliText(refused)}`);
      assert.match(refused.stderr, /retry_failed/, `the refusal must point to the retry_failed tool:\n${cliText(refused)}`);
      assert.equal(refused.stdout, '', cliText(refused));
      const stillOpen = await ledgerEntries(srv, { stream, kind: 'failed', status: 'open' });
      assert.deepEqual(stillOpen.map((e) => e.seq).sort(byNum), openSeqs, 'the refused CLI retry changed the open failed rows');
      assert.equal(await targetRows(), before, 'the refused CLI retry changed the target');
      assert.deepEqual(await ledgerEntries(srv, { stream, kind: 'retry' }), [], 'the refused CLI retry recorded a retry');
      // Nor does it record, for a stream that runs fine in serve, an error or lost ledger entries.
      const added = (await ledgerEntries(srv, { stream, kind: 'lifecycle' })).filter((e) => !lifecycleBefore.has(e.seq));
      const falseClaims = added.filter((e) => e.op === 'error' || e.op === 'unrecorded');
      assert.deepEqual(
        falseClaims.map((e) => `${e.seq} ${e.op}: ${e.message}`),
        [],
        `the refused CLI retry wrote lifecycle entries about serve's healthy stream (all it added: ${JSON.stringify(added.map((e) => [e.seq, e.op, e.message]))})`,
      );
      const during = await h.status(stream);
      assert.equal(during.state, 'streaming', `serve's stream after the refused CLI retry: ${JSON.stringify(during)}`);
      await psql(pg, `INSERT INTO ${table} VALUES (301, 'good 301', 0);`);
      await waitForEqual(() => diffTables(pg, goodView, target, table, cols, kinds), CATCH_UP_MS, 'serve still streaming after the refused CLI retry', () => srv.describe());

      // (b) serve closed (the stream stays saved as running); the trigger now rejects only key 107.
      await h.close();
      const saved = await h.cli(['ledger', 'show', '--stream', stream, '--kind', 'failed', '--status', 'open', '--json']);
      assert.equal(saved.code, 0, cliText(saved));
      await sqlite(target, `DROP TRIGGER bad_ins; DROP TRIGGER bad_upd;
        CREATE TRIGGER only_107_ins BEFORE INSERT ON "${table}" WHEN NEW.id = 107 BEGIN SELECT RAISE(ABORT, 'key 107 still rejected'); END;
        CREATE TRIGGER only_107_upd BEFORE UPDATE ON "${table}" WHEN NEW.id = 107 BEGIN SELECT RAISE(ABORT, 'key 107 still rejected'); END;`);
      const partial = await h.cli(['ledger', 'retry', '--stream', stream, '--json']);
      assert.equal(partial.code, 4, `ledger retry with one key still rejected must exit 4:\n${cliText(partial)}`);
      let out;
      try {
        out = JSON.parse(partial.stdout);
      } catch (e) {
        assert.fail(`ledger retry --json did not print JSON (${e.message}):\n${cliText(partial)}`);
      }
      assert.deepEqual(Object.keys(out).sort(), ['applied', 'open_left', 'still_failing', 'stream'], JSON.stringify(out));
      assert.equal(out.stream, stream);
      assert.deepEqual([...out.applied].sort(byNum), [seqOf['7'], seqOf['207']].sort(byNum), `applied: ${JSON.stringify(out)}`);
      assert.deepEqual(out.still_failing.map((f) => f.seq).sort(byNum), [seqOf['107'], heldSeq].sort(byNum), `still_failing: ${JSON.stringify(out)}`);
      const why = Object.fromEntries(out.still_failing.map((f) => [f.seq, f.message]));
      assert.match(why[seqOf['107']], /key 107 still rejected/, JSON.stringify(out));
      assert.match(why[heldSeq], /earlier change to the same key/, JSON.stringify(out));
      assert.equal(out.open_left, 2, JSON.stringify(out));
      assert.equal(
        (await sqlite(target, `SELECT group_concat(id || '|' || v || '|' || n, ',') FROM (SELECT * FROM "${table}" WHERE id % 100 = 7 ORDER BY id);`)).trim(),
        '7|bad|0,207|bad|0',
        'after the partial retry the target must hold bad keys 7 and 207, not 107',
      );
      const leftLines = async () => {
        const r = await h.cli(['ledger', 'show', '--stream', stream, '--kind', 'failed', '--status', 'open', '--json']);
        assert.equal(r.code, 0, cliText(r));
        return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      };
      assert.deepEqual((await leftLines()).map((e) => e.seq).sort(byNum), [seqOf['107'], heldSeq].sort(byNum));

      // (c) the cause gone: everything applied, in order; the target equals the source.
      await sqlite(target, `DROP TRIGGER only_107_ins; DROP TRIGGER only_107_upd;`);
      const done = await h.cli(['ledger', 'retry', '--stream', stream]);
      assert.equal(done.code, 0, `ledger retry with the cause fixed must exit 0:\n${cliText(done)}`);
      assert.match(done.stdout, new RegExp(`^stream ${stream}: 2 failed row\\(s\\) applied \\(${seqOf['107']}, ${heldSeq}\\), 0 still failing; 0 open failed row\\(s\\) left\\n$`), cliText(done));
      const exact = await diffTables(pg, table, target, table, cols, kinds);
      assert.equal(exact, null, `after ledger retry the target must equal the source: ${exact}`);
      assert.equal((await sqlite(target, `SELECT v || '|' || n FROM "${table}" WHERE id = 107;`)).trim(), 'was bad, now updated|2');
      const none = await h.cli(['ledger', 'show', '--stream', stream, '--kind', 'failed', '--status', 'open']);
      assert.equal(none.code, 0, cliText(none));
      assert.equal(none.stdout, '', `open failed rows left after the retry:\n${cliText(none)}`);
      const verify = await h.cli(['ledger', 'verify']);
      assert.equal(verify.code, 0, cliText(verify));
      assert.match(verify.stdout, /^ledger intact: \d+ entries chained/, cliText(verify));
      const again = await h.cli(['ledger', 'retry', '--stream', stream]);
      assert.equal(again.code, 0, cliText(again));
      assert.match(again.stdout, new RegExp(`stream ${stream} has no open failed rows: nothing to retry`), cliText(again));
      assert.equal(await diffTables(pg, table, target, table, cols, kinds), null, 'the no-op retry changed the target');

      // (d) --seqs naming entries that are not open failed rows.
      for (const seq of [999999, seqOf['7']]) {
        const bad = await h.cli(['ledger', 'retry', '--stream', stream, '--seqs', String(seq)]);
        assert.equal(bad.code, 1, `--seqs ${seq}:\n${cliText(bad)}`);
        assert.match(bad.stderr, new RegExp(`entry ${seq} is not an open failed row of stream ${stream}`), cliText(bad));
      }

      // Serve on the same home again: the stream resumes and streams.
      const srv2 = await h.serve();
      await waitForStream(srv2, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'streaming after serve restarted');
      await psql(pg, `INSERT INTO ${table} VALUES (302, 'after the restart', 3); UPDATE ${table} SET n = 9 WHERE id = 207;`);
      await waitForEqual(() => diffTables(pg, table, target, table, cols, kinds), CATCH_UP_MS, 'streaming after serve restarted', () => srv2.describe());
      const end = await h.status(stream);
      assert.equal(end.held_keys, 0, JSON.stringify(end));
      assert.deepEqual(await ledgerEntries(srv2, { stream, kind: 'failed', status: 'open' }), []);
      const retries = await ledgerEntries(srv2, { stream, kind: 'retry' });
      assert.equal(retries.length, 2, `one retry entry per CLI retry that ran: ${JSON.stringify(retries)}`);
      assert.deepEqual([...retries[0].details.resolved].sort(byNum), [seqOf['7'], seqOf['207']].sort(byNum), JSON.stringify(retries[0]));
      assert.deepEqual(retries[1].details.resolved, [seqOf['107'], heldSeq], JSON.stringify(retries[1]));
      await srv2.callOk('stop_stream', { name: stream, drop_slot: true });
      await h.close();
    } finally {
      if (h.srv) await h.srv.close().catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP VIEW IF EXISTS ${goodView}; DROP TABLE IF EXISTS ${table};` });
      h.tmp.remove();
    }
  });

  // ------------------------------------------------------------------ 2
  it('context.db locked: rows keep streaming, pause_stream says it cannot record it; recorded once free, kept across a restart', { timeout: 180000 }, async () => {
    const h = await setup('datavor-ctxlock-');
    const { pg } = h;
    const table = `dv_ctx_${U}`;
    const stream = `ctx_${U}`;
    const slot = slotOf(stream);
    const target = path.join(h.tmp.root, 'ctx.db');
    const cols = ['id', 'v'];
    const kinds = ['int', 'text'];
    const equal = (what, srv) => waitForEqual(() => diffTables(pg, table, target, table, cols, kinds), CATCH_UP_MS, what, () => srv.describe());
    let lock;
    try {
      const srv = await h.serve();
      await srv.callOk('add_connection', { name: 'pg', url: pg.url, password: pg.password, sslmode: 'disable' });
      await psql(pg, `CREATE TABLE ${table} (id int PRIMARY KEY, v text); INSERT INTO ${table} SELECT g, 's' || g FROM generate_series(1, 10) g;`);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      await psql(pg, `INSERT INTO ${table} VALUES (11, 'streamed');`);
      await equal('before the lock', srv);

      const contextFile = path.join(h.tmp.home, 'context.db');
      assert.ok(fs.existsSync(contextFile), `no ${contextFile}`);
      lock = await lockSqlite(contextFile);
      // Streaming does not need context.db.
      await psql(pg, `INSERT INTO ${table} SELECT g, 'while context.db is locked ' || g FROM generate_series(12, 40) g; UPDATE ${table} SET v = 'upd' WHERE id = 3; DELETE FROM ${table} WHERE id = 4;`);
      await equal('streaming while context.db is locked', srv);
      const asked = Date.now();
      const refused = await srv.call('pause_stream', { name: stream });
      const tookMs = Date.now() - asked;
      const text = (refused.content ?? []).map((c) => c.text ?? '').join('\n');
      assert.equal(refused.isError, true, `pause_stream while context.db is locked must be an error result: ${JSON.stringify(refused)}`);
      assert.match(text, /context\.db/, `the error must name context.db: ${text}`);
      assert.match(text, /cannot record|could not record/i, `the error must say the pause could not be recorded: ${text}`);
      assert.match(text, /keeps running/, `the error must say the stream keeps running: ${text}`);
      const st = await h.status(stream);
      assert.equal(st.state, 'streaming', `after the refused pause: ${JSON.stringify(st)}`);
      await psql(pg, `INSERT INTO ${table} VALUES (41, 'after the refused pause');`);
      await equal('streaming after the refused pause', srv);
      const listedLocked = (await srv.callOk('list_streams', {})).streams.find((x) => x.name === stream);
      assert.notEqual(listedLocked?.state, 'paused', `list_streams while locked: ${JSON.stringify(listedLocked)}`);
      await lock.release();
      lock = null;
      console.error(`# pause_stream answered in ${tookMs} ms while context.db was locked: ${text}`);

      // Free again: the pause is recorded.
      assert.deepEqual(await srv.callOk('pause_stream', { name: stream }), { name: stream, paused: true });
      const listed = (await srv.callOk('list_streams', {})).streams.find((x) => x.name === stream);
      assert.equal(listed?.state, 'paused', JSON.stringify(listed));
      await waitUntil(async () => (await slotInfo(pg, slot))?.active === false, 15000, `slot ${slot} released while paused`);
      await psql(pg, `INSERT INTO ${table} VALUES (42, 'while paused');`);
      await h.close();

      // A restart keeps it paused.
      const srv2 = await h.serve();
      const relisted = (await srv2.callOk('list_streams', {})).streams.find((x) => x.name === stream);
      assert.equal(relisted?.state, 'paused', `after a serve restart: ${JSON.stringify(relisted)}`);
      await sleep(2000);
      assert.equal((await h.status(stream)).state, 'paused');
      assert.equal((await sqlite(target, `SELECT count(*) FROM "${table}" WHERE id = 42;`)).trim(), '0', 'a paused stream applied a row after the restart');
      assert.equal((await slotInfo(pg, slot))?.active, false, 'a paused stream holds its slot after the restart');
      await srv2.callOk('resume_stream', { name: stream });
      await waitForStream(srv2, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'streaming after resume');
      await equal('after resume', srv2);
      await srv2.callOk('stop_stream', { name: stream, drop_slot: true });
      await h.close();
    } finally {
      if (lock) await lock.release().catch(() => {});
      if (h.srv) await h.srv.close().catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${table};` });
      h.tmp.remove();
    }
  });

  // ------------------------------------------------------------------ 3
  it('the home on a full disk: the stream pauses (degraded, the ledger), the target stops, then streams on with every batch in the ledger', { timeout: 240000 }, async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to mount a tmpfs');
      return;
    }
    const h = await setup('datavor-diskfull-');
    const { pg } = h;
    const table = `dv_full_${U}`;
    const stream = `full_${U}`;
    const slot = slotOf(stream);
    const target = path.join(h.tmp.root, 'full.db'); // outside the tmpfs
    const filler = path.join(h.tmp.home, 'filler');
    let mounted = false;
    let writer;
    try {
      fs.mkdirSync(h.tmp.home);
      const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', h.tmp.home]);
      if (m.code !== 0) {
        t.skip(`cannot mount a tmpfs as root here: ${m.stderr.trim()}`);
        return;
      }
      mounted = true;
      const srv = await h.serve();
      await srv.callOk('add_connection', { name: 'pg', url: pg.url, password: pg.password, sslmode: 'disable' });
      await createWriterTable(pg, table, 300);
      await createTargetWithWriteLog(target, table);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      const cut = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      const auditBefore = Number(await psqlValue(pg, `SELECT count(*) FROM ${table}_audit;`));
      await psql(pg, `UPDATE ${table} SET ver = nextval('${table}_ver'), n = n + 1 WHERE id <= 20;`);
      await waitForEqual(() => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS), CATCH_UP_MS, 'streaming before the disk fills', () => srv.describe());

      // Fill the tmpfs to the last page.
      const fd = fs.openSync(filler, 'w');
      let filled = 0;
      try {
        for (const chunk of [1 << 20, 1 << 16, 4096, 512, 1]) {
          const buf = Buffer.alloc(chunk, 0x5a);
          for (;;) {
            let n;
            try {
              n = fs.writeSync(fd, buf);
            } catch (e) {
              if (e.code !== 'ENOSPC') throw e;
              break;
            }
            filled += n;
            if (n < chunk) break;
          }
        }
      } finally {
        fs.closeSync(fd);
      }
      const df = await run('df', ['-k', h.tmp.home]);
      console.error(`# filler: ${filled} bytes; ${df.stdout.trim().split('\n').at(-1)}`);

      // Rows on the source while the disk is full: the stream pauses behind its ledger.
      writer = startWriter(pg, table, { rows: 300, sleepMs: 5 });
      const paused = await until(async () => {
        const x = await h.status(stream);
        if (x.state === 'failed') assert.fail(`the stream failed on a full disk: ${x.last_error}${srv.describe()}`);
        return x.state === 'degraded' && x;
      }, 60000, 'degraded while the home is full', () => srv.describe());
      assert.match(paused.degraded_reason ?? '', /ledger/i, `degraded_reason: ${JSON.stringify(paused)}`);
      assert.match(paused.degraded_reason, /full|no space/i, `degraded_reason must name the full disk: ${JSON.stringify(paused)}`);
      const writesAt = (await sqlite(target, 'SELECT count(*) FROM _test_writes;')).trim();
      const itersAt = await writer.iterations();
      await sleep(2000);
      assert.ok((await writer.iterations()) > itersAt, 'the writer did not write while the disk was full (test bug)');
      assert.equal((await sqlite(target, 'SELECT count(*) FROM _test_writes;')).trim(), writesAt, 'the target moved while the ledger could not record it');
      const still = await h.status(stream);
      assert.equal(still.state, 'degraded', `while the disk is still full: ${JSON.stringify(still)}`);
      assert.ok(srv.transport.proc.exitCode === null && srv.transport.proc.signalCode === null, `datavor serve died on a full disk${srv.describe()}`);

      // Space again: it streams on.
      fs.rmSync(filler);
      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'streaming after space was freed');
      await writer.stop();
      await waitForEqual(() => diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS), CATCH_UP_MS, 'caught up after the disk was freed', () => srv.describe());
      const log = await checkWriteLog(pg, table, target, cut);
      assert.deepEqual(log.problems, [], `exactly-once violated across the full disk (${JSON.stringify({ ...log, problems: undefined })})`);
      const changes = Number(await psqlValue(pg, `SELECT count(*) FROM ${table}_audit;`)) - auditBefore;
      let inLedger = 0;
      await waitUntil(async () => {
        inLedger = sum((await ledgerEntries(srv, { stream, kind: 'batch' })).map((b) => b.details.changes));
        return inLedger >= changes;
      }, 20000, `batch entries for all ${changes} changes`, () => `\nin the ledger: ${inLedger}${srv.describe()}`);
      assert.equal(inLedger, changes, 'the batch entries must account for every streamed change exactly once');
      const st = await h.status(stream);
      assert.equal(st.state, 'streaming');
      assert.equal(st.reconnects, 0, 'a full ledger disk is waited for, not reconnected');
      const v = await h.cli(['ledger', 'verify']);
      assert.equal(v.code, 0, `datavor ledger verify: ${cliText(v)}`);
      assert.match(v.stdout, /^ledger intact: \d+ entries chained/, v.stdout);
      console.error(`# disk full: ${changes} changes, ${log.checkedAfterSnapshot} checked in the write logs`);
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
      await h.close();
    } finally {
      if (writer?.running()) await writer.stop().catch(() => {});
      if (h.srv) await h.srv.close().catch(() => {});
      if (mounted) {
        const u = await run('umount', [h.tmp.home]);
        if (u.code !== 0) {
          console.error(`# umount ${h.tmp.home}: ${u.stderr.trim()}; lazy unmount`);
          await run('umount', ['-l', h.tmp.home]);
        }
      }
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: dropWriterSql(table) });
      h.tmp.remove();
    }
  });
});
