/**
 * Live side: invalidation latency under load, websocket fan-out and memory per idle
 * connection, against a baseline of graphql-yoga's stock `createPubSub` + graphql-ws.
 * Everything on loopback (127.0.0.1), memory store.
 *
 *   npx tsx scripts/bench/live.ts
 *   (BENCH_RATE=100, BENCH_LATENCY_SECONDS=10, BENCH_FANOUT=1000,5000,10000, BENCH_ROUNDS=5,
 *   BENCH_BOARDS=100, BENCH_PER_BOARD=100, BENCH_STEADY_RATE=50, BENCH_STEADY_SECONDS=10;
 *   BENCH_SERVER_NODE_ARGS: extra node flags for the server children, e.g. `--cpu-prof`;
 *   BENCH_HEAP_SNAPSHOTS=<dir>: the server children write a heap snapshot there at every
 *   memory reading, e.g. before and after opening the fan-out's connections)
 *
 * Every server runs in a child process of its own (`liveServer.ts`, `node --import tsx
 * --expose-gc`), a fresh one per run, so its memory is its own and the clients' (this
 * process) is measured apart. The child reports, over IPC, its `process.memoryUsage()`
 * after two forced GCs, when each commit happened (the memory store's `append`
 * resolving; baseline: `publish` called), when the change log follower handed it to the
 * hub, and when `ws` sent the first and last message. Its clock is mapped onto ours by
 * the IPC round trip with the smallest delay (30 pings; the error is at most half of it).
 *
 * (a) Latency: one Corkboard server, LATENCY_SUBSCRIBERS graphql-ws clients subscribed to
 *     `boardChanges` of one board, a paced writer issuing `editCard` over HTTP at
 *     BENCH_RATE per second for BENCH_LATENCY_SECONDS, round-robin over CARDS cards. Each
 *     message is matched to its mutation by the card's global id and version in
 *     `invalidated`; the mutation's commit by the message's cursor.
 * (b) Fan-out: N clients (each its own graphql-ws protocol connection over `ws`, opened
 *     OPEN_BATCH at a time) with one `boardChanges` subscription each on one board.
 *     Once every one has received a warm-up change, the server's memory is read again:
 *     (after - before) / N is the memory per idle subscribed connection. Then
 *     BENCH_ROUNDS times ONE `editCard`, waiting until all N have received it; the table
 *     shows the median round.
 * (c) Baseline, same N, same client code: a minimal yoga server whose
 *     `Subscription.boardChanged(boardId)` is `pubSub.subscribe('board', boardId)` and
 *     whose `Mutation.publish` publishes one message (a JSON string shaped like our
 *     change, so the frames are of similar size).
 *
 * (d) Many boards: BENCH_BOARDS boards with BENCH_PER_BOARD subscribers each (one
 *     connection per subscriber), a paced writer editing one card per board in turn at
 *     BENCH_STEADY_RATE changes/s for BENCH_STEADY_SECONDS; per (change, subscriber of
 *     its board), commit -> received, and the writer's own round trips meanwhile.
 *     Baseline: the same over `publish`.
 *
 * Each process needs a file descriptor per connection: when `ulimit -n` (soft) is too
 * low for the largest run, the bench re-executes itself once through
 * `bash -c 'ulimit -n …'` (up to the hard limit); a run that still does not fit is
 * skipped and says so. The last two lines are the headline ratios at the largest N.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import type {
  CommitsReport,
  MemoryReport,
  SendsReport,
  ServerMode,
  ServerRequest,
} from './liveServer.js';
import { median, paced, percentile, printTable } from './report.js';

const RATE = Number(process.env.BENCH_RATE ?? 100);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 10);
const LATENCY_SUBSCRIBERS = 4;
const FANOUT_SIZES = (process.env.BENCH_FANOUT ?? '1000,5000,10000').split(',').map(Number);
const BOARDS = Number(process.env.BENCH_BOARDS ?? 100);
const PER_BOARD = Number(process.env.BENCH_PER_BOARD ?? 100);
const STEADY_RATE = Number(process.env.BENCH_STEADY_RATE ?? 50);
const STEADY_SECONDS = Number(process.env.BENCH_STEADY_SECONDS ?? 10);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5));
/** Connections opened at once; the next batch starts when all are acknowledged. */
const OPEN_BATCH = 250;
/** Cards the paced writer edits in turn (an edit waits for the card's previous one). */
const CARDS = 50;
/** File descriptors a process needs besides its N sockets. */
const FD_MARGIN = 200;
const LIMIT_MINUTES = 40;
/** Extra node flags for the server children, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const SERVER_ENTRY = resolve(HERE, 'liveServer.ts');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// ---------------------------------------------------------------------------------------
// The server child process.

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Ask = DistributiveOmit<ServerRequest, 'id'>;

const children = new Set<ChildProcess>();

/** One server in a child process; `stop()` ends it (SIGKILL if it does not exit). */
class ServerProcess {
  readonly #pending = new Map<number, (body: any) => void>();
  #nextId = 1;
  /** The child's `performance.now()` minus ours, at the same instant. */
  #offset = 0;
  /** Half the best IPC round trip: how far off `toLocal` may be. */
  clockError = 0;
  readonly exited: Promise<number | null>;

  private constructor(
    readonly mode: ServerMode,
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.on('message', (message: { id?: number }) => {
      if (message.id === undefined) return;
      const resolve = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      resolve?.(message);
    });
  }

  static async start(mode: ServerMode): Promise<ServerProcess> {
    const child = fork(SERVER_ENTRY, [mode], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx', '--expose-gc', ...SERVER_NODE_ARGS],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    const ready = await new Promise<{ url: string; gc: boolean }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${mode} server did not start`)), 60_000);
      child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
      child.on('message', (message: { type?: string; url: string; gc: boolean }) => {
        if (message.type !== 'ready') return;
        clearTimeout(timer);
        resolve(message);
      });
    }).catch((error: unknown) => {
      child.kill('SIGKILL');
      throw error;
    });
    if (!ready.gc) throw new Error('the server child has no gc()');
    const server = new ServerProcess(mode, child, ready.url);
    await server.#syncClock();
    return server;
  }

  request<T>(ask: Ask): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.mode} server did not answer ${ask.type}`));
      }, 30_000);
      this.#pending.set(id, (body: T) => {
        clearTimeout(timer);
        resolve(body);
      });
      this.child.send({ id, ...ask });
    });
  }

  /** A time of the child's `performance.now()` on our clock. */
  toLocal(childTime: number): number {
    return childTime - this.#offset;
  }

  async #syncClock(): Promise<void> {
    let best = Infinity;
    for (let i = 0; i < 30; i += 1) {
      const sent = performance.now();
      const { now } = await this.request<{ now: number }>({ type: 'clock' });
      const received = performance.now();
      if (received - sent < best) {
        best = received - sent;
        this.#offset = now - (sent + received) / 2;
      }
    }
    this.clockError = best / 2;
  }

  memory(): Promise<MemoryReport> {
    return this.request<{ memory: MemoryReport }>({ type: 'memory' }).then((r) => r.memory);
  }

  subscribers(): Promise<number> {
    return this.request<{ subscribers: number }>({ type: 'subscribers' }).then(
      (r) => r.subscribers,
    );
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    try {
      await this.request({ type: 'stop' });
    } catch {
      this.child.kill('SIGKILL');
    }
    await this.exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------
// HTTP.

async function gql(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
): Promise<Record<string, any>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, any>; errors?: unknown };
  if (body.errors || !body.data)
    throw new Error(`HTTP ${response.status}: ${JSON.stringify(body)}`);
  return body.data;
}

/** One Corkboard mutation; its success payload, or throws. */
async function mutate(
  url: string,
  token: string | undefined,
  name: string,
  input: Record<string, unknown>,
  selection: string,
): Promise<Record<string, any>> {
  const type = name[0]!.toUpperCase() + name.slice(1);
  const data = await gql(
    url,
    `mutation ($i: ${type}Input!) { r: ${name}(input: $i) { __typename
      ... on ${type}Success { ${selection} } ... on Error { code message } } }`,
    { i: input },
    token,
  );
  if (data.r?.__typename !== `${type}Success`) throw new Error(`${name}: ${JSON.stringify(data)}`);
  return data.r;
}

interface CardRef {
  id: string;
  version: number;
  busy: boolean;
}

interface Fixture {
  token: string;
  boardId: string;
  cards: CardRef[];
}

/** A user, a board, a column and `cards` cards on it. */
async function setUpBoard(url: string, cards: number): Promise<Fixture> {
  const { token } = await mutate(
    url,
    undefined,
    'registerUser',
    { username: 'bench', displayName: 'Bench' },
    'token',
  );
  const board = (
    await mutate(url, token, 'createBoard', { name: 'Live bench' }, 'board { id version }')
  ).board;
  const column = (
    await mutate(
      url,
      token,
      'addColumn',
      { boardId: board.id, name: 'Todo', expectedVersion: board.version },
      'column { id version }',
    )
  ).column;
  const refs: CardRef[] = [];
  for (let i = 0; i < cards; i += 1) {
    const card = (
      await mutate(
        url,
        token,
        'addCard',
        { columnId: column.id, title: `card ${i}` },
        'card { id version }',
      )
    ).card;
    refs.push({ id: card.id, version: card.version, busy: false });
  }
  return { token, boardId: board.id, cards: refs };
}

/** Edits `card`'s title; resolves with its new version (the message's key) and times. */
async function editCard(url: string, token: string, card: CardRef, title: string) {
  card.busy = true;
  try {
    const sent = performance.now();
    const payload = await mutate(
      url,
      token,
      'editCard',
      { cardId: card.id, expectedVersion: card.version, title },
      'card { id version }',
    );
    const responded = performance.now();
    card.version = payload.card.version;
    return { key: `${card.id}:${card.version}`, sent, responded };
  } finally {
    card.busy = false;
  }
}

// ---------------------------------------------------------------------------------------
// Subscribers.

const OUR_SUBSCRIPTION = `subscription ($boardId: ID!) {
  boardChanges(boardId: $boardId) { cursor at invalidated { typename id fields version } }
}`;
const BASELINE_SUBSCRIPTION = `subscription ($boardId: ID!) { boardChanged(boardId: $boardId) }`;
/** The baseline's messages name this card, with the message's `seq` as its version. */
const BASELINE_CARD_ID = Buffer.from('Card:00000000-0000-4000-8000-000000000000').toString(
  'base64',
);

interface Change {
  cursor: string;
  invalidated: { typename: string; id: string; version: number }[];
}

/** The change a message carries (the baseline's is a JSON string of the same shape). */
function changeOf(data: Record<string, unknown> | null | undefined): Change | null {
  if (!data) return null;
  if (data.boardChanges) return data.boardChanges as Change;
  if (typeof data.boardChanged === 'string') return JSON.parse(data.boardChanged) as Change;
  return null;
}

/** Key of a change: the edited card's global id and its version after the change. */
function keyOf(change: Change): string {
  const card = change.invalidated.find((i) => i.typename === 'Card');
  return card ? `${card.id}:${card.version}` : '';
}

/** What a subscriber does with each message; `now` is taken first thing. */
type OnMessage = (index: number, change: Change, now: number) => void;

interface Pool {
  clients: WebSocket[];
  closed: number;
  errors: string[];
}

function wsUrlOf(url: string): string {
  return `${url.replace(/^http/, 'ws')}/graphql`;
}

/**
 * Opens `n` graphql-ws connections, OPEN_BATCH at a time, each with one subscription.
 *
 * Each subscriber speaks the graphql-ws protocol (`graphql-transport-ws`) itself over a
 * bare `ws` socket: `connection_init`, then on `connection_ack` one `subscribe`, then
 * `next` messages parsed with one `JSON.parse`. The same for both servers. At 10,000
 * connections this one process receives every message on the same 2 cores as the
 * server, so what a client spends per message shows in "-> ALL recv". With graphql-ws's
 * own client (an emitter, message validation, a retry machine per connection) the last
 * of 10,000 messages arrived 190-370 ms after the server's last write, so the clients,
 * not the server, ended the fan-out; with this one, about 30 ms after it.
 */
async function openPool(
  url: string,
  n: number,
  subscription: { query: string; variables: Record<string, unknown> },
  connectionParams: Record<string, unknown>,
  onMessage: OnMessage,
): Promise<Pool> {
  const pool: Pool = { clients: [], closed: 0, errors: [] };
  const subscribe = JSON.stringify({ id: '1', type: 'subscribe', payload: subscription });
  const init = JSON.stringify({ type: 'connection_init', payload: connectionParams });
  const openOne = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(wsUrlOf(url), 'graphql-transport-ws', {
        perMessageDeflate: false,
      });
      pool.clients.push(socket);
      socket.on('open', () => socket.send(init));
      socket.on('message', (data: Buffer) => {
        const now = performance.now();
        const message = JSON.parse(data.toString()) as {
          type: string;
          payload?: { data?: Record<string, unknown>; errors?: unknown };
        };
        switch (message.type) {
          case 'next': {
            const change = changeOf(message.payload?.data);
            if (change) onMessage(index, change, now);
            if (message.payload?.errors) pool.errors.push(JSON.stringify(message.payload.errors));
            break;
          }
          case 'connection_ack':
            socket.send(subscribe);
            resolve();
            break;
          case 'error':
            pool.errors.push(JSON.stringify(message.payload));
            break;
          case 'ping':
            socket.send('{"type":"pong"}');
            break;
        }
      });
      socket.on('error', (error) => pool.errors.push(error.message));
      socket.on('close', (code) => {
        pool.closed += 1;
        reject(new Error(`connection ${index} closed: ${code}`));
      });
    });
  try {
    for (let start = 0; start < n; start += OPEN_BATCH) {
      const batch: Promise<void>[] = [];
      for (let i = start; i < Math.min(n, start + OPEN_BATCH); i += 1) batch.push(openOne(i));
      await Promise.all(batch);
    }
  } catch (error) {
    await closePool(pool);
    throw error;
  }
  return pool;
}

/** Disposes every client and waits for its socket to close. */
async function closePool(pool: Pool): Promise<void> {
  for (const socket of pool.clients) socket.close(1000);
  await until(() => pool.closed >= pool.clients.length, 'the client sockets to close', 15_000);
}

async function until(condition: () => boolean | Promise<boolean>, what: string, limitMs: number) {
  const deadline = performance.now() + limitMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function clientMemory(): MemoryReport {
  gc();
  gc();
  const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
  return { heapUsed, rss, external, arrayBuffers };
}

// ---------------------------------------------------------------------------------------
// (a) Latency under load.

interface Samples {
  measure: string;
  samples: number[];
}

interface LatencyResult {
  rows: Samples[];
  mutations: number;
  failed: number;
  skipped: number;
  firstFailure: string | null;
  seconds: number;
  /** (mutation, subscriber) pairs whose message never came. */
  missing: number;
  /** Pairs whose message arrived before the mutation's HTTP response. */
  beforeResponse: number;
  clockError: number;
}

async function measureLatency(): Promise<LatencyResult> {
  const server = await ServerProcess.start('corkboard');
  try {
    const fixture = await setUpBoard(server.url, CARDS);
    const arrivals = Array.from(
      { length: LATENCY_SUBSCRIBERS },
      () => new Map<string, { at: number; cursor: number }>(),
    );
    const pool = await openPool(
      server.url,
      LATENCY_SUBSCRIBERS,
      { query: OUR_SUBSCRIPTION, variables: { boardId: fixture.boardId } },
      { authorization: `Bearer ${fixture.token}` },
      (index, change, now) =>
        arrivals[index]!.set(keyOf(change), { at: now, cursor: Number(change.cursor) }),
    );
    try {
      await until(
        async () => (await server.subscribers()) >= LATENCY_SUBSCRIBERS,
        'the subscribers',
        10_000,
      );
      const done: { key: string; sent: number; responded: number }[] = [];
      let failed = 0;
      let skipped = 0;
      let firstFailure: string | null = null;
      const start = performance.now();
      await paced(Math.round(RATE * LATENCY_SECONDS), RATE, start, async (i) => {
        const card = fixture.cards[i % fixture.cards.length]!;
        if (card.busy) {
          skipped += 1;
          return;
        }
        await editCard(server.url, fixture.token, card, `edited ${i}`).then(
          (r) => void done.push(r),
          (error: unknown) => {
            failed += 1;
            firstFailure ??= error instanceof Error ? error.message : String(error);
          },
        );
      });
      const seconds = (performance.now() - start) / 1_000;
      const everyone = () =>
        done.every((d) => arrivals.every((a) => a.has(d.key))) || pool.errors.length > 0;
      await until(everyone, 'the last messages', 5_000).catch(() => {});

      const cursors = new Map<string, number>();
      for (const a of arrivals) for (const [key, { cursor }] of a) cursors.set(key, cursor);
      const keyed = done.filter((d) => cursors.has(d.key));
      const { committed, toHub } = await server.request<CommitsReport>({
        type: 'commits',
        keys: keyed.map((d) => cursors.get(d.key)!),
      });
      const rows: Samples[] = [
        { measure: 'editCard round trip (send -> HTTP response)', samples: [] },
        { measure: 'commit -> HTTP response', samples: [] },
        { measure: 'commit -> change log entry to hub (server)', samples: [] },
        { measure: 'commit -> subscriber received', samples: [] },
        { measure: 'HTTP response -> subscriber received', samples: [] },
      ];
      let missing = 0;
      let beforeResponse = 0;
      for (const d of done) rows[0]!.samples.push(d.responded - d.sent);
      keyed.forEach((d, i) => {
        const commit = committed[i] == null ? null : server.toLocal(committed[i]);
        const hub = toHub[i] == null ? null : server.toLocal(toHub[i]);
        if (commit !== null) rows[1]!.samples.push(d.responded - commit);
        if (commit !== null && hub !== null) rows[2]!.samples.push(hub - commit);
        for (const a of arrivals) {
          const arrived = a.get(d.key);
          if (!arrived) continue;
          if (commit !== null) rows[3]!.samples.push(arrived.at - commit);
          rows[4]!.samples.push(arrived.at - d.responded);
          if (arrived.at < d.responded) beforeResponse += 1;
        }
      });
      for (const d of done) for (const a of arrivals) if (!a.has(d.key)) missing += 1;
      if (pool.errors.length > 0) throw new Error(`subscription errors: ${pool.errors[0]}`);
      return {
        rows,
        mutations: done.length,
        failed,
        skipped,
        firstFailure,
        seconds,
        missing,
        beforeResponse,
        clockError: server.clockError,
      };
    } finally {
      await closePool(pool);
    }
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------
// (b), (c) Fan-out.

/** One change that every subscriber should receive, and how to cause it. */
interface Trigger {
  /** The key its message will carry. */
  key: string;
  /** Sends the mutation; resolves when its HTTP response is in. */
  fire(): Promise<{ sent: number; responded: number }>;
}

interface Target {
  mode: ServerMode;
  subscription: { query: string; variables: Record<string, unknown> };
  connectionParams: Record<string, unknown>;
  next(): Trigger;
}

async function corkboardTarget(server: ServerProcess): Promise<Target> {
  const fixture = await setUpBoard(server.url, 4);
  let turn = 0;
  return {
    mode: 'corkboard',
    subscription: { query: OUR_SUBSCRIPTION, variables: { boardId: fixture.boardId } },
    connectionParams: { authorization: `Bearer ${fixture.token}` },
    next() {
      const card = fixture.cards[turn++ % fixture.cards.length]!;
      const key = `${card.id}:${card.version + 1}`;
      return {
        key,
        fire: async () => {
          const r = await editCard(server.url, fixture.token, card, `fan-out ${turn}`);
          if (r.key !== key) throw new Error(`expected ${key}, the edit made ${r.key}`);
          return r;
        },
      };
    },
  };
}

function baselineTarget(server: ServerProcess): Target {
  const boardId = 'board-1';
  let seq = 0;
  return {
    mode: 'baseline',
    subscription: { query: BASELINE_SUBSCRIPTION, variables: { boardId } },
    connectionParams: {},
    next() {
      seq += 1;
      const version = seq;
      const message = JSON.stringify({
        cursor: String(version),
        at: new Date().toISOString(),
        invalidated: [{ typename: 'Card', id: BASELINE_CARD_ID, fields: ['title'], version }],
      });
      return {
        key: `${BASELINE_CARD_ID}:${version}`,
        fire: async () => {
          const sent = performance.now();
          await gql(
            server.url,
            `mutation ($b: ID!, $s: Int!, $m: String!) { publish(boardId: $b, seq: $s, message: $m) }`,
            { b: boardId, s: version, m: message },
          );
          return { sent, responded: performance.now() };
        },
      };
    },
  };
}

/** Times of one round, in ms on our clock, relative to the commit (or publish). */
interface Round {
  received: number;
  sends: number;
  frameBytes: number;
  toResponse: number;
  toHub: number | null;
  toFirstSend: number;
  toLastSend: number;
  toFirstReceived: number;
  toMedianReceived: number;
  toAllReceived: number;
  responseToAll: number;
}

interface FanoutResult {
  mode: ServerMode;
  n: number;
  openSeconds: number;
  /** Server heap before and after opening the connections, bytes. */
  serverHeap: [number, number];
  serverHeapPerConn: number;
  serverRssPerConn: number;
  clientHeapPerConn: number;
  clientRssPerConn: number;
  warmups: number;
  rounds: Round[];
  clockError: number;
}

/** The state of the round in progress, read by every subscriber's callback. */
interface RoundState {
  expecting: string | null;
  arrivals: Float64Array;
  received: number;
  cursor: number;
  onAll: (() => void) | null;
}

async function runRound(
  server: ServerProcess,
  target: Target,
  state: RoundState,
  limitMs: number,
): Promise<Round | null> {
  state.arrivals.fill(0);
  state.received = 0;
  state.cursor = 0;
  await server.request({ type: 'resetSends' });
  const trigger = target.next();
  let timer: NodeJS.Timeout | undefined;
  const all = new Promise<boolean>((resolve) => {
    state.onAll = () => resolve(true);
    timer = setTimeout(() => resolve(false), limitMs);
  });
  state.expecting = trigger.key;
  let responded: number;
  let complete: boolean;
  try {
    ({ responded } = await trigger.fire());
    complete = await all;
  } finally {
    clearTimeout(timer);
    state.expecting = null;
    state.onAll = null;
  }
  if (!complete) return null;
  const { sends } = await server.request<{ sends: SendsReport }>({ type: 'sends' });
  const commits = await server.request<CommitsReport>({ type: 'commits', keys: [state.cursor] });
  if (commits.committed[0] == null) throw new Error(`no commit time for ${state.cursor}`);
  const commit = server.toLocal(commits.committed[0]);
  const hub = commits.toHub[0] == null ? null : server.toLocal(commits.toHub[0]);
  const sorted = [...state.arrivals].sort((a, b) => a - b);
  return {
    received: state.received,
    sends: sends.count,
    frameBytes: sends.bytes,
    toResponse: responded - commit,
    toHub: hub === null ? null : hub - commit,
    toFirstSend: server.toLocal(sends.first) - commit,
    toLastSend: server.toLocal(sends.last) - commit,
    toFirstReceived: sorted[0]! - commit,
    toMedianReceived: percentile(sorted, 0.5) - commit,
    toAllReceived: sorted.at(-1)! - commit,
    responseToAll: sorted.at(-1)! - responded,
  };
}

async function measureFanout(mode: ServerMode, n: number): Promise<FanoutResult> {
  const server = await ServerProcess.start(mode);
  try {
    const target = mode === 'corkboard' ? await corkboardTarget(server) : baselineTarget(server);
    const state: RoundState = {
      expecting: null,
      arrivals: new Float64Array(n),
      received: 0,
      cursor: 0,
      onAll: null,
    };
    const onMessage: OnMessage = (index, change, now) => {
      if (state.expecting === null || state.arrivals[index] !== 0) return;
      if (keyOf(change) !== state.expecting) return;
      state.arrivals[index] = now;
      state.cursor = Number(change.cursor);
      state.received += 1;
      if (state.received === n) state.onAll?.();
    };
    const serverBefore = await server.memory();
    const clientBefore = clientMemory();
    const openStarted = performance.now();
    const pool = await openPool(
      server.url,
      n,
      target.subscription,
      target.connectionParams,
      onMessage,
    );
    try {
      const openSeconds = (performance.now() - openStarted) / 1_000;
      await until(async () => (await server.subscribers()) >= n, 'the subscriptions', 30_000);
      // Warm-up: until one change reached every subscriber (all are live, code is hot).
      let warmups = 0;
      // Generous: on a loaded machine one round to 10,000 can take seconds.
      while ((await runRound(server, target, state, 15_000)) === null) {
        warmups += 1;
        if (pool.errors.length > 0) throw new Error(`subscription errors: ${pool.errors[0]}`);
        if (warmups >= 10) throw new Error(`a change never reached all ${n} subscribers`);
      }
      warmups += 1;
      const serverAfter = await server.memory();
      const clientAfter = clientMemory();
      const rounds: Round[] = [];
      for (let r = 0; r < ROUNDS; r += 1) {
        await sleep(200);
        const round = await runRound(server, target, state, 30_000);
        if (!round) throw new Error(`round ${r}: not all ${n} subscribers received the change`);
        rounds.push(round);
      }
      if (pool.errors.length > 0) throw new Error(`subscription errors: ${pool.errors[0]}`);
      return {
        mode,
        n,
        openSeconds,
        serverHeap: [serverBefore.heapUsed, serverAfter.heapUsed],
        serverHeapPerConn: (serverAfter.heapUsed - serverBefore.heapUsed) / n,
        serverRssPerConn: (serverAfter.rss - serverBefore.rss) / n,
        clientHeapPerConn: (clientAfter.heapUsed - clientBefore.heapUsed) / n,
        clientRssPerConn: (clientAfter.rss - clientBefore.rss) / n,
        warmups,
        rounds,
        clockError: server.clockError,
      };
    } finally {
      await closePool(pool);
    }
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------
// (d) Many boards, steady writes.

interface SteadyResult {
  mode: ServerMode;
  connections: number;
  changes: number;
  skipped: number;
  failed: number;
  /** commit -> received, per (change, subscriber of its board), ms. */
  received: number[];
  /** The writer's HTTP round trips, ms. */
  roundTrips: number[];
  missing: number;
}

/** One card per board on Corkboard (one user, member of every board). */
async function setUpBoards(url: string, count: number) {
  const { token } = await mutate(
    url,
    undefined,
    'registerUser',
    { username: 'steady', displayName: 'Steady' },
    'token',
  );
  const boards: { boardId: string; card: CardRef }[] = [];
  for (let i = 0; i < count; i += 1) {
    const { board } = await mutate(
      url,
      token,
      'createBoard',
      { name: `b${i}` },
      'board { id version }',
    );
    const { column } = await mutate(
      url,
      token,
      'addColumn',
      { boardId: board.id, name: 'Todo', expectedVersion: board.version },
      'column { id }',
    );
    const { card } = await mutate(
      url,
      token,
      'addCard',
      { columnId: column.id, title: 'steady' },
      'card { id version }',
    );
    boards.push({ boardId: board.id, card: { id: card.id, version: card.version, busy: false } });
  }
  return { token, boards };
}

async function measureSteady(mode: ServerMode): Promise<SteadyResult> {
  const server = await ServerProcess.start(mode);
  const pools: Pool[] = [];
  try {
    /** Per board: its subscription and how to make its next change (null: skipped). */
    let boards: {
      subscription: Target['subscription'];
      fire: () => Promise<{ sent: number; responded: number } | null>;
    }[];
    let connectionParams: Record<string, unknown> = {};
    if (mode === 'corkboard') {
      const fixture = await setUpBoards(server.url, BOARDS);
      connectionParams = { authorization: `Bearer ${fixture.token}` };
      boards = fixture.boards.map(({ boardId, card }, i) => ({
        subscription: { query: OUR_SUBSCRIPTION, variables: { boardId } },
        fire: async () =>
          card.busy
            ? null
            : editCard(server.url, fixture.token, card, `steady ${i} ${card.version}`),
      }));
    } else {
      let seq = 0;
      boards = Array.from({ length: BOARDS }, (_, i) => {
        const boardId = `board-${i}`;
        return {
          subscription: { query: BASELINE_SUBSCRIPTION, variables: { boardId } },
          fire: async () => {
            seq += 1;
            const message = JSON.stringify({
              cursor: String(seq),
              at: new Date().toISOString(),
              invalidated: [
                { typename: 'Card', id: BASELINE_CARD_ID, fields: ['title'], version: seq },
              ],
            });
            const sent = performance.now();
            await gql(
              server.url,
              `mutation ($b: ID!, $s: Int!, $m: String!) { publish(boardId: $b, seq: $s, message: $m) }`,
              { b: boardId, s: seq, m: message },
            );
            return { sent, responded: performance.now() };
          },
        };
      });
    }
    /** Per commit key (the message's cursor): arrival times. */
    const arrivals = new Map<number, number[]>();
    const onMessage: OnMessage = (_index, change, now) => {
      const cursor = Number(change.cursor);
      let times = arrivals.get(cursor);
      if (!times) arrivals.set(cursor, (times = []));
      times.push(now);
    };
    for (const board of boards) {
      pools.push(
        await openPool(server.url, PER_BOARD, board.subscription, connectionParams, onMessage),
      );
    }
    const connections = BOARDS * PER_BOARD;
    await until(
      async () => (await server.subscribers()) >= connections,
      'the subscriptions',
      60_000,
    );
    const roundTrips: number[] = [];
    let skipped = 0;
    let changes = 0;
    const start = performance.now();
    let failed = 0;
    await paced(Math.round(STEADY_RATE * STEADY_SECONDS), STEADY_RATE, start, async (i) => {
      // A failed write (a conflict after a lost response, on a loaded machine) is counted.
      const done = await boards[i % boards.length]!.fire().catch(() => {
        failed += 1;
        return null;
      });
      if (!done) {
        skipped += 1;
        return;
      }
      changes += 1;
      roundTrips.push(done.responded - done.sent);
    });
    const complete = () => [...arrivals.values()].reduce((sum, t) => sum + t.length, 0);
    await until(() => complete() >= changes * PER_BOARD, 'the last messages', 10_000).catch(
      () => {},
    );
    const cursors = [...arrivals.keys()];
    const { committed } = await server.request<CommitsReport>({ type: 'commits', keys: cursors });
    const received: number[] = [];
    cursors.forEach((cursor, i) => {
      const at = committed[i];
      if (at == null) return;
      const commit = server.toLocal(at);
      for (const time of arrivals.get(cursor)!) received.push(time - commit);
    });
    const errors = pools.flatMap((pool) => pool.errors);
    if (errors.length > 0) throw new Error(`subscription errors: ${errors[0]}`);
    return {
      mode,
      connections,
      changes,
      skipped: skipped - failed,
      failed,
      received,
      roundTrips,
      missing: changes * PER_BOARD - complete(),
    };
  } finally {
    for (const pool of pools) await closePool(pool);
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------
// Output, in the style of append.ts and project.ts.

const ms = (value: number) => value.toFixed(2);
const kb = (bytes: number) => (bytes / 1_024).toFixed(1);

/** Open files this process may have (`ulimit -n`, soft); null when unknown. */
function openFilesLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s+/)[3];
    if (soft === undefined) return null;
    return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return null;
  }
}

function reportLatency(result: LatencyResult): void {
  console.log(
    `(a) invalidation latency: editCard over HTTP at ${RATE}/s for ${LATENCY_SECONDS} s, ` +
      `${LATENCY_SUBSCRIBERS} graphql-ws subscribers on the board (ms)`,
  );
  printTable(
    ['measure', 'n', 'p50', 'p95', 'p99', 'max'],
    result.rows.map((r) => {
      const sorted = [...r.samples].sort((a, b) => a - b);
      const q = (p: number) => ms(percentile(sorted, p));
      return [r.measure, String(sorted.length), q(0.5), q(0.95), q(0.99), q(1)];
    }),
    1,
  );
  const pairs = result.mutations * LATENCY_SUBSCRIBERS;
  console.log(
    `${result.mutations} mutations in ${result.seconds.toFixed(1)} s = ` +
      `${(result.mutations / result.seconds).toFixed(0)}/s achieved, ${result.failed} failed` +
      (result.firstFailure ? ` (first: ${result.firstFailure})` : '') +
      `, ${result.skipped} skipped (card still busy); ${result.missing} of ${pairs} deliveries ` +
      `missing; ${result.beforeResponse} of ${pairs} arrived before the HTTP response ` +
      `(negative above); clock error <= ${ms(result.clockError)} ms`,
  );
}

function reportSteady(results: SteadyResult[]): void {
  console.log(
    `(d) ${BOARDS} boards x ${PER_BOARD} subscribers (one connection each), ` +
      `${STEADY_RATE} changes/s for ${STEADY_SECONDS} s round-robin over the boards (ms)`,
  );
  const q = (values: number[], p: number) =>
    values.length > 0
      ? ms(
          percentile(
            [...values].sort((a, b) => a - b),
            p,
          ),
        )
      : '-';
  printTable(
    [
      'server',
      'conns',
      'changes',
      'skipped',
      'failed',
      'missing',
      'commit -> recv p50',
      'p99',
      'max',
      'writer round trip p50',
      'p99',
      'max',
    ],
    results.map((r) => [
      r.mode,
      String(r.connections),
      String(r.changes),
      String(r.skipped),
      String(r.failed),
      String(r.missing),
      q(r.received, 0.5),
      q(r.received, 0.99),
      q(r.received, 1),
      q(r.roundTrips, 0.5),
      q(r.roundTrips, 0.99),
      q(r.roundTrips, 1),
    ]),
    1,
  );
}

/** The headline: at the largest N both servers reached, commit -> ALL and heap per connection. */
function reportHeadline(results: FanoutResult[]): void {
  const sizes = FANOUT_SIZES.filter((n) =>
    (['corkboard', 'baseline'] as const).every((mode) =>
      results.some((r) => r.mode === mode && r.n === n),
    ),
  );
  const n = sizes.at(-1);
  if (n === undefined) {
    console.log('fan-out ours/baseline: no N reached by both servers');
    return;
  }
  const ours = results.find((r) => r.mode === 'corkboard' && r.n === n)!;
  const base = results.find((r) => r.mode === 'baseline' && r.n === n)!;
  const all = (r: FanoutResult) => median(r.rounds.map((x) => x.toAllReceived));
  console.log(`fan-out ours/baseline at ${n}: ${(all(ours) / all(base)).toFixed(2)}`);
  console.log(
    `heap per connection ours/baseline: ${(ours.serverHeapPerConn / base.serverHeapPerConn).toFixed(2)}`,
  );
}

function reportFanout(results: FanoutResult[], skipped: string[]): void {
  console.log(
    `(b) fan-out: N graphql-ws connections, one subscription each on one board, ONE change; ` +
      `median of ${ROUNDS} rounds (ms from the commit; baseline: from publish())`,
  );
  const med = (r: FanoutResult, pick: (round: Round) => number | null) => {
    const values = r.rounds.map(pick).filter((v): v is number => v !== null);
    return values.length > 0 ? ms(median(values)) : '-';
  };
  printTable(
    [
      'server',
      'N',
      '-> response',
      '-> hub',
      '-> 1st send',
      '-> last send',
      '-> 1st recv',
      '-> p50 recv',
      '-> ALL recv',
      'response -> ALL',
      'worst ALL',
    ],
    results.map((r) => [
      r.mode,
      String(r.n),
      med(r, (x) => x.toResponse),
      med(r, (x) => x.toHub),
      med(r, (x) => x.toFirstSend),
      med(r, (x) => x.toLastSend),
      med(r, (x) => x.toFirstReceived),
      med(r, (x) => x.toMedianReceived),
      med(r, (x) => x.toAllReceived),
      med(r, (x) => x.responseToAll),
      ms(Math.max(...r.rounds.map((x) => x.toAllReceived))),
    ]),
    1,
  );
  console.log();
  console.log(
    `memory per idle subscribed connection (KiB; after two GCs, (after - before) / N), ` +
      `and opening the connections (${OPEN_BATCH} at a time)`,
  );
  printTable(
    [
      'server',
      'N',
      'server heap MiB',
      'server heap',
      'server rss',
      'client heap',
      'client rss',
      'open s',
      'conn/s',
    ],
    results.map((r) => [
      r.mode,
      String(r.n),
      r.serverHeap.map((b) => (b / 1_048_576).toFixed(1)).join(' -> '),
      kb(r.serverHeapPerConn),
      kb(r.serverRssPerConn),
      kb(r.clientHeapPerConn),
      kb(r.clientRssPerConn),
      r.openSeconds.toFixed(2),
      (r.n / r.openSeconds).toFixed(0),
    ]),
    1,
  );
  console.log();
  console.log('(c) ours / baseline');
  const ratioRows: string[][] = [];
  for (const n of FANOUT_SIZES) {
    const ours = results.find((r) => r.mode === 'corkboard' && r.n === n);
    const base = results.find((r) => r.mode === 'baseline' && r.n === n);
    if (!ours || !base) continue;
    const ratio = (pick: (r: FanoutResult) => number) => (pick(ours) / pick(base)).toFixed(2);
    const medOf = (pick: (round: Round) => number) => (r: FanoutResult) =>
      median(r.rounds.map(pick));
    ratioRows.push([
      String(n),
      ratio(medOf((x) => x.toLastSend)),
      ratio(medOf((x) => x.toAllReceived)),
      ratio(medOf((x) => x.toResponse)),
      ratio((r) => r.serverHeapPerConn),
      ratio((r) => r.serverRssPerConn),
    ]);
  }
  printTable(
    [
      'N',
      'commit -> last send',
      'commit -> ALL recv',
      'commit -> response',
      'heap/conn',
      'rss/conn',
    ],
    ratioRows,
    1,
  );
  const sendsOff = results.filter((r) => r.rounds.some((x) => x.sends !== r.n));
  for (const r of sendsOff) {
    console.log(`note: ${r.mode} N=${r.n} sent ${r.rounds.map((x) => x.sends).join('/')} frames`);
  }
  for (const mode of ['corkboard', 'baseline'] as const) {
    const r = results.find((x) => x.mode === mode);
    if (r) console.log(`${mode}: ${r.rounds[0]!.frameBytes} bytes per message frame`);
  }
  const clock = Math.max(...results.map((r) => r.clockError));
  console.log(`clock error between processes <= ${ms(clock)} ms`);
  for (const s of skipped) console.log(`skipped: ${s}`);
}

// ---------------------------------------------------------------------------------------

// The run is bounded: nothing stuck may keep it (or a server child) alive.
const killChildren = () => {
  for (const child of children) child.kill('SIGKILL');
};
process.once('exit', killChildren);
setTimeout(() => {
  console.error(`bench exceeded ${LIMIT_MINUTES} minutes; giving up, reporting what it has`);
  report();
  killChildren();
  process.exit(1);
}, LIMIT_MINUTES * 60_000).unref();

const progress = (message: string) => console.error(`[live bench] ${message}`);

// Enough file descriptors for the largest run, in this process and the server children.
const needed = Math.max(...FANOUT_SIZES, BOARDS * PER_BOARD) + FD_MARGIN;
const initialLimit = openFilesLimit();
if (initialLimit !== null && initialLimit < needed && !process.env.BENCH_ULIMIT_RAISED) {
  progress(`ulimit -n is ${initialLimit}, ${needed} needed: raising it and starting again`);
  const raise = `ulimit -n ${needed} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  const again = spawnSync(
    'bash',
    ['-c', raise, 'bash', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, BENCH_ULIMIT_RAISED: '1' } },
  );
  process.exit(again.status ?? 1);
}
const started = performance.now();
progress(`latency: ${RATE}/s for ${LATENCY_SECONDS} s`);
let latency: LatencyResult | null = null;
latency = await measureLatency();
const fanout: FanoutResult[] = [];
const skipped: string[] = [];
const fdLimit = openFilesLimit();
for (const n of FANOUT_SIZES) {
  if (fdLimit !== null && n + FD_MARGIN > fdLimit) {
    skipped.push(
      `N=${n}: needs ${n + FD_MARGIN} open files per process, ulimit -n is ${fdLimit} ` +
        `(could not raise it)`,
    );
    continue;
  }
  for (const mode of ['corkboard', 'baseline'] as const) {
    progress(`fan-out: ${mode}, ${n} connections`);
    try {
      const result = await measureFanout(mode, n);
      fanout.push(result);
      const all = median(result.rounds.map((x) => x.toAllReceived));
      progress(
        `fan-out: ${mode}, ${n}: commit -> ALL ${ms(all)} ms (median), ` +
          `heap/conn ${kb(result.serverHeapPerConn)} KiB`,
      );
    } catch (error) {
      skipped.push(`${mode} N=${n}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
const steady: SteadyResult[] = [];
if (BOARDS * PER_BOARD === 0) {
  skipped.push('(d): no boards asked for');
} else if (fdLimit !== null && BOARDS * PER_BOARD + FD_MARGIN > fdLimit) {
  skipped.push(`(d): needs ${BOARDS * PER_BOARD + FD_MARGIN} open files, ulimit -n is ${fdLimit}`);
} else {
  for (const mode of ['corkboard', 'baseline'] as const) {
    progress(`steady: ${mode}, ${BOARDS} boards x ${PER_BOARD} subscribers`);
    try {
      steady.push(await measureSteady(mode));
    } catch (error) {
      skipped.push(`(d) ${mode}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
report();

/** Everything measured so far (also when the time limit cuts the run short). */
function report(): void {
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  console.log(
    `live benchmark, node ${process.version}, ${cpus().length} CPUs, load average ${load}, ` +
      `loopback, memory store, ${((performance.now() - started) / 1_000).toFixed(0)} s, ` +
      `ulimit -n ${fdLimit ?? 'unknown'}`,
  );
  console.log();
  if (latency) reportLatency(latency);
  console.log();
  reportFanout(fanout, skipped);
  console.log();
  reportSteady(steady);
  console.log();
  reportHeadline(fanout);
}
