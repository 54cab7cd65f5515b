/**
 * Live caches, two measurements.
 *
 * 1. Freshness and requests per change: client A's mutation -> client B's watched
 *    `Board` query updated, for Apollo Client and for urql Graphcache kept fresh by
 *    `@corkboard/client` (each riding its own graphql-ws link), ROUNDS rounds of every
 *    kind of change (edit, rename, move within and across columns, add, archive,
 *    column move), p50/p99 per kind, and the HTTP requests B sent per change. Baseline
 *    in the same run: the same change's arrival at a plain `boardChanges` subscriber
 *    (the SDK iterator alone): what the binding adds on top of the push itself.
 *
 * 2. Audience scale: AUDIENCE Apollo clients (the real cache logic, each with its own
 *    socket and watched `Board` query) on one board of a server running as its own
 *    process, CHANGES changes, in `data` mode and in `refetch` mode (invalidate and
 *    refetch): the server's CPU per change (from /proc) and HTTP requests per change.
 *
 *   npm run bench:clients          # ROUNDS=20 AUDIENCE=200 CHANGES=50
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { WebSocket } from 'ws';
import { createCorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import {
  AddCardDocument,
  ArchiveCardDocument,
  EditCardDocument,
  MoveCardDocument,
  MoveColumnDocument,
  RenameBoardDocument,
} from '../../src/sdk/generated/graphql.js';
import type { LiveMode } from '../../src/sdk/liveChanges.js';
import { expectSuccess } from '../../test/support/expectSuccess.js';
import {
  openApolloClient,
  openLiveCacheClient,
  type CacheLibrary,
  type LiveCacheClient,
  type WatchedBoard,
  plain,
} from '../../test/support/liveCaches.js';
import { startServerProcess } from '../../test/support/serverProcess.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../../test/support/server.js';
import { percentile, printTable } from './report.js';

/**
 * A board as every member sees it, as JSON: without the `__typename`s the caches add and
 * without `viewerRole`, which is each viewer's own (the live-cache tests check it per viewer).
 * Each cache is compared with the writer's fresh query of it, asked once per change.
 */
function sharedView(board: WatchedBoard | null | undefined): string {
  const { viewerRole: _own, ...shared } = (plain(board) ?? {}) as Record<string, unknown>;
  return JSON.stringify(shared);
}

// graphql-ws (the app clients' own socket) rejects a promise nobody holds when a socket
// that was reconnecting finds all its subscriptions gone (enisdenjo/graphql-ws#565): with
// hundreds of clients on a loaded machine some reconnect, and closing them hits it.
process.on('unhandledRejection', (reason) => {
  const close = reason as { code?: unknown; reason?: unknown } | null;
  if (close?.code === 1000 && close.reason === 'All Subscriptions Gone') return;
  throw reason;
});

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const AUDIENCE = Number(process.env.AUDIENCE ?? 200);
const CHANGES = Number(process.env.CHANGES ?? 50);
/** Distinct board members the audience's clients sign in as (round robin). */
const MEMBERS = Number(process.env.MEMBERS ?? 50);
/** `freshness`, `audience`, or both (unset). */
const ONLY = process.env.ONLY;

const KINDS = ['edit', 'rename', 'move within', 'move across', 'add', 'archive', 'column move'];
type Kind = (typeof KINDS)[number];

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** A board with two members, two columns and three cards. */
async function fixture(
  graphqlUrl: string,
  register: (name: string) => Promise<{ token: string }>,
  tag: string,
) {
  const alice = await register(`alice_${tag}`);
  const bob = await register(`bob_${tag}`);
  const writer = createCorkboardClient({ url: graphqlUrl, token: alice.token });
  const board = expectSuccess(
    await writer.createBoard({ input: { name: 'bench' } }),
    'CreateBoardSuccess',
  ).board;
  let version = expectSuccess(
    await writer.addMember({
      input: { boardId: board.id, username: `bob_${tag}`, expectedVersion: board.version },
    }),
    'AddMemberSuccess',
  ).board.version;
  const columns: string[] = [];
  for (const name of ['Todo', 'Doing']) {
    const added = expectSuccess(
      await writer.addColumn({ input: { boardId: board.id, name, expectedVersion: version } }),
      'AddColumnSuccess',
    );
    version = added.board.version;
    columns.push(added.column.id);
  }
  for (const title of ['one', 'two', 'three']) {
    await writer.addCard({ input: { columnId: columns[0]!, title } });
  }
  return { alice, bob, writer, boardId: board.id, columns };
}

/** Sends one change of `kind` through `a` (its own cache client), by what `a` shows. */
async function change(a: LiveCacheClient, kind: Kind, i: number, boardId: string) {
  const board = a.board()!;
  const [first, second] = board.columns;
  const cardsOf = (c: WatchedBoard['columns'][number]) => c.cards.edges.map((e) => e.node);
  const card = cardsOf(first!)[0] ?? cardsOf(second!)[0]!;
  switch (kind) {
    case 'edit':
      return a.mutate(EditCardDocument, {
        input: { cardId: card.id, expectedVersion: card.version, title: `t${i}` },
      });
    case 'rename':
      return a.mutate(RenameBoardDocument, {
        input: { boardId, name: `b${i}`, expectedVersion: board.version },
      });
    case 'move within': {
      const column = cardsOf(first!).length > 1 ? first! : second!;
      const [top, ...rest] = cardsOf(column);
      return a.mutate(MoveCardDocument, {
        input: {
          cardId: top!.id,
          toColumnId: column.id,
          afterCardId: rest.at(-1)!.id,
          expectedVersion: top!.version,
        },
      });
    }
    case 'move across': {
      const from = cardsOf(first!).length > 1 ? first! : second!;
      const to = from === first ? second! : first!;
      const moved = cardsOf(from)[0]!;
      return a.mutate(MoveCardDocument, {
        input: { cardId: moved.id, toColumnId: to.id, expectedVersion: moved.version },
      });
    }
    case 'add':
      return a.mutate(AddCardDocument, { input: { columnId: first!.id, title: `new ${i}` } });
    case 'archive': {
      const added = cardsOf(first!).find((c) => c.title === `new ${i - 1}`) ?? card;
      return a.mutate(ArchiveCardDocument, {
        input: { cardId: added.id, expectedVersion: added.version },
      });
    }
    case 'column move':
      return a.mutate(MoveColumnDocument, {
        input: { columnId: first!.id, expectedVersion: board.version },
      });
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

interface KindResult {
  /** A's mutation answered, ms after it was sent. */
  mutated: number[];
  /** CPU of this process (server and clients) from the mutation to both caches updated. */
  cpu: number[];
  updated: number[];
  received: number[];
  requests: number;
  changes: number;
}

async function freshness(s: TestServer, library: CacheLibrary) {
  const graphqlUrl = `${s.url}/graphql`;
  const f = await fixture(graphqlUrl, (name) => s.register(name), library);
  const a = await openLiveCacheClient(library, {
    graphqlUrl,
    token: f.alice.token,
    boardId: f.boardId,
  });
  const b = await openLiveCacheClient(library, {
    graphqlUrl,
    token: f.bob.token,
    boardId: f.boardId,
  });
  // The baseline: B's plain subscription, noting when each change arrives.
  const arrivals: number[] = [];
  const abort = new AbortController();
  const bobSdk = createCorkboardClient({
    url: graphqlUrl,
    token: f.bob.token,
    webSocketImpl: WebSocket,
  });
  const following = (async () => {
    for await (const _change of bobSdk.boardChanges(f.boardId, { signal: abort.signal })) {
      arrivals.push(performance.now());
    }
  })();
  while (s.app.live.stats().subscribers < 3) await new Promise((r) => setTimeout(r, 10));
  const results = new Map<Kind, KindResult>(
    KINDS.map((k) => [
      k,
      { mutated: [], cpu: [], updated: [], received: [], requests: 0, changes: 0 },
    ]),
  );
  let i = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of KINDS) {
      i++;
      const result = results.get(kind)!;
      const sent = b.requests.length;
      const arrived = arrivals.length;
      const seen = { a: a.applied.length, b: b.applied.length, history: b.history.length };
      const cpu = process.cpuUsage();
      const started = performance.now();
      await change(a, kind, i, f.boardId);
      result.mutated.push(performance.now() - started);
      // Nothing else runs until both bindings applied the change and the push arrived:
      // the fresh read that checks B comes after, and B's time is that of its emission.
      while (
        a.applied.length === seen.a ||
        b.applied.length === seen.b ||
        arrivals.length === arrived
      )
        await new Promise((r) => setTimeout(r, 1));
      result.cpu.push(cpuMs(process.cpuUsage(cpu)));
      result.received.push(arrivals[arrived]! - started);
      const fresh = sharedView(await f.writer.board({ id: f.boardId }));
      await b.waitForBoard((board) => sharedView(board) === fresh);
      await a.waitForBoard((board) => sharedView(board) === fresh);
      const shown = b.history
        .slice(seen.history)
        .find((entry) => sharedView(entry.board) === fresh)!;
      result.updated.push(shown.at - started);
      result.requests += b.requests.length - sent;
      result.changes++;
    }
  }
  await new Promise((r) => setTimeout(r, 300));
  abort.abort();
  await following;
  await a.close();
  await b.close();
  return results;
}

const cpuMs = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1000;

/** CPU time (user + system) of a process so far, in ms, from /proc. */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}

/** The bench server's admin token, for scraping its /metrics. */
const ADMIN_TOKEN = 'bench_clients_admin_token_0123456789abcdef';

/** The value of one series of the server's /metrics. */
async function metric(url: string, series: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  const line = (await response.text()).split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no series ${series}`);
  return Number(line.slice(series.length + 1));
}

/** Opens one client, again (up to 3 times) if opening it failed on a loaded machine. */
async function openWithRetry(open: () => Promise<LiveCacheClient>): Promise<LiveCacheClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (attempt >= 3) throw error;
      console.error(`opening a client failed (${String(error)}); again`);
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

async function audience(mode: LiveMode) {
  const server = await startServerProcess({
    env: {
      ...NO_CLIENT_LIMITS,
      ADMIN_TOKEN,
      // undici keeps an idle socket for the server's keep-alive hint less one second;
      // on a loaded machine the server's own timer can win that race and reset a socket
      // the client is reusing (ECONNRESET). Idle sockets live longer than the bench.
      KEEP_ALIVE_TIMEOUT_MS: String(10 * 60_000),
    },
  });
  try {
    const graphqlUrl = `${server.url}/graphql`;
    const anonymous = createCorkboardClient({ url: graphqlUrl });
    const register = async (username: string) => {
      const result = await anonymous.registerUser({
        input: { username, displayName: username },
      });
      return { token: expectSuccess(result, 'RegisterUserSuccess').token };
    };
    const f = await fixture(graphqlUrl, register, mode);
    // The audience: MEMBERS members of the board (bob and others), each with several clients.
    const tokens = [f.bob.token];
    let version = (await f.writer.board({ id: f.boardId }))!.version;
    for (let m = 1; m < Math.min(MEMBERS, AUDIENCE); m++) {
      const username = `member${m}_${mode}`;
      tokens.push((await register(username)).token);
      version = expectSuccess(
        await f.writer.addMember({
          input: { boardId: f.boardId, username, expectedVersion: version },
        }),
        'AddMemberSuccess',
      ).board.version;
    }
    const clients: LiveCacheClient[] = [];
    for (let n = 0; n < AUDIENCE; n += 20) {
      clients.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(20, AUDIENCE - n) }, (_, k) =>
            openWithRetry(() =>
              openApolloClient({
                graphqlUrl,
                token: tokens[(n + k) % tokens.length]!,
                boardId: f.boardId,
                mode,
                viewerId: null,
              }),
            ),
          ),
        )),
      );
    }
    const a = await openWithRetry(() =>
      openApolloClient({ graphqlUrl, token: f.alice.token, boardId: f.boardId, mode }),
    );
    const groups = await metric(server.url, 'corkboard_live_groups');
    const executionsBefore = await metric(server.url, 'corkboard_live_group_executions');
    const sent = clients.reduce((n, c) => n + c.requests.length, 0);
    const cpuBefore = cpuMsOf(server.pid);
    const started = performance.now();
    for (let i = 0; i < CHANGES; i++) {
      await change(a, i % 2 === 0 ? 'edit' : 'move across', i, f.boardId);
      const fresh = sharedView(await f.writer.board({ id: f.boardId }));
      await Promise.all(
        clients.map((c) => c.waitForBoard((board) => sharedView(board) === fresh, 120_000)),
      );
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuMsOf(server.pid) - cpuBefore;
    const executions =
      (await metric(server.url, 'corkboard_live_group_executions')) - executionsBefore;
    // A client too slow to read its socket is dropped and resubscribes with a replay.
    const slowConsumers = await metric(server.url, 'corkboard_live_slow_consumers');
    const requests = clients.reduce((n, c) => n + c.requests.length, 0) - sent;
    await Promise.all([a, ...clients].map((c) => c.close()));
    // The writer's own requests (mutation, fresh read) are in the CPU of both modes alike.
    return {
      mode,
      cpuPerChange: cpu / CHANGES,
      requestsPerChange: requests / CHANGES,
      groups,
      executionsPerChange: executions / CHANGES,
      slowConsumers,
      seconds,
    };
  } finally {
    await server.kill();
  }
}

function printFreshness(byLibrary: Map<CacheLibrary, Map<Kind, KindResult>>) {
  const ms = (values: number[], q: number) =>
    percentile(
      [...values].sort((x, y) => x - y),
      q,
    ).toFixed(1);
  console.log(
    `\n${ROUNDS} rounds of ${KINDS.length} kinds per library, server and clients in this process; times from A's mutation sent; CPU: this process's, from the mutation to both caches updated; load average ${load()}\n`,
  );
  const rows: string[][] = [];
  for (const [library, results] of byLibrary) {
    for (const [kind, r] of results) {
      rows.push([
        library,
        kind,
        `${ms(r.mutated, 0.5)} ms`,
        `${ms(r.received, 0.5)} ms`,
        `${ms(r.updated, 0.5)} ms`,
        `${ms(r.updated, 0.99)} ms`,
        `${ms(r.cpu, 0.5)} ms`,
        (r.requests / r.changes).toFixed(2),
      ]);
    }
  }
  printTable(
    [
      'client',
      'change',
      'A answered p50',
      'push received p50',
      'B updated p50',
      'p99',
      'CPU p50',
      'B requests/change',
    ],
    rows,
    2,
  );
  console.log('');
  for (const [library, results] of byLibrary) {
    const all = [...results.values()];
    const updated = all.flatMap((r) => r.updated);
    const requests = all.reduce((n, r) => n + r.requests, 0);
    const changes = all.reduce((n, r) => n + r.changes, 0);
    const mutated = all.flatMap((r) => r.mutated);
    const received = all.flatMap((r) => r.received);
    const cpu = all.flatMap((r) => r.cpu);
    console.log(`freshness (${library}): p50 ${ms(updated, 0.5)} ms, p99 ${ms(updated, 0.99)} ms`);
    console.log(
      `  of which A's mutation answered p50 ${ms(mutated, 0.5)} ms, the push received p50 ${ms(received, 0.5)} ms; CPU of the whole process per change p50 ${ms(cpu, 0.5)} ms`,
    );
    console.log(`requests per change (${library}): ${(requests / changes).toFixed(2)}`);
  }
}

if (ONLY !== 'audience') {
  const s = await startTestServer({
    env: { ...NO_CLIENT_LIMITS },
  });
  const byLibrary = new Map<CacheLibrary, Map<Kind, KindResult>>();
  try {
    for (const library of ['apollo', 'urql'] as const)
      byLibrary.set(library, await freshness(s, library));
  } finally {
    await s.close();
  }
  printFreshness(byLibrary);
}

if (ONLY !== 'freshness') {
  const data = await audience('data');
  const refetch = await audience('refetch');
  console.log(
    `\n${AUDIENCE} live Apollo clients (${Math.min(MEMBERS, AUDIENCE)} members) on one board, ${CHANGES} changes (edits and moves across), server in its own process; load average ${load()}\n`,
  );
  printTable(
    [
      'mode',
      'server CPU/change',
      'HTTP requests/change',
      'groups',
      'executions/change',
      'slow consumers',
      'wall',
    ],
    [data, refetch].map((r) => [
      r.mode,
      `${r.cpuPerChange.toFixed(1)} ms`,
      r.requestsPerChange.toFixed(2),
      String(r.groups),
      r.executionsPerChange.toFixed(2),
      String(r.slowConsumers),
      `${r.seconds.toFixed(1)} s`,
    ]),
    1,
  );
  console.log(
    `\nserver CPU per change data/refetch at ${AUDIENCE} clients: ${(data.cpuPerChange / refetch.cpuPerChange).toFixed(3)}`,
  );
}
process.exit(0);
