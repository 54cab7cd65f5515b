/**
 * Hostile load: what each attack of the "hold under hostile load" list does to a real
 * server process (`src/main.ts`, memory store, 127.0.0.1), measured as the peak RSS of
 * the server and the p99 latency of a normal query (`{ me { id } boards { id } }`, one
 * at a time, every 50 ms, 10 s timeout) while the attack runs, plus what the attack got.
 *
 *   npm run bench:abuse                      # this checkout only
 *   npm run bench:abuse -- --before <ref>    # also a checkout of <ref> (a git worktree in
 *                                            # a temporary folder), side by side
 *   npm run bench:abuse -- --only sigterm,graphiql     # some attacks only
 *   (BENCH_GRAPHIQL_LOADS=300)
 *
 * Each attack gets a fresh server process. Attacks:
 * - graphiql: BENCH_GRAPHIQL_LOADS concurrent GraphiQL page loads (the HTML and every
 *   script and stylesheet it links, `accept-encoding: br, gzip`, as a browser without a
 *   cache would), read to the end;
 * - deep-json: three 20 MB bodies of nested arrays, one after another;
 * - bad-json: a 10 MB malformed body (outcome: bytes of the answer);
 * - slowloris: 200 sockets sending their request headers one byte a second for 15 s
 *   (outcome: sockets the server still held open at the end);
 * - sigterm: 100 `addCard` into one column, SIGTERM once every request is on the wire
 *   (outcome: cards added, requests answered with an error (the column's contention can
 *   exhaust a command's retries), connection errors, and the exit code; the probe's p99
 *   is meaningless here: the server is meant to go away);
 * - the live path's attacks: see abuseLive.ts;
 * - takeover: `registerUser` replayed with the first caller's idempotency key but
 *   another letter case and display name (outcome: whether it got the first token).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  REPO_ROOT,
  startServerProcess,
  type ServerProcess,
} from '../../test/support/serverProcess.js';
import { exchange, postGraphQL } from '../../test/support/rawHttp.js';
import { liveAttacks } from './abuseLive.js';
import { percentile, printTable } from './report.js';

const GRAPHIQL_LOADS = Number(process.env.BENCH_GRAPHIQL_LOADS ?? 300);
const PROBE_EVERY_MS = 50;
const PROBE_TIMEOUT_MS = 10_000;
const MiB = 1024 * 1024;

interface Measurement {
  peakRssMiB: number;
  p99Ms: number;
  probes: number;
  failedProbes: number;
  outcome: string;
}

const gql = (url: string, query: string, variables: Record<string, unknown> = {}, token?: string) =>
  postGraphQL(url, query, variables, token);

/** Runs `attack` against a fresh server while probing it and sampling its RSS. */
async function measure(
  cwd: string,
  attack: (server: ServerProcess) => Promise<string>,
): Promise<Measurement> {
  const server = await startServerProcess({ cwd, env: { LOG_LEVEL: 'error' } });
  let peak = server.rss();
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, server.rss());
      await sleep(20);
    }
  })();
  const latencies: number[] = [];
  let failed = 0;
  const prober = (async () => {
    while (running) {
      const started = performance.now();
      try {
        await Promise.race([
          gql(server.url, '{ me { id } boards { id } }'),
          sleep(PROBE_TIMEOUT_MS).then(() => Promise.reject(new Error('timeout'))),
        ]);
        latencies.push(performance.now() - started);
      } catch {
        failed += 1;
        latencies.push(PROBE_TIMEOUT_MS);
        if (server.rss() === 0) break;
      }
      await sleep(PROBE_EVERY_MS);
    }
  })();
  let outcome: string;
  try {
    outcome = await attack(server);
  } catch (error) {
    outcome = `attack failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  running = false;
  await Promise.all([sampler, prober]);
  if (server.rss() === 0 && !outcome.includes('exit')) {
    outcome += `; server died (${String(await server.exited)})`;
  }
  await server.kill();
  latencies.sort((a, b) => a - b);
  return {
    peakRssMiB: peak / MiB,
    p99Ms: percentile(latencies, 0.99),
    probes: latencies.length,
    failedProbes: failed,
    outcome,
  };
}

const graphiqlFlood = async (server: ServerProcess): Promise<string> => {
  let ok = 0;
  let bytes = 0;
  let errors = 0;
  const headers = { accept: 'text/html', 'accept-encoding': 'br, gzip' };
  await Promise.all(
    Array.from({ length: GRAPHIQL_LOADS }, async () => {
      try {
        // The page as a browser gets it (uncompressed, to read its links), then its assets.
        const page = await exchange(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
        bytes += page.bytes;
        const html = page.body.toString('utf8');
        const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+\.(?:js|css))"/g)].map(
          (m) => m[1]!,
        );
        for (const asset of assets) {
          const got = await exchange(`${server.url}${asset}`, { headers });
          bytes += got.bytes;
        }
        if (page.status === 200) ok += 1;
      } catch {
        errors += 1;
      }
    }),
  );
  return `${ok}/${GRAPHIQL_LOADS} pages, ${(bytes / MiB).toFixed(0)} MiB sent, ${errors} errors`;
};

const deepJson = async (server: ServerProcess): Promise<string> => {
  const depth = 10 * MiB;
  const body = `{"query":"{ __typename }","variables":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
  const statuses: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    try {
      statuses.push(
        (
          await exchange(`${server.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          })
        ).status,
      );
    } catch {
      statuses.push(0); // the connection closed while the body was still being sent
    }
  }
  return `statuses ${statuses.map((s) => (s === 0 ? 'closed' : String(s))).join(',')}`;
};

const badJson = async (server: ServerProcess): Promise<string> => {
  const body = `{"query": ${'x'.repeat(10 * MiB)}`;
  const answer = await exchange(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return `status ${answer.status}, answer ${answer.bytes} bytes`;
};

const slowloris = async (server: ServerProcess): Promise<string> => {
  const { port } = new URL(server.url);
  const sockets = Array.from({ length: 200 }, () => {
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    return socket;
  });
  const header = 'POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n';
  for (let second = 0; second < 15; second += 1) {
    for (const s of sockets) if (!s.destroyed && s.writable) s.write(header[second] ?? 'x');
    await sleep(1_000);
  }
  const open = sockets.filter((s) => !s.destroyed && !s.readableEnded).length;
  for (const s of sockets) s.destroy();
  return `${open}/200 sockets still open after 15 s`;
};

async function registerAndBoard(url: string) {
  const reg = await gql(
    url,
    `mutation ($input: RegisterUserInput!) { registerUser(input: $input) { ... on RegisterUserSuccess { token } } }`,
    { input: { username: `bench${Date.now()}`, displayName: 'Bench' } },
  );
  const token = JSON.parse(reg.body.toString()).data.registerUser.token as string;
  const board = await gql(
    url,
    `mutation { createBoard(input: { name: "b" }) { ... on CreateBoardSuccess { board { id } } } }`,
    {},
    token,
  );
  const boardId = JSON.parse(board.body.toString()).data.createBoard.board.id as string;
  const column = await gql(
    url,
    `mutation ($b: ID!) { addColumn(input: { boardId: $b, name: "c", expectedVersion: 1 }) { ... on AddColumnSuccess { column { id } } } }`,
    { b: boardId },
    token,
  );
  const columnId = JSON.parse(column.body.toString()).data.addColumn.column.id as string;
  return { token, columnId };
}

const sigterm = async (server: ServerProcess): Promise<string> => {
  const { token, columnId } = await registerAndBoard(server.url);
  let sent = 0;
  let allSent: () => void = () => undefined;
  const everyRequestSent = new Promise<void>((resolve) => (allSent = resolve));
  const results = Array.from({ length: 100 }, (_, i) =>
    exchange(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: `mutation ($c: ID!, $t: String!) { addCard(input: { columnId: $c, title: $t }) { __typename } }`,
        variables: { c: columnId, t: `card ${i}` },
      }),
      onSent: () => {
        sent += 1;
        if (sent === 100) allSent();
      },
    }).then(
      (r) =>
        r.body.toString().includes('AddCardSuccess')
          ? 'ok'
          : r.status === 200
            ? 'answered with an error'
            : `status ${r.status}`,
      () => 'connection error',
    ),
  );
  // Every request is on the wire (in flight) before the signal.
  await everyRequestSent;
  server.child.kill('SIGTERM');
  const settled = await Promise.all(results);
  const code = await Promise.race([server.exited, sleep(15_000).then(() => 'still running')]);
  const ok = settled.filter((s) => s === 'ok').length;
  const dropped = settled.filter((s) => s === 'connection error').length;
  const failed = settled.filter((s) => s === 'answered with an error').length;
  return `${ok}/100 added, ${failed} answered with an error, ${dropped} connection errors, exit ${String(code)}`;
};

const takeover = async (server: ServerProcess): Promise<string> => {
  const register = (username: string, displayName: string) =>
    gql(
      server.url,
      `mutation ($input: RegisterUserInput!) { registerUser(input: $input) { __typename ... on RegisterUserSuccess { token } ... on Error { code } } }`,
      { input: { username, displayName, idempotencyKey: 'key-1' } },
    ).then((r) => JSON.parse(r.body.toString()).data.registerUser);
  const first = await register('alice', 'Alice');
  const second = await register('ALICE', 'Mallory');
  return second.token === first.token
    ? 'second caller got the first token'
    : `second caller got ${second.__typename}${second.code ? ` ${second.code}` : ''}`;
};

const allAttacks: [string, (server: ServerProcess) => Promise<string>][] = [
  ['idle', async () => (await sleep(3_000), 'no attack')],
  [`graphiql x${GRAPHIQL_LOADS}`, graphiqlFlood],
  ['deep-json 20MB x3', deepJson],
  ['bad-json 10MB', badJson],
  ['slowloris 200', slowloris],
  ['sigterm 100 addCard', sigterm],
  ['idempotency takeover', takeover],
  ...liveAttacks,
];

/** `--only name,name` runs the attacks whose names start with one of those. */
const only = process.argv.includes('--only')
  ? process.argv[process.argv.indexOf('--only') + 1]!.split(',')
  : undefined;
const attacks = allAttacks.filter(([name]) => !only || only.some((o) => name.startsWith(o)));

/** A checkout of `ref` in a temporary git worktree sharing this one's node_modules. */
function checkout(ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'corkboard-before-'));
  execFileSync('git', ['worktree', 'add', '--detach', dir, ref], {
    cwd: REPO_ROOT,
    stdio: 'ignore',
  });
  if (!existsSync(join(dir, 'node_modules'))) {
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  }
  return dir;
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--before');
  const beforeRef = at >= 0 ? process.argv[at + 1] : undefined;
  const beforeDir = beforeRef ? checkout(beforeRef) : undefined;
  const fmt = (m: Measurement) => [
    m.peakRssMiB.toFixed(0),
    `${m.p99Ms.toFixed(0)}${m.failedProbes ? ` (${m.failedProbes} failed)` : ''}`,
    m.outcome,
  ];
  const rows: string[][] = [];
  try {
    for (const [name, attack] of attacks) {
      const before = beforeDir ? await measure(beforeDir, attack) : undefined;
      const after = await measure(REPO_ROOT, attack);
      rows.push([name, ...(before ? fmt(before) : []), ...fmt(after)]);
      console.error(`done: ${name}`);
    }
  } finally {
    if (beforeDir) {
      execFileSync('git', ['worktree', 'remove', '--force', beforeDir], { cwd: REPO_ROOT });
    }
  }
  const side = (label: string) => [
    `${label} peak RSS MiB`,
    `${label} query p99 ms`,
    `${label} outcome`,
  ];
  console.log(
    `\nHostile load, memory store, loopback; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end (a shared, noisy 2-core machine)\n`,
  );
  printTable(
    [
      'attack',
      ...(beforeDir ? side(`before (${beforeRef})`) : []),
      ...side(beforeDir ? 'after' : 'this'),
    ],
    rows,
    1,
  );
}

await main();
