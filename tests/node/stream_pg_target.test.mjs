// Acceptance 1 of issue 3, PostgreSQL -> PostgreSQL: through the official SDK
// client, add two connections (the source database and a second database as
// the target), start_stream, run inserts / updates (one leaving a 1 MB TOASTed
// value unchanged) / deletes / truncate over many types, and compare the two
// databases value by value (PostgreSQL's text form of every column).
// Needs DATAVOR_TEST_PG_* (scripts/test); fails without.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { BIN, requireExecutable, run, serverEnv, tempHome } from './lib.mjs';
import { PGOPTIONS, cleanupSource, psql, requirePg, startServe, waitForStream, waitUntil } from './stream_lib.mjs';

const U = `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`.toLowerCase();

// Every row of `table` in `db` as text, ordered by id.
async function dump(pg, db, table) {
  const r = await run(
    'psql',
    ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', db,
     '-c', `SELECT t::text FROM ${table} t ORDER BY id`],
    { env: { ...serverEnv(null), PGPASSWORD: pg.password, PGOPTIONS } },
  );
  if (r.code !== 0) throw new Error(`psql on ${db}: ${r.stderr}`);
  return r.stdout;
}

describe('PostgreSQL -> PostgreSQL stream', () => {
  const s = { pg: null, tmp: null, srv: null };
  const lake = `dv_lake_${U}`;
  const table = `dv_pgpg_${U}`;
  const stream = `pgpg_${U}`;

  before(async () => {
    s.pg = requirePg();
    requireExecutable(BIN);
    await psql(s.pg, `CREATE DATABASE ${lake};`);
    s.tmp = tempHome('datavor-pgpg-');
    s.srv = await startServe({ home: s.tmp.home, userHome: s.tmp.userHome });
  });

  after(async () => {
    if (s.srv) {
      try {
        await s.srv.call('stop_stream', { name: stream, drop_slot: true });
      } catch {}
      await s.srv.close();
    }
    await cleanupSource(s.pg, { slots: [`datavor_${stream}`], publications: [`datavor_${stream}`], sql: `DROP TABLE IF EXISTS ${table};` });
    await psql(s.pg, `DROP DATABASE IF EXISTS ${lake};`);
    s.tmp?.remove();
  });

  it('inserts, updates, deletes and truncate over many types arrive value by value', async () => {
    const { pg, srv } = s;
    await psql(
      pg,
      `CREATE TABLE ${table} (id int PRIMARY KEY, c_int int, c_big bigint, c_num numeric(40,20), c_free numeric,
         c_dbl double precision, c_real real, c_bool boolean, c_text text, c_bytea bytea, c_date date, c_ts timestamp,
         c_tstz timestamptz, c_interval interval, c_uuid uuid, c_jsonb jsonb, c_arr int[], c_inet inet, c_toast text);
       ALTER TABLE ${table} ALTER COLUMN c_toast SET STORAGE EXTERNAL;
       INSERT INTO ${table} VALUES
         (1, -2147483648, 9223372036854775807, 12345678901234567890.12345678901234567890, 1e-40,
          'NaN', '-Infinity', true, 'it''s "quoted"\\ttab', '\\x00ff10', '2026-11-25', '2026-11-25 08:00:00.123456',
          '2026-11-25 08:00:00.654321+02', '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
          '{"a": [1, null, "x"]}', '{1,NULL,3}', '10.1.2.3/8', repeat('z', 1048576)),
         (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);`,
    );
    const pgc = await srv.callOk('add_connection', { name: 'src', url: pg.url, password: pg.password, sslmode: 'disable' });
    assert.equal(pgc.connection.kind, 'postgresql');
    const lakeUrl = pg.url.replace(/\/[^/?]*(\?|$)/, `/${lake}$1`);
    const tgt = await srv.callOk('add_connection', { name: 'lake', url: lakeUrl, password: pg.password, sslmode: 'disable' });
    assert.equal(tgt.connection.kind, 'postgresql');
    const started = await srv.callOk('start_stream', { name: stream, source: 'src', target: 'lake', tables: [`public.${table}`] });
    assert.equal(started.started, true);
    await waitForStream(srv, stream, (st) => st.state === 'streaming', 30000, 'streaming after the snapshot');

    await psql(
      pg,
      `INSERT INTO ${table} VALUES (3, 3, 3, 0.00000000000000000001, 3.5, 'Infinity', 1.5, false, 'new', '\\x', '0001-01-01 BC',
         'infinity', '-infinity', '-1 days', '00000000-0000-0000-0000-000000000000', 'null', '{}', '::1', 'short');
       UPDATE ${table} SET c_int = 42, c_text = 'updated' WHERE id = 1;
       UPDATE ${table} SET id = 20 WHERE id = 2;
       DELETE FROM ${table} WHERE id = 3;`,
    );
    const equal = async () => (await dump(pg, 'postgres', table)) === (await dump(pg, lake, table));
    await waitUntil(equal, 30000, 'source and target to hold the same rows', async () =>
      `\nsource:\n${(await dump(pg, 'postgres', table)).slice(0, 1500)}\ntarget:\n${(await dump(pg, lake, table)).slice(0, 1500)}`);
    const big = await run('psql', ['-X', '-A', '-t', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', lake, '-c',
      `SELECT length(c_toast) FROM ${table} WHERE id = 1`], { env: { ...serverEnv(null), PGPASSWORD: pg.password } });
    assert.equal(big.stdout.trim(), '1048576', 'the unchanged TOASTed value is kept in the target');

    await psql(pg, `TRUNCATE ${table};`);
    await waitUntil(async () => (await dump(pg, lake, table)).trim() === '', 30000, 'the target table to be emptied by TRUNCATE');
    const { stream: st } = await srv.callOk('stream_status', { name: stream });
    assert.ok(st.changes >= 5, `changes counted: ${JSON.stringify(st)}`);
  });
});
