/**
 * Big and busy columns: `addCard` latency by column size, alone and under a burst.
 *
 *   npm run bench:aggregates
 *   (BENCH_SIZES=1,1000,10000,50000, BENCH_SEQUENTIAL=50, BENCH_WRITERS=50,
 *   BENCH_PER_WRITER=2, BENCH_CELL_SECONDS=60, BENCH_WARMUP=30)
 *
 * For each column size N a fresh server (`aggregatesServer.ts`, the real app on the
 * memory store, a child process) gets a board with one column, seeded with N cards
 * straight through the event store (large commits, then projected), and a second
 * board of another user, where BENCH_WARMUP `addCard`s warm the new process up (not
 * counted). Then, over HTTP:
 * - sequential: BENCH_SEQUENTIAL `addCard`s at the end of the column, one at a time;
 * - concurrent: BENCH_WRITERS writers each sending BENCH_PER_WRITER `addCard`s one
 *   after the other, all writers at once; meanwhile the other user sends `{ me { id } }`
 *   back to back (its latency p99 is the "other board" column).
 * - restart: the server restarts on the same storage (nothing cached; the event store and
 *   the column's snapshot kept), then one `addCard`: a cold start from the snapshot.
 * The "first ms" column is the cell's first request: for `sequential`, the first command
 * on the column in that process (nothing cached, no snapshot yet: it folds the whole
 * stream); for `restart`, the same from the snapshot.
 * An answer that is not `AddCardSuccess` (an error member, a GraphQL error, an HTTP
 * failure) is a failure. Each cell has BENCH_CELL_SECONDS: requests still pending then
 * are aborted and counted as timed out, and the rest of that size is skipped (the
 * server is killed: a synchronous fold would hold it long after).
 *
 * Prints one row per size and mode, the ratio of the sequential p50 at 10,000 cards to
 * the one at 1 card, and the load average before and after. The machine is shared:
 * compare numbers of the same run only.
 *
 * Then the command alone, without HTTP or projection, where noise hides less: one
 * process, a column of each size, BENCH_COMMANDS `addCard`s on each in turn
 * (interleaved, so load changes hit every size alike); the median per size and the
 * ratio of 10,000 cards to 1.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBoardCommands } from '../../src/boards/commands.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { seedCards } from '../../test/support/seedCards.js';
import type { AggregatesServerRequest } from './aggregatesServer.js';
import { percentile, printTable } from './report.js';

const SIZES = (process.env.BENCH_SIZES ?? '1,1000,10000,50000').split(',').map(Number);
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 50);
const WRITERS = Number(process.env.BENCH_WRITERS ?? 50);
const PER_WRITER = Number(process.env.BENCH_PER_WRITER ?? 2);
const CELL_SECONDS = Number(process.env.BENCH_CELL_SECONDS ?? 60);
/** `addCard`s on the other board before measuring, not counted. */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 30);
/** In-process `addCard`s per column size for the command-only medians. */
const COMMANDS = Number(process.env.BENCH_COMMANDS ?? 300);
/** Setting up a size (seeding and projecting N cards) gets this long. */
const SEED_SECONDS = 600;

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVER_ENTRY = resolve(HERE, 'aggregatesServer.ts');

interface Server {
  url: string;
  child: ChildProcess;
  seed(boardId: string, columnId: string, count: number): Promise<number>;
  /** Restarts the app on the same storage; `url` is the new one's afterwards. */
  restart(columnId: string): Promise<void>;
}

async function startServer(): Promise<Server> {
  const child = fork(SERVER_ENTRY, [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  type Answer = { seconds?: number; url?: string; error?: string };
  const pending = new Map<number, (answer: Answer) => void>();
  let nextId = 1;
  const url = await new Promise<string>((resolveUrl, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    child.on('message', (message: Answer & { type?: string; id?: number }) => {
      if (message.type === 'ready') resolveUrl(message.url!);
      else pending.get(message.id!)?.(message);
    });
  });
  const ask = async (request: AggregatesServerRequest): Promise<Answer> => {
    const answer = await new Promise<Answer>((done, fail) => {
      pending.set(request.id, done);
      setTimeout(() => fail(new Error(`${request.type} timed out`)), SEED_SECONDS * 1_000).unref();
      child.send(request);
    });
    if (answer.error) throw new Error(answer.error);
    return answer;
  };
  const server: Server = {
    url,
    child,
    async seed(boardId, columnId, count) {
      return (await ask({ id: nextId++, type: 'seed', boardId, columnId, count })).seconds!;
    },
    async restart(columnId) {
      server.url = (await ask({ id: nextId++, type: 'restart', columnId })).url!;
    },
  };
  return server;
}

type Outcome = 'ok' | 'failed' | 'timedOut';

async function gql(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token: string | null,
  signal: AbortSignal,
): Promise<{ data?: any; errors?: { message: string }[] }> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
    signal,
  });
  return (await response.json()) as { data?: any; errors?: { message: string }[] };
}

const ADD_CARD = `mutation ($input: AddCardInput!) {
  addCard(input: $input) { __typename ... on AddCardSuccess { card { id } } ... on Error { code message } }
}`;

async function register(url: string, username: string): Promise<string> {
  const result = await gql(
    url,
    `mutation ($input: RegisterUserInput!) {
      registerUser(input: $input) { ... on RegisterUserSuccess { token } }
    }`,
    { input: { username, displayName: username } },
    null,
    AbortSignal.timeout(30_000),
  );
  const token = result.data?.registerUser?.token as string | undefined;
  if (!token) throw new Error(`register ${username}: ${JSON.stringify(result)}`);
  return token;
}

async function boardWithColumn(
  url: string,
  token: string,
): Promise<{ board: string; column: string }> {
  const signal = AbortSignal.timeout(30_000);
  const created = await gql(
    url,
    `mutation { createBoard(input: { name: "bench" }) { ... on CreateBoardSuccess { board { id version } } } }`,
    {},
    token,
    signal,
  );
  const board = created.data.createBoard.board as { id: string; version: number };
  const added = await gql(
    url,
    `mutation ($input: AddColumnInput!) { addColumn(input: $input) { ... on AddColumnSuccess { column { id } } } }`,
    { input: { boardId: board.id, name: 'Backlog', expectedVersion: board.version } },
    token,
    signal,
  );
  return { board: board.id, column: added.data.addColumn.column.id as string };
}

interface Cell {
  /** In the order sent (one at a time) or answered (concurrent). */
  latencies: number[];
  outcomes: Record<Outcome, number>;
  failures: Map<string, number>;
}

function newCell(): Cell {
  return { latencies: [], outcomes: { ok: 0, failed: 0, timedOut: 0 }, failures: new Map() };
}

/** One timed `addCard`, recorded in `cell`. */
async function addCard(
  url: string,
  token: string,
  columnId: string,
  title: string,
  cell: Cell,
  deadline: AbortSignal,
): Promise<void> {
  const started = performance.now();
  let outcome: Outcome = 'ok';
  let failure: string | null = null;
  try {
    const result = await gql(url, ADD_CARD, { input: { columnId, title } }, token, deadline);
    const payload = result.data?.addCard as { __typename?: string; code?: string } | undefined;
    if (payload?.__typename !== 'AddCardSuccess') {
      outcome = 'failed';
      failure = payload?.code ?? result.errors?.[0]?.message ?? 'no answer';
    }
  } catch (error) {
    outcome = deadline.aborted ? 'timedOut' : 'failed';
    failure = outcome === 'failed' ? String(error) : null;
  }
  cell.outcomes[outcome] += 1;
  if (failure) cell.failures.set(failure, (cell.failures.get(failure) ?? 0) + 1);
  if (outcome !== 'timedOut') cell.latencies.push(performance.now() - started);
}

interface Row {
  size: number;
  mode: string;
  cell: Cell;
  meP99: number | null;
  note: string;
}

async function measureSize(size: number): Promise<Row[]> {
  const server = await startServer();
  const rows: Row[] = [];
  try {
    const writer = await register(server.url, 'writer');
    const other = await register(server.url, 'other');
    const { board, column } = await boardWithColumn(server.url, writer);
    const otherBoard = await boardWithColumn(server.url, other);
    const seedSeconds = await server.seed(board, column, size);
    const seeded = `seeded in ${seedSeconds.toFixed(1)} s`;
    // Warm the new server process up (JIT, caches) on the other board, so that every size's
    // numbers are of a warm process, not only those of sizes whose seeding warmed it.
    const warmUp = AbortSignal.timeout(CELL_SECONDS * 1_000);
    for (let i = 0; i < WARMUP; i += 1) {
      await addCard(server.url, other, otherBoard.column, `warm ${i}`, newCell(), warmUp);
    }

    const sequential = newCell();
    let deadline = AbortSignal.timeout(CELL_SECONDS * 1_000);
    for (let i = 0; i < SEQUENTIAL && !deadline.aborted; i += 1) {
      await addCard(server.url, writer, column, `seq ${i}`, sequential, deadline);
    }
    const skipped = SEQUENTIAL - Object.values(sequential.outcomes).reduce((a, b) => a + b, 0);
    sequential.outcomes.timedOut += skipped;
    rows.push({ size, mode: 'sequential', cell: sequential, meP99: null, note: seeded });
    if (deadline.aborted) {
      rows.push({
        size,
        mode: `${WRITERS} writers`,
        cell: newCell(),
        meP99: null,
        note: 'skipped',
      });
      return rows;
    }

    const burst = newCell();
    deadline = AbortSignal.timeout(CELL_SECONDS * 1_000);
    const meLatencies: number[] = [];
    let bursting = true;
    const meLoop = (async () => {
      while (bursting && !deadline.aborted) {
        const started = performance.now();
        try {
          await gql(server.url, '{ me { id } }', {}, other, deadline);
          meLatencies.push(performance.now() - started);
        } catch {
          meLatencies.push(performance.now() - started);
        }
      }
    })();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let i = 0; i < PER_WRITER; i += 1) {
          if (deadline.aborted) {
            burst.outcomes.timedOut += 1;
            continue;
          }
          await addCard(server.url, writer, column, `w${w} ${i}`, burst, deadline);
        }
      }),
    );
    bursting = false;
    await meLoop;
    meLatencies.sort((a, b) => a - b);
    rows.push({
      size,
      mode: `${WRITERS} writers`,
      cell: burst,
      meP99: meLatencies.length ? percentile(meLatencies, 0.99) : null,
      note: '',
    });

    await server.restart(column);
    const restarted = newCell();
    deadline = AbortSignal.timeout(CELL_SECONDS * 1_000);
    await addCard(server.url, writer, column, 'after restart', restarted, deadline);
    rows.push({ size, mode: 'restart', cell: restarted, meP99: null, note: '' });
    return rows;
  } catch (error) {
    rows.push({ size, mode: 'setup', cell: newCell(), meP99: null, note: String(error) });
    return rows;
  } finally {
    server.child.kill('SIGKILL');
  }
}

const fmt = (ms: number | null) => (ms === null || Number.isNaN(ms) ? '-' : ms.toFixed(1));
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

console.log(
  `aggregates bench: sizes ${SIZES.join(', ')}; ${SEQUENTIAL} sequential addCard; ` +
    `${WRITERS} writers x ${PER_WRITER}; ${CELL_SECONDS} s per cell; ${cpus().length} cpus`,
);
console.log(`load average before: ${load()}`);
const rows: Row[] = [];
for (const size of SIZES) {
  const measured = await measureSize(size);
  rows.push(...measured);
  console.log(`  ${size} cards done (load ${load()})`);
}

const body = rows.map(({ size, mode, cell, meP99, note }) => {
  const sorted = [...cell.latencies].sort((a, b) => a - b);
  const failures = [...cell.failures].map(([what, n]) => `${n}x ${what.slice(0, 60)}`);
  return [
    String(size),
    mode,
    String(cell.outcomes.ok),
    String(cell.outcomes.failed),
    String(cell.outcomes.timedOut),
    fmt(percentile(sorted, 0.5)),
    fmt(percentile(sorted, 0.99)),
    fmt(mode === 'sequential' || mode === 'restart' ? (cell.latencies[0] ?? null) : null),
    fmt(meP99),
    [note, ...failures].filter(Boolean).join('; '),
  ];
});
console.log('');
printTable(
  [
    'cards',
    'mode',
    'ok',
    'failed',
    'timed out',
    'p50 ms',
    'p99 ms',
    'first ms',
    'me p99 ms',
    'notes',
  ],
  body,
  2,
);
const p50 = (size: number) => {
  const row = rows.find((r) => r.size === size && r.mode === 'sequential');
  if (!row || row.cell.outcomes.timedOut > 0 || row.cell.latencies.length === 0) return null;
  return percentile(
    [...row.cell.latencies].sort((a, b) => a - b),
    0.5,
  );
};
const base = p50(1);
const big = p50(10_000);
console.log('');
console.log(
  `ratio p50@10,000 / p50@1 (sequential): ${
    base !== null && big !== null
      ? (big / base).toFixed(2)
      : 'n/a (a cell timed out or was not run)'
  }`,
);

/** Median in-process `addCard` latency per column size, sizes interleaved. */
async function commandOnly(sizes: readonly number[]): Promise<Map<number, number>> {
  const store = new MemoryEventStore();
  const commands = createBoardCommands({ store, now: () => new Date(), newId: randomUUID });
  const ok = <T>(result: { ok: true; value: T } | { ok: false; error: unknown }): T => {
    if (!result.ok) throw new Error(`command failed: ${JSON.stringify(result.error)}`);
    return result.value;
  };
  const actor = ok(await commands.registerUser(null, { username: 'bench', displayName: 'Bench' }))
    .user.id;
  const columns = new Map<number, string>();
  for (const size of sizes) {
    const { board } = ok(await commands.createBoard(actor, { name: `${size}` }));
    const input = { boardId: board.id, name: 'Backlog', expectedVersion: board.version };
    const { column } = ok(await commands.addColumn(actor, input));
    await seedCards(store, { boardId: board.id, columnId: column.id, count: size });
    // The first command folds the column; not counted.
    ok(await commands.addCard(actor, { columnId: column.id, title: 'warm' }));
    columns.set(size, column.id);
  }
  const latencies = new Map(sizes.map((size) => [size, [] as number[]]));
  for (let i = 0; i < COMMANDS; i += 1) {
    for (const [size, columnId] of columns) {
      const started = performance.now();
      ok(await commands.addCard(actor, { columnId, title: `c${i}` }));
      latencies.get(size)!.push(performance.now() - started);
    }
  }
  return new Map(
    [...latencies].map(([size, ms]) => [
      size,
      percentile(
        ms.sort((a, b) => a - b),
        0.5,
      ),
    ]),
  );
}

const medians = await commandOnly([...new Set([1, 10_000, ...SIZES])].sort((a, b) => a - b));
console.log('');
console.log(
  `addCard alone (in process, no HTTP, median of ${COMMANDS}): ` +
    [...medians]
      .map(([size, ms]) => `${size.toLocaleString('en-US')} cards ${ms.toFixed(3)} ms`)
      .join(', '),
);
console.log(
  `ratio median@10,000 / median@1 (command alone): ${(medians.get(10_000)! / medians.get(1)!).toFixed(2)}`,
);
console.log(`load average after: ${load()}`);
