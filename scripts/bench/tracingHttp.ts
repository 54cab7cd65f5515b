/**
 * bench:tracing's HTTP part: what tracing costs a read over HTTP, with every setting's
 * server running side by side and taking turns, so the machine's other load falls on all
 * of them alike (see tracing.ts for how to run it).
 *
 * One `node dist/main.js` per setting (memory store, production posture), each seeded
 * through its own API with a board of BOARD_COLUMNS x CARDS_PER_COLUMN cards. Queries:
 * the SDK's `Board` query (as `bench:http` runs it) and a small one (`me` and `boards`),
 * where a fixed cost per request weighs most. Load: autocannon, BENCH_HTTP_CONNECTIONS
 * keep-alive connections (requests in flight), BENCH_HTTP_SECONDS per cell. One warm-up
 * cell per server and query, then BENCH_HTTP_ROUNDS rounds; in each, every query is run
 * against every server in turn, the order rotating from round to round. Per cell: req/s
 * and the server's CPU time (user + system, from /proc) per answered request. Medians of
 * the rounds, and on/off ratios against the `off` server. A second `off` server (the
 * control) shows what two identical servers differ by in the same run: the noise floor.
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
}

const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 10);
const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 2);
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
export const HTTP_PARAMETERS = `${CONNECTIONS} connections at ${RATES.board} (board) and ${RATES.me} (me) req/s, ${ROUNDS} rounds of ${SECONDS} s per cell`;

/** CPU time (user + system) of a process so far, in ms, from /proc (USER_HZ = 100). */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * CPU time of a process so far, in µs: the sum over its threads of the time they ran
 * (/proc/<pid>/task/<tid>/schedstat, in ns; finer than the 10 ms ticks of /proc/<pid>/stat).
 */
export function cpuUsOf(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return ns / 1000;
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
    command: [process.execPath, 'dist/main.js'],
    env: setting.env,
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
}

async function load(target: Target, name: QueryName, seconds: number): Promise<Sample> {
  const call = target.calls[name];
  const cpuBefore = cpuUsOf(target.server.pid);
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
  };
}

/** The name of the second `off` server. */
export const CONTROL = 'off (control)';

/** The HTTP part's results, by setting (the `off` baseline excluded). */
export interface HttpOverhead {
  /**
   * Per query, on/off of server CPU per request and of req/s: the median over the rounds
   * of each round's ratio to the `off` server's cell of the same round (paired, so what
   * the machine's load does from one round to the next cancels out).
   */
  ratios: Map<string, Map<QueryName, { cpu: number; rps: number; bestCpu: number }>>;
  /** Lines to print at the end. */
  lines: string[];
}

/**
 * Runs the HTTP part over `settings` (the first one is `off`, the baseline) plus a second
 * `off` server, the control.
 */
export async function httpOverhead(
  settings: readonly Setting[],
  load1: () => string,
): Promise<HttpOverhead> {
  const off = settings[0]!;
  const all: Setting[] = [...settings, { name: CONTROL, env: off.env }];
  const targets: Target[] = [];
  try {
    for (const setting of all) targets.push(await startTarget(setting));
    const cells = QUERY_NAMES.flatMap((name) => targets.map((target) => ({ name, target })));
    for (const { name, target } of cells) await load(target, name, Math.min(2, SECONDS));
    const samples = new Map<string, Sample[]>();
    const record = (target: Target, name: QueryName, sample: Sample) => {
      const key = `${target.setting.name}\t${name}`;
      samples.set(key, [...(samples.get(key) ?? []), sample]);
    };
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const name of QUERY_NAMES) {
        for (let k = 0; k < targets.length; k += 1) {
          const target = targets[(round + k) % targets.length]!;
          record(target, name, await load(target, name, SECONDS));
        }
      }
      console.log(`http round ${round + 1}/${ROUNDS} done, load average ${load1()}`);
    }
    const list = (setting: string, name: QueryName) => samples.get(`${setting}\t${name}`)!;
    /** Median over the rounds of `setting`'s figure over off's in the same round. */
    const paired = (setting: string, name: QueryName, figure: (s: Sample) => number) => {
      const base = list(off.name, name);
      return median(list(setting, name).map((s, round) => figure(s) / figure(base[round]!)));
    };
    const best = (setting: string, name: QueryName) =>
      Math.min(...list(setting, name).map((x) => x.cpuUs));
    const ratios: HttpOverhead['ratios'] = new Map(
      all.slice(1).map((s) => [
        s.name,
        new Map(
          QUERY_NAMES.map((name) => [
            name,
            {
              cpu: paired(s.name, name, (x) => x.cpuUs),
              rps: paired(s.name, name, (x) => x.rps),
              // Load from elsewhere only adds CPU time per request (caches, frequency):
              // each server's best round is its least disturbed one.
              bestCpu: best(s.name, name) / best(off.name, name),
            },
          ]),
        ),
      ]),
    );
    printTable(
      ['http: query', 'tracing', 'req/s', 'on/off', 'server CPU µs/req', 'on/off'],
      QUERY_NAMES.flatMap((name) =>
        all.map((s) => {
          const rounds = list(s.name, name);
          const ratio = ratios.get(s.name)?.get(name) ?? { cpu: 1, rps: 1 };
          return [
            name,
            s.name,
            median(rounds.map((x) => x.rps)).toFixed(0),
            ratio.rps.toFixed(3),
            median(rounds.map((x) => x.cpuUs)).toFixed(0),
            ratio.cpu.toFixed(3),
          ];
        }),
      ),
      2,
    );
    console.log(
      `(req/s and CPU: medians of the rounds; on/off: medians of each round's ratio to off)`,
    );
    const lines: string[] = [];
    for (const [setting, byQuery] of ratios) {
      const figures = [...byQuery];
      lines.push(
        `http server cpu per request on/off (${setting}): ${figures.map(([n, r]) => `${n} ${r.cpu.toFixed(3)}`).join(', ')}; ` +
          `req/s on/off: ${figures.map(([n, r]) => `${n} ${r.rps.toFixed(3)}`).join(', ')}; ` +
          `best round's cpu per request on/off: ${figures.map(([n, r]) => `${n} ${r.bestCpu.toFixed(3)}`).join(', ')}`,
      );
    }
    return { ratios, lines };
  } finally {
    await Promise.all(targets.map((t) => t.server.kill()));
  }
}
