// Acceptance, issue 4, fault 1: `kill -9` of `datavor serve` at 20 random
// moments during a 1,000,000-change mixed insert/update/delete workload, in
// the initial snapshot and in streaming, with a restart after each: the
// target equals the source, no change is applied twice, none is missing,
// and the ledger is consistent. PostgreSQL -> SQLite, through the official
// SDK Client driving `datavor serve --home HOME` over stdio, against the real
// test PostgreSQL (scripts/test exports DATAVOR_TEST_PG_*; without it the
// test fails).
//
// The workload (stream_lib.mjs startMixedWriter): a table pre-populated with
// 1,000,000 rows (its initial copy takes several seconds under the load),
// and a writer looping inside PostgreSQL, started before the stream, that
// makes exactly DATAVOR_KILL_ROWS row changes (default 1,000,000), paced over
// about 75 s so that the kills fall inside it: transactions of 1-8 inserts,
// 1-8 updates of random rows and 0-3 deletes, a primary-key change in 5% of
// them, every 200th a 500-row update, and two ~25,000-change transactions
// (at 30% and 70%; the stream spools them to disk). Its random() is seeded.
//
// The kills (seeded RNG; the seed is printed, DATAVOR_KILL_SEED=N replays the
// schedule and the workload): the first 2-4 (seeded) are aimed at the initial
// snapshot, each at a random point of the copy (5-90% of the catalog's row
// estimate); a kill there leaves no position in the target, so the restarted
// stream starts the snapshot over (the slot dropped and made anew, the target
// table emptied). Then the snapshot is let finish, and every further kill
// comes after a random 0.3-3 s of streaming. Each kill is SIGKILL of the
// `datavor serve` process this test spawned (its pid, nothing else); the test
// waits for the slot's walsender to go, then starts `datavor serve` again on
// the same home and the stream resumes by itself (streams saved as running
// resume on serve start). stream_status just before each kill says where it
// landed (at least one kill must land in the snapshot, most in streaming);
// the target's _datavor_offsets just after it says whether the snapshot had
// committed. Both are printed per kill and counted.
//
// Checks, once the writer is done and the stream has caught up:
//  - the target table equals the source, value by value (diffTables);
//  - write logs (stream_lib.mjs): an audit trigger on the source records
//    every committed row version (each write takes a new `ver`; a key change
//    is the old version deleted and a new one written; extendWriteLogs),
//    triggers on the pre-created target table record every write the sink
//    makes, in the sink's own transactions. Counted from the snapshot that
//    finally completed (its emptying of the rows the last interrupted attempt
//    left is told apart and must remove exactly those rows): no change applied
//    twice, none unknown to the source, and every change committed after that
//    snapshot's position applied (the cut: the writer's marks of WAL position
//    and ver, at the final snapshot_begin's position; deletes by the ver
//    current when they were made). Writes of interrupted attempts must be real
//    row versions too;
//  - the replication slot never confirmed a position beyond the target's
//    committed _datavor_offsets position (sampled every 100 ms throughout, and
//    after each kill once the walsender is gone);
//  - the ledger: `datavor ledger verify --home HOME` exits 0 ("ledger
//    intact"); its lifecycle entries tell the story of the restarts: a `start`
//    per serve start (21), a `snapshot_begin` per snapshot attempt and one
//    `snapshot_end`, a `resume` per restart after the snapshot at exactly the
//    position the target held after that kill, no `error`; and its batch
//    entries count exactly the changes the stream applied after the snapshot
//    (the target's write log, less the snapshot's rows), a large transaction's
//    entry included. The ledger writes asynchronously (every 100 ms), so a
//    kill may lose its last entries: every resume position past the last
//    batch entry before it must then be explained by an `unrecorded` entry
//    spanning exactly that gap (and a lost snapshot_end is re-recorded as
//    `recovered`); the batch entries then count no more than was applied.
//
// Runtime: about 100 s on a 2-core machine with the defaults (the 75 s
// workload, then ~20 s comparing ~1.2 M rows and ~4 M write-log entries).
//
// Environment:
//   DATAVOR_KILL_ROWS=N        row changes in the workload (default 1000000)
//   DATAVOR_KILL_SEED=N        seed of the kill schedule and the workload (default: random, printed)
//   DATAVOR_KILL_TABLE_ROWS=N  rows pre-populated before the snapshot (default 1000000)
//
// Run: node --test tests/node/stream_kill20.test.mjs   (with DATAVOR_TEST_PG_* set)
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { describe, it } from 'node:test';

import { BIN, requireExecutable, run, serverEnv, sleep, tempHome } from './lib.mjs';
import {
  WRITER_COLUMNS,
  WRITER_KINDS,
  checkWriteLogSince,
  cleanupSource,
  createTargetWithWriteLog,
  createWriterTable,
  diffTables,
  dropMixedWriterSql,
  extendWriteLogs,
  ledgerEntries,
  lsnToBig,
  psqlValue,
  requirePg,
  seededRandom,
  slotInfo,
  sqlite,
  startMixedWriter,
  startServe,
  targetPosition,
  waitUntil,
  writerCutAt,
  until,
} from './stream_lib.mjs';

function envInt(name, dflt, min) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name}=${raw}: expected an integer >= ${min}`);
  return v;
}

const KILLS = 20;
const CHANGES = envInt('DATAVOR_KILL_ROWS', 1_000_000, 1000);
const TABLE_ROWS = envInt('DATAVOR_KILL_TABLE_ROWS', 1_000_000, 30000);
const SEED = envInt('DATAVOR_KILL_SEED', crypto.randomInt(2 ** 31), 0) >>> 0;
const WRITER_SECONDS = 75; // the workload's planned length: the kills take about 60 s
const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const LIVE = ['starting', 'snapshot', 'streaming', 'running', 'degraded'];
const TIMEOUT_MS = 900_000 + Math.ceil(CHANGES / 2000) * 1000;

describe('kill -9 of datavor serve at 20 random moments under a mixed workload', () => {
  it(`PostgreSQL -> SQLite: ${CHANGES} changes, ${KILLS} kills in snapshot and streaming, restart after each`, { timeout: TIMEOUT_MS }, async () => {
    const pg = requirePg();
    requireExecutable(BIN);
    const rng = seededRandom(SEED);
    const t0 = Date.now();
    const secs = () => ((Date.now() - t0) / 1000).toFixed(1);
    console.error(
      `# seed ${SEED} (DATAVOR_KILL_SEED=${SEED} replays it); ${CHANGES} changes (DATAVOR_KILL_ROWS) over a ${TABLE_ROWS}-row table`,
    );
    const table = `dv_k20_${U}`;
    const stream = `k20_${U}`;
    const slot = `datavor_${stream}`;
    const tmp = tempHome('datavor-kill20-');
    const target = path.join(tmp.root, 'kill20.db');
    let srv;
    let writer;
    const status = async () => (await srv.callOk('stream_status', { name: stream })).stream;
    let startedAt = 0;
    const startServer = async () => {
      srv = await startServe({ home: tmp.home, userHome: tmp.userHome });
      startedAt = Date.now();
      await srv.client.setLoggingLevel('info'); // the stream's progress, in srv.logs
      return srv;
    };

    // The slot must never confirm a position the target has not committed:
    // read the slot first, then the target (which only moves forward).
    const violations = [];
    let samples = 0;
    const sample = async (when) => {
      const slotNow = await slotInfo(pg, slot);
      const pos = await targetPosition(target, stream);
      if (!slotNow?.confirmed_flush_lsn || !pos) return;
      samples++;
      if (lsnToBig(slotNow.confirmed_flush_lsn) > lsnToBig(pos.position)) {
        violations.push(`${when}: slot confirmed_flush_lsn ${slotNow.confirmed_flush_lsn} > target position ${pos.position}`);
      }
    };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          await sample(`at ${secs()} s`);
        } catch {}
        await sleep(100);
      }
    })();

    try {
      await createWriterTable(pg, table, TABLE_ROWS);
      await createTargetWithWriteLog(target, table);
      await extendWriteLogs(pg, table, target);
      await startServer();
      await srv.callOk('add_connection', { name: 'pg', url: pg.url, password: pg.password, sslmode: 'disable' });
      writer = await startMixedWriter(pg, table, {
        rows: TABLE_ROWS,
        changes: CHANGES,
        rate: Math.ceil(CHANGES / WRITER_SECONDS),
        seed: (SEED / 2 ** 31) * 2 - 1,
        big: [Math.floor(CHANGES * 0.3), Math.floor(CHANGES * 0.7)],
      });
      const started = await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      assert.equal(started.started, true);
      console.error(`# ${secs()} s: writer and stream started`);

      const snapshotKillsPlanned = 2 + Math.floor(rng() * 3);
      let interrupted = 0; // kills after which the target had no position: the snapshot starts over
      let fromSeq = 0; // the target's write log when the last interrupted attempt died
      let leftover = 0; // rows that attempt left in the target table
      let cut = null; // the ver sequence once the final snapshot is known to be complete
      const takeCut = async () => {
        if (cut === null) cut = await psqlValue(pg, `SELECT last_value FROM ${table}_ver;`);
      };
      const kills = [];
      for (let k = 1; k <= KILLS; k++) {
        const r = rng();
        let before;
        let firstChangeMs = 0;
        if (cut === null && interrupted < snapshotKillsPlanned) {
          // A random point of the copy.
          const frac = 0.05 + r * 0.85;
          before = await until(
            async () => {
              const x = await status();
              if (x.state === 'failed') assert.fail(`kill ${k}: the stream failed: ${x.last_error}${srv.describe()}`);
              if (x.state === 'streaming') return x; // the copy finished first
              const p = x.snapshot_progress;
              return x.state === 'snapshot' && p && p.rows_estimate > 0 && p.rows >= frac * p.rows_estimate && x;
            },
            180000,
            `kill ${k}: the snapshot at ${(frac * 100).toFixed(0)}% of its rows`,
            () => srv.describe(),
          );
          if (before.state === 'streaming') await takeCut();
        } else {
          // A random 0.3-3 s of streaming.
          await until(
            async () => {
              const x = await status();
              if (x.state === 'failed') assert.fail(`kill ${k}: the stream failed: ${x.last_error}${srv.describe()}`);
              return x.state === 'streaming';
            },
            180000,
            `kill ${k}: the stream streaming`,
            () => srv.describe(),
          );
          await takeCut();
          const killAt = Date.now() + 300 + Math.floor(r * 2700);
          while (Date.now() < killAt) {
            before = await status();
            if (before.changes > 0 && !firstChangeMs) firstChangeMs = Date.now() - startedAt;
            await sleep(Math.min(100, Math.max(0, killAt - Date.now())));
          }
          before = await status();
        }
        const writerRunning = writer.running();
        const large = srv.logs.filter((l) => l.includes('applying a large transaction')).length;
        const pid = srv.pid;
        const wall = new Date().toISOString();
        await srv.kill9();
        // Once the walsender has gone, the slot holds at most what the target committed.
        await waitUntil(async () => (await slotInfo(pg, slot))?.active !== true, 20000, `kill ${k}: slot ${slot} inactive after the kill`);
        await sample(`after kill ${k}`);
        const pos = await targetPosition(target, stream);
        if (!pos) {
          interrupted++;
          fromSeq = Number((await sqlite(target, 'SELECT coalesce(max(seq), 0) FROM _test_writes;')).trim());
          leftover = Number((await sqlite(target, `SELECT count(*) FROM "${table}";`)).trim());
        } else {
          await takeCut(); // the snapshot had committed (perhaps unseen): what is newer was streamed
        }
        const p = before.snapshot_progress;
        const kill = {
          k,
          pid,
          at: secs(),
          wall,
          state: before.state,
          copied: before.state === 'snapshot' && p ? `${p.rows}/${p.rows_estimate}` : undefined,
          changes: before.changes,
          position: pos?.position ?? null,
          writerRunning,
          large,
          firstChangeMs,
        };
        kills.push(kill);
        console.error(
          `# kill ${k}/${KILLS} at ${kill.at} s (${kill.wall.slice(11, 23)}, pid ${pid}): ${kill.state}` +
            (kill.copied ? ` (${kill.copied} rows copied)` : ` (${kill.changes} changes applied since the restart${firstChangeMs ? `, the first ${firstChangeMs} ms after it` : ''}${large ? `, ${large} large transaction(s) begun` : ''})`) +
            (pos ? `, target at ${pos.position}` : `, no target position: the snapshot starts over (${leftover} rows left)`) +
            (writerRunning ? '' : ', writer already done'),
        );
        await startServer();
        const listed = (await srv.callOk('list_streams', {})).streams.find((x) => x.name === stream);
        assert.ok(listed, `kill ${k}: stream not listed after the restart${srv.describe()}`);
        assert.ok(LIVE.includes(listed.state), `kill ${k}: stream not running after the restart: ${JSON.stringify(listed)}${srv.describe()}`);
      }
      const inSnapshot = kills.filter((x) => x.state === 'snapshot').length;
      const inStreaming = kills.filter((x) => x.state === 'streaming').length;
      const duringWorkload = kills.filter((x) => x.writerRunning).length;
      console.error(
        `# ${secs()} s: ${KILLS} kills: ${inSnapshot} with stream_status 'snapshot' just before the kill (${interrupted} left no target position: snapshot restarted), ` +
          `${inStreaming} 'streaming'${KILLS - inSnapshot - inStreaming ? `, ${KILLS - inSnapshot - inStreaming} other` : ''}; ${duringWorkload} while the writer was writing`,
      );
      assert.ok(inSnapshot >= 1 && interrupted >= 1, `no kill landed in the snapshot: ${JSON.stringify(kills)}`);
      assert.ok(inStreaming > KILLS / 2, `most kills must land in streaming: ${JSON.stringify(kills)}`);

      // The workload ends, the stream catches up.
      await writer.done(Math.max(300000, (CHANGES / 1000) * 1000));
      console.error(`# ${secs()} s: writer done (${await writer.changes()} changes)`);
      const fingerprint = `SELECT count(*) || ' ' || coalesce(sum(ver), 0) FROM "${table}";`;
      const want = await psqlValue(pg, fingerprint);
      let have;
      await until(
        async () => {
          have = (await sqlite(target, fingerprint)).trim();
          return have === want;
        },
        300000,
        'the stream to catch up (row count and sum of versions)',
        () => `\nsource ${want}, target ${have}${srv.describe()}`,
      );
      console.error(`# ${secs()} s: caught up (${want.split(' ')[0]} rows)`);
      sampling = false;
      await sampler;
      assert.equal((await status()).state, 'streaming');

      const diff = await diffTables(pg, table, target, table, WRITER_COLUMNS, WRITER_KINDS);
      assert.equal(diff, null, `source and target differ after ${KILLS} kills (seed ${SEED}):\n${diff}`);
      // The cut: the final snapshot's position (its snapshot_begin entry, the
      // last of one per attempt) in the writer's marks; every ver above it
      // committed after the snapshot. Without that entry, the ver sequence
      // when the snapshot was first known to be complete (later, so fewer
      // changes are checked).
      const life = await ledgerEntries(srv, { stream, kind: 'lifecycle' });
      const begins = life.filter((e) => e.op === 'snapshot_begin');
      const snapshotAt = begins.length === interrupted + 1 ? begins.at(-1).position : null;
      const tightCut = snapshotAt ? await writerCutAt(pg, table, snapshotAt) : null;
      if (tightCut !== null) assert.ok(BigInt(tightCut) <= BigInt(cut), `cut at the snapshot ${tightCut} > cut when it was seen complete ${cut}`);
      const log = await checkWriteLogSince(pg, table, target, { cut: tightCut ?? cut, fromSeq, extended: true });
      console.error(
        `# ${secs()} s: write logs: ${JSON.stringify({ ...log, problems: undefined, fromSeq })}, cut at ver ${tightCut ?? cut} ` +
          (tightCut !== null ? `(the final snapshot at ${snapshotAt}; ${cut} when seen complete)` : '(when the snapshot was seen complete: no snapshot_begin entry for the final attempt)'),
      );
      assert.deepEqual(log.problems, [], `exactly-once violated across ${KILLS} kills (seed ${SEED})`);
      assert.equal(log.emptied, leftover, 'the final snapshot must empty exactly the rows the interrupted one left');
      assert.ok(log.checkedAfterSnapshot >= CHANGES / 2, `changes checked after the snapshot: ${log.checkedAfterSnapshot}`);
      console.error(`# slot vs target position: ${samples} samples, ${violations.length} with the slot ahead`);
      assert.deepEqual(violations, [], `the slot confirmed past the target's _datavor_offsets.position (${samples} samples)`);
      assert.ok(samples > 100, `too few slot/position samples: ${samples}`);

      // The ledger: its lifecycle entries tell the story of the restarts,
      // its batch entries account for every change the stream applied, and
      // `datavor ledger verify` finds the chain intact. Everything is
      // collected first, so that verify runs (and is reported) either way.
      const problems = [];
      const ops = (op) => life.filter((e) => e.op === op);
      const story = life.map((e) => e.op).join(' ');
      const expect = (what, got, want) => {
        if (got !== want) problems.push(`${what}: ${got}, expected ${want}`);
      };
      expect('start entries (one per serve start)', ops('start').length, KILLS + 1);
      expect('snapshot_begin entries (one per snapshot attempt)', ops('snapshot_begin').length, interrupted + 1);
      expect('snapshot_end entries', ops('snapshot_end').length, 1);
      expect('error entries', ops('error').length, 0);
      const resumedAt = kills.filter((x) => x.position).map((x) => x.position);
      const resumes = ops('resume').map((e) => e.position);
      if (resumes.length !== resumedAt.length || resumes.some((r, i) => lsnToBig(r) !== lsnToBig(resumedAt[i]))) {
        problems.push(`resume entries ${JSON.stringify(resumes)}, expected one per restart after the snapshot at the target's position: ${JSON.stringify(resumedAt)}`);
      }
      const snapshotRows = ops('snapshot_end').at(-1)?.details?.rows;
      // The ledger writes asynchronously (every 100 ms): a kill can lose its
      // last entries. The stream must then say so at resume: an `unrecorded`
      // entry spanning the positions the target holds beyond the last
      // recorded one, and a snapshot_end marked recovered when that was lost.
      const unrecorded = ops('unrecorded');
      const recoveredSnapshot = ops('snapshot_end').at(-1)?.details?.recovered === true;

      // Batch entries: the changes they count must be the changes the stream
      // applied after the snapshot (the write log's entries past the
      // snapshot's rows; a key change is one change but two entries there).
      const batches = await ledgerEntries(srv, { stream, kind: 'batch' });
      const ledgered = batches.reduce((a, b) => a + b.details.changes, 0);
      const applied = snapshotRows === undefined ? undefined : log.targetWrites - snapshotRows - log.keyChangeDeletes;
      if (applied !== undefined && (unrecorded.length ? ledgered > applied : ledgered !== applied)) {
        const large = batches.filter((b) => b.details.large);
        const bigChanges = await psqlValue(pg, `SELECT big_changes FROM ${table}_ctl;`);
        problems.push(
          `the batch entries count ${ledgered} changes, the stream applied ${applied} after the snapshot (target write log: ` +
            `${log.targetWrites} writes - ${snapshotRows} snapshot rows - ${log.keyChangeDeletes} key-change deletes): ${applied - ledgered} unaccounted ` +
            `(${large.length} large-transaction entries counting ${large.reduce((a, b) => a + b.details.changes, 0)}, the writer's 2 large transactions made ${bigChanges}; ` +
            `the other ~${applied - ledgered - (Number(bigChanges) - large.reduce((a, b) => a + b.details.changes, 0))} were applied before a kill and never recorded)`,
        );
      }
      for (const b of batches.filter((x) => x.details.large)) {
        const [from, to] = b.position.split('..');
        if (!(b.details.changes > 0)) problems.push(`batch entry ${b.seq} (a large transaction, ${from}..${to}) counts ${b.details.changes} changes: ${JSON.stringify(b.details)}`);
      }
      // Where the chain of batch positions breaks at a restart (the last
      // batch entry before it ends short of the resume position), batches
      // applied just before the kill have no entry.
      const resumeSeqs = new Map(ops('resume').map((e) => [e.seq, e.position]));
      const chain = [
        ...batches.map((b) => ({ seq: b.seq, b })),
        ...ops('resume').map((e) => ({ seq: e.seq })),
        ...unrecorded.map((e) => ({ seq: e.seq, u: e })),
      ].sort((a, b) => a.seq - b.seq);
      const holes = [];
      const unexplained = [];
      let end = null;
      let explained = null;
      for (const { seq, b, u } of chain) {
        if (u) {
          const [from, to] = u.position.split('..');
          if (end !== null && lsnToBig(from) !== end) unexplained.push(`unrecorded entry ${u.seq} starts at ${from}, the last recorded position was ${end}`);
          explained = lsnToBig(to);
        } else if (!b) {
          const at = lsnToBig(resumeSeqs.get(seq));
          if (end !== null && at !== end) {
            holes.push(`${resumeSeqs.get(seq)} (${(at - end).toString()} bytes of WAL past the last batch entry)`);
            if (explained !== at) unexplained.push(`resume at ${resumeSeqs.get(seq)} lies past the last batch entry with no unrecorded entry for the gap`);
          }
          end = at;
          explained = null;
        } else end = lsnToBig(b.position.split('..')[1]);
      }
      problems.push(...unexplained);
      console.error(
        `# ledger: ${life.length} lifecycle entries (${[...new Set(life.map((e) => e.op))].map((op) => `${op} x${ops(op).length}`).join(', ')}); ` +
          `${batches.length} batch entries counting ${ledgered} changes, the stream applied ${applied ?? '?'} after the snapshot of ${snapshotRows ?? '?'} rows; ` +
          `${holes.length} of ${resumes.length} resume positions lie past the last batch entry before them`,
      );
      if (holes.length) console.error(`# resumes past the last batch entry: ${holes.join(', ')}`);
      if (snapshotRows === undefined && !recoveredSnapshot) problems.push('without a snapshot_end entry (rows copied) the batch entries cannot be accounted for');
      console.error(`# ledger gaps after kills: ${unrecorded.length} unrecorded entries${recoveredSnapshot ? ', snapshot_end recovered at resume' : ''}`);

      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
      const exit = await srv.close();
      srv = null;
      assert.equal(exit.code, 0, `datavor serve exit: ${JSON.stringify(exit)}`);
      const v = await run(BIN, ['ledger', 'verify', '--home', tmp.home], { env: serverEnv(tmp.userHome), cwd: tmp.userHome, timeoutMs: 120000 });
      console.error(`# ${secs()} s: datavor ledger verify: exit ${v.code}: ${v.stdout.trim()}`);
      assert.equal(v.code, 0, `datavor ledger verify: exit ${v.code}: ${v.stdout}${v.stderr}`);
      assert.match(v.stdout, /^ledger intact: \d+ entries chained/, v.stdout);
      assert.deepEqual(problems, [], `the ledger does not match what the stream did (seed ${SEED}); lifecycle: ${story}`);
    } finally {
      sampling = false;
      await sampler;
      if (writer?.running()) await writer.stop().catch(() => {});
      if (srv) await srv.close();
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: dropMixedWriterSql(table) });
      tmp.remove();
    }
  });
});
