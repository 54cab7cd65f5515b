/**
 * bench:tracing's HTTP part: what tracing costs a read over HTTP, with every setting's
 * servers running side by side and taking turns, so the machine's other load falls on all
 * of them alike (see tracing.ts for how to run it).
 *
 * SERVERS `node dist/main.js` processes per setting (memory store, production posture),
 * each seeded through its own API with a board of BOARD_COLUMNS x CARDS_PER_COLUMN cards.
 * Queries: the SDK's `Board` query (as `bench:http` runs it) and a small one (`me` and
 * `boards`), where a fixed cost per request weighs most. Load: autocannon at a fixed rate,
 * BENCH_HTTP_CONNECTIONS keep-alive connections, BENCH_HTTP_SECONDS per cell. One warm-up
 * cell per server and query, then BENCH_HTTP_ROUNDS rounds; in each, every query is run
 * against every server in turn, the order rotating from round to round. Per cell: req/s
 * and the server's CPU time per answered request. A group of `off` servers more (the
 * control) shows what identical servers differ by in the same run: the noise floor.
 */
import autocannon from 'autocannon';
import { readdirSync, readFileSync } from 'node:fs';
import { print } from 'graphql';
import { BoardDocument } from '../../src/sdk/generated/graphql.js';
import { startServerProcess, type ServerProcess } from '../../test/support/serverProcess.js';
import { median, printTable } from './report.js';

/** One server configuration of the bench: its name and environment. */
export interface Setting {
  name: string;
  env: Record<string, string>;
  /** The server's entry point, when not this checkout's `dist/main.js` (another build). */
  main?: string;
}

const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 8);
const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 1);
/** Server processes per setting (see `overOff`). */
const SERVERS = Number(process.env.BENCH_HTTP_SERVERS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 10);
/**
 * Requests per second each cell sends, by query (autocannon's `overallRate`): the same
 * offered load for every server, below what each sustains on a loaded machine, so CPU per
 * request compares like with like (at saturation it depends on the throughput each server
 * happened to get: fewer requests per event loop turn cost more each). 0: as fast as the
 * server answers (BENCH_HTTP_RATE_BOARD, BENCH_HTTP_RATE_ME).
 */
const RATES = {
  board: Number(process.env.BENCH_HTTP_RATE_BOARD ?? 60),
  me: Number(process.env.BENCH_HTTP_RATE_ME ?? 150),
} as const;
const BOARD_COLUMNS = 5;
const CARDS_PER_COLUMN = 20;

/** The parameters of the HTTP part, for the bench's first line. */
export const HTTP_PARAMETERS = `${SERVERS} servers per setting, ${CONNECTIONS} connections at ${RATES.board} (board) and ${RATES.me} (me) req/s, ${ROUNDS} rounds of ${SECONDS} s per cell`;

/**
 * CPU time of a process so far, in µs: the sum over its threads of the time they ran
 * (/proc/<pid>/task/<tid>/schedstat, in ns; finer than the 10 ms ticks of /proc/<pid>/stat).
 * `mainOnly`: its main thread's alone (the event loop: JavaScript, the scavenges, the
 * pauses of major GCs), without V8's helper threads (concurrent marking, compiling),
 * whose share swings by a tenth of the total from round to round on a loaded machine.
 */
export function cpuUsOf(pid: number, mainOnly = false): number {
  let ns = 0;
  for (const tid of mainOnly ? [String(pid)] : readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return ns / 1000;
}

/** A ratio to off, with the lowest and highest of the servers' ratios it comes from. */
export interface Spread {
  ratio: number;
  low: number;
  high: number;
}

/** `1.012 (0.990-1.031)`: a ratio and its servers' range. */
export function formatSpread(spread: Spread): string {
  return `${spread.ratio.toFixed(3)} (${spread.low.toFixed(3)}-${spread.high.toFixed(3)})`;
}

/** The geometric mean of positive `values`: one ratio for several queries. */
export function geometricMean(values: readonly number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

async function post(url: string, query: string, variables: object, token?: string) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown };
  if (!response.ok || !body.data) throw new Error(`${response.status} ${JSON.stringify(body)}`);
  return body.data;
}

interface Call {
  query: string;
  variables: object;
}

interface Target {
  setting: Setting;
  server: ServerProcess;
  token: string;
  calls: Record<QueryName, Call>;
}

const QUERY_NAMES = ['board', 'me'] as const;
export type QueryName = (typeof QUERY_NAMES)[number];

const ME_QUERY = `query MeAndBoards { me { id username displayName } boards { id name version } }`;

/** Starts `setting`'s server and seeds it: a user and their board. */
async function startTarget(setting: Setting): Promise<Target> {
  const server = await startServerProcess({
    command: [process.execPath, setting.main ?? 'dist/main.js'],
    env: setting.env,
    // Five servers start at once on a shared machine: give them time.
    readyTimeoutMs: 120_000,
  });
  const { token } = (
    await post(
      server.url,
      `mutation { r: registerUser(input: { username: "reader", displayName: "R" }) {
        ... on RegisterUserSuccess { token } } }`,
      {},
    )
  ).r;
  let board = (
    await post(
      server.url,
      `mutation { r: createBoard(input: { name: "Launch" }) { ... on CreateBoardSuccess { board { id version } } } }`,
      {},
      token,
    )
  ).r.board as { id: string; version: number };
  for (let c = 0; c < BOARD_COLUMNS; c += 1) {
    const added = (
      await post(
        server.url,
        `mutation ($b: ID!, $v: Int!) { r: addColumn(input: { boardId: $b, expectedVersion: $v, name: "C" }) {
          ... on AddColumnSuccess { board { version } column { id } } } }`,
        { b: board.id, v: board.version },
        token,
      )
    ).r;
    board = { id: board.id, version: added.board.version };
    await Promise.all(
      Array.from({ length: CARDS_PER_COLUMN }, (_, i) =>
        post(
          server.url,
          `mutation ($c: ID!, $t: String!) { r: addCard(input: { columnId: $c, title: $t }) {
            ... on AddCardSuccess { card { id } } } }`,
          { c: added.column.id, t: `Card ${i + 1}` },
          token,
        ),
      ),
    );
  }
  return {
    setting,
    server,
    token,
    calls: {
      board: {
        query: print(BoardDocument),
        variables: { id: board.id, cardsPerColumn: CARDS_PER_COLUMN },
      },
      me: { query: ME_QUERY, variables: {} },
    },
  };
}

interface Sample {
  rps: number;
  /** Server CPU time per answered request, in µs. */
  cpuUs: number;
  /** The same, of the server's main thread (see `cpuUsOf`). */
  mainUs: number;
}

async function load(target: Target, name: QueryName, seconds: number): Promise<Sample> {
  const call = target.calls[name];
  const cpuBefore = cpuUsOf(target.server.pid);
  const mainBefore = cpuUsOf(target.server.pid, true);
  const result = await autocannon({
    ...(RATES[name] > 0 && { overallRate: RATES[name] }),
    url: `${target.server.url}/graphql`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: seconds,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${target.token}` },
    body: JSON.stringify(call),
  });
  const failed = result.non2xx + result.errors + result.timeouts;
  if (failed > 0) {
    throw new Error(
      `${target.setting.name} ${name}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`,
    );
  }
  if (RATES[name] > 0 && result.requests.average < RATES[name] * 0.9) {
    console.log(
      `  ${target.setting.name} ${name}: ${result.requests.average.toFixed(0)} req/s of ${RATES[name]} offered (the server fell behind)`,
    );
  }
  return {
    rps: result.requests.average,
    cpuUs: (cpuUsOf(target.server.pid) - cpuBefore) / result.requests.total,
    mainUs: (cpuUsOf(target.server.pid, true) - mainBefore) / result.requests.total,
  };
}

/** The name of the second `off` server. */
export const CONTROL = 'off (control)';

/** The HTTP part's results, by setting (the `off` baseline excluded). */
export interface HttpOverhead {
  /**
   * Per query, on/off of server CPU per request (see `overOff`: its median is the ratio
   * of the setting's servers' mean to the `off` servers' mean; low and high, the range of
   * the setting's servers one by one) and of req/s.
   */
  ratios: Map<string, Map<QueryName, { cpu: Spread; main: Spread; rps: number }>>;
  /** Lines to print at the end. */
  lines: string[];
}

/**
 * A setting's figure over off's, from each server's figure (its median over the rounds):
 * the median of the setting's servers over the median of off's, and each of the setting's
 * servers over off's median (the lowest and highest of them). Two processes of the same
 * build and setting differ by up to 15 % on this machine for as long as they run (code
 * the JIT happened to produce, heap sizing), more than the rounds' noise: hence several
 * servers per setting, and medians, since one process in a dozen or so runs 20-30 % above
 * its peers (seen in the control group) and would move a mean of four by 5-7 %.
 */
export function overOff(servers: readonly number[], offServers: readonly number[]): Spread {
  const off = median(offServers);
  return {
    ratio: median(servers) / off,
    low: Math.min(...servers) / off,
    high: Math.max(...servers) / off,
  };
}

/**
 * Runs the HTTP part over `settings` (the first one is `off`, the baseline) plus a second
 * group of `off` servers, the control: SERVERS server processes per setting, taking
 * turns cell by cell, settings interleaved.
 */
export async function httpOverhead(
  settings: readonly Setting[],
  load1: () => string,
): Promise<HttpOverhead> {
  const off = settings[0]!;
  const all: Setting[] = [...settings, { name: CONTROL, env: off.env }];
  const targets: Target[] = [];
  try {
    // Server k of every setting, then server k + 1: settings alternate in the turns.
    for (let k = 0; k < SERVERS; k += 1) {
      targets.push(...(await Promise.all(all.map((setting) => startTarget(setting)))));
    }
    const cells = QUERY_NAMES.flatMap((name) => targets.map((target) => ({ name, target })));
    for (const { name, target } of cells) await load(target, name, Math.min(2, SECONDS));
    /** Each server's cells, by query. */
    const samples = new Map<Target, Map<QueryName, Sample[]>>(
      targets.map((t) => [t, new Map(QUERY_NAMES.map((name) => [name, []]))]),
    );
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const name of QUERY_NAMES) {
        for (let k = 0; k < targets.length; k += 1) {
          const target = targets[(round + k) % targets.length]!;
          samples
            .get(target)!
            .get(name)!
            .push(await load(target, name, SECONDS));
        }
      }
      console.log(`http round ${round + 1}/${ROUNDS} done, load average ${load1()}`);
    }
    /** Each of `setting`'s servers' median over the rounds of `figure`. */
    const perServer = (setting: string, name: QueryName, figure: (s: Sample) => number) =>
      targets
        .filter((t) => t.setting.name === setting)
        .map((t) => median(samples.get(t)!.get(name)!.map(figure)));
    const ratio = (setting: string, name: QueryName, figure: (s: Sample) => number) =>
      overOff(perServer(setting, name, figure), perServer(off.name, name, figure));
    const ratios: HttpOverhead['ratios'] = new Map(
      all.slice(1).map((s) => [
        s.name,
        new Map(
          QUERY_NAMES.map((name) => [
            name,
            {
              cpu: ratio(s.name, name, (x) => x.cpuUs),
              main: ratio(s.name, name, (x) => x.mainUs),
              rps: ratio(s.name, name, (x) => x.rps).ratio,
            },
          ]),
        ),
      ]),
    );
    printTable(
      [
        'http: query',
        'tracing',
        'req/s',
        'on/off',
        'server CPU µs/req, by server',
        'on/off (servers: lowest-highest)',
        'main thread on/off',
      ],
      QUERY_NAMES.flatMap((name) =>
        all.map((s) => {
          const r = ratios.get(s.name)?.get(name);
          return [
            name,
            s.name,
            median(perServer(s.name, name, (x) => x.rps)).toFixed(0),
            (r?.rps ?? 1).toFixed(3),
            perServer(s.name, name, (x) => x.cpuUs)
              .map((c) => c.toFixed(0))
              .join(' '),
            r ? formatSpread(r.cpu) : '1',
            r ? formatSpread(r.main) : '1',
          ];
        }),
      ),
      2,
    );
    console.log(
      `(per server: medians of its rounds; on/off: the median of the setting's servers over ` +
        `the median of off's, and each of its servers over that median, lowest and highest)`,
    );
    const lines: string[] = [];
    for (const [setting, byQuery] of ratios) {
      const figures = [...byQuery];
      lines.push(
        `http server cpu per request on/off (${setting}): ${figures.map(([n, r]) => `${n} ${formatSpread(r.cpu)}`).join(', ')}; ` +
          `main thread: ${figures.map(([n, r]) => `${n} ${formatSpread(r.main)}`).join(', ')}; ` +
          `req/s on/off: ${figures.map(([n, r]) => `${n} ${r.rps.toFixed(3)}`).join(', ')}`,
      );
    }
    return { ratios, lines };
  } finally {
    await Promise.all(targets.map((t) => t.server.kill()));
  }
}
