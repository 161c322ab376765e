// Issue 5, rules engine (first slice): filter, mask and drop rules through the
// official SDK client driving `datavor serve` over stdio, PostgreSQL -> SQLite,
// against the real test PostgreSQL (DATAVOR_TEST_PG_*; fails without).
//
//  - rules added before the stream exists apply to its first snapshot;
//  - mask sha256: the target holds only salted hashes (equal values stay
//    equal), and the raw e-mail appears nowhere: not in the target file, not in
//    ledger.db (also not in a failed row's image), not in any tool result;
//  - mask keep_last:4, drop (the column is not in the target), filter (rows
//    whose status is 'test' never reach the target; deletes still pass);
//  - removing the filter lets later 'test' rows through; the rule changes are
//    in the ledger; invalid rules are refused with what to fix (a caret under
//    the offending character of a condition).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { requireExecutable, BIN, sleep, tempHome, textOf } from './lib.mjs';
import { cleanupSource, ledgerEntries, psql, psqlValue, requirePg, sqlite, startServe, waitForStream, waitUntil } from './stream_lib.mjs';

const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();
const CATCH_UP_MS = 60000;

describe('rules: filter, mask and drop', () => {
  const s = { pg: null, tmp: null, srv: null };
  before(async () => {
    s.pg = requirePg();
    requireExecutable(BIN);
    s.tmp = tempHome('datavor-rules-');
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
    await s.srv.callOk('add_connection', { name: 'pg', url: s.pg.url, password: s.pg.password, sslmode: 'disable' });
  });
  after(async () => {
    if (s.srv) await s.srv.close();
    s.tmp?.remove();
  });

  it('masks, drops and filters from the first snapshot on; the raw values reach neither target nor ledger', { timeout: 120000 }, async () => {
    const { pg, srv } = s;
    const table = `dv_rules_${U}`;
    const stream = `rules_${U}`;
    const slot = `datavor_${stream}`;
    const target = path.join(s.tmp.root, 'rules.db');
    const secret = (i) => `person${i}.${U}@example.org`;
    const results = []; // every tool result, to grep for raw values
    const call = async (name, args) => {
      const r = await srv.call(name, args);
      results.push(JSON.stringify(r));
      return r;
    };
    const ok = async (name, args) => {
      const r = await call(name, args);
      assert.notEqual(r.isError, true, `${name}: ${textOf(r)}`);
      return r.structuredContent;
    };
    try {
      await psql(
        pg,
        `CREATE TABLE ${table} (id int PRIMARY KEY, email text NOT NULL, phone text, status text NOT NULL, note text);
         INSERT INTO ${table} SELECT g, 'person' || g || '.${U}@example.org', '+1 555 000 ' || lpad(g::text, 4, '0'),
                CASE WHEN g % 5 = 0 THEN 'test' ELSE 'live' END, 'private note ' || g
           FROM generate_series(1, 50) g;
         INSERT INTO ${table} VALUES (51, 'person7.${U}@example.org', NULL, 'live', 'same e-mail as 7');`,
      );
      // Invalid rules are refused with what to fix.
      let bad;
      try { bad = await call('add_rule', { stream, table, kind: 'filter', condition: "status <> 'test' and" }); } catch (e) { console.error(srv.describe()); throw e; }
      assert.equal(bad.isError, true);
      assert.match(textOf(bad), /expected a value, a column or '\(' at the end/);
      assert.match(textOf(bad), /\^/, 'a caret under the offending character');
      const badMask = await call('add_rule', { stream, table, kind: 'mask', column: 'email', method: 'md5' });
      assert.equal(badMask.isError, true);
      assert.match(textOf(badMask), /sha256, redact or keep_last:N/);

      // Rules first, then the stream: the snapshot is covered.
      const mask = (await ok('add_rule', { stream, table, kind: 'mask', column: 'email', method: 'sha256', note: 'PII' })).rule;
      assert.deepEqual([mask.kind, mask.column, mask.method, mask.provenance], ['mask', 'email', 'sha256', 'user']);
      await ok('add_rule', { stream, table, kind: 'mask', column: 'phone', method: 'keep_last:4' });
      await ok('add_rule', { stream, table, kind: 'drop', column: 'note' });
      const filter = (await ok('add_rule', { stream, table, kind: 'filter', condition: "status <> 'test'" })).rule;
      assert.equal((await ok('list_rules', { stream })).rules.length, 4);

      // A failed row: the target rejects the streamed id 63 (its image must be masked in the ledger too).
      await sqlite(target, `CREATE TABLE "${table}" ("id" INTEGER PRIMARY KEY, "email" TEXT, "phone" TEXT, "status" TEXT);
        CREATE TRIGGER reject63 BEFORE INSERT ON "${table}" WHEN NEW.id = 63 BEGIN SELECT RAISE(ABORT, 'rejected'); END;`);
      await ok('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      await psql(
        pg,
        `INSERT INTO ${table} SELECT g, 'person' || g || '.${U}@example.org', '+1 555 111 ' || lpad(g::text, 4, '0'),
                CASE WHEN g % 5 = 0 THEN 'test' ELSE 'live' END, 'private note ' || g
           FROM generate_series(52, 80) g;
         UPDATE ${table} SET email = 'changed.${U}@example.org' WHERE id = 2;
         DELETE FROM ${table} WHERE id = 3;`,
      );
      await waitUntil(async () => (await sqlite(target, `SELECT count(*) FROM "${table}" WHERE id = 79;`)).trim() === '1', CATCH_UP_MS, 'the streamed rows');

      // Filter: no 'test' row; deletes passed.
      const ids = (await sqlite(target, `SELECT group_concat(id) FROM (SELECT id FROM "${table}" ORDER BY id);`)).trim().split(',').map(Number);
      const want = [];
      for (let i = 1; i <= 80; i++) if (i % 5 !== 0 && i !== 3 && i !== 63) want.push(i);
      want.push(51);
      want.sort((a, b) => a - b);
      assert.deepEqual(ids, [...new Set(want)], 'the target holds exactly the live rows (63 rejected, 3 deleted)');
      // Drop: the column is not in the target.
      const cols = (await sqlite(target, `SELECT group_concat(name) FROM pragma_table_info('${table}');`)).trim();
      assert.equal(cols, 'id,email,phone,status');
      // Mask sha256: 64 hex digits, equal inputs equal, different inputs different.
      const emails = Object.fromEntries(
        (await sqlite(target, `SELECT id || '|' || email FROM "${table}" WHERE id IN (1, 2, 7, 51);`)).trim().split('\n').map((l) => l.split('|')),
      );
      for (const v of Object.values(emails)) assert.match(v, /^[0-9a-f]{64}$/);
      assert.equal(emails[7], emails[51], 'equal values must hash equally');
      assert.notEqual(emails[1], emails[7]);
      // keep_last:4
      assert.equal((await sqlite(target, `SELECT phone FROM "${table}" WHERE id = 12;`)).trim(), '*'.repeat(11) + '0012');

      // test_rule without rows: a rule tried on the stream's latest changes,
      // after its saved rules (so the masks hold in what it shows).
      const dry = await ok('test_rule', { stream, table, rule: { kind: 'filter', condition: 'id % 2 = 0' } });
      assert.equal(dry.source, 'recent');
      assert.ok(dry.results.length >= 1, JSON.stringify(dry));
      const last = dry.results[dry.results.length - 1];
      assert.equal(last.op, 'delete', 'the last change to the table in that batch: the delete of id 3');
      assert.deepEqual(dry.target_columns.map((c) => c.name), ['id', 'email', 'phone', 'status']);
      for (const r of dry.results.filter((x) => x.after)) assert.match(r.after.email, /^[0-9a-f]{64}$/);
      assert.equal((await ok('list_rules', { stream })).rules.length, 4, 'test_rule saved nothing');
      const notRunning = await call('test_rule', { stream: 'no_such_stream', table, rule: { kind: 'filter', condition: 'true' } });
      assert.equal(notRunning.isError, true);
      assert.match(textOf(notRunning), /not running in this server/);

      // The raw values appear nowhere.
      await waitUntil(async () => (await ledgerEntries(srv, { stream, kind: 'failed' })).length === 1, CATCH_UP_MS, 'the rejected row in the ledger');
      const failed = (await ledgerEntries(srv, { stream, kind: 'failed' }))[0];
      results.push(JSON.stringify(failed));
      assert.match(JSON.stringify(failed.details), /[0-9a-f]{64}/, 'the failed row image holds the hash');
      const haystacks = { target: fs.readFileSync(target), results: Buffer.from(results.join('\n')) };
      for (const f of ['ledger.db', 'ledger.db-wal', 'context.db', 'context.db-wal']) {
        const p = path.join(s.tmp.home, f);
        if (fs.existsSync(p)) haystacks[f] = fs.readFileSync(p);
      }
      for (const i of [1, 2, 7, 63, 60]) {
        for (const [where, bytes] of Object.entries(haystacks)) {
          assert.equal(bytes.includes(secret(i)), false, `the raw e-mail of row ${i} is in ${where}`);
          assert.equal(bytes.includes(`private note ${i}`), false, `the dropped note of row ${i} is in ${where}`);
        }
      }

      // Each rule's work is counted in the ledger, without an entry per row:
      // the snapshot's in snapshot_end, the stream's in the batch entries.
      const snapEnd = (await ledgerEntries(srv, { stream, kind: 'lifecycle' })).find((e) => e.op === 'snapshot_end');
      assert.equal(snapEnd?.details?.rules?.[filter.id], 10, `snapshot_end: ${JSON.stringify(snapEnd)}`); // ids 5, 10, …, 50
      assert.equal(snapEnd.details.rules[mask.id], 41, JSON.stringify(snapEnd.details)); // the other 40 rows and row 51
      // (The ledger is written asynchronously: wait until the last batch entries are in.)
      let batches = [];
      const counted = (id) => batches.reduce((n, b) => n + (b.details?.rules?.[id] ?? 0), 0);
      await waitUntil(async () => {
        batches = await ledgerEntries(srv, { stream, kind: 'batch' });
        return counted(mask.id) >= 25;
      }, 10000, 'the rule counts in the batch entries', () => `\n${JSON.stringify(batches.map((b) => b.details?.rules))}`).catch(() => {});
      assert.equal(counted(filter.id), 6, 'streamed test rows filtered: 55, 60, …, 80');
      assert.equal(counted(mask.id), 29 - 6 + 2, `inserts 52-80 kept (63 counted: it reached the sink), the update and the delete: ${JSON.stringify(batches.map((b) => [b.position, b.details?.rules]))}`);

      // The rule changes are in the ledger; removing the filter lets 'test' rows through.
      const added = (await ledgerEntries(srv, { stream, kind: 'lifecycle' })).filter((e) => e.op === 'rule_added');
      assert.equal(added.length, 4);
      await ok('remove_rule', { id: filter.id });
      await waitUntil(async () => {
        await psql(pg, `INSERT INTO ${table} VALUES (1000 + (random() * 100000)::int, 'x@y', NULL, 'test', NULL) ON CONFLICT DO NOTHING;`);
        return Number((await sqlite(target, `SELECT count(*) FROM "${table}" WHERE status = 'test';`)).trim()) > 0;
      }, CATCH_UP_MS, "a 'test' row once the filter is removed");
      assert.equal((await ok('list_rules', { stream })).rules.length, 3);
      const removed = await call('remove_rule', { id: filter.id });
      assert.equal(removed.isError, true);
      await ok('stop_stream', { name: stream, drop_slot: true });
    } catch (e) {
      console.error(`# ${e.message}${srv.describe()}`);
      throw e;
    } finally {
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${table};` });
    }
  });
  it('cast, rename and derive shape the target; a value the cast refuses is set aside in the ledger', { timeout: 120000 }, async () => {
    const { pg, srv } = s;
    const table = `dv_shape_${U}`;
    const stream = `shape_${U}`;
    const slot = `datavor_${stream}`;
    const target = path.join(s.tmp.root, 'shape.db');
    try {
      await psql(
        pg,
        `CREATE TABLE ${table} (id int PRIMARY KEY, qty text NOT NULL, price numeric(10,2) NOT NULL, country text, legacy_flag text);
         INSERT INTO ${table} VALUES (1, '3', 9.50, 'fr', 'yes'), (2, '10', 1.25, 'de', 'no');`,
      );
      const add = async (args) => {
        const r = await srv.call('add_rule', { stream, table, ...args });
        assert.notEqual(r.isError, true, `add_rule ${JSON.stringify(args)}: ${textOf(r)}`);
        return r.structuredContent.rule;
      };
      const badType = await srv.call('add_rule', { stream, table, kind: 'cast', column: 'qty', to: 'money' });
      assert.equal(badType.isError, true);
      assert.match(textOf(badType), /integer, bigint/);
      const badExpr = await srv.call('add_rule', { stream, table, kind: 'derive', column: 'total', expression: 'qty * * price' });
      assert.equal(badExpr.isError, true);
      assert.match(textOf(badExpr), /\^/);
      await add({ kind: 'cast', column: 'qty', to: 'integer', on_fail: 'set_aside' });
      await add({ kind: 'cast', column: 'legacy_flag', to: 'boolean' }); // on_fail null
      await add({ kind: 'derive', column: 'total', expression: 'qty * price', to: 'numeric' });
      await add({ kind: 'derive', column: 'country_uc', expression: 'upper(country)' });
      await add({ kind: 'rename', column: 'country', to: 'country_code' });
      await add({ kind: 'rename', to: 'order_lines' });
      const listed = (await srv.callOk('list_rules', { stream })).rules;
      assert.deepEqual(listed.map((r) => r.kind), ['cast', 'cast', 'derive', 'derive', 'rename', 'rename']);
      assert.equal(listed[0].on_fail, 'set_aside');

      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [table] });
      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'snapshot done');
      await psql(
        pg,
        `INSERT INTO ${table} VALUES (3, '7', 2.00, 'it', 'maybe'), (4, 'seven', 1.00, 'es', 'true');
         UPDATE ${table} SET qty = '4' WHERE id = 1;`,
      );
      await waitUntil(async () => (await sqlite(target, `SELECT count(*) FROM order_lines WHERE id = 3;`)).trim() === '1', CATCH_UP_MS, 'row 3 in order_lines', () => srv.describe());
      await waitUntil(async () => (await sqlite(target, `SELECT qty FROM order_lines WHERE id = 1;`)).trim() === '4', CATCH_UP_MS, 'the update of row 1');
      // The table is renamed, the column too; derived columns computed; types cast.
      assert.equal((await sqlite(target, `SELECT count(*) FROM sqlite_master WHERE name = '${table}';`)).trim(), '0');
      const cols = (await sqlite(target, `SELECT group_concat(name || ':' || type) FROM pragma_table_info('order_lines');`)).trim();
      assert.equal(cols, 'id:INTEGER,qty:INTEGER,price:TEXT,country_code:TEXT,legacy_flag:INTEGER,total:TEXT,country_uc:TEXT');
      const rows = (await sqlite(target, `SELECT id || '|' || qty || '|' || country_code || '|' || coalesce(legacy_flag, 'null') || '|' || total || '|' || country_uc FROM order_lines ORDER BY id;`))
        .trim()
        .split('\n');
      assert.deepEqual(rows, ['1|4|fr|1|38|FR', '2|10|de|0|12.5|DE', '3|7|it|null|14|IT']);
      // 'seven' is not an integer: set aside with the reason, not in the target.
      const failed = await waitUntil(async () => (await ledgerEntries(srv, { stream, kind: 'failed' }))[0], CATCH_UP_MS, 'the refused cast in the ledger');
      assert.equal(failed.code, 'rule:cast');
      assert.equal(failed.error_class, 'data');
      assert.match(failed.message, /column qty: 'seven' is not a integer/);
      assert.equal(failed.row_key, '{"id":"4"}');
      assert.equal((await sqlite(target, `SELECT count(*) FROM order_lines WHERE id = 4;`)).trim(), '0');
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${table};` });
    }
  });
  it('alerts: stock < 10 fires once per crossing; 11 card transactions in 8 minutes from 3 countries flags that card only', { timeout: 120000 }, async () => {
    const { pg, srv } = s;
    const inv = `dv_inv_${U}`;
    const tx = `dv_tx_${U}`;
    const stream = `alerts_${U}`;
    const slot = `datavor_${stream}`;
    const target = path.join(s.tmp.root, 'alerts.db');
    try {
      await psql(
        pg,
        `CREATE TABLE ${inv} (sku int PRIMARY KEY, stock int NOT NULL); INSERT INTO ${inv} VALUES (1, 50), (2, 50);
         CREATE TABLE ${tx} (id serial PRIMARY KEY, card_id text NOT NULL, country text NOT NULL, amount numeric NOT NULL);`,
      );
      const badWindow = await srv.call('add_rule', { stream, table: tx, kind: 'alert', condition: 'true', window: { minutes: 8, by: 'card_id', distinct: 'country' } });
      assert.equal(badWindow.isError, true);
      assert.match(textOf(badWindow), /distinct needs min_distinct/);
      // A local webhook receiver: the first POST gets a 500 (the alert must be retried), the rest 200.
      const received = [];
      let refused = 0;
      const hook = http.createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          if (refused === 0) {
            refused++;
            res.writeHead(500).end('try again');
            return;
          }
          received.push({ path: req.url, type: req.headers['content-type'], body: JSON.parse(body) });
          res.writeHead(204).end();
        });
      });
      await new Promise((r) => hook.listen(0, '127.0.0.1', r));
      s.closeHook = () => new Promise((r) => hook.close(r));
      const hookUrl = `http://127.0.0.1:${hook.address().port}/alerts?src=datavor`;
      const badHook = await srv.call('add_rule', { stream, table: inv, kind: 'alert', condition: 'stock < 10', webhook: 'http://:80/x' });
      assert.equal(badHook.isError, true, textOf(badHook));
      const low = (await srv.callOk('add_rule', { stream, table: inv, kind: 'alert', condition: 'stock < 10', note: 'low stock', webhook: hookUrl })).rule;
      const velocity = (
        await srv.callOk('add_rule', {
          stream,
          table: tx,
          kind: 'alert',
          condition: 'amount > 0',
          window: { minutes: 8, by: 'card_id', min_count: 11, distinct: 'country', min_distinct: 3 },
          note: 'card velocity',
          to_target: true,
        })
      ).rule;
      assert.equal(velocity.window.window_minutes, 8);
      assert.equal(velocity.window.to_target, true);
      await srv.client.setLoggingLevel('info');
      await srv.callOk('start_stream', { name: stream, source: 'pg', target: `sqlite:${target}`, tables: [inv, tx] });
      await waitForStream(srv, stream, (x) => x.state === 'streaming', CATCH_UP_MS, 'snapshot done');

      // Threshold: 50 -> 12 -> 9 (fires) -> 5 (still low: no) -> 20 (clears) -> 8 (fires again); sku 2 never low.
      for (const v of [12, 9, 5, 20, 8]) await psql(pg, `UPDATE ${inv} SET stock = ${v} WHERE sku = 1; UPDATE ${inv} SET stock = stock - 1 WHERE sku = 2;`);
      // Velocity: card A 11 transactions from 3 countries (fires on the 11th), card B 11 from 2, card C 10 from 3.
      const one = (card, country) => `INSERT INTO ${tx} (card_id, country, amount) VALUES ('${card}', '${country}', 10);`;
      const A = ['FR', 'FR', 'DE', 'FR', 'FR', 'FR', 'FR', 'FR', 'FR', 'FR', 'IT'];
      for (let i = 0; i < 11; i++) await psql(pg, one('card-B', i % 2 ? 'FR' : 'DE') + one('card-C-' + (i < 10 ? 'x' : 'skip'), ['FR', 'DE', 'IT'][i % 3]));
      for (const c of A) await psql(pg, one('card-A', c));
      const aLast = await psqlValue(pg, `SELECT max(id) FROM ${tx} WHERE card_id = 'card-A';`);
      await waitUntil(async () => (await sqlite(target, `SELECT count(*) FROM "${tx}" WHERE id = ${aLast};`)).trim() === '1', CATCH_UP_MS, 'the last transaction applied');
      const alerts = await waitUntil(async () => {
        const a = (await srv.callOk('list_alerts', { stream })).alerts;
        return a.length >= 3 ? a : null;
      }, CATCH_UP_MS, 'three alerts', () => srv.describe());
      await sleep(1500); // nothing more may come
      const all = (await srv.callOk('list_alerts', { stream })).alerts.reverse(); // oldest first
      assert.deepEqual(all.map((a) => [a.rule_id, a.key]), [
        [low.id, '{"sku":"1"}'],
        [low.id, '{"sku":"1"}'],
        [velocity.id, '{"card_id":"card-A"}'],
      ], JSON.stringify(all, null, 1));
      assert.match(all[0].message, /low stock/);
      assert.equal(all[2].details.count, 11);
      assert.equal(all[2].details.distinct, 3);
      assert.equal(all[2].details.row.id, String(aLast), 'the velocity alert fires on the 11th transaction');
      assert.ok(alerts.length >= 3);
      // The MCP logging notification reached the client.
      assert.ok(srv.logs.some((l) => /card velocity/.test(l)), `no logging notification: ${srv.logs.slice(-5).join(' | ')}`);
      // The webhook got both low-stock alerts (the first after a retry), as JSON.
      await waitUntil(() => received.length === 2, 20000, 'two webhook deliveries');
      assert.equal(refused, 1);
      for (const r of received) {
        assert.equal(r.path, '/alerts?src=datavor');
        assert.equal(r.type, 'application/json');
        assert.equal(r.body.stream, stream);
        assert.equal(r.body.rule_id, low.id);
        assert.deepEqual(r.body.key, { sku: '1' });
        assert.match(r.body.message, /low stock/);
      }
      await s.closeHook();
      // to_target: the velocity alert is a row of the target's alerts table
      // (the low-stock rule did not ask for one).
      const rows = (await sqlite(target, `SELECT rule_id || '|' || row_key || '|' || message FROM _datavor_alerts ORDER BY commit_time_us;`)).trim().split('\n');
      assert.equal(rows.length, 1, rows.join('\n'));
      assert.match(rows[0], new RegExp(`^${velocity.id}\\|\\{"card_id":"card-A"\\}\\|.*card velocity`));
      // The resource lists them too.
      const res = await srv.client.readResource({ uri: 'datavor://alerts' });
      assert.equal(JSON.parse(res.contents[0].text).alerts.filter((a) => a.stream === stream).length, 3);
      await srv.callOk('stop_stream', { name: stream, drop_slot: true });
    } finally {
      await srv.call('stop_stream', { name: stream }).catch(() => {});
      await cleanupSource(pg, { slots: [slot], publications: [slot], sql: `DROP TABLE IF EXISTS ${inv}, ${tx};` });
    }
  });
});
