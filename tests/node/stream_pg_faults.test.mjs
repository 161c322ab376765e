// Acceptance: faults with a PostgreSQL target and with a PostgreSQL server
// that goes away (issue 4), through the official SDK Client driving
// `datavor serve` over stdio, one server and one home for the whole file.
// Two real servers (scripts/test): the main one (DATAVOR_TEST_PG_*) and a
// scratch one (DATAVOR_TEST_SCRATCH_*) that only this file uses, so it can
// be stopped, restarted and reconfigured without another test seeing it.
//
//  1. 1% of the rows rejected by a PostgreSQL target (a CHECK (v <> 'bad')
//     constraint on the pre-created target table, in a second database on
//     the main server), in 1,000-row transactions and in one 21,000-row
//     transaction (spooled, applied in parts): every good row applied value
//     by value, the stream keeps streaming without reconnecting,
//     inspect_ledger lists exactly the bad keys (class data, SQLSTATE 23514)
//     and the later changes to them as held. After ALTER TABLE ... DROP
//     CONSTRAINT, retry_failed applies every open entry and the target
//     equals the source.
//  2. The target PostgreSQL (the scratch server) stopped with pg_ctl for
//     DATAVOR_TEST_PG_OUTAGE_S seconds (default 60, the figure) and
//     started again on the same port while a writer keeps writing on the
//     source: stream_status shows degraded with the connection problem as the
//     reason and answers within 3 s, the server's RSS grows by less than
//     50 MB, and afterwards the stream streams again, the target equals the
//     source, and the write logs (a trigger on the target table logs every
//     write the sink makes, in the sink's own transaction) show no change lost
//     or applied twice.
//  3. The source's slot loses its WAL while the stream is paused
//     (max_slot_wal_keep_size = 64MB on the scratch server, then WAL
//     switches and checkpoints until pg_replication_slots.wal_status is
//     'lost'): resume_stream ends in `failed`, never streaming, with an
//     error saying the WAL is gone and how to fix it (re-snapshot); the rows
//     written while paused never reach the target.
//
// Run: node --test tests/node/stream_pg_faults.test.mjs   (with DATAVOR_TEST_PG_* and DATAVOR_TEST_SCRATCH_* set)
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BIN, requireExecutable, run, serverEnv, sleep, tempHome } from './lib.mjs';
import {
  cleanupSource,
  createWriterTable,
  diffTables,
  dropWriterSql,
  ledgerEntries,
  parseCopyText,
  psql,
  psqlValue,
  qi,
  requirePg,
  rssKb,
  slotInfo,
  sqlite,
  startServe,
  startWriter,
  waitForEqual,
  waitForStream,
  waitUntil,
  WRITER_COLUMNS,
  until,
} from './stream_lib.mjs';

const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const CATCH_UP_MS = 60000;
const LIVE = ['starting', 'snapshot', 'streaming', 'running', 'degraded'];
const PG_BINDIR = process.env.DATAVOR_PG_BINDIR || '/usr/lib/postgresql/15/bin';
const slotOf = (stream) => `datavor_${stream}`;
const idOf = (entry) => String(JSON.parse(entry.row_key).id);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

// The scratch server scripts/test starts next to the main one.
function requireScratch() {
  const e = process.env;
  const missing = ['HOST', 'PORT', 'USER', 'PASSWORD', 'URL', 'DIR'].filter((k) => !e[`DATAVOR_TEST_SCRATCH_${k}`]);
  if (missing.length) {
    throw new Error(
      `DATAVOR_TEST_SCRATCH_{${missing.join(',')}} not set: this file needs a second PostgreSQL it may stop and reconfigure. ` +
        'Run it through scripts/test, or: source scripts/lib/servers.sh; datavor_start_pg pg; datavor_start_pg pg-scratch SCRATCH; node --test tests/node/stream_pg_faults.test.mjs',
    );
  }
  return {
    host: e.DATAVOR_TEST_SCRATCH_HOST,
    port: e.DATAVOR_TEST_SCRATCH_PORT,
    user: e.DATAVOR_TEST_SCRATCH_USER,
    password: e.DATAVOR_TEST_SCRATCH_PASSWORD,
    url: e.DATAVOR_TEST_SCRATCH_URL,
    dir: e.DATAVOR_TEST_SCRATCH_DIR,
  };
}

// pg_ctl on the scratch server, as the postgres OS user when we are root
// (PostgreSQL refuses to run as root), from its directory.
async function pgCtl(scratch, args) {
  const cmd = path.join(PG_BINDIR, 'pg_ctl');
  const argv = ['-D', path.join(scratch.dir, 'data'), ...args];
  const asRoot = process.getuid?.() === 0;
  return run(asRoot ? 'runuser' : cmd, asRoot ? ['-u', 'postgres', '--', cmd, ...argv] : argv, {
    env: serverEnv(null),
    cwd: scratch.dir,
    timeoutMs: 90000,
  });
}

const scratchRunning = async (scratch) => (await pgCtl(scratch, ['status'])).code === 0;

async function stopScratch(scratch) {
  const r = await pgCtl(scratch, ['-m', 'fast', '-w', '-t', '60', 'stop']);
  assert.equal(r.code, 0, `pg_ctl stop of the scratch server failed: ${r.stdout}${r.stderr}`);
}

// Starts the scratch server again on its own port (clients keep their URL).
async function startScratch(scratch) {
  const r = await pgCtl(scratch, ['-l', path.join(scratch.dir, 'pg.log'), '-o', `-p ${scratch.port}`, '-w', '-t', '60', 'start']);
  assert.equal(r.code, 0, `pg_ctl start of the scratch server failed: ${r.stdout}${r.stderr}`);
}

// Every row of `table` in database `db` of server `pg`, each column in its
// text form (null for NULL), ordered by id.
async function rowsOf(pg, db, table, columns) {
  const out = await psql(pg, `COPY (SELECT ${columns.map(qi).join(', ')} FROM ${table} ORDER BY id) TO STDOUT;\n`, { db });
  return parseCopyText(out);
}

function show(s) {
  if (typeof s !== 'string') return JSON.stringify(s);
  return s.length > 120 ? `${JSON.stringify(s.slice(0, 100))}...(${s.length} chars)` : JSON.stringify(s);
}

// null when src {pg, db, table} and tgt {pg, db, table} hold the same rows
// with the same text in every column, else a readable list of differences.
// Column 0 is the key.
async function diffPg(src, tgt, columns, max = 15) {
  const [s, t] = await Promise.all([rowsOf(src.pg, src.db, src.table, columns), rowsOf(tgt.pg, tgt.db, tgt.table, columns)]);
  const problems = [];
  const byKey = new Map(t.map((r) => [r[0], r]));
  const seen = new Set();
  for (const r of s) {
    const x = byKey.get(r[0]);
    if (!x) {
      problems.push(`row ${r[0]}: missing in the target`);
      continue;
    }
    seen.add(r[0]);
    for (let i = 1; i < columns.length; i++) {
      if (r[i] !== x[i]) problems.push(`row ${r[0]} column ${columns[i]}: source ${show(r[i])}, target ${show(x[i])}`);
    }
  }
  for (const x of t) if (!seen.has(x[0])) problems.push(`row ${x[0]}: in the target but not in the source`);
  if (!problems.length) return null;
  return `${problems.length} difference(s) between ${src.db}.${src.table} (${s.length} rows) and ${tgt.db}.${tgt.table} (${t.length} rows):\n  ` +
    problems.slice(0, max).join('\n  ') + (problems.length > max ? `\n  ... and ${problems.length - max} more` : '');
}

describe('faults with a PostgreSQL target and a PostgreSQL server that goes away', () => {
  const s = { pg: null, scratch: null, tmp: null, srv: null, lake: `dv_pgf_lake_${U}` };
  const status = async (name) => (await s.srv.callOk('stream_status', { name })).stream;
  const urlWithDb = (url, db) => url.replace(/\/[^/?]*(\?|$)/, `/${db}$1`);

  before(async () => {
    s.pg = requirePg();
    s.scratch = requireScratch();
    requireExecutable(BIN);
    assert.ok(await scratchRunning(s.scratch), `the scratch server in ${s.scratch.dir} is not running`);
    await psql(s.pg, `CREATE DATABASE ${s.lake};`);
    s.tmp = tempHome('datavor-pgfaults-');
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
    await s.srv.callOk('add_connection', { name: 'pg', url: s.pg.url, password: s.pg.password, sslmode: 'disable' });
    await s.srv.callOk('add_connection', { name: 'lake', url: urlWithDb(s.pg.url, s.lake), password: s.pg.password, sslmode: 'disable' });
    await s.srv.callOk('add_connection', { name: 'scratch', url: s.scratch.url, password: s.scratch.password, sslmode: 'disable' });
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
    if (s.pg) {
      await psql(s.pg, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${s.lake}';`).catch(() => {});
      await psql(s.pg, `DROP DATABASE IF EXISTS ${s.lake};`).catch((e) => console.error(`# drop ${s.lake}: ${e.message}`));
    }
    s.tmp?.remove();
  });

  // ------------------------------------------------------------------ 1
  it('1% of rows rejected by a PostgreSQL target', { timeout: 180000 }, async () => {
    const { pg, srv, lake } = s;
    const table = `dv_pgbad_${U}`;
    const stream = `pgbad_${U}`;
    const slot = slotOf(stream);
    const cols = ['id', 'v', 'n'];
    const qt = `public.${table}`;
    const rows = (from, to) =>
      `INSERT INTO ${table} SELECT g, CASE WHEN g % 100 = 7 THEN 'bad' ELSE 'good ' || g END, 0 FROM generate_series(${from}, ${to}) g;`;
    const src = { pg, db: 'postgres', table };
    const tgt = { pg, db: lake, table };
    try {
      await psql(
        pg,
        `CREATE TABLE ${table} (id bigint PRIMARY KEY, v text NOT NULL, n int NOT NULL);
         CREATE VIEW ${table}_good AS SELECT * FROM ${table} WHERE id % 100 <> 7;`,
      );
      await psql(pg, `CREATE TABLE ${table} (id bigint PRIMARY KEY, v text NOT NULL, n int NOT NULL, CONSTRAINT not_bad CHECK (v <> 'bad'));`, { db: lake });
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: 'lake', tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'streaming after the (empty) snapshot');

      // 31,000 rows, 310 of them bad (id % 100 = 7): ten 1,000-row
      // transactions, one of which also updates its own bad row 2207, then
      // one 21,000-row transaction (past 20,000 changes: spooled, applied in
      // parts) that updates its own bad row 25007 too.
      for (let k = 0; k < 10; k++) {
        const ins = rows(k * 1000 + 1, k * 1000 + 1000);
        await psql(pg, k === 2 ? `BEGIN; ${ins} UPDATE ${table} SET v = 'fixed in the same transaction', n = 1 WHERE id = 2207; COMMIT;` : ins);
      }
      await psql(pg, `BEGIN; ${rows(10001, 31000)} UPDATE ${table} SET v = 'fixed in the large transaction', n = 4 WHERE id = 25007; COMMIT;`);
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
      for (let id = 7; id <= 31000; id += 100) badKeys.add(String(id));
      assert.equal(badKeys.size, 310);
      const heldWant = { 107: 'u', 207: 'd', 2207: 'u', 25007: 'u' };
      const openCount = async () => sum((await srv.callOk('inspect_ledger', { stream, summary: true })).summary.map((c) => c.open));
      await waitUntil(async () => (await openCount()) >= 314, CATCH_UP_MS, '314 failed rows (310 data + 4 held) in the ledger', () => srv.describe());
      await waitForEqual(() => diffPg({ ...src, table: `${table}_good` }, tgt, cols), CATCH_UP_MS, 'every good row applied', () => srv.describe());

      assert.equal((await psql(pg, `SELECT count(*) FROM ${table} WHERE id % 100 = 7;`, { db: lake })).trim(), '0', 'a bad key reached the target');
      const st = await status(stream);
      assert.equal(st.state, 'streaming', `the stream must keep streaming: ${JSON.stringify(st)}`);
      assert.equal(st.reconnects, 0, `a data error must not reconnect: ${JSON.stringify(st)}`);
      assert.equal(st.rows_set_aside, 314, `rows_set_aside: ${JSON.stringify(st)}`);
      assert.equal(st.held_keys, 310, `held_keys: ${JSON.stringify(st)}`);

      // The ledger lists exactly the bad keys (data, SQLSTATE 23514) and the changes behind them (held).
      const open = await ledgerEntries(srv, { stream, kind: 'failed', status: 'open' });
      assert.equal(open.length, 314, `open failed rows: ${open.length}`);
      const data = open.filter((e) => e.error_class === 'data');
      const held = open.filter((e) => e.error_class === 'held');
      assert.equal(data.length, 310, `class data: ${data.length}; classes: ${[...new Set(open.map((e) => e.error_class))]}`);
      assert.deepEqual(new Set(data.map(idOf)), badKeys, 'the data failures are exactly the bad keys');
      for (const e of data) {
        assert.equal(e.table, qt, JSON.stringify(e));
        assert.equal(e.op, 'c', JSON.stringify(e));
        assert.equal(e.code, '23514', `code (check_violation): ${JSON.stringify(e)}`);
        assert.match(e.message, /not_bad/, `the message must name the constraint: ${JSON.stringify(e)}`);
        assert.deepEqual(e.details.change.after, [idOf(e), 'bad', '0'], `row image: ${JSON.stringify(e.details)}`);
        assert.ok(e.position, JSON.stringify(e));
      }
      assert.deepEqual(Object.fromEntries(held.map((e) => [idOf(e), e.op])), heldWant, `held entries: ${JSON.stringify(held)}`);
      const dataSeq = new Map(data.map((e) => [idOf(e), e.seq]));
      for (const e of held) {
        assert.equal(e.table, qt);
        assert.ok(e.seq > dataSeq.get(idOf(e)), `held ${e.row_key} (seq ${e.seq}) must come after its failed insert (seq ${dataSeq.get(idOf(e))})`);
      }
      const summary = (await srv.callOk('inspect_ledger', { stream, summary: true })).summary;
      assert.deepEqual(new Set(summary.map((x) => x.error_class)), new Set(['data', 'held']), JSON.stringify(summary));
      assert.ok(summary.filter((x) => x.error_class === 'data').every((x) => x.table === qt && x.code === '23514'), JSON.stringify(summary));
      // The 21,000-row transaction went through the spool's careful path.
      const large = (await ledgerEntries(srv, { stream, kind: 'batch' })).filter((b) => b.details?.large === true);
      assert.equal(large.length, 1, `one large (spooled) batch: ${JSON.stringify(large.map((b) => b.details))}`);
      assert.equal(large[0].details.set_aside, 211, `210 bad rows and one held update: ${JSON.stringify(large[0].details)}`);
      assert.equal(large[0].details.changes, 21001 - 211, JSON.stringify(large[0].details));

      // Fix the constraint, retry: everything applies, in order.
      await psql(pg, `ALTER TABLE ${table} DROP CONSTRAINT not_bad;`, { db: lake });
      const retried = await srv.callOk('retry_failed', { stream }, { timeout: 120000 });
      assert.deepEqual(retried.still_failing, [], JSON.stringify(retried.still_failing.slice(0, 5)));
      assert.deepEqual([...retried.applied].sort((a, b) => a - b), open.map((e) => e.seq).sort((a, b) => a - b), 'retry_failed must apply every open row');
      assert.equal(retried.open_left, 0);
      const exact = await diffPg(src, tgt, cols);
      assert.equal(exact, null, `after retry_failed the target must equal the source: ${exact}`);
      assert.equal(
        (await psql(pg, `SELECT id || '|' || v || '|' || n FROM ${table} WHERE id IN (107, 207, 2207, 25007) ORDER BY id;`, { db: lake })).trim(),
        '107|was bad, now updated|2\n2207|fixed in the same transaction|1\n25007|fixed in the large transaction|4',
      );
      assert.equal((await ledgerEntries(srv, { stream, kind: 'failed', status: 'open' })).length, 0);
      const end = await status(stream);
      assert.equal(end.state, 'streaming', JSON.stringify(end));
      assert.equal(end.held_keys, 0, JSON.stringify(end));
      // Streaming goes on after the retry.
      await psql(pg, `UPDATE ${table} SET v = 'after the retry', n = 5 WHERE id IN (7, 8);`);
      await waitForEqual(() => diffPg(src, tgt, cols), CATCH_UP_MS, 'a change after the retry', () => srv.describe());
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP VIEW IF EXISTS ${table}_good; DROP TABLE IF EXISTS ${table};` });
      await psql(pg, `DROP TABLE IF EXISTS ${table};`, { db: lake }).catch(() => {});
    }
  });

  // ------------------------------------------------------------------ 2
  it('the PostgreSQL target server stopped for 60 s', { timeout: 240000 }, async () => {
    const { pg, scratch, srv } = s;
    const table = `dv_pgdown_${U}`;
    const stream = `pgdown_${U}`;
    const slot = slotOf(stream);
    const log = `${table}_writes`;
    const OUTAGE_MS = Number(process.env.DATAVOR_TEST_PG_OUTAGE_S || 60) * 1000;
    const src = { pg, db: 'postgres', table };
    const tgt = { pg: scratch, db: 'postgres', table };
    let writer;
    let down = false;
    try {
      await createWriterTable(pg, table, 500);
      // The target table, pre-created with the source's types, and a log of
      // every write the sink makes: 'W' id ver for an insert or update, 'D' id
      // old ver for a delete, written in the sink's own transaction (a
      // rolled-back batch leaves no entry).
      await psql(
        scratch,
        `CREATE TABLE ${table} (id bigint PRIMARY KEY, ver bigint NOT NULL, n int NOT NULL, payload text, ts timestamptz NOT NULL);
         CREATE TABLE ${log} (seq bigserial PRIMARY KEY, op char(1) NOT NULL, id bigint NOT NULL, ver bigint NOT NULL);
         CREATE FUNCTION ${log}_fn() RETURNS trigger LANGUAGE plpgsql AS $f$
         BEGIN
           IF TG_OP = 'DELETE' THEN INSERT INTO ${log} (op, id, ver) VALUES ('D', OLD.id, OLD.ver); RETURN OLD; END IF;
           IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN INSERT INTO ${log} (op, id, ver) VALUES ('D', OLD.id, OLD.ver); END IF;
           INSERT INTO ${log} (op, id, ver) VALUES ('W', NEW.id, NEW.ver); RETURN NEW;
         END $f$;
         CREATE TRIGGER ${log}_tg AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${log}_fn();`,
      );
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: 'scratch', tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      const cut = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      writer = startWriter(pg, table, { rows: 500, sleepMs: 5 });
      await waitUntil(async () => Number(await psqlValue(scratch, `SELECT count(*) FROM ${log};`)) > 100, CATCH_UP_MS, 'the stream applying the writer');
      const rssBefore = rssKb(srv.pid);
      const itersBefore = await writer.iterations();

      down = true;
      const t0 = Date.now();
      await stopScratch(scratch);
      let rssMax = rssBefore;
      let sawDegraded = null;
      const reasons = new Set(); // every degraded_reason seen, without the announced wait
      const states = [];
      const latencies = [];
      while (Date.now() - t0 < OUTAGE_MS) {
        const asked = Date.now();
        const x = await status(stream);
        latencies.push(Date.now() - asked);
        if (states.at(-1) !== x.state) states.push(x.state);
        if (x.state === 'failed') assert.fail(`the stream failed while the target server was down: ${x.last_error}${srv.describe()}`);
        if (x.state === 'degraded') {
          sawDegraded ??= x;
          reasons.add((x.degraded_reason ?? '').replace(/\s*\(reconnecting in \d+ s\)$/, ''));
        }
        rssMax = Math.max(rssMax, rssKb(srv.pid));
        await sleep(300);
      }
      const itersDuring = (await writer.iterations()) - itersBefore;
      await startScratch(scratch);
      down = false;
      const t1 = Date.now();
      const outageS = (t1 - t0) / 1000;

      assert.ok(sawDegraded, `stream_status never showed degraded while the target server was down (states: ${states.join(' ')})${srv.describe()}`);
      for (const r of reasons) {
        assert.match(r, /connect|connection|server closed|terminat|shut ?down|refused/i, `degraded_reason must name the connection problem: ${JSON.stringify(r)}`);
      }
      // Once a reconnect has been tried, the reason says which side is down.
      assert.ok([...reasons].some((r) => /^the target: /.test(r)), `degraded_reason never said the target is down: ${JSON.stringify([...reasons])}`);
      assert.ok(itersDuring > 100, `the writer did not keep writing during the outage (${itersDuring} iterations)`);
      assert.ok(rssMax - rssBefore < 50 * 1024, `RSS grew from ${rssBefore} kB to ${rssMax} kB while the target server was down`);
      assert.ok(
        Math.max(...latencies) < 3000,
        `stream_status took up to ${Math.max(...latencies)} ms while the target server was down (round trips: ${latencies.join(', ')} ms)`,
      );

      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'streaming after the target server came back');
      const back = (Date.now() - t1) / 1000;
      await writer.stop();
      await waitForEqual(() => diffPg(src, tgt, WRITER_COLUMNS), CATCH_UP_MS, 'caught up after the outage', () => srv.describe());
      const caughtUp = (Date.now() - t1) / 1000;

      // Exactly once: the target's write log against the source's audit.
      const lines = (text) => text.split('\n').filter(Boolean);
      const tw = lines(await psql(scratch, `SELECT op || ' ' || id || ' ' || ver FROM ${log};`));
      const sw = lines(await psql(pg, `SELECT op || ' ' || id || ' ' || ver FROM ${table}_audit;`));
      const srcSet = new Set(sw);
      const counts = new Map();
      for (const w of tw) counts.set(w, (counts.get(w) ?? 0) + 1);
      const twice = [...counts].filter(([, n]) => n > 1).map(([w, n]) => `${w} (x${n})`);
      const invented = [...counts.keys()].filter((w) => !srcSet.has(w));
      const afterCut = sw.filter((w) => BigInt(w.split(' ')[2]) > BigInt(cut));
      const missing = afterCut.filter((w) => !counts.has(w));
      const st = await status(stream);
      console.error(
        `# target server down ${outageS.toFixed(1)} s (states ${states.join(' ')}; reasons ${JSON.stringify([...reasons])}); ` +
          `RSS ${rssBefore} -> max ${rssMax} kB; stream_status max ${Math.max(...latencies)} ms; streaming ${back.toFixed(1)} s and ` +
          `caught up ${caughtUp.toFixed(1)} s after the restart; ${afterCut.length} changes checked; reconnects ${st.reconnects}`,
      );
      assert.deepEqual(
        [twice, invented, missing].map((x) => x.slice(0, 10)),
        [[], [], []],
        `exactly-once violated across the target outage: applied twice ${twice.length}, invented ${invented.length}, missing ${missing.length} ` +
          `(source changes ${sw.length}, target writes ${tw.length})`,
      );
      assert.ok(afterCut.length > 500, `changes after the snapshot: ${afterCut.length}`);
      assert.equal(st.state, 'streaming', JSON.stringify(st));
      assert.ok(st.reconnects >= 1, `reconnects: ${JSON.stringify(st)}`);
      const degraded = (await ledgerEntries(srv, { stream, kind: 'lifecycle' })).filter((e) => e.op === 'degraded');
      assert.equal(degraded.length, st.reconnects, `one degraded lifecycle entry per reconnect: ${JSON.stringify(degraded.map((e) => e.message))}`);
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      if (down || !(await scratchRunning(scratch))) {
        await startScratch(scratch).catch((e) => console.error(`# could not restart the scratch server: ${e.message}`));
      }
      if (writer?.running()) await writer.stop().catch(() => {});
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: dropWriterSql(table) });
      await psql(scratch, `DROP TABLE IF EXISTS ${table}, ${log}; DROP FUNCTION IF EXISTS ${log}_fn;`).catch(() => {});
    }
  });

  // ------------------------------------------------------------------ 3
  it('WAL already removed (wal_status lost)', { timeout: 180000 }, async () => {
    const { scratch, srv } = s;
    const table = `dv_walgone_${U}`;
    const stream = `walgone_${U}`;
    const slot = slotOf(stream);
    const target = path.join(s.tmp.root, 'walgone.db');
    const cols = ['id', 'v'];
    const kinds = ['int', 'text'];
    const walStatus = async () => psqlValue(scratch, `SELECT wal_status FROM pg_replication_slots WHERE slot_name = '${slot}';`);
    try {
      await psql(scratch, `ALTER SYSTEM SET max_slot_wal_keep_size = '64MB'; SELECT pg_reload_conf();`);
      await waitUntil(async () => (await psqlValue(scratch, 'SHOW max_slot_wal_keep_size;')) === '64MB', 10000, 'max_slot_wal_keep_size = 64MB');
      await psql(scratch, `CREATE TABLE ${table} (id int PRIMARY KEY, v text); INSERT INTO ${table} SELECT g, 's' || g FROM generate_series(1, 10) g;`);
      await srv.callOk('start_stream', { name: stream, source: 'scratch', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (st) => st.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      await psql(scratch, `INSERT INTO ${table} VALUES (11, 'streamed');`);
      await waitForEqual(() => diffTables(scratch, table, target, table, cols, kinds), CATCH_UP_MS, 'before the pause', () => srv.describe());

      assert.deepEqual(await srv.callOk('pause_stream', { name: stream }), { name: stream, paused: true });
      await waitUntil(async () => (await slotInfo(scratch, slot))?.active === false, 15000, `slot ${slot} inactive while paused`);
      // Rows written while paused, then well over 64 MB of WAL: each
      // pg_switch_wal() after a write ends the 16 MB segment, and a
      // checkpoint removes (or recycles) what no longer has to be kept, which
      // invalidates the slot.
      await psql(scratch, `INSERT INTO ${table} SELECT g, 'while paused ' || g FROM generate_series(12, 20) g;`);
      let rounds = 0;
      for (; rounds < 40 && (await walStatus()) !== 'lost'; rounds++) {
        await psql(
          scratch,
          `CREATE TABLE IF NOT EXISTS ${table}_fill (x text);
           ${Array.from({ length: 6 }, () => `INSERT INTO ${table}_fill VALUES (repeat('x', 1000)); SELECT pg_switch_wal();`).join('\n')}
           CHECKPOINT;`,
        );
      }
      assert.equal(await walStatus(), 'lost', `wal_status did not become lost after ${rounds} rounds of WAL switches and checkpoints`);

      await srv.callOk('resume_stream', { name: stream });
      const states = [];
      const failed = await until(async () => {
        const x = await status(stream);
        if (states.at(-1) !== x.state) states.push(x.state);
        return x.state === 'failed' && x;
      }, CATCH_UP_MS, 'the stream to fail without its WAL', () => srv.describe());
      console.error(`# wal lost after ${rounds} round(s); states after resume: ${states.join(' ')}; last_error: ${failed.last_error}`);
      assert.ok(!states.includes('streaming'), `the stream streamed with its WAL gone: ${states.join(' ')}`);
      assert.match(failed.last_error, /WAL/, `last_error must say the WAL is gone: ${failed.last_error}`);
      assert.match(failed.last_error, /lost|gone|removed|no longer/i, `last_error must say the WAL is gone: ${failed.last_error}`);
      assert.match(failed.last_error, /re-snapshot/i, `last_error must say how to fix it: ${failed.last_error}`);
      // It stays failed (no retry loop that streams after all), and nothing written while paused arrived.
      await sleep(2000);
      assert.equal((await status(stream)).state, 'failed');
      assert.equal((await sqlite(target, `SELECT count(*) FROM "${table}" WHERE id >= 12;`)).trim(), '0', 'rows written while paused reached the target');
      assert.equal((await sqlite(target, `SELECT count(*) FROM "${table}";`)).trim(), '11');
      const errors = (await ledgerEntries(srv, { stream, kind: 'lifecycle' })).filter((e) => e.op === 'error');
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.match(errors[0].message, /WAL/, JSON.stringify(errors[0]));
      await srv.callOk('stop_stream', { name: stream });
    } finally {
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(scratch, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${table}, ${table}_fill;` });
      await psql(scratch, 'ALTER SYSTEM RESET max_slot_wal_keep_size; SELECT pg_reload_conf();').catch((e) => console.error(`# reset max_slot_wal_keep_size: ${e.message}`));
    }
  });
});
