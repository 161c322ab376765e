// Issue 5, Context Engine (first slice): schema history, through the official
// SDK client driving `datavor serve` over stdio, PostgreSQL -> SQLite, against
// the real test PostgreSQL (DATAVOR_TEST_PG_*; fails without).
//
//  - the stream records a table's definition when it opens (origin snapshot)
//    and each time the log brings a new one (ALTER TABLE: add a column, change
//    a type, drop a column; origin relation, with the position it holds from);
//  - schema_history lists the versions with their diffs; an identical
//    definition sent again (a reconnect) adds no version; the resource
//    datavor://context/{stream}/{table} serves the same; context.db's
//    schema_versions table is readable with sqlite3.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BIN, requireExecutable, tempHome, textOf } from './lib.mjs';
import { cleanupSource, lsnToBig, psql, requirePg, sqlite, startServe, waitForStream, waitUntil } from './stream_lib.mjs';

const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const CATCH_UP_MS = 60000;

describe('context engine: schema history', () => {
  const s = { pg: null, tmp: null, srv: null };
  before(async () => {
    s.pg = requirePg();
    requireExecutable(BIN);
    s.tmp = tempHome('datavor-context-');
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
    await s.srv.callOk('add_connection', { name: 'pg', url: s.pg.url, password: s.pg.password, sslmode: 'disable' });
  });
  after(async () => {
    if (s.srv) await s.srv.close();
    s.tmp?.remove();
  });

  it('records each definition of a streamed table with its position and diff', { timeout: 120000 }, async () => {
    const { pg, srv } = s;
    const table = `dv_orders_${U}`;
    const qt = `public.${table}`;
    const stream = `ctx_${U}`;
    const slot = `datavor_${stream}`;
    const target = path.join(s.tmp.root, 'ctx.db');
    const history = async () => (await srv.callOk('schema_history', { stream, table })).versions;
    try {
      await psql(pg, `CREATE TABLE ${table} (id int PRIMARY KEY, amount int NOT NULL, note text); INSERT INTO ${table} VALUES (1, 10, 'a');`);
      const none = await srv.call('schema_history', { stream, table });
      assert.equal(none.isError, true);
      assert.match(textOf(none), /No schema history/);
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      let v = await history();
      assert.equal(v.length, 1);
      assert.equal(v[0].origin, 'snapshot');
      assert.deepEqual(v[0].columns.map((c) => [c.name, c.type, c.nullable, c.key]), [
        ['id', 'integer', false, true],
        ['amount', 'integer', false, false],
        ['note', 'text', true, false],
      ]);
      assert.equal(v[0].diff, undefined);

      // A plain change brings the same definition again: no new version.
      await psql(pg, `INSERT INTO ${table} VALUES (2, 20, 'b');`);
      await waitUntil(async () => (await sqlite(target, `SELECT count(*) FROM "${table}";`)).trim() === '2', CATCH_UP_MS, 'row 2');
      assert.equal((await history()).length, 1);

      // Drift: a new column, a type change, a dropped column.
      await psql(pg, `ALTER TABLE ${table} ADD COLUMN discount_code text; INSERT INTO ${table} VALUES (3, 30, 'c', 'SALE10');`);
      await waitUntil(async () => (await history()).length === 2, CATCH_UP_MS, 'version 2', () => srv.describe());
      await psql(pg, `ALTER TABLE ${table} ALTER COLUMN amount TYPE bigint; UPDATE ${table} SET amount = 5000000000 WHERE id = 1;`);
      await waitUntil(async () => (await history()).length === 3, CATCH_UP_MS, 'version 3');
      await psql(pg, `ALTER TABLE ${table} DROP COLUMN note; INSERT INTO ${table} VALUES (4, 40, NULL);`);
      await waitUntil(async () => (await history()).length === 4, CATCH_UP_MS, 'version 4');
      v = await history();
      assert.deepEqual(v.map((x) => [x.version, x.origin]), [
        [1, 'snapshot'],
        [2, 'relation'],
        [3, 'relation'],
        [4, 'relation'],
      ]);
      assert.deepEqual(v[1].diff.added.map((c) => [c.name, c.type, c.nullable]), [['discount_code', 'text', true]]);
      assert.deepEqual([v[1].diff.dropped, v[1].diff.changed], [[], []]);
      assert.deepEqual(v[2].diff.changed.map((c) => [c.column, c.from.type, c.to.type]), [['amount', 'integer', 'bigint']]);
      assert.deepEqual(v[3].diff.dropped, ['note']);
      // Positions only move forward.
      for (let i = 2; i < v.length; i++) assert.ok(lsnToBig(v[i].position) > lsnToBig(v[i - 1].position), JSON.stringify(v.map((x) => x.position)));

      // The resource and the sqlite3-readable table say the same.
      const res = await srv.client.readResource({ uri: `datavor://context/${stream}/${qt}` });
      assert.equal(JSON.parse(res.contents[0].text).versions.length, 4);
      const rows = (await sqlite(path.join(s.tmp.home, 'context.db'), `SELECT count(*) FROM schema_versions WHERE stream = '${stream}' AND table_name = '${qt}';`)).trim();
      assert.equal(rows, '4');

      // A reconnect (pause, resume) sends the definition again: no new version.
      await srv.callOk('pause_stream', { name: stream });
      await srv.callOk('resume_stream', { name: stream });
      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'streaming again');
      await psql(pg, `INSERT INTO ${table} VALUES (5, 50, 'X');`);
      await waitUntil(async () => (await sqlite(target, `SELECT count(*) FROM "${table}" WHERE id = 5;`)).trim() === '1', CATCH_UP_MS, 'row 5');
      assert.equal((await history()).length, 4);

      // test_rule: a dry run on sample rows against the latest definition; nothing is saved.
      const tried = async (rule, rows) => srv.callOk('test_rule', { stream, table, rule, rows });
      const f = await tried({ kind: 'filter', condition: 'amount > 25' }, [{ values: { id: 1, amount: 10 } }, { values: { id: 2, amount: 30, discount_code: 'X' } }]);
      assert.deepEqual(f.results.map((r) => r.outcome), ['filtered', 'kept']);
      assert.deepEqual(f.results[1].after, { id: '2', amount: '30', discount_code: 'X' });
      assert.deepEqual(f.target_columns.map((c) => c.name), ['id', 'amount', 'discount_code']);
      const c = await tried({ kind: 'cast', column: 'discount_code', to: 'integer', on_fail: 'set_aside' }, [{ values: { id: 3, amount: 1, discount_code: 'SALE' } }, { values: { id: 4, amount: 1, discount_code: '12' } }]);
      assert.deepEqual(c.results.map((r) => r.outcome), ['set_aside', 'kept']);
      assert.match(c.results[0].reason, /discount_code: 'SALE' is not a integer/);
      assert.equal(c.target_columns.find((x) => x.name === 'discount_code').type, 'integer');
      const d = await tried({ kind: 'derive', column: 'big', expression: 'amount >= 100', to: 'boolean' }, [{ values: { id: 5, amount: 150 } }]);
      assert.equal(d.results[0].after.big, 't');
      const al = await tried({ kind: 'alert', condition: 'amount >= 100', note: 'big order' }, [{ values: { id: 6, amount: 150 } }, { op: 'update', values: { id: 6, amount: 160 } }, { values: { id: 7, amount: 5 } }]);
      assert.deepEqual(al.results.map((r) => (r.alerts ?? []).length), [1, 0, 0], JSON.stringify(al.results));
      assert.match(al.results[0].alerts[0], /big order/);
      const bad = await srv.call('test_rule', { stream, table, rule: { kind: 'mask', column: 'amount', method: 'md5' }, rows: [{ values: { id: 1 } }] });
      assert.equal(bad.isError, true);
      assert.equal((await srv.callOk('list_rules', { stream })).rules.length, 0, 'test_rule saved nothing');
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${table};` });
    }
  });
});
