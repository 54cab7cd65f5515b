/**
 * What tracing costs: the same servers with tracing off and on (OTLP http/protobuf to a
 * sink on loopback that answers 200 and keeps nothing): at ratio 0 (instrumented, nothing
 * sampled: what every request pays), at the default sampling ratio of production
 * (NODE_ENV=production: 0.1 of new traces) and at 1 (every trace).
 *
 *   npm run bench:tracing
 *   (BENCH_HTTP_SERVERS=3, BENCH_HTTP_ROUNDS=8, BENCH_HTTP_SECONDS=1, BENCH_HTTP_CONNECTIONS=10,
 *   BENCH_HTTP_RATE_BOARD=60, BENCH_HTTP_RATE_ME=150, BENCH_LIVE_SERVERS=2, BENCH_LIVE_ROUNDS=7,
 *   BENCH_LIVE_CHANGES=40, BENCH_LIVE_SUBSCRIBERS=200, BENCH_SKIP_BUILD=1 to reuse dist/,
 *   BENCH_PARTS=live or http to run one part only, BENCH_LIVE_SETTINGS to run some
 *   settings only, BENCH_CPU_PROF=<dir> to write a CPU profile of each live server there
 *   and print tracing code's share of their samples (see tracingProfile.ts),
 *   BENCH_BASELINE=<another checkout, built> to run its build at the default ratio beside)
 *
 * Every setting runs on several server processes, plus a group of `off` servers more (the
 * control: the noise floor), all side by side, taking turns: two processes of one build
 * and setting differ by up to 15 % for as long as they run, more than the rounds' noise
 * (see `overOff`).
 *
 * (a) HTTP (tracingHttp.ts): reads over HTTP with autocannon at a fixed request rate, cell
 *     by cell; server CPU time per request (per thread, from /proc) and req/s.
 * (b) Live: each server with BENCH_LIVE_SUBSCRIBERS graphql-ws subscribers of one board;
 *     per round, BENCH_LIVE_CHANGES editCard mutations per server, the servers taking
 *     turns change by change, each timed from sending it to the last subscriber receiving
 *     its change; and each server's CPU time (per thread, from /proc) per change over the
 *     round. CPU is the steadier figure on a shared machine: latency there is mostly other
 *     processes' scheduling.
 *
 * On/off: the median over a setting's servers of each one's median over the rounds, over
 * the same of the `off` servers; in brackets, the lowest and highest of its servers.
 * Ends with `http on/off (default ratio): X` and `live on/off (default ratio): X`: server
 * CPU per request (per change) at the default ratio over off (for HTTP, the geometric
 * mean over its queries), each with the control's `off/off` line; each also of the
 * servers' main threads alone (see `cpuUsOf`: V8's helper threads swing by a tenth of the
 * total from round to round). The live table also gives each server's resident set after
 * the rounds. The load average is printed before and after: the machine is shared.
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import {
  REPO_ROOT,
  startServerProcess,
  type ServerProcess,
} from '../../test/support/serverProcess.js';
import { NO_CLIENT_LIMITS } from '../../test/support/server.js';
import { median, printTable } from './report.js';
import { formatShares, profileShares } from './tracingProfile.js';
import {
  CONTROL,
  cpuUsOf,
  formatSpread,
  geometricMean,
  overOff,
  HTTP_PARAMETERS,
  httpOverhead,
  type Setting,
} from './tracingHttp.js';

const LIVE_ROUNDS = Number(process.env.BENCH_LIVE_ROUNDS ?? 7);
const LIVE_CHANGES = Number(process.env.BENCH_LIVE_CHANGES ?? 40);
const SUBSCRIBERS = Number(process.env.BENCH_LIVE_SUBSCRIBERS ?? 200);
/** Server processes per setting (see `overOff`). */
const LIVE_SERVERS = Number(process.env.BENCH_LIVE_SERVERS ?? 2);
const PARTS = new Set((process.env.BENCH_PARTS ?? 'live,http').split(',').map((p) => p.trim()));
/**
 * The settings the live part runs (`off` always): some of `ratio0`, `default`, `every`,
 * `control` (BENCH_LIVE_SETTINGS, comma separated; all by default), e.g. `ratio0` alone
 * with BENCH_CPU_PROF to compare profiles of `off` and ratio 0 servers.
 */
const LIVE_SETTINGS = process.env.BENCH_LIVE_SETTINGS?.split(',').map((s) => s.trim());
/**
 * Another checkout, built (BENCH_BASELINE=<its directory>): its servers at the default
 * ratio run beside this one's, as one setting more (`baseline`), to compare two versions
 * of the code under the same load.
 */
const BASELINE = process.env.BENCH_BASELINE;
/** The setting of the production default on BASELINE's build. */
const BASELINE_RATIO = 'on, default ratio (0.1), baseline build';
/** Where the live servers write their CPU profiles (`--cpu-prof`), one folder per setting. */
const CPU_PROF = process.env.BENCH_CPU_PROF;
/** The profiles' sampling interval, µs (V8's default: 1,000). */
const PROFILE_INTERVAL_US = 250;
const profileDir = (setting: Setting) => `${CPU_PROF}/${setting.name.replace(/\W+/g, '-')}`;

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** An OTLP endpoint that takes every export and keeps nothing. */
async function startSink(): Promise<{ endpoint: string; exports: () => number; close(): void }> {
  let exports = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      exports += 1;
      response.writeHead(200, { 'content-type': 'application/x-protobuf' });
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    exports: () => exports,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** The setting of the production default: no sampling variable set. */
const DEFAULT_RATIO = 'on, default ratio (0.1)';

/** The short names of the settings, for BENCH_LIVE_SETTINGS. */
const SHORT_NAMES: Record<string, string> = {
  off: 'off',
  'on, ratio 0': 'ratio0',
  [DEFAULT_RATIO]: 'default',
  'on, every trace': 'every',
  [CONTROL]: 'control',
  [BASELINE_RATIO]: 'baseline',
};

const settings = (endpoint: string): Setting[] => {
  const traced = {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  };
  // Production posture, without the per-client rate limits (one client makes all the load).
  const base = { NODE_ENV: 'production', ...NO_CLIENT_LIMITS };
  return [
    { name: 'off', env: base },
    // Instrumented, nothing sampled: what every request pays.
    { name: 'on, ratio 0', env: { ...base, ...traced, OTEL_TRACES_SAMPLER_ARG: '0' } },
    { name: DEFAULT_RATIO, env: { ...base, ...traced } },
    { name: 'on, every trace', env: { ...base, ...traced, OTEL_TRACES_SAMPLER_ARG: '1' } },
    ...(BASELINE
      ? [{ name: BASELINE_RATIO, env: { ...base, ...traced }, main: `${BASELINE}/dist/main.js` }]
      : []),
  ];
};

async function gql(url: string, query: string, variables: object, token?: string) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown };
  if (!body.data) throw new Error(JSON.stringify(body));
  return body.data;
}

interface LiveTarget {
  setting: Setting;
  server: ServerProcess;
  clients: Client[];
  token: string;
  card: { id: string; version: number };
  /** Resolves when every subscriber has seen the card at `version` or later. */
  seenBy(version: number): Promise<void>;
}

async function startLive(setting: Setting): Promise<LiveTarget> {
  const profile = CPU_PROF
    ? [
        '--cpu-prof',
        `--cpu-prof-interval=${PROFILE_INTERVAL_US}`,
        `--cpu-prof-dir=${profileDir(setting)}`,
      ]
    : [];
  const server = await startServerProcess({
    command: [process.execPath, ...profile, setting.main ?? 'dist/main.js'],
    env: setting.env,
    // Five servers start at once on a shared machine: give them time.
    readyTimeoutMs: 120_000,
  });
  const { token } = (
    await gql(
      server.url,
      `mutation { registerUser(input: { username: "bench", displayName: "B" }) {
        ... on RegisterUserSuccess { token } } }`,
      {},
    )
  ).registerUser;
  const board = (
    await gql(
      server.url,
      `mutation { createBoard(input: { name: "Live" }) { ... on CreateBoardSuccess { board { id version } } } }`,
      {},
      token,
    )
  ).createBoard.board;
  const column = (
    await gql(
      server.url,
      `mutation ($b: ID!, $v: Int!) { addColumn(input: { boardId: $b, expectedVersion: $v, name: "C" }) {
        ... on AddColumnSuccess { column { id } } } }`,
      { b: board.id, v: board.version },
      token,
    )
  ).addColumn.column;
  const card = (
    await gql(
      server.url,
      `mutation ($c: ID!) { addCard(input: { columnId: $c, title: "t" }) { ... on AddCardSuccess { card { id version } } } }`,
      { c: column.id },
      token,
    )
  ).addCard.card as { id: string; version: number };
  /** The card's newest version each subscriber has seen. */
  const seen = new Array<number>(SUBSCRIBERS).fill(0);
  let waiting: { version: number; done: () => void } | undefined;
  const clients: Client[] = [];
  for (let i = 0; i < SUBSCRIBERS; i += 1) {
    const client = createClient({
      url: `${server.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
    clients.push(client);
    client.subscribe(
      {
        query: `subscription ($b: ID!) { boardChanges(boardId: $b) { cursor invalidated { id version } } }`,
        variables: { b: board.id },
      },
      {
        next: (message) => {
          const invalidated = (message.data as any).boardChanges.invalidated as {
            id: string;
            version: number;
          }[];
          const version = invalidated.find((r) => r.id === card.id)?.version;
          if (version !== undefined) seen[i] = Math.max(seen[i]!, version);
          if (waiting && seen.every((v) => v >= waiting!.version)) waiting.done();
        },
        // A close event prints as the whole socket: its code and reason say enough.
        error: (error) =>
          console.error(
            `subscriber of ${setting.name}:`,
            error instanceof Error
              ? error.message
              : `${(error as CloseEvent).code} ${(error as CloseEvent).reason}`,
          ),
        complete: () => undefined,
      },
    );
  }
  const target: LiveTarget = {
    setting,
    server,
    clients,
    token,
    card,
    seenBy: (version) =>
      new Promise<void>((done) => {
        if (seen.every((v) => v >= version)) return done();
        waiting = {
          version,
          done: () => {
            waiting = undefined;
            done();
          },
        };
      }),
  };
  // Every subscriber is live once a change reaches all of them (edits until one does).
  for (;;) {
    const arrived = target.seenBy(card.version + 1);
    await edit(target);
    const reached = await Promise.race([
      arrived.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 2_000)),
    ]);
    if (reached) break;
  }
  return target;
}

/** One editCard of the target's card (the only writer, so its next version is known). */
async function edit(target: LiveTarget): Promise<void> {
  const result = (
    await gql(
      target.server.url,
      `mutation ($c: ID!, $v: Int!, $t: String) { editCard(input: { cardId: $c, expectedVersion: $v, title: $t }) {
        ... on EditCardSuccess { card { version } } } }`,
      { c: target.card.id, v: target.card.version, t: `t${target.card.version}` },
      target.token,
    )
  ).editCard;
  target.card.version = result.card.version;
}

/** Mutation sent -> its change received by every subscriber, in ms. */
async function timeChange(target: LiveTarget): Promise<number> {
  const started = performance.now();
  const arrived = target.seenBy(target.card.version + 1);
  await edit(target);
  await arrived;
  return performance.now() - started;
}

async function main() {
  console.log(
    `bench:tracing: ${cpus().length} cpus, load average ${load()}; http: ${HTTP_PARAMETERS}; ` +
      `live: ${LIVE_SERVERS} servers per setting, ${SUBSCRIBERS} subscribers each, ${LIVE_ROUNDS} rounds of ${LIVE_CHANGES} changes`,
  );
  if (!process.env.BENCH_SKIP_BUILD) {
    execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }
  const sink = await startSink();
  const all = settings(sink.endpoint);
  const lines: string[] = [];
  /** `http on/off (default ratio): X`, `live on/off (default ratio): X`. */
  const summary: string[] = [];
  try {
    // (b) live, all settings side by side.
    if (PARTS.has('live')) {
      // A second group of `off` servers, the control: what identical servers differ by.
      const live: Setting[] = [...all, { name: CONTROL, env: all[0]!.env }].filter(
        (s) => s.name === 'off' || !LIVE_SETTINGS || LIVE_SETTINGS.includes(SHORT_NAMES[s.name]!),
      );
      const targets: LiveTarget[] = [];
      /** When the rounds ran (µs, monotonic clock), for the profiles. */
      let roundsWindow: [number, number] | undefined;
      try {
        // Server k of every setting, then server k + 1: settings alternate in the turns.
        for (let k = 0; k < LIVE_SERVERS; k += 1) {
          for (const setting of live) targets.push(await startLive(setting));
        }
        const samples = new Map<string, number[]>(live.map((s) => [s.name, []]));
        /** Server CPU ms per change, one figure per round, by server. */
        const cpu = new Map<LiveTarget, number[]>(targets.map((t) => [t, []]));
        /** The same, of each server's main thread (see `cpuUsOf`). */
        const main = new Map<LiveTarget, number[]>(targets.map((t) => [t, []]));
        const hrtimeUs = () => Number(process.hrtime.bigint() / 1000n);
        const roundsFrom = hrtimeUs();
        for (let round = 0; round < LIVE_ROUNDS; round += 1) {
          // Changes alternate between the servers (the first one rotating), so what the
          // machine's other load does in a round falls on all of them alike.
          const cpuBefore = targets.map((target) => cpuUsOf(target.server.pid));
          const mainBefore = targets.map((target) => cpuUsOf(target.server.pid, true));
          for (let i = 0; i < LIVE_CHANGES; i += 1) {
            for (let k = 0; k < targets.length; k += 1) {
              const target = targets[(round + i + k) % targets.length]!;
              samples.get(target.setting.name)!.push(
                await timeChange(target).catch((error: unknown) => {
                  throw new Error(
                    `${target.setting.name} (${target.server.url}): ${String(error)}; its stderr: ${target.server.stderr().slice(-2_000)}`,
                    { cause: error },
                  );
                }),
              );
            }
          }
          targets.forEach((target, k) => {
            cpu
              .get(target)!
              .push((cpuUsOf(target.server.pid) - cpuBefore[k]!) / 1000 / LIVE_CHANGES);
            main
              .get(target)!
              .push((cpuUsOf(target.server.pid, true) - mainBefore[k]!) / 1000 / LIVE_CHANGES);
          });
          console.log(`live round ${round + 1}/${LIVE_ROUNDS} done, load average ${load()}`);
        }
        roundsWindow = [roundsFrom, hrtimeUs()];
        /** Each server's resident set after the rounds, MB: what its start and work hold. */
        const rssMb = new Map(targets.map((t) => [t, t.server.rss() / 2 ** 20]));
        const off = median(samples.get(live[0]!.name)!);
        /** Each of `setting`'s servers' median CPU per change over the rounds. */
        const perServer = (setting: string, figure = cpu) =>
          targets.filter((t) => t.setting.name === setting).map((t) => median(figure.get(t)!));
        const cpuRatio = (setting: string, figure = cpu) =>
          overOff(perServer(setting, figure), perServer(live[0]!.name, figure));
        printTable(
          [
            'live: mutation -> all subscribers',
            'p50 ms',
            'on/off',
            'server cpu ms/change, by server',
            'on/off (servers: lowest-highest)',
            'main thread ms/change',
            'main thread on/off',
            'rss MB, by server',
          ],
          live.map((s) => {
            const p50 = median(samples.get(s.name)!);
            return [
              s.name,
              p50.toFixed(2),
              (p50 / off).toFixed(3),
              perServer(s.name)
                .map((c) => c.toFixed(2))
                .join(' '),
              formatSpread(cpuRatio(s.name)),
              perServer(s.name, main)
                .map((c) => c.toFixed(2))
                .join(' '),
              formatSpread(cpuRatio(s.name, main)),
              targets
                .filter((t) => t.setting.name === s.name)
                .map((t) => rssMb.get(t)!.toFixed(0))
                .join(' '),
            ];
          }),
          1,
        );
        for (const [name, line] of [
          [DEFAULT_RATIO, 'live on/off (default ratio)'],
          [CONTROL, 'live off/off (control, the noise floor)'],
        ] as const) {
          if (samples.has(name)) {
            summary.push(
              `${line}: ${cpuRatio(name).ratio.toFixed(3)}; main thread: ${cpuRatio(name, main).ratio.toFixed(3)}`,
            );
          }
        }
        for (const s of live.slice(1)) {
          lines.push(
            `live p50 on/off (${s.name}): ${(median(samples.get(s.name)!) / off).toFixed(3)}`,
            `live server cpu per change on/off (${s.name}): ${formatSpread(cpuRatio(s.name))}; ` +
              `main thread: ${formatSpread(cpuRatio(s.name, main))}`,
          );
        }
      } finally {
        for (const target of targets) {
          for (const client of target.clients) void client.dispose();
          if (CPU_PROF) {
            // A profile is written on a clean exit only.
            target.server.child.kill('SIGTERM');
            await Promise.race([target.server.exited, new Promise((r) => setTimeout(r, 15_000))]);
          }
          await target.server.kill();
        }
      }
      if (CPU_PROF && roundsWindow) {
        lines.push(
          "(profiled: the CPU figures above include the profiler's own work, which dwarfs tracing's; compare the shares)",
        );
        for (const s of live) {
          const shares = profileShares(profileDir(s), roundsWindow);
          lines.push(
            `live tracing code's share of main-thread profile samples (${s.name}): ${formatShares(shares)}`,
          );
        }
      }
    }
    // (a) HTTP, all settings side by side.
    if (PARTS.has('http')) {
      const http = await httpOverhead(all, load);
      lines.push(...http.lines);
      const cpuRatio = (setting: string, figure: 'cpu' | 'main' = 'cpu') =>
        geometricMean([...http.ratios.get(setting)!.values()].map((r) => r[figure].ratio)).toFixed(
          3,
        );
      // The control: servers all off, what the figure differs by with nothing changed.
      summary.unshift(
        `http on/off (default ratio): ${cpuRatio(DEFAULT_RATIO)}; main thread: ${cpuRatio(DEFAULT_RATIO, 'main')}`,
        `http off/off (control, the noise floor): ${cpuRatio(CONTROL)}; main thread: ${cpuRatio(CONTROL, 'main')}`,
      );
    }
    console.log(`\nOTLP exports received by the sink: ${sink.exports()}`);
  } finally {
    sink.close();
  }
  for (const line of [...lines, ...summary]) console.log(line);
  console.log(`load average after: ${load()}`);
}

await main();
