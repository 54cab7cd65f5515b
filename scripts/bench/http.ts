/**
 * Read throughput over HTTP: Corkboard's production build against a bare graphql-yoga
 * serving the same answers from plain objects, side by side, in interleaved rounds.
 *
 *   npm run bench:http
 *   (BENCH_CONNECTIONS=20, BENCH_SECONDS=5, BENCH_ROUNDS=5, BENCH_NEIGHBOUR_CARDS=20000,
 *   BENCH_SKIP_BUILD=1 to reuse dist/, BENCH_SERVER_ENV="NAME=value NAME2=value2",
 *   BENCH_PROFILE=<dir>: CPU profiles of ours, written to <dir> when they stop,
 *   BENCH_QUERIES=board,me,page: the queries measured, e.g. `board` alone to profile it)
 *
 * `npm run build`, then three server processes on 127.0.0.1:
 * - ours: `node dist/main.js` on the memory store, seeded through its own API with a
 *   board of 5 columns x 40 cards (the board query) and a column of 600 cards (the page
 *   of 500);
 * - ours, big neighbour: the same, plus 20,000 cards on another user's board;
 * - bare: `bareServer.ts`, a bare graphql-yoga on Corkboard's SDL answering from plain
 *   objects, with the `data` ours answered (checked equal before measuring).
 * BENCH_SERVER_ENV (space-separated NAME=value pairs) is added to the environment of
 * both of ours and not to the bare one: e.g. run the bench once with a feature off and
 * once with it on, and compare the two `ours/bare` lines.
 *
 * Queries: the SDK's `Board` query (columns, 40 cards each, their assignees), `me` with
 * `boards`, and one page of 500 cards of a column (`node(id:) { ... on Column { cards } }`).
 * Load: autocannon, BENCH_CONNECTIONS keep-alive connections, BENCH_SECONDS per cell.
 * One warm-up cell per server and query (not counted), then BENCH_ROUNDS rounds: each
 * round runs every (query, server) cell once, in an order that rotates from round to
 * round, so load from elsewhere on the machine hits every server alike. Medians of the
 * rounds are printed, and:
 *   board query ours/bare: X                               (req/s, medians)
 *   board query with a big neighbour / without: Y          (req/s, medians; both ours)
 * and, per cell, the CPU time the server process spent per answered request (user +
 * system, from /proc), with `CPU per request bare/ours` lines: on a shared, loaded
 * machine req/s depends on how much CPU each server was given, CPU per request much less.
 * The machine is shared: compare numbers of the same run only. The load average is
 * printed before and after.
 */
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import {
  REPO_ROOT,
  startServerProcess,
  type ServerProcess,
} from '../../test/support/serverProcess.js';
import { NO_CLIENT_LIMITS } from '../../test/support/server.js';
import type { BareFixtures } from './bareServer.js';
import { median, printTable } from './report.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const NEIGHBOUR_CARDS = Number(process.env.BENCH_NEIGHBOUR_CARDS ?? 20_000);
const PROFILE_DIR = process.env.BENCH_PROFILE;
const SERVER_ENV = Object.fromEntries(
  (process.env.BENCH_SERVER_ENV ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf('=');
      if (at <= 0) throw new Error(`BENCH_SERVER_ENV: "${pair}" is not NAME=value`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
);

const BOARD_COLUMNS = 5;
const CARDS_PER_COLUMN = 40;
const PAGE = 500;
/** The page query's column holds more than a page, so `hasNextPage` is true. */
const PAGE_COLUMN_CARDS = 600;
const NEIGHBOUR_COLUMNS = 20;
/** How long a server process may take to answer /health after it starts. */
const SERVER_READY_MS = 180_000;
/** addCard requests in flight while seeding (each on its own column). */
const SEED_WRITERS = 10;

/** The SDK's operations, so the board query is the one a client runs. */
const sdl = (file: string) => readFileSync(resolve(REPO_ROOT, 'src/sdk/operations', file), 'utf8');
const FRAGMENTS = sdl('fragments.graphql');
const withFragments = (operation: string) => {
  const used = new Set<string>();
  // Every fragment the operation needs, transitively.
  const needs = (text: string) => {
    for (const [, name] of text.matchAll(/\.\.\.(\w+)/g)) {
      if (used.has(name!)) continue;
      const body = new RegExp(`fragment ${name} on [\\s\\S]*?\\n}`).exec(FRAGMENTS)?.[0];
      if (!body) continue;
      used.add(name!);
      needs(body);
    }
  };
  needs(operation);
  return [
    operation,
    ...[...used].map((n) => new RegExp(`fragment ${n} on [\\s\\S]*?\\n}`).exec(FRAGMENTS)![0]),
  ].join('\n');
};
const BOARD_QUERY = withFragments(/query Board\([\s\S]*?\n}/.exec(sdl('boards.graphql'))![0]);
const ME_QUERY = withFragments(`query MeAndBoards {
  me {
    ...UserFields
  }
  boards {
    ...BoardFields
  }
}`);
const PAGE_QUERY = withFragments(`query CardPage($id: ID!, $first: Int!) {
  node(id: $id) {
    __typename
    id
    ... on Column {
      cards(first: $first) {
        edges {
          cursor
          node {
            ...CardFields
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
}`);

interface Call {
  query: string;
  variables?: Record<string, unknown>;
  token?: string;
}

async function post(url: string, call: Call): Promise<any> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(call.token ? { authorization: `Bearer ${call.token}` } : {}),
    },
    body: JSON.stringify({ query: call.query, variables: call.variables ?? {} }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown };
  if (!response.ok || body.errors) throw new Error(`${response.status} ${JSON.stringify(body)}`);
  return body.data;
}

/** One mutation whose result must be its success member. */
async function mutate(url: string, token: string | undefined, name: string, input: object) {
  const inputType = `${name[0]!.toUpperCase()}${name.slice(1)}Input`;
  const selections: Record<string, string> = {
    registerUser: '... on RegisterUserSuccess { token user { id } }',
    createBoard: '... on CreateBoardSuccess { board { id version } }',
    addColumn: '... on AddColumnSuccess { board { version } column { id } }',
    addCard: '... on AddCardSuccess { card { id } }',
  };
  const data = await post(url, {
    query: `mutation ($input: ${inputType}!) { r: ${name}(input: $input) { __typename ... on Error { message } ${selections[name]} } }`,
    variables: { input },
    token,
  });
  if (!String(data.r.__typename).endsWith('Success')) {
    throw new Error(`${name}: ${JSON.stringify(data.r)}`);
  }
  return data.r;
}

interface Seeded {
  token: string;
  boardId: string;
  pageColumnId: string;
}

/** A board with `columns` columns and `cardsPerColumn` cards in each; returns the column ids. */
async function seedBoard(
  url: string,
  token: string,
  name: string,
  columns: number,
  cardsPerColumn: number,
) {
  let { board } = await mutate(url, token, 'createBoard', { name });
  const columnIds: string[] = [];
  for (let c = 0; c < columns; c += 1) {
    const added = await mutate(url, token, 'addColumn', {
      boardId: board.id,
      expectedVersion: board.version,
      name: `Column ${c + 1}`,
    });
    board = { id: board.id, version: added.board.version };
    columnIds.push(added.column.id);
  }
  // SEED_WRITERS columns at a time, each column's cards one after the other (in order).
  const queue = [...columnIds];
  await Promise.all(
    Array.from({ length: Math.min(SEED_WRITERS, columns) }, async () => {
      for (let columnId = queue.shift(); columnId; columnId = queue.shift()) {
        for (let i = 0; i < cardsPerColumn; i += 1) {
          await mutate(url, token, 'addCard', {
            columnId,
            title: `Card ${i + 1} of ${name}`,
          });
        }
      }
    }),
  );
  return { boardId: board.id as string, columnIds };
}

async function seed(url: string): Promise<Seeded> {
  const { token } = await mutate(url, undefined, 'registerUser', {
    username: 'reader',
    displayName: 'Reader',
  });
  const { boardId } = await seedBoard(url, token, 'Launch', BOARD_COLUMNS, CARDS_PER_COLUMN);
  const page = await seedBoard(url, token, 'Backlog', 1, PAGE_COLUMN_CARDS);
  return { token, boardId, pageColumnId: page.columnIds[0]! };
}

/** 20,000 cards (by default) on a board of another user. */
async function seedNeighbour(url: string): Promise<void> {
  const { token } = await mutate(url, undefined, 'registerUser', {
    username: 'neighbour',
    displayName: 'Neighbour',
  });
  await seedBoard(
    url,
    token,
    'Big',
    NEIGHBOUR_COLUMNS,
    Math.ceil(NEIGHBOUR_CARDS / NEIGHBOUR_COLUMNS),
  );
}

type QueryName = 'board' | 'me' | 'page';
const ALL_QUERIES: readonly QueryName[] = ['board', 'me', 'page'];
const QUERY_NAMES: readonly QueryName[] = (() => {
  const asked = process.env.BENCH_QUERIES?.split(',').filter(Boolean) ?? ALL_QUERIES;
  const unknown = asked.filter((name) => !ALL_QUERIES.includes(name as QueryName));
  if (unknown.length > 0) throw new Error(`BENCH_QUERIES: unknown ${unknown.join(', ')}`);
  return ALL_QUERIES.filter((name) => asked.includes(name));
})();

const callOf = (name: QueryName, seeded: Seeded): Call => {
  switch (name) {
    case 'board':
      return {
        query: BOARD_QUERY,
        variables: { id: seeded.boardId, cardsPerColumn: CARDS_PER_COLUMN },
        token: seeded.token,
      };
    case 'me':
      return { query: ME_QUERY, token: seeded.token };
    case 'page':
      return {
        query: PAGE_QUERY,
        variables: { id: seeded.pageColumnId, first: PAGE },
        token: seeded.token,
      };
    default: {
      const unknown: never = name;
      throw new Error(`unknown query ${String(unknown)}`);
    }
  }
};

interface Target {
  label: string;
  url: string;
  pid: number;
  seeded: Seeded;
  queries: readonly QueryName[];
  /** What the server process wrote so far (shown when a cell fails). */
  output: () => string;
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  /** CPU time (user + system) the server spent per answered request, in ms; NaN without /proc. */
  cpuMs: number;
}

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux). */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time `pid` has used so far, in ms (user + system, from /proc); NaN when unknown. */
function cpuTimeMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

async function load(target: Target, name: QueryName, seconds: number): Promise<Sample> {
  const call = callOf(name, target.seeded);
  const cpuBefore = cpuTimeMs(target.pid);
  let firstError: Error | undefined;
  const instance = autocannon({
    url: `${target.url}/graphql`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: seconds,
    headers: {
      'content-type': 'application/json',
      ...(call.token ? { authorization: `Bearer ${call.token}` } : {}),
    },
    body: JSON.stringify({ query: call.query, variables: call.variables ?? {} }),
    // Without a callback, autocannon's tracker is both the event emitter and a promise.
  }) as unknown as autocannon.Instance & Promise<autocannon.Result>;
  const events: NodeJS.EventEmitter = instance;
  events.on('reqError', (error: Error) => {
    firstError ??= error;
  });
  const result = await instance;
  const failed = result.non2xx + result.errors + result.timeouts;
  if (failed > 0) {
    throw new Error(
      `${target.label} ${name}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts` +
        (firstError ? ` (first: ${String(firstError)})` : '') +
        `; the server's last output:\n${target.output().slice(-2000)}`,
    );
  }
  const cpuMs = (cpuTimeMs(target.pid) - cpuBefore) / result.requests.total;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuMs,
  };
}

const load1 = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

async function main() {
  console.log(
    `bench:http: ${cpus().length} cpus, load average ${load1()}; ${CONNECTIONS} connections, ` +
      `${SECONDS} s per cell, ${ROUNDS} rounds` +
      (Object.keys(SERVER_ENV).length ? `; ours with ${process.env.BENCH_SERVER_ENV}` : ''),
  );
  if (!process.env.BENCH_SKIP_BUILD) {
    execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }
  const servers: ServerProcess[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'bench-http-'));
  try {
    const startOurs = async () => {
      const server = await startServerProcess({
        command: [
          process.execPath,
          ...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${resolve(PROFILE_DIR)}`] : []),
          'dist/main.js',
        ],
        env: { ...NO_CLIENT_LIMITS, ...SERVER_ENV },
        // A machine shared with other work can take well over the default to start one.
        readyTimeoutMs: SERVER_READY_MS,
      });
      servers.push(server);
      return server;
    };
    const ours = await startOurs();
    const big = NEIGHBOUR_CARDS > 0 && QUERY_NAMES.includes('board') ? await startOurs() : null;
    let started = performance.now();
    const [seeded, seededBig] = await Promise.all([
      seed(ours.url),
      big ? seed(big.url) : Promise.resolve(null),
    ]);
    console.log(`seeded the boards in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    if (big) {
      started = performance.now();
      await seedNeighbour(big.url);
      console.log(
        `seeded ${NEIGHBOUR_CARDS} neighbour cards in ${((performance.now() - started) / 1000).toFixed(0)} s`,
      );
    }

    // The bare server answers what ours answered.
    const answers = Object.fromEntries(
      await Promise.all(
        ALL_QUERIES.map(async (name) => [name, await post(ours.url, callOf(name, seeded))]),
      ),
    ) as Record<QueryName, any>;
    const fixtures: BareFixtures = {
      board: answers.board.board,
      me: answers.me.me,
      boards: answers.me.boards,
      node: answers.page.node,
    };
    const fixturesFile = join(scratch, 'fixtures.json');
    writeFileSync(fixturesFile, JSON.stringify(fixtures));
    const bare = await startServerProcess({
      command: [process.execPath, '--import', 'tsx', 'scripts/bench/bareServer.ts'],
      env: { BARE_FIXTURES: fixturesFile },
      readyTimeoutMs: SERVER_READY_MS,
    });
    servers.push(bare);
    for (const name of ALL_QUERIES) {
      const got = await post(bare.url, callOf(name, seeded));
      if (!isDeepStrictEqual(got, answers[name])) {
        throw new Error(`the bare server's ${name} answer differs from ours`);
      }
    }
    const bytes = JSON.stringify({ data: answers.board }).length;
    console.log(
      `board query: ${BOARD_COLUMNS} columns x ${CARDS_PER_COLUMN} cards, ${(bytes / 1024).toFixed(0)} KB of JSON; ` +
        `page: ${PAGE} of ${PAGE_COLUMN_CARDS} cards; answers of ours and bare are equal`,
    );

    const targets: Target[] = [
      {
        label: 'ours',
        url: ours.url,
        pid: ours.pid,
        seeded,
        queries: QUERY_NAMES,
        output: () => ours.output(),
      },
      {
        label: 'bare',
        url: bare.url,
        pid: bare.pid,
        seeded,
        queries: QUERY_NAMES,
        output: () => bare.output(),
      },
      ...(big && seededBig
        ? [
            {
              label: 'ours, big neighbour',
              url: big.url,
              pid: big.pid,
              seeded: seededBig,
              queries: ['board'],
              output: () => big.output(),
            },
          ]
        : []),
    ] as Target[];
    const cells = QUERY_NAMES.flatMap((name) =>
      targets.filter((t) => t.queries.includes(name)).map((target) => ({ name, target })),
    );
    for (const { name, target } of cells) await load(target, name, Math.min(2, SECONDS));
    const samples = new Map<string, Sample[]>();
    for (let round = 0; round < ROUNDS; round += 1) {
      const order = cells.map((_, i) => cells[(i + round) % cells.length]!);
      for (const { name, target } of order) {
        const key = `${name}\t${target.label}`;
        samples.set(key, [...(samples.get(key) ?? []), await load(target, name, SECONDS)]);
      }
      console.log(`round ${round + 1}/${ROUNDS} done, load average ${load1()}`);
    }

    const med = (name: QueryName, label: string) => {
      const s = samples.get(`${name}\t${label}`)!;
      return {
        rps: median(s.map((x) => x.rps)),
        p50: median(s.map((x) => x.p50)),
        p99: median(s.map((x) => x.p99)),
        cpuMs: median(s.map((x) => x.cpuMs)),
      };
    };
    printTable(
      ['query', 'server', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req'],
      cells.map(({ name, target }) => {
        const m = med(name, target.label);
        return [
          name,
          target.label,
          m.rps.toFixed(0),
          m.p50.toFixed(1),
          m.p99.toFixed(1),
          m.cpuMs.toFixed(2),
        ];
      }),
      2,
    );
    // req/s depends on how much of a shared machine each server got; CPU time per request
    // does much less, so it is printed as a ratio too (bare/ours: higher is better, like req/s).
    for (const name of QUERY_NAMES) {
      const o = med(name, 'ours');
      const b = med(name, 'bare');
      console.log(`${name} query ours/bare: ${(o.rps / b.rps).toFixed(2)}`);
      console.log(`${name} query p99 ours/bare: ${(o.p99 / b.p99).toFixed(2)}`);
      console.log(`${name} query CPU per request bare/ours: ${(b.cpuMs / o.cpuMs).toFixed(2)}`);
    }
    if (big) {
      const y = med('board', 'ours, big neighbour').rps / med('board', 'ours').rps;
      const cpu = med('board', 'ours').cpuMs / med('board', 'ours, big neighbour').cpuMs;
      console.log(`board query with a big neighbour / without: ${y.toFixed(2)}`);
      console.log(`board query CPU per request without / with a big neighbour: ${cpu.toFixed(2)}`);
    }
    console.log(`load average after: ${load1()}`);
  } finally {
    if (PROFILE_DIR) {
      // A profile is written when the process exits by itself: stop ours gracefully.
      for (const server of servers) server.child.kill('SIGTERM');
      await Promise.race([Promise.all(servers.map((s) => s.exited)), sleep(30_000)]);
    }
    await Promise.all(servers.map((s) => s.kill()));
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
