// The official MCP conformance suite (@modelcontextprotocol/conformance, run
// with Node 22):
//  1. every active server scenario of spec 2025-11-25 against the fixture
//     server $DATAVOR_CONFORMANCE_BIN (the datavor MCP core with the suite's
//     test_* tools, resources and prompts), and
//  2. the scenarios that need no fixtures against the product, `datavor serve --http`.
//
// Run: node --test tests/node/conformance.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BIN, CONFORMANCE_BIN, HERE, node22, requireExecutable, run, serverEnv, startHttpServer, tempDir, tempHome } from './lib.mjs';

const CLI = path.join(HERE, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const SPEC = '2025-11-25';

// Scenarios the product binary must pass without conformance fixtures.
const PRODUCT_SCENARIOS = [
  'server-initialize',
  'ping',
  'logging-set-level',
  'tools-list',
  'resources-list',
  'prompts-list',
  'resources-subscribe',
  'resources-unsubscribe',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
];

async function conformance(args, outDir) {
  const env = serverEnv(undefined, { NO_COLOR: '1', FORCE_COLOR: '0' });
  const full = ['server', ...args, '-o', outDir];
  const r = await run(node22(), [CLI, ...full], { env, cwd: outDir, timeoutMs: 600000 });
  r.describe = `\n--- conformance ${full.join(' ')}\n--- exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout:\n${r.stdout.slice(-6000)}\n--- stderr:\n${r.stderr.slice(-3000)}`;
  return r;
}

// The failed/warning checks recorded in -o DIR/server-<scenario>-<ts>/checks.json.
function problemChecks(outDir, scenarios) {
  const lines = [];
  if (!fs.existsSync(outDir)) return lines;
  for (const d of fs.readdirSync(outDir)) {
    const scenario = scenarios.find((sc) => d.startsWith(`server-${sc}-`) && /^\d{4}-\d\d-\d\dT/.test(d.slice(`server-${sc}-`.length)));
    if (!scenario) continue;
    const f = path.join(outDir, d, 'checks.json');
    if (!fs.existsSync(f)) continue;
    for (const c of JSON.parse(fs.readFileSync(f, 'utf8'))) {
      if (c.status === 'FAILURE' || c.status === 'WARNING') {
        lines.push(`${scenario}: ${c.status} ${c.id}: ${c.description}${c.errorMessage ? ` -- ${c.errorMessage}` : ''}`);
      }
    }
  }
  return lines;
}

// "✓ name: 1 passed, 0 failed" lines of the suite summary.
function summaryLines(stdout) {
  const per = new Map();
  for (const m of stdout.matchAll(/^[✓✗]\s+(\S+):\s+(\d+) passed, (\d+) failed/gmu)) {
    per.set(m[1], { passed: Number(m[2]), failed: Number(m[3]) });
  }
  return per;
}

describe('MCP conformance suite', () => {
  before(() => {
    assert.ok(fs.existsSync(CLI), `${CLI} missing; run "npm ci" in ${HERE}`);
    node22();
  });

  describe(`fixture server: all active ${SPEC} scenarios`, () => {
    const s = {};
    before(async () => {
      requireExecutable(CONFORMANCE_BIN, 'Build the datavor-conformance-server target first.');
      s.tmp = tempHome('datavor-conformance-');
      s.out = tempDir('datavor-conformance-out-');
      s.server = await startHttpServer({ bin: CONFORMANCE_BIN, home: s.tmp.home, userHome: s.tmp.userHome, useHttpArg: false });
    });
    after(async () => {
      if (s.server) await s.server.stop();
      s.tmp?.remove();
      s.out?.remove();
    });

    it('Total: N passed, 0 failed', async () => {
      const r = await conformance(['--url', s.server.url, '--spec-version', SPEC], s.out.dir);
      const per = summaryLines(r.stdout);
      const failedScenarios = [...per].filter(([, v]) => v.failed > 0).map(([k]) => k);
      const details = problemChecks(s.out.dir, [...per.keys()]);
      const info = `${details.length ? `\n--- failed/warning checks:\n${details.join('\n')}` : ''}${r.describe}${s.server.describe()}`;
      const total = r.stdout.match(/^Total: (\d+) passed, (\d+) failed/m);
      assert.ok(total, `no "Total:" line in the conformance output${info}`);
      assert.deepEqual(failedScenarios, [], `failed scenarios: ${failedScenarios.join(', ')}${info}`);
      assert.equal(Number(total[2]), 0, `Total: ${total[1]} passed, ${total[2]} failed${info}`);
      assert.ok(Number(total[1]) > 0, `nothing passed${info}`);
      assert.equal(r.code, 0, `conformance exited ${r.code}${info}`);
      // Every active scenario ran and produced at least one passing check (a
      // "0 passed, 0 failed" line means a scenario only warned).
      const listed = await run(node22(), [CLI, 'list', '--server', '--spec-version', SPEC], { env: serverEnv() });
      const zero = [...per].filter(([, v]) => v.passed === 0).map(([k]) => k);
      assert.deepEqual(zero, [], `scenarios with no passing check: ${zero.join(', ')}${info}`);
      assert.ok(per.size >= 20, `only ${per.size} scenarios ran:\n${listed.stdout}${info}`);
    });
  });

  describe('product binary (datavor serve --http): fixture-free scenarios', () => {
    const s = {};
    before(async () => {
      requireExecutable(BIN);
      s.tmp = tempHome('datavor-conformance-product-');
      s.out = tempDir('datavor-conformance-product-out-');
      s.server = await startHttpServer({ home: s.tmp.home, userHome: s.tmp.userHome });
    });
    after(async () => {
      if (s.server) await s.server.stop();
      s.tmp?.remove();
      s.out?.remove();
    });

    for (const scenario of PRODUCT_SCENARIOS) {
      it(scenario, async () => {
        const r = await conformance(['--url', s.server.url, '--scenario', scenario], s.out.dir);
        const m = r.stdout.match(/^Passed: (\d+)\/(\d+), (\d+) failed, (\d+) warnings/m);
        const details = problemChecks(s.out.dir, [scenario]);
        const info = `${details.length ? `\n--- failed/warning checks:\n${details.join('\n')}` : ''}${r.describe}${s.server.describe()}`;
        assert.ok(m, `no "Passed: x/y, n failed" line in the output${info}`);
        assert.equal(Number(m[3]), 0, `${scenario}: ${m[3]} failed${info}`);
        assert.ok(Number(m[1]) > 0, `${scenario}: no check passed${info}`);
        assert.equal(r.code, 0, `conformance exited ${r.code}${info}`);
      });
    }
  });
});
