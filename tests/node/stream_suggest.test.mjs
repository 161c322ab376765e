// Issue 5, Suggestion Engine, through the official SDK client driving
// `datavor serve` over stdio against the real test PostgreSQL
// (DATAVOR_TEST_PG_*; fails without):
//
//  1. ALTER TABLE orders ADD COLUMN discount_code while orders stream: a
//     suggestion naming the column and its type, made before the rows that
//     carry it are applied (MCP logging notification, resources/updated);
//     rows keep flowing without it; accept_suggestion adds the column and
//     backfills every value written since the ALTER; the ledger records it.
//  2. Learned: a similar column on another table is applied by itself under
//     autopilot learned (the ledger names the pattern), only suggested under
//     suggest; a column no pattern matches waits.
//  3. A type change and a dropped column become suggestions; nothing crashes
//     and no value is lost (the PostgreSQL target rejects the wider values
//     until the accept alters its column, then the rows set aside go in).
//  4. Rows a target column made beforehand is too narrow for are set aside,
//     counted as an error pattern and turned into a suggestion whose accept
//     widens the column and retries them.
//  5. Suggestions, patterns, saved rules and kept values survive a restart.
//  6. A `datavor stream run` stream: --autopilot all decides by itself; under
//     suggest, an accept_suggestion from a serve on the same home is carried
//     out by the running CLI stream (it notices context.db change).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { BIN, requireExecutable, serverEnv, spawnCaptured, tempHome, textOf } from './lib.mjs';
import { cleanupSource, ledgerEntries, psql, requirePg, sqlite, startServe, waitForStream, waitUntil } from './stream_lib.mjs';

const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const CATCH_UP_MS = 60000;

describe('suggestion engine: schema drift on a live stream', () => {
  const s = { pg: null, tmp: null, srv: null, updates: [] };
  const orders = `dv_orders_${U}`;
  const inventory = `dv_inventory_${U}`;
  const stream = `sug_${U}`;
  const slot = `datavor_${stream}`;
  let target;

  const suggestions = async (args = {}) => (await s.srv.callOk('list_suggestions', { stream, ...args })).suggestions;
  const one = async (pred, what) =>
    waitUntil(async () => (await suggestions()).find(pred) ?? null, CATCH_UP_MS, what, () => s.srv.describe());
  const targetColumns = async (table) =>
    (await sqlite(target, `SELECT name FROM pragma_table_info('${table}') ORDER BY cid;`)).trim().split('\n');
  const lifecycle = async () => ledgerEntries(s.srv, { stream, kind: 'lifecycle' });
  const serve = async () => {
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
    s.srv.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => s.updates.push(n.params.uri));
    await s.srv.client.subscribeResource({ uri: 'datavor://suggestions' });
    await s.srv.client.setLoggingLevel('info');
  };

  // A stream of `table` into a fresh database on the test server (a
  // PostgreSQL target), set up with `sourceSql` (and `targetSql` in the
  // target), then `body({ stream, target })`; everything is dropped after.
  const withPgTarget = async (name, table, { sourceSql, targetSql = '' }, body) => {
    const lake = `dv_${name}_${U}`;
    const pgStream = `sug${name}_${U}`;
    await psql(s.pg, `CREATE DATABASE ${lake};`);
    try {
      await psql(s.pg, sourceSql);
      if (targetSql) await psql(s.pg, targetSql, { db: lake });
      const url = s.pg.url.replace(/\/[^/?]*(\?|$)/, `/${lake}$1`);
      await s.srv.callOk('add_connection', { name: lake, url, password: s.pg.password, sslmode: 'disable' });
      await s.srv.callOk('start_stream', { name: pgStream, source: 'pg', target: lake, tables: [table] });
      await waitForStream(s.srv, pgStream, (x) => x.state === 'streaming', CATCH_UP_MS, `${pgStream} streaming`);
      await body({ stream: pgStream, target: async (sql) => (await psql(s.pg, sql, { db: lake })).trim() });
      await s.srv.callOk('stop_stream', { name: pgStream, drop_slot: true });
    } finally {
      await s.srv.call('stop_stream', { name: pgStream }).catch(() => {});
      await cleanupSource(s.pg, { slots: [`datavor_${pgStream}`], publications: [`datavor_${pgStream}`], sql: `DROP TABLE IF EXISTS ${table};` });
      await psql(s.pg, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${lake}';`).catch(() => {});
      await psql(s.pg, `DROP DATABASE IF EXISTS ${lake};`).catch(() => {});
    }
  };
  const pgSuggestion = async (stream, kind) =>
    waitUntil(async () => (await s.srv.callOk('list_suggestions', { stream })).suggestions.find((x) => x.kind === kind) ?? null, CATCH_UP_MS, kind, () => s.srv.describe());

  before(async () => {
    s.pg = requirePg();
    requireExecutable(BIN);
    s.tmp = tempHome('datavor-suggest-');
    target = path.join(s.tmp.root, 'lake.db');
    await serve();
    await s.srv.callOk('add_connection', { name: 'pg', url: s.pg.url, password: s.pg.password, sslmode: 'disable' });
    await psql(
      s.pg,
      `CREATE TABLE ${orders} (id int PRIMARY KEY, amount int NOT NULL, email text);
       INSERT INTO ${orders} SELECT g, g * 10, 'u' || g || '@x.test' FROM generate_series(1, 5) g;
       CREATE TABLE ${inventory} (sku text PRIMARY KEY, stock int);
       INSERT INTO ${inventory} VALUES ('a', 5), ('b', 50);`,
    );
    await s.srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [orders, inventory] });
    await waitForStream(s.srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'snapshot done');
  });
  after(async () => {
    if (s.srv) {
      await s.srv.call('stop_stream', { name: stream }).catch(() => {});
      await s.srv.close();
    }
    await cleanupSource(s.pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${orders}, ${inventory};` });
    s.tmp?.remove();
  });

  it('1. a new column is suggested before its rows apply, kept aside, then added and backfilled on accept', { timeout: 180000 }, async () => {
    const { pg, srv } = s;
    const t0 = Date.now();
    await psql(
      pg,
      `ALTER TABLE ${orders} ADD COLUMN discount_code text;
       INSERT INTO ${orders} SELECT g, g * 10, 'u' || g || '@x.test', CASE WHEN g % 3 = 0 THEN NULL ELSE 'SALE' || g END
         FROM generate_series(6, 15) g;
       UPDATE ${orders} SET discount_code = 'OLD1' WHERE id = 1;`,
    );
    // Rows keep flowing without the column...
    await waitUntil(async () => (await sqlite(target, `SELECT count(*) FROM "${orders}";`)).trim() === '15', CATCH_UP_MS, 'rows 6..15');
    const seenAfter = Date.now() - t0;
    // ...and the suggestion was made before they were applied.
    let sug = (await suggestions()).find((x) => x.kind === 'new_column' && x.column === 'discount_code');
    assert.ok(sug, `no suggestion once the rows were applied (${seenAfter} ms)${srv.describe()}`);
    console.log(`# suggestion made, and the rows carrying the column applied, ${seenAfter} ms after the ALTER`);
    assert.equal(sug.status, 'pending');
    assert.equal(sug.table, `public.${orders}`);
    assert.equal(sug.new_type, 'text');
    assert.equal(sug.action, 'add_column');
    assert.match(sug.message, /New column .*discount_code \(text\)/);
    assert.deepEqual(await targetColumns(orders), ['id', 'amount', 'email'], 'the column waits for the decision');
    const st = (await srv.callOk('stream_status', { name: stream })).stream;
    assert.deepEqual([st.autopilot, st.pending_suggestions], ['suggest', 1]);
    await waitUntil(async () => srv.logs.some((l) => l.includes(`suggestion ${sug.id}:`) && l.includes('discount_code')), 10000, 'the logging notification', () => srv.logs.slice(-5).join(' | '));
    await waitUntil(async () => s.updates.includes('datavor://suggestions'), 10000, 'resources/updated datavor://suggestions');
    const res = JSON.parse((await srv.client.readResource({ uri: 'datavor://suggestions' })).contents[0].text);
    assert.ok(res.suggestions.some((x) => x.id === sug.id));
    sug = await one((x) => x.id === sug.id && x.kept_rows === 11, '11 kept values (10 inserts, 1 update)');

    const updatesBefore = s.updates.length;
    const accepted = await srv.callOk('accept_suggestion', { id: sug.id, note: 'marketing wants it' });
    assert.equal(accepted.suggestion.status, 'accepted');
    assert.equal(accepted.suggestion.decided_by, 'user');
    assert.equal(accepted.applied_to_running_stream, true);
    assert.equal(accepted.pattern.decision, 'accept');
    assert.equal(accepted.pattern.new_type, 'text');
    assert.equal(accepted.pattern.table_pattern, 'public.*');
    // A second decision is refused.
    const again = await srv.call('reject_suggestion', { id: sug.id });
    assert.equal(again.isError, true);
    assert.match(textOf(again), /already accepted/);

    // Changes after the accept go straight in.
    await psql(pg, `INSERT INTO ${orders} VALUES (16, 160, 'u16@x.test', 'LATE16'); UPDATE ${orders} SET discount_code = 'NEW7' WHERE id = 7;`);
    const done = await one((x) => x.id === sug.id && x.applied, 'the backfill');
    assert.equal(done.backfilled_rows, 11);
    // resources/updated for the decision and again once it is carried out.
    await waitUntil(async () => s.updates.length >= updatesBefore + 2, 10000, 'two more resources/updated');
    await waitUntil(async () => (await sqlite(target, `SELECT count(*) FROM "${orders}";`)).trim() === '16', CATCH_UP_MS, 'row 16');
    const src = (await psql(pg, `COPY (SELECT id, coalesce(discount_code, '<null>') FROM ${orders} ORDER BY id) TO STDOUT;`)).trim();
    const tgt = (await sqlite(target, `SELECT id || char(9) || coalesce(discount_code, '<null>') FROM "${orders}" ORDER BY id;`)).trim();
    assert.equal(tgt, src, 'every value written since the ALTER is in the target');
    assert.ok(src.includes('OLD1') && src.includes('NEW7') && src.includes('SALE8'));

    await waitUntil(async () => (await lifecycle()).some((e) => e.op === 'suggestion_applied'), 10000, 'the ledger entries');
    const ops = (await lifecycle()).map((e) => [e.op, e.message]);
    assert.ok(ops.some(([op, m]) => op === 'suggestion' && m.includes('discount_code')), JSON.stringify(ops));
    assert.ok(ops.some(([op, m]) => op === 'suggestion_accepted' && m.includes(`suggestion ${sug.id}`)), JSON.stringify(ops));
    assert.ok(ops.some(([op, m]) => op === 'suggestion_applied' && m.includes('11 kept value(s) backfilled')), JSON.stringify(ops));
  });

  it('2. a similar column is applied by itself under autopilot learned, only suggested under suggest', { timeout: 180000 }, async () => {
    const { pg, srv } = s;
    const { patterns } = await srv.callOk('list_suggestions', { stream });
    const pattern = patterns.find((p) => p.kind === 'new_column' && p.new_type === 'text');
    assert.ok(pattern, JSON.stringify(patterns));
    assert.equal((await srv.callOk('set_autopilot', { stream, mode: 'learned' })).previous, 'suggest');

    await psql(pg, `ALTER TABLE ${inventory} ADD COLUMN note text; UPDATE ${inventory} SET note = 'restock', stock = 4 WHERE sku = 'a'; INSERT INTO ${inventory} VALUES ('c', 7, 'new');`);
    const auto = await one((x) => x.column === 'note', 'the note suggestion');
    assert.equal(auto.status, 'auto_accepted');
    assert.equal(auto.decided_by, 'pattern');
    assert.equal(auto.pattern_id, pattern.id);
    await waitUntil(
      async () => (await sqlite(target, `SELECT group_concat(sku || '=' || coalesce(note, '-'), ',') FROM (SELECT * FROM "${inventory}" ORDER BY sku);`)).trim() === 'a=restock,b=-,c=new',
      CATCH_UP_MS,
      'note in the target at once',
    );
    const autoEntry = await waitUntil(
      async () => (await lifecycle()).find((e) => e.op === 'suggestion_auto_applied' && e.message.includes(`suggestion ${auto.id}`)) ?? null,
      10000,
      'the ledger entry of the automatic decision',
    );
    assert.match(autoEntry.message, new RegExp(`pattern ${pattern.id} \\(from suggestion ${pattern.from_suggestion}\\)`));
    assert.equal(autoEntry.details.pattern.id, pattern.id);

    // No pattern for integer columns: it waits even under learned.
    await psql(pg, `ALTER TABLE ${inventory} ADD COLUMN reorder_at int; UPDATE ${inventory} SET reorder_at = 3 WHERE sku = 'b';`);
    const waits = await one((x) => x.column === 'reorder_at', 'reorder_at');
    assert.equal(waits.status, 'pending');

    // Under suggest the same kind of drift is only suggested, with the precedent.
    await srv.callOk('set_autopilot', { stream, mode: 'suggest' });
    await psql(pg, `ALTER TABLE ${inventory} ADD COLUMN remark text; UPDATE ${inventory} SET remark = 'fragile' WHERE sku = 'b';`);
    const sugg = await one((x) => x.column === 'remark' && x.kept_rows === 1, 'remark');
    assert.equal(sugg.status, 'pending');
    assert.match(sugg.message, new RegExp(`Similar past decision: pattern ${pattern.id}`));
    assert.ok(!(await targetColumns(inventory)).includes('remark'));
    // Rejected: left out for good (a drop rule), its kept values discarded.
    const rejected = await srv.callOk('reject_suggestion', { id: waits.id });
    assert.equal(rejected.suggestion.status, 'rejected');
    assert.equal(rejected.rule.kind, 'drop');
    assert.equal(rejected.rule.column, 'reorder_at');
  });

  it('3. type change and dropped column: suggestions, nothing lost; the accept alters a PostgreSQL target and retries', { timeout: 240000 }, async () => {
    const { pg, srv } = s;
    await psql(pg, `ALTER TABLE ${orders} ALTER COLUMN amount TYPE bigint; UPDATE ${orders} SET amount = 5000000000 WHERE id = 2;`);
    const tc = await one((x) => x.kind === 'type_change' && x.column === 'amount', 'type change');
    assert.equal(tc.old_type, 'integer');
    assert.equal(tc.new_type, 'bigint');
    assert.equal(tc.action, 'alter_target_type');
    await waitUntil(async () => (await sqlite(target, `SELECT amount FROM "${orders}" WHERE id = 2;`)).trim() === '5000000000', CATCH_UP_MS, 'the wide value');

    await psql(pg, `ALTER TABLE ${orders} DROP COLUMN email; INSERT INTO ${orders} (id, amount) VALUES (17, 170);`);
    const dc = await one((x) => x.kind === 'dropped_column' && x.column === 'email', 'dropped column');
    assert.equal(dc.action, 'keep_target_column');
    await waitUntil(async () => (await sqlite(target, `SELECT count(*) FROM "${orders}" WHERE id = 17;`)).trim() === '1', CATCH_UP_MS, 'row 17');
    assert.equal((await sqlite(target, `SELECT email FROM "${orders}" WHERE id = 3;`)).trim(), 'u3@x.test', 'past values stay');
    assert.equal((await srv.callOk('stream_status', { name: stream })).stream.state, 'streaming');
    const acceptedDrop = await srv.callOk('accept_suggestion', { id: dc.id });
    assert.equal(acceptedDrop.suggestion.applied, true);
    const acceptedType = await srv.callOk('accept_suggestion', { id: tc.id });
    assert.equal(acceptedType.suggestion.status, 'accepted');
    await one((x) => x.id === tc.id && x.applied, 'type change carried out (SQLite: nothing to alter)');

    // A PostgreSQL target holds the old type: the wide values are set aside
    // (not lost) until the accept widens the column and retries them.
    const wide = `dv_wide_${U}`;
    await withPgTarget('wide', wide, { sourceSql: `CREATE TABLE ${wide} (id int PRIMARY KEY, qty int); INSERT INTO ${wide} VALUES (1, 1);` }, async ({ stream: pgStream, target }) => {
      await psql(pg, `ALTER TABLE ${wide} ALTER COLUMN qty TYPE bigint; INSERT INTO ${wide} VALUES (2, 9000000000), (3, 3); UPDATE ${wide} SET qty = 8000000000 WHERE id = 1;`);
      const w = await pgSuggestion(pgStream, 'type_change');
      await waitUntil(async () => (await target(`SELECT count(*) FROM ${wide} WHERE id = 3;`)) === '1', CATCH_UP_MS, 'row 3 flows');
      // Both wide values are set aside (the ledger writes every 100 ms).
      const failed = await waitUntil(
        async () => {
          const f = await ledgerEntries(srv, { stream: pgStream, kind: 'failed', status: 'open' });
          return f.length >= 2 ? f : null;
        },
        CATCH_UP_MS,
        'two rows set aside',
      );
      assert.deepEqual(failed.map((f) => [f.row_key, f.code]).sort(), [['{"id":"1"}', '22003'], ['{"id":"2"}', '22003']]);
      await srv.callOk('accept_suggestion', { id: w.id });
      await waitUntil(
        async () => (await target(`SELECT string_agg(id || '=' || qty, ',' ORDER BY id) FROM ${wide};`)) === '1=8000000000,2=9000000000,3=3',
        CATCH_UP_MS,
        'the set-aside rows retried into the widened column',
        () => srv.describe(),
      );
      assert.equal(await target(`SELECT data_type FROM information_schema.columns WHERE table_name = '${wide}' AND column_name = 'qty';`), 'bigint');
      assert.equal((await ledgerEntries(srv, { stream: pgStream, kind: 'failed', status: 'open' })).length, 0);
    });
  });

  it('4. values too wide for a target column made beforehand: an error pattern and a suggestion that widens it and retries', { timeout: 180000 }, async () => {
    const { pg, srv } = s;
    const people = `dv_people_${U}`;
    await withPgTarget(
      'narrow',
      people,
      {
        sourceSql: `CREATE TABLE ${people} (id int PRIMARY KEY, name text, score int); INSERT INTO ${people} VALUES (1, 'Ann', 1);`,
        // The team made the target table first, with a narrower column.
        targetSql: `CREATE TABLE ${people} (id int PRIMARY KEY, name varchar(5), score int);`,
      },
      async ({ stream: pgStream, target }) => {
        await psql(pg, `BEGIN; INSERT INTO ${people} VALUES (2, 'Bartholomew', 2), (3, 'Cy', 3); UPDATE ${people} SET name = 'Annabelle-Marie' WHERE id = 1; COMMIT;`);
        const sug = await pgSuggestion(pgStream, 'target_rejects');
        assert.equal(sug.error_code, '22001');
        assert.equal(sug.action, 'widen_target_columns');
        assert.equal(sug.table, `public.${people}`);
        assert.match(sug.message, /2 change\(s\) to public\.dv_people_.* were rejected by the target: value too long/);
        const { error_patterns: errs } = await srv.callOk('list_suggestions', { stream: pgStream });
        assert.deepEqual(errs.map((e) => [e.table, e.error_class, e.code, e.count]), [[`public.${people}`, 'data', '22001', 2]]);
        await waitUntil(async () => (await target(`SELECT count(*) FROM ${people} WHERE id = 3;`)) === '1', CATCH_UP_MS, 'row 3 flows');
        await srv.callOk('accept_suggestion', { id: sug.id });
        await waitUntil(
          async () => (await target(`SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM ${people};`)) === '1=Annabelle-Marie,2=Bartholomew,3=Cy',
          CATCH_UP_MS,
          'the rejected rows retried into the widened column',
          () => srv.describe(),
        );
        const typeOf = (column) => target(`SELECT data_type FROM information_schema.columns WHERE table_name = '${people}' AND column_name = '${column}';`);
        assert.equal(await typeOf('name'), 'text');
        assert.equal(await typeOf('score'), 'integer', 'only the narrower column changes');
        const done = (await srv.callOk('list_suggestions', { stream: pgStream })).suggestions.find((x) => x.id === sug.id);
        assert.equal(done.applied, true);
      },
    );
  });

  it('5. suggestions, patterns, rules and kept values survive a restart', { timeout: 180000 }, async () => {
    const { pg } = s;
    const before = await s.srv.callOk('list_suggestions', { stream });
    await s.srv.close();
    await serve();
    const after = await s.srv.callOk('list_suggestions', { stream });
    assert.deepEqual(after, before);
    await waitForStream(s.srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'resumed');
    assert.ok((await s.srv.callOk('list_rules', { stream })).rules.some((r) => r.kind === 'drop' && r.column === 'reorder_at' && r.provenance === 'suggestion'));
    // remark is still withheld after the restart, and its values still kept.
    await psql(pg, `INSERT INTO ${inventory} (sku, stock, remark) VALUES ('d', 1, 'after restart');`);
    const remark = await one((x) => x.column === 'remark' && x.kept_rows === 2, 'remark kept across the restart');
    assert.ok(!(await targetColumns(inventory)).includes('remark'));
    await s.srv.callOk('accept_suggestion', { id: remark.id });
    await one((x) => x.id === remark.id && x.applied && x.backfilled_rows === 2, 'remark backfilled');
    assert.equal(
      (await sqlite(target, `SELECT group_concat(sku || '=' || coalesce(remark, '-'), ',') FROM (SELECT * FROM "${inventory}" ORDER BY sku);`)).trim(),
      'a=-,b=fragile,c=-,d=after restart',
    );
    assert.ok(!(await targetColumns(inventory)).includes('reorder_at'), 'the rejected column stays out');
    await s.srv.callOk('stop_stream', { name: stream, drop_slot: true });
  });
  it('6. a CLI stream: --autopilot all decides by itself; a serve next to it decides under suggest', { timeout: 180000 }, async () => {
    const { pg, srv } = s;
    const cliTable = `dv_cli_${U}`;
    const cliStream = `sugcli_${U}`;
    const cliTarget = path.join(s.tmp.root, 'cli.db');
    const url = `postgresql://${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/postgres`;
    const run = async (autopilot) => {
      const argv = ['stream', 'run', '--source', url, '--target', `sqlite:${cliTarget}`, '--tables', cliTable, '--name', cliStream, '--home', s.tmp.home];
      const h = spawnCaptured(BIN, autopilot ? [...argv, '--autopilot', autopilot] : argv, { env: serverEnv(s.tmp.userHome), cwd: s.tmp.userHome });
      await waitUntil(() => h.stderr().includes(`stream ${cliStream}: streaming`) || h.proc.exitCode !== null, CATCH_UP_MS, 'the CLI stream streaming', h.describe);
      assert.equal(h.proc.exitCode, null, `datavor stream run exited early${h.describe()}`);
      return h;
    };
    const stop = async (h) => {
      h.proc.kill('SIGTERM');
      await h.exited;
    };
    const cliSuggestion = (column) =>
      waitUntil(async () => (await srv.callOk('list_suggestions', { stream: cliStream })).suggestions.find((x) => x.column === column) ?? null, CATCH_UP_MS, column);
    const cell = (sql) => sqlite(cliTarget, sql).then((x) => x.trim());
    let h;
    try {
      await psql(pg, `CREATE TABLE ${cliTable} (id int PRIMARY KEY, n int); INSERT INTO ${cliTable} VALUES (1, 1);`);
      const bad = await run('sometimes').catch((e) => e);
      assert.ok(bad instanceof Error, 'an unknown --autopilot is refused');
      h = await run('all');
      await psql(pg, `ALTER TABLE ${cliTable} ADD COLUMN weight numeric; INSERT INTO ${cliTable} VALUES (2, 2, 1.5);`);
      const auto = await cliSuggestion('weight');
      assert.deepEqual([auto.status, auto.decided_by], ['auto_accepted', 'autopilot']);
      await waitUntil(async () => (await cell(`SELECT weight FROM "${cliTable}" WHERE id = 2;`)) === '1.5', CATCH_UP_MS, 'weight at once', h.describe);
      await stop(h);

      h = await run();
      await psql(pg, `ALTER TABLE ${cliTable} ADD COLUMN label text; INSERT INTO ${cliTable} VALUES (3, 3, 2.5, 'three');`);
      const waiting = await cliSuggestion('label');
      assert.equal(waiting.status, 'pending');
      await waitUntil(async () => (await cell(`SELECT count(*) FROM "${cliTable}";`)) === '3', CATCH_UP_MS, 'row 3 without the column', h.describe);
      const accepted = await srv.callOk('accept_suggestion', { id: waiting.id });
      assert.equal(accepted.applied_to_running_stream, false, 'the stream runs in another process');
      await waitUntil(async () => (await cell(`SELECT coalesce(label, '-') FROM "${cliTable}" WHERE id = 3;`).catch(() => '')) === 'three', CATCH_UP_MS, 'the CLI stream backfills', h.describe);
      await stop(h);
      h = null;
    } finally {
      if (h) await stop(h).catch(() => {});
      await cleanupSource(pg, { slots: [`datavor_${cliStream}`], publications: [`datavor_${cliStream}`], sql: `DROP TABLE IF EXISTS ${cliTable};` });
    }
  });
});
