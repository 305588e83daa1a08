// The end-to-end harness: builds what is missing (the host binary, the
// client bundle), starts the real host serving lib/demo on a free port
// with a fresh data dir, launches Debian's headless Chromium, and gives
// each test a page that records the browser's console and errors, so a
// failure says what the browser and the server said.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.ROSE_ASH_BIN || path.join(ROOT, 'target/debug/rose-ash');
const CHROMIUM = process.env.SX_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'tests/e2e/artifacts');

function run(cmd, args, cwd) {
  console.error(`e2e: ${cmd} ${args.join(' ')} (in ${path.relative(ROOT, cwd) || '.'})`);
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`e2e setup: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status})`);
}

/** The newest modification time of the files under `dir` (0 if none). */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) t = Math.max(t, statSync(path.join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return t;
}

/** Builds only what is missing: the host binary and the client bundle. */
export function buildIfMissing() {
  if (!existsSync(BIN)) run('cargo', ['build', '-p', 'rose-ash'], ROOT);
  const client = path.join(ROOT, 'client');
  if (!existsSync(path.join(client, 'dist/sx.js'))) {
    if (!existsSync(path.join(client, 'node_modules'))) run('npm', ['ci'], client);
    run('npm', ['run', 'build'], client);
  }
  // Present but older than its sources: say so (the run still uses it).
  const bundle = path.join(client, 'dist/sx.js');
  if (statSync(bundle).mtimeMs < newest(path.join(client, 'src'))) {
    console.error('e2e: warning: client/dist/sx.js is older than client/src (run `npm run build` in client/)');
  }
  if (!process.env.ROSE_ASH_BIN && statSync(BIN).mtimeMs < newest(path.join(ROOT, 'crates'))) {
    console.error('e2e: warning: target/debug/rose-ash is older than crates/ (run `cargo build -p rose-ash`)');
  }
  if (!existsSync(CHROMIUM)) {
    throw new Error(`e2e setup: ${CHROMIUM} is missing (apt-get install -y chromium, or set SX_CHROMIUM)`);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** The host serving lib/demo, as a child process. */
export async function startHost() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  return spawnHost(['--addr', `127.0.0.1:${port}`, '--app', 'demo'], [`${base}/demo`], { base });
}

/**
 * The cooperative as `rose-ash serve` starts it with no flags: the front
 * door (`base`) and the identity provider (`idp`), on free ports.
 */
export async function startCooperative() {
  const ports = {};
  for (const name of ['site', 'id', 'blog', 'events', 'shop']) ports[name] = await freePort();
  const url = name => `http://127.0.0.1:${ports[name]}`;
  return spawnHost(['--addr', `127.0.0.1:${ports.site}`, '--idp-addr', `127.0.0.1:${ports.id}`,
    '--blog-addr', `127.0.0.1:${ports.blog}`, '--events-addr', `127.0.0.1:${ports.events}`,
    '--shop-addr', `127.0.0.1:${ports.shop}`],
  [`${url('id')}/`, `${url('site')}/`], { base: url('site'), idp: url('id') });
}

/**
 * The cooperative as an operator runs it across machines: one process per
 * peer (`rose-ash serve --domain NAME --peer ...`), each with its own data
 * dir and port, the apps registered with the identity provider by
 * `rose-ash idp add-client`. `stop(name)` and `start(name)` take one peer
 * down and bring it back on the same port and data.
 */
export async function startPeers(names = ['blog', 'events', 'shop']) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'rose-ash-peers-'));
  const ports = { id: await freePort() };
  for (const name of names) ports[name] = await freePort();
  const url = name => `http://127.0.0.1:${ports[name]}`;
  const idp = url('id');
  const secrets = {};
  for (const name of names) {
    const r = spawnSync(BIN, ['idp', 'add-client', '--data-dir', path.join(root, 'id'),
      '--issuer', idp, '--id', name, '--name', `Rose Ash ${name}`, '--first-party',
      '--redirect-uri', `${url(name)}/auth/callback`,
      '--post-logout-redirect-uri', `${url(name)}/`,
      '--backchannel-logout-uri', `${url(name)}/auth/backchannel-logout`], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`idp add-client ${name} failed:\n${r.stderr}`);
    const m = /client_secret=(\S+)/.exec(r.stdout);
    if (!m) throw new Error(`idp add-client ${name} printed no secret:\n${r.stdout}`);
    secrets[name] = m[1];
  }
  const argsOf = name => {
    const args = ['--domain', name, '--addr', `127.0.0.1:${ports[name]}`];
    if (name === 'id') return args;
    for (const other of names) if (other !== name) args.push('--peer', `${other}=${url(other)}`);
    return [...args, '--issuer', idp, '--client-secret', secrets[name]];
  };
  const procs = {};
  const log = [];
  const start = async name => {
    procs[name] = await spawnHost(argsOf(name), [`${url(name)}/`], {},
      { dataDir: path.join(root, name), keepData: true, log, label: name });
  };
  await start('id');
  await Promise.all(names.map(start));
  return {
    idp, ...Object.fromEntries(names.map(n => [n, url(n)])),
    base: url(names[0]),
    log,
    tail: (n = 40) => log.slice(-n).join('\n'),
    start,
    async stop(name) { await procs[name]?.stop(); delete procs[name]; },
    async stopAll() {
      await Promise.all(Object.keys(procs).map(n => procs[n].stop()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * A `rose-ash serve` child process. `log` keeps its output for failure
 * reports. With `keepData`, stopping leaves `dataDir` for a restart.
 */
async function spawnHost(serveArgs, readyUrls, urls, { dataDir: dir, keepData = false, log = [], label = '' } = {}) {
  const dataDir = dir || mkdtempSync(path.join(os.tmpdir(), 'rose-ash-e2e-'));
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(BIN, ['serve', ...serveArgs,
    '--data-dir', dataDir, '--workers', '2', '--log-level', 'warn'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  const keep = chunk => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) log.push(label ? `[${label}] ${line}` : line);
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  // Never leave the server running, even if the test run is interrupted.
  const reap = () => {
    if (!exited) child.kill('SIGKILL');
    if (!keepData) rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', reap);
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { reap(); process.exit(130); });

  const deadline = Date.now() + 30_000;
  for (const url of readyUrls) {
    for (;;) {
      if (exited) throw new Error(`the host exited while starting (${JSON.stringify(exited)}):\n${log.join('\n')}`);
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (r.status === 200) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the host did not answer ${url} within 30 s:\n${log.join('\n')}`);
      }
      await new Promise(r => setTimeout(r, 100));
    }
  }
  return {
    ...urls,
    log,
    tail: (n = 30) => log.slice(-n).join('\n'),
    async stop() {
      if (!exited) {
        const gone = new Promise(r => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(t);
      }
      process.removeListener('exit', reap);
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
}

/**
 * Runs `fn(page, ctx)` in a fresh browser context. Console errors,
 * uncaught page errors and hydration mismatches (an island whose server
 * HTML did not match, re-rendered on the client) fail the test; on any failure the error is
 * extended with the page's URL, what the browser logged, the server log's
 * tail, and a screenshot path.
 */
export async function withPage(env, name, fn, { allowConsoleErrors = false, allowRerender = false, viewport } = {}) {
  const context = await env.browser.newContext({ viewport: viewport || { width: 1000, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(5000);
  const consoleLines = [];
  const problems = [];
  page.on('console', m => {
    const line = `[console.${m.type()}] ${m.text()}`;
    consoleLines.push(line);
    if (m.type() === 'error' && !allowConsoleErrors && !/Failed to load resource/.test(m.text())) problems.push(line);
    // The runtime warns when an island's server HTML does not match its first render.
    if (m.type() === 'warning' && /rendering it on the client|mismatch/i.test(m.text()) && !allowRerender) problems.push(line);
  });
  page.on('pageerror', e => { consoleLines.push(`[pageerror] ${e.message}`); problems.push(`[pageerror] ${e.message}`); });
  // Which URL failed (Chromium's "Failed to load resource" does not say).
  page.on('response', r => { if (r.status() >= 400) consoleLines.push(`[http ${r.status()}] ${r.request().method()} ${r.url()}`); });
  const requests = [];
  page.on('request', r => requests.push({ method: r.method(), url: r.url(), headers: r.headers() }));
  try {
    await fn(page, { requests, consoleLines, base: env.host.base });
    if (problems.length) throw new Error(`the browser reported problems:\n${problems.join('\n')}`);
    if (process.env.E2E_VERBOSE) console.error(`--- ${name}: browser console\n${consoleLines.join('\n')}`);
  } catch (e) {
    let shot = '';
    try {
      mkdirSync(ARTIFACTS, { recursive: true });
      shot = path.join(ARTIFACTS, `${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
      await page.screenshot({ path: shot, fullPage: true });
    } catch { shot = '(no screenshot)'; }
    const url = (() => { try { return page.url(); } catch { return '?'; } })();
    const frames = String(e.stack || '').split('\n').filter(l => /^\s+at /.test(l)).join('\n');
    e.message = `${e.message}\n\n--- page: ${url}\n--- screenshot: ${shot}\n--- browser console:\n${consoleLines.join('\n') || '(nothing)'}\n--- server log (tail):\n${env.host.tail() || '(nothing)'}\n---`;
    e.stack = `${e.name}: ${e.message}\n${frames}`;
    throw e;
  } finally {
    await context.close();
  }
}

/** Polls `fn` in the page until it returns a truthy value; names what it waited for on timeout. */
export async function until(page, what, fn, arg, timeout = 5000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 25 });
  } catch (e) {
    throw new Error(`timed out after ${timeout} ms waiting for: ${what}`);
  }
}

/** The visible text of the first element matching `sel` (trimmed, spaces collapsed). */
export async function text(page, sel) {
  const t = await page.locator(sel).first().textContent();
  return (t || '').replace(/\s+/g, ' ').trim();
}
