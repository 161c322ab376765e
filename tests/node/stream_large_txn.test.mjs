// Acceptance: large transactions that PostgreSQL streams while they are still
// in progress (pgoutput protocol 2, streaming 'on': Stream Start / Stop /
// Commit / Abort, interleaved between concurrent transactions, subtransaction
// aborts from ROLLBACK TO SAVEPOINT) are applied to a SQLite target exactly:
// every committed change once, nothing from an aborted transaction or a
// rolled-back savepoint, in commit order, unchanged TOAST values kept.
//
// PostgreSQL streams a transaction once its decoded changes pass
// logical_decoding_work_mem. The stream connects as a dedicated role with
// `ALTER ROLE … SET logical_decoding_work_mem = '64kB'` (the minimum): a
// logical walsender (replication=database) applies per-role settings like any
// backend (checked below with SHOW over such a connection), so only this
// test's stream streams small transactions. The role gets what start_stream's
// prerequisite checks ask for, least privilege: LOGIN REPLICATION, ownership of
// the two tables and CREATE on the database (to create its publication).
//
// Through the official SDK client driving `datavor serve`, one stream
// (snapshot "initial") over two writer tables (stream_lib's createWriterTable:
// every write takes a new `ver`, a source trigger audits every committed row
// version) runs, one after the other:
//   (a) one transaction of 200,000 inserts with wide text (tabs, newlines,
//       non-ASCII, some NULLs), then updates and deletes of its own rows and of
//       snapshot rows;
//   (b) savepoints: one rolled back (ROLLBACK TO SAVEPOINT) after 35,000 rows,
//       with updates and deletes inside it, its ids re-inserted later; one
//       released (with a nested rolled-back savepoint inside), then COMMIT;
//   (c) a 50,000-row transaction rolled back entirely;
//   (d) two large transactions in concurrent sessions, each in many statements
//       over both tables, interleaved; small transactions commit while both are
//       open, the later-started one commits first, more small ones, then the
//       first;
//   (e) a large transaction that updates rows holding 1 MB TOASTed values
//       without touching them (one from the snapshot, one inserted earlier in
//       the same transaction).
// After each, the test waits for a marker row committed after it, then checks
// the target tables' write logs (SQLite triggers, written in the sink's own
// transactions) against the source's audit: no change applied twice, none that
// was never committed (a rolled-back savepoint's or transaction's), none
// missing. The table with the 1 MB values is compared row for row and value by
// value after each; the big one after (a) and at the end. (d) also checks the
// order of the target's writes (commit order) and that nothing of a
// transaction still open is in the target.
//
// Last, pg_stat_replication_slots must show that the server really streamed
// (stream_txns > 0). With protocol 1 (no streaming) PostgreSQL spills the
// large transactions to disk instead, and that test fails.
//
// Run: node --test tests/node/stream_large_txn.test.mjs   (with DATAVOR_TEST_PG_* set)
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BIN, requireExecutable, run, serverEnv, sleep, tempHome } from './lib.mjs';
import {
  WRITER_COLUMNS,
  WRITER_KINDS,
  checkWriteLogs,
  cleanupSource,
  createTargetWithWriteLogs,
  createWriterTable,
  diffTables,
  psql,
  psqlValue,
  requirePg,
  slotStats,
  sqlite,
  startServe,
  waitForStream,
  waitUntil,
} from './stream_lib.mjs';

const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const CATCH_UP_MS = 60000;
const LIVE = ['starting', 'snapshot', 'streaming', 'running'];

const A = `dv_lt_${U}`; // the big table
const B = `dv_ltt_${U}`; // the table with 1 MB TOASTed values
const ROLE = `dv_lt_role_${U}`;
const ROLE_PW = `pw-${U}-Lt7`;
const STREAM = `large_${U}`;
const SLOT = `datavor_${STREAM}`; // datavor_ + the name, lowercased, non-alphanumerics as _
const A_ROWS = 2000;
const B_ROWS = 20;

// 1 MB of text that does not compress (md5 hex), different per seed.
const MB = (seed) => `(SELECT string_agg(md5((g + ${seed})::text), '') FROM generate_series(1, 32768) g)`;
// Wide-ish text with a tab, a newline, non-ASCII and a quote; NULL every 1000th row.
const WIDE = (tag) =>
  `CASE WHEN g % 1000 = 0 THEN NULL ELSE '${tag} ' || g || E'\\tα ü 日本\\n''q'' ' || repeat(md5(g::text), 6) END`;

const insertA = (from, to, tag, n = 0) =>
  `INSERT INTO ${A} (id, ver, n, payload) SELECT g, nextval('${A}_ver'), ${n}, ${WIDE(tag)} FROM generate_series(${from}, ${to}) g;`;
const insertB = (from, to, tag) =>
  `INSERT INTO ${B} (id, ver, n, payload) SELECT g, nextval('${B}_ver'), 0, '${tag} ' || repeat(md5(g::text), 3) FROM generate_series(${from}, ${to}) g;`;
const bump = (table, where, set = '') =>
  `UPDATE ${table} SET ver = nextval('${table}_ver'), n = n + 1${set ? `, ${set}` : ''} WHERE ${where};`;

describe('PostgreSQL -> SQLite: large transactions streamed in progress', () => {
  const s = { pg: null, tmp: null, srv: null, target: null, cuts: null, marker: 0 };
  const ms = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

  // The SQLite target's rows in `table` with ids in [from, to].
  const targetCount = async (table, from, to) =>
    Number((await sqlite(s.target, `SELECT count(*) FROM "${table}" WHERE id BETWEEN ${from} AND ${to};`)).trim());
  const targetWritesFor = async (table, from, to) =>
    Number((await sqlite(s.target, `SELECT count(*) FROM _test_writes WHERE tbl = '${table}' AND id BETWEEN ${from} AND ${to};`)).trim());
  const sourceCount = async (table, from, to) => Number(await psqlValue(s.pg, `SELECT count(*) FROM ${table} WHERE id BETWEEN ${from} AND ${to};`));

  // Commits a marker row (a small transaction after everything so far) and
  // waits until the target has it: then every earlier commit was applied.
  async function markerApplied(what) {
    const id = 900000 + ++s.marker;
    await psql(s.pg, `INSERT INTO ${A} (id, ver, n, payload) VALUES (${id}, nextval('${A}_ver'), 0, 'marker ${what}');`);
    await waitUntil(async () => (await targetCount(A, id, id)) === 1, CATCH_UP_MS, `${what}: the marker row ${id} committed after it to reach the target`, () => s.srv.describe());
    return id;
  }

  // The write logs exact (every committed change once, nothing else) and B
  // (with the 1 MB values) equal value by value; with `full`, A too (5-10 s
  // for its ~250,000 wide rows, so only after (a) and at the end: in between
  // the write logs prove which row versions the target wrote).
  async function checkExact(what, { full = false } = {}) {
    const t0 = Date.now();
    for (const table of full ? [A, B] : [B]) {
      const diff = await diffTables(s.pg, table, s.target, table, WRITER_COLUMNS, WRITER_KINDS);
      assert.equal(diff, null, `${what}: ${table} differs between source and target:\n${diff}${s.srv.describe()}`);
    }
    const log = await checkWriteLogs(s.pg, s.target, s.cuts);
    assert.deepEqual(log.problems, [], `${what}: exactly-once violated (${JSON.stringify({ ...log, problems: undefined })})`);
    const st = (await s.srv.callOk('stream_status', { name: STREAM })).stream;
    assert.equal(st.state, 'streaming', `${what}: stream state ${JSON.stringify(st)}`);
    console.error(`# ${what}: ${full ? 'both tables' : B} equal, write logs exact; ${log.sourceChanges} source changes, ${log.targetWrites} target writes, ${log.checkedAfterSnapshot} after the snapshot (checked in ${ms(t0)})`);
    return log;
  }

  before(async () => {
    s.pg = requirePg();
    requireExecutable(BIN);
    const { pg } = s;
    await createWriterTable(pg, A, A_ROWS);
    await createWriterTable(pg, B, B_ROWS);
    // B: 1 MB values stored out of line and uncompressed, so an update that
    // does not touch them sends "unchanged TOAST" ('u').
    await psql(
      pg,
      `ALTER TABLE ${B} ALTER COLUMN payload SET STORAGE EXTERNAL;
       ${bump(B, 'id = 1', `payload = ${MB(0)}`)}
       CREATE TABLE ${A}_gate (name text PRIMARY KEY, open boolean NOT NULL);
       INSERT INTO ${A}_gate VALUES ('go', false), ('p1', false), ('p2', false);
       CREATE SEQUENCE ${A}_p1_began; CREATE SEQUENCE ${A}_p2_began; CREATE SEQUENCE ${A}_p1_ready; CREATE SEQUENCE ${A}_p2_ready;
       CREATE ROLE ${ROLE} LOGIN REPLICATION PASSWORD '${ROLE_PW}';
       ALTER ROLE ${ROLE} SET logical_decoding_work_mem = '64kB';
       ALTER TABLE ${A} OWNER TO ${ROLE};
       ALTER TABLE ${B} OWNER TO ${ROLE};
       GRANT CREATE ON DATABASE postgres TO ${ROLE};`,
    );
    // The premise: a logical walsender connection of this role runs with 64kB.
    const show = await run(
      'psql',
      ['-X', '-A', '-t', '-d', `host=${pg.host} port=${pg.port} user=${ROLE} dbname=postgres replication=database`, '-c', 'SHOW logical_decoding_work_mem'],
      { env: { ...serverEnv(null), PGPASSWORD: ROLE_PW, PGCONNECT_TIMEOUT: '10' }, timeoutMs: 20000 },
    );
    assert.equal(show.code, 0, `psql replication=database as ${ROLE}: ${show.stderr}`);
    assert.equal(show.stdout.trim(), '64kB', `a replication=database connection of ${ROLE} does not get the role's logical_decoding_work_mem`);

    s.tmp = tempHome('datavor-large-txn-');
    s.target = path.join(s.tmp.root, 'large.db');
    await createTargetWithWriteLogs(s.target, [A, B]);
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
    await s.srv.callOk('add_connection', {
      name: 'src',
      url: `postgresql://${ROLE}@${pg.host}:${pg.port}/postgres`,
      password: ROLE_PW,
      sslmode: 'disable',
    });
    const started = await s.srv.callOk('start_stream', { name: STREAM, source: 'src', target: `sqlite:${s.target}`, tables: [A, B], snapshot: 'initial' });
    assert.equal(started.started, true);
    const failing = started.checks.filter((c) => c.status === 'fail');
    assert.deepEqual(failing, [], 'prerequisite checks failing for the stream role');
    await waitForStream(s.srv, STREAM, (st) => st.state === 'streaming', CATCH_UP_MS, 'streaming after the snapshot');
    // Nothing writes now: every version above these was written after the snapshot.
    s.cuts = {
      [A]: await psqlValue(pg, `SELECT last_value FROM ${A}_ver;`),
      [B]: await psqlValue(pg, `SELECT last_value FROM ${B}_ver;`),
    };
    await checkExact('after the snapshot', { full: true });
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
      await cleanupSource(s.pg, {
        slots: [SLOT],
        publications: [SLOT],
        sql: [A, B]
          .map((t) => `DROP TABLE IF EXISTS ${t}, ${t}_ctl, ${t}_audit; DROP FUNCTION IF EXISTS ${t}_audit_fn; DROP SEQUENCE IF EXISTS ${t}_ver, ${t}_id;`)
          .join('\n') +
          `\nDROP TABLE IF EXISTS ${A}_gate; DROP SEQUENCE IF EXISTS ${A}_p1_began, ${A}_p2_began, ${A}_p1_ready, ${A}_p2_ready;` +
          `\nREVOKE CREATE ON DATABASE postgres FROM ${ROLE}; DROP ROLE IF EXISTS ${ROLE};`,
      });
    }
    s.tmp?.remove();
  });

  // ------------------------------------------------------------------ (a)
  it('(a) one 200,000-row transaction with updates and deletes of its own rows', async () => {
    const t0 = Date.now();
    await psql(
      s.pg,
      `BEGIN;
       ${insertA(100001, 300000, 'a')}
       ${bump(A, 'id BETWEEN 100001 AND 300000 AND id % 10 = 0', `payload = 'updated ' || payload`)}
       ${bump(A, 'id BETWEEN 1 AND 500')}
       DELETE FROM ${A} WHERE id BETWEEN 100001 AND 300000 AND id % 7 = 0;
       DELETE FROM ${A} WHERE id BETWEEN 501 AND 700;
       ${bump(A, 'id BETWEEN 299001 AND 300000', `payload = NULL`)}
       ${bump(A, 'id BETWEEN 100001 AND 100050')}
       COMMIT;`,
    );
    const committed = ms(t0);
    await markerApplied('(a)');
    console.error(`# (a): committed on the source in ${committed}, applied after ${ms(t0)}`);
    assert.equal(await targetCount(A, 100001, 300000), await sourceCount(A, 100001, 300000), '(a): rows of the big transaction');
    await checkExact('(a)', { full: true });
  });

  // ------------------------------------------------------------------ (b)
  it('(b) savepoints: a rolled-back savepoint leaves no trace, a released one is applied', async () => {
    const t0 = Date.now();
    await psql(
      s.pg,
      `BEGIN;
       ${insertA(400001, 420000, 'b kept')}
       ${bump(A, 'id BETWEEN 701 AND 750')}
       SAVEPOINT s1;
         ${insertA(420001, 450000, 'b rolled back')}
         ${bump(A, 'id BETWEEN 400001 AND 410000', `payload = 'rolled back'`)}
         DELETE FROM ${A} WHERE id BETWEEN 751 AND 800;
         DELETE FROM ${A} WHERE id BETWEEN 410001 AND 411000;
         SAVEPOINT s1b;
           ${insertA(450001, 455000, 'b rolled back, nested')}
         RELEASE SAVEPOINT s1b;
       ROLLBACK TO SAVEPOINT s1;
       SAVEPOINT s2;
         ${insertA(460001, 470000, 'b released')}
         ${insertA(420001, 421000, 'b re-inserted after the rollback')}
         ${bump(A, 'id BETWEEN 410001 AND 412000')}
         DELETE FROM ${A} WHERE id BETWEEN 801 AND 820;
         SAVEPOINT s3;
           ${insertA(470001, 475000, 'b rolled back inside a released savepoint')}
           ${bump(A, 'id BETWEEN 460001 AND 460100', `payload = 'rolled back'`)}
         ROLLBACK TO SAVEPOINT s3;
       RELEASE SAVEPOINT s2;
       ${bump(A, 'id BETWEEN 400001 AND 400100', `payload = 'after the savepoints'`)}
       COMMIT;`,
    );
    await markerApplied('(b)');
    console.error(`# (b): applied after ${ms(t0)}`);
    // The rolled-back ids: none on the source (test premise), none ever written to the target.
    for (const [from, to] of [[421001, 455000], [470001, 475000]]) {
      assert.equal(await sourceCount(A, from, to), 0, `(b): source rows ${from}..${to} (test bug)`);
      assert.equal(await targetWritesFor(A, from, to), 0, `(b): the target was written rows ${from}..${to} of a rolled-back savepoint`);
    }
    assert.equal(await targetCount(A, 751, 800), 50, '(b): rows deleted inside the rolled-back savepoint must stay');
    assert.equal(await targetCount(A, 460001, 470000), 10000, '(b): rows of the released savepoint');
    await checkExact('(b)');
  });

  // ------------------------------------------------------------------ (c)
  it('(c) a large transaction rolled back entirely never reaches the target', async () => {
    const t0 = Date.now();
    const before = (await sqlite(s.target, 'SELECT count(*) FROM _test_writes;')).trim();
    await psql(
      s.pg,
      `BEGIN;
       ${insertA(500001, 550000, 'c never')}
       ${bump(A, 'id BETWEEN 901 AND 950', `payload = 'never'`)}
       DELETE FROM ${A} WHERE id BETWEEN 951 AND 1000;
       ${insertB(500001, 505000, 'c never')}
       ${bump(B, 'id = 1')}
       ROLLBACK;`,
    );
    await markerApplied('(c)');
    console.error(`# (c): marker applied after ${ms(t0)}`);
    assert.equal(await targetWritesFor(A, 500001, 550000), 0, '(c): the target was written rows of the rolled-back transaction');
    assert.equal(await targetWritesFor(B, 500001, 505000), 0, '(c): the target was written rows of the rolled-back transaction');
    assert.equal(await targetCount(A, 951, 1000), 50, '(c): rows deleted by the rolled-back transaction must stay');
    // Only the marker was written since.
    assert.equal(Number((await sqlite(s.target, 'SELECT count(*) FROM _test_writes;')).trim()), Number(before) + 1, '(c): target writes besides the marker');
    await checkExact('(c)');
  });

  // ------------------------------------------------------------------ (d)
  it('(d) two interleaved large transactions and small ones in between apply in commit order', async () => {
    const { pg } = s;
    const t0 = Date.now();
    const gateWait = (name) =>
      `DO $g$ BEGIN WHILE NOT (SELECT open FROM ${A}_gate WHERE name = '${name}') LOOP PERFORM pg_sleep(0.01); END LOOP; END $g$;`;
    // One session's transaction: 40 statements of 1,000 rows into A, some rows
    // into B, updates of snapshot rows and of its own earlier rows, deletes.
    const session = (name, aBase, bBase, preBase) => {
      const out = ['BEGIN;', `SELECT nextval('${A}_${name}_began');`, gateWait('go')];
      for (let k = 0; k < 40; k++) {
        const from = aBase + k * 1000 + 1;
        out.push(insertA(from, from + 999, `d ${name} ${k}`, k));
        if (k % 5 === 0) out.push(insertB(bBase + k * 10 + 1, bBase + k * 10 + 10, `d ${name} ${k}`));
        if (k % 4 === 0) out.push(bump(A, `id BETWEEN ${preBase + k} AND ${preBase + k + 9}`));
        if (k % 3 === 1) out.push(bump(A, `id BETWEEN ${from - 1000} AND ${from - 900}`, `payload = '${name} updated in ${k}'`));
        if (k % 8 === 7) out.push(`DELETE FROM ${A} WHERE id BETWEEN ${from} AND ${from + 99};`);
        if (k % 10 === 9) out.push(bump(B, `id BETWEEN ${bBase + 1} AND ${bBase + 5}`));
        out.push('SELECT pg_sleep(0.01);');
      }
      out.push(`SELECT nextval('${A}_${name}_ready');`, gateWait(name), 'COMMIT;');
      return out.join('\n');
    };
    const small = (aFrom, preFrom, bId, count) =>
      Array.from({ length: count }, (_, i) =>
        `INSERT INTO ${A} (id, ver, n, payload) VALUES (${aFrom + i}, nextval('${A}_ver'), 0, 'small ${aFrom + i}');
         ${bump(A, `id = ${preFrom + i}`)}
         ${i % 3 === 0 ? bump(B, `id = ${bId + i / 3}`) : ''}
         SELECT pg_sleep(0.1);`).join('\n');
    const called = async (seq) => (await psqlValue(pg, `SELECT is_called FROM ${seq};`)) === 't';
    const open = (name) => psql(pg, `UPDATE ${A}_gate SET open = true WHERE name = '${name}';`);

    // Which transaction group each (table, id) the target writes belongs to.
    const inRange = (id, a, b) => id >= a && id <= b;
    const groupOf = (tbl, id) => {
      if (tbl === A) {
        if (inRange(id, 600001, 640000) || inRange(id, 1001, 1100)) return 'P1';
        if (inRange(id, 700001, 740000) || inRange(id, 1101, 1200)) return 'P2';
        if (inRange(id, 800001, 800006) || inRange(id, 1201, 1206)) return 'S1';
        if (inRange(id, 800011, 800013) || inRange(id, 1211, 1213)) return 'S2';
        if (inRange(id, 900001, 999999)) return 'S3';
      } else {
        if (inRange(id, 10001, 10999)) return 'P1';
        if (inRange(id, 20001, 20999)) return 'P2';
        if (inRange(id, 10, 11)) return 'S1';
        if (inRange(id, 13, 13)) return 'S2';
      }
      return `? ${tbl} ${id}`;
    };

    const seq0 = Number((await sqlite(s.target, 'SELECT coalesce(max(seq), 0) FROM _test_writes;')).trim());
    let p1;
    let p2;
    try {
      // Both sessions open their transactions, then start writing together.
      p1 = psql(pg, session('p1', 600000, 10000, 1001));
      p2 = psql(pg, session('p2', 700000, 20000, 1101));
      await waitUntil(async () => (await called(`${A}_p1_began`)) && (await called(`${A}_p2_began`)), 20000, 'both sessions to begin');
      await open('go');
      // Small transactions commit while both large ones are being written.
      await psql(pg, small(800001, 1201, 10, 6));
      await waitUntil(async () => (await called(`${A}_p1_ready`)) && (await called(`${A}_p2_ready`)), 60000, 'both sessions to finish writing');
      console.error(`# (d): both large transactions written and open after ${ms(t0)}`);

      // S1 is applied; nothing of the two open transactions is in the target.
      await waitUntil(async () => (await targetCount(A, 800006, 800006)) === 1, CATCH_UP_MS, '(d): the small transactions committed while the large ones are open to be applied', () => s.srv.describe());
      await sleep(500);
      for (const [tbl, from, to] of [[A, 600001, 640000], [A, 700001, 740000], [B, 10001, 10999], [B, 20001, 20999]]) {
        assert.equal(await targetWritesFor(tbl, from, to), 0, `(d): the target has writes of ${tbl} ${from}..${to} from a transaction that is still open`);
      }

      // The later-started session commits first.
      await open('p2');
      await p2;
      await psql(pg, small(800011, 1211, 13, 3));
      await open('p1');
      await p1;
    } finally {
      await psql(pg, `UPDATE ${A}_gate SET open = true;`).catch(() => {});
      await Promise.allSettled([p1, p2].filter(Boolean));
    }
    await markerApplied('(d)');
    console.error(`# (d): applied after ${ms(t0)}`);
    assert.ok((await sourceCount(A, 600001, 640000)) > 30000 && (await sourceCount(A, 700001, 740000)) > 30000, '(d): both large transactions committed (test premise)');

    // The target wrote the groups in commit order: S1, P2, S2, P1, S3.
    const rows = (await sqlite(s.target, `SELECT seq, tbl, id FROM _test_writes WHERE seq > ${seq0} ORDER BY seq;`))
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('|'));
    const span = new Map();
    for (const [seq, tbl, id] of rows) {
      const g = groupOf(tbl, Number(id));
      const sp = span.get(g) ?? { first: Number(seq), last: Number(seq), writes: 0 };
      sp.last = Number(seq);
      sp.writes++;
      span.set(g, sp);
    }
    const order = ['S1', 'P2', 'S2', 'P1', 'S3'];
    const shown = JSON.stringify(Object.fromEntries(span));
    assert.deepEqual([...span.keys()].sort(), [...order].sort(), `(d): target writes by group: ${shown}`);
    for (let i = 1; i < order.length; i++) {
      assert.ok(span.get(order[i - 1]).last < span.get(order[i]).first, `(d): ${order[i - 1]} must be applied wholly before ${order[i]} (commit order); target write seq spans: ${shown}`);
    }
    await checkExact('(d)');
  });

  // ------------------------------------------------------------------ (e)
  it('(e) a large transaction keeps unchanged 1 MB TOASTed values', async () => {
    const t0 = Date.now();
    await psql(
      s.pg,
      `BEGIN;
       ${insertB(100001, 130000, 'e')}
       ${bump(B, 'id = 1')}
       INSERT INTO ${B} (id, ver, n, payload) VALUES (2000000, nextval('${B}_ver'), 0, ${MB(7)});
       ${insertB(130001, 150000, 'e')}
       ${bump(B, 'id IN (1, 2000000)')}
       ${bump(B, 'id = 2', `payload = 'small now'`)}
       ${bump(B, 'id BETWEEN 100001 AND 100100')}
       ${insertB(150001, 160000, 'e')}
       ${bump(B, 'id = 1')}
       COMMIT;`,
    );
    await markerApplied('(e)');
    console.error(`# (e): applied after ${ms(t0)}`);
    const kept = (await sqlite(s.target, `SELECT id || ' ' || length(payload) || ' ' || n FROM "${B}" WHERE id IN (1, 2000000) ORDER BY id;`)).trim().split('\n');
    assert.deepEqual(kept, ['1 1048576 4', '2000000 1048576 1'], '(e): the 1 MB values must survive updates that did not touch them');
    await checkExact('(e), and everything before it', { full: true });
  });

  // ------------------------------------------------------------------ streaming on the server
  it('PostgreSQL streamed the large transactions in progress (pg_stat_replication_slots.stream_txns > 0)', async () => {
    // Read while the stream runs (the slot's statistics go with the slot).
    let stats = null;
    await waitUntil(async () => (stats = await slotStats(s.pg, SLOT)) !== null, 10000, `a pg_stat_replication_slots row for ${SLOT}`);
    try {
      await waitUntil(async () => (stats = await slotStats(s.pg, SLOT)).stream_txns > 0, 3000, 'stream_txns > 0');
    } catch {}
    console.error(`# pg_stat_replication_slots for ${SLOT}: ${JSON.stringify(stats)}`);
    assert.ok(
      stats.stream_txns > 0 && stats.stream_count > 0,
      `PostgreSQL did not stream any transaction to ${SLOT} (pg_stat_replication_slots: ${JSON.stringify(stats)}). ` +
        (stats.spill_txns > 0
          ? 'It spilled them to disk instead: the stream does not ask for streaming (START_REPLICATION … proto_version \'2\', streaming \'on\').'
          : 'Nothing was spilled either: is logical_decoding_work_mem = 64kB reaching the walsender?'),
    );
  });
});
