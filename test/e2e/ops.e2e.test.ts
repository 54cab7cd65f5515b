import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type Client } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { EventStore } from '../../src/eventstore/types.js';
import { HealthReasonCode } from '../../src/ops/health.js';
import type { ChangeLog } from '../../src/projector/types.js';
import { RebuildCancelledError } from '../../src/projector/projectorStatus.js';
import { openMemoryStorage, type Storage } from '../../src/storage.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { until } from '../support/until.js';

const STATUS = `{ projectorStatus {
  activeGeneration checkpoint head commitsBehind leaseHolder instance gapsDetected
  loop { state } follower { state }
  projections { name checkpoint eventsProcessed activeGeneration leaseHolder errors { message } }
  rebuild { id state processed total } } }`;
const REBUILD = `mutation { rebuildReadModels { __typename
  ... on Error { code message }
  ... on RebuildReadModelsSuccess { rebuild { id state } }
  ... on RebuildInProgressError { rebuild { id } } } }`;
const CANCEL = `mutation { cancelRebuild { __typename ... on Error { code }
  ... on CancelRebuildSuccess { cancelled rebuild { id state } } } }`;

interface RebuildView {
  id: string;
  state: string;
  processed: number;
  total: number;
}

/** Runs until `check` holds, or fails after `timeoutMs`. */

/** One subscription over graphql-ws, collecting what it yields. */
function subscribeWs(
  s: TestServer,
  query: string,
  token?: string,
  variables: Record<string, unknown> = {},
) {
  const client: Client = createClient({
    url: s.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
  const results: { data?: any; errors?: readonly { message: string; extensions?: any }[] }[] = [];
  let failure: unknown;
  let completed = false;
  client.subscribe(
    { query, variables },
    {
      next: (r) => void results.push(r as (typeof results)[number]),
      error: (e) => void (failure = e),
      complete: () => void (completed = true),
    },
  );
  return {
    results,
    get failure() {
      return failure;
    },
    get completed() {
      return completed;
    },
    dispose: () => client.dispose(),
  };
}

describe('operations (memory store)', () => {
  const servers: TestServer[] = [];
  const cleanups: (() => unknown)[] = [];
  const serve = async (options: Parameters<typeof startTestServer>[0] = {}) => {
    const s = await startTestServer(options);
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    for (const s of servers.splice(0)) await s.close();
  });

  const createBoardAndColumn = async (s: TestServer, token: string) => {
    const board = await s.gql(
      `mutation { createBoard(input: { name: "Ops" }) { ... on CreateBoardSuccess { board { id } } } }`,
      {},
      token,
    );
    const boardId = board.data!.createBoard.board.id as string;
    const column = await s.gql(
      `mutation ($b: ID!) { addColumn(input: { boardId: $b, name: "Todo", expectedVersion: 1 }) {
        ... on AddColumnSuccess { column { id } } } }`,
      { b: boardId },
      token,
    );
    return { boardId, columnId: column.data!.addColumn.column.id as string };
  };
  const addCard = (s: TestServer, token: string, columnId: string, title: string) =>
    s.gql(
      `mutation ($c: ID!, $t: String!) { addCard(input: { columnId: $c, title: $t }) { __typename } }`,
      { c: columnId, t: title },
      token,
    );

  it("answers with keys in the order of the query's selection", async () => {
    const s = await serve();
    const alice = await s.register('alice');
    await createBoardAndColumn(s, alice.token);
    const result = await s.gql(
      `{ boards { version name id columns { name wipLimit id version } } me { username id displayName } }`,
      {},
      alice.token,
    );
    expect(Object.keys(result.data!)).toEqual(['boards', 'me']);
    const board = result.data!.boards[0];
    expect(Object.keys(board)).toEqual(['version', 'name', 'id', 'columns']);
    expect(Object.keys(board.columns[0])).toEqual(['name', 'wipLimit', 'id', 'version']);
    expect(Object.keys(result.data!.me)).toEqual(['username', 'id', 'displayName']);
  });

  it('refuses the admin query, mutations and subscription to anonymous callers, users and wrong tokens', async () => {
    const s = await serve();
    const alice = await s.register('alice');
    const wrong = 'x'.repeat(40);
    // A token that is neither the admin's nor a user's: the whole request is unauthenticated.
    for (const operation of [STATUS, '{ projections { name } }', REBUILD, CANCEL]) {
      const refused = await s.gql(operation, {}, wrong);
      expect(refused.data ?? null).toBeNull();
      expect(refused.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    for (const token of [undefined, alice.token]) {
      const query = await s.gql(STATUS, {}, token);
      expect(query.data).toEqual({ projectorStatus: null });
      expect(query.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const projections = await s.gql('{ projections { name } }', {}, token);
      expect(projections.data).toEqual({ projections: null });
      expect(projections.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      for (const mutation of [REBUILD, CANCEL]) {
        const result = await s.gql(mutation, {}, token);
        const payload = Object.values(result.data!)[0] as { __typename: string; code: string };
        expect(payload.__typename).toBe(token ? 'ForbiddenError' : 'UnauthenticatedError');
      }
      const subscription = subscribeWs(s, 'subscription { projectorStatus { head } }', token);
      cleanups.push(subscription.dispose);
      await until(() => subscription.failure !== undefined || subscription.completed);
      // Refused before its stream starts: one graphql-ws `error` message, no result.
      expect(subscription.results).toEqual([]);
      const errors = subscription.failure as readonly { extensions?: { code?: string } }[];
      expect(errors.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    }
    // Nothing was started by all of that.
    const status = await s.gql(STATUS, {}, s.app.admin.token);
    expect(status.data!.projectorStatus.rebuild).toBeNull();
  });

  it('shows an admin each projection with checkpoint, events processed, generation and lease holder', async () => {
    const s = await serve();
    const alice = await s.register('alice');
    const { columnId } = await createBoardAndColumn(s, alice.token);
    await addCard(s, alice.token, columnId, 'one');
    const status = (await s.gql(STATUS, {}, s.app.admin.token)).data!.projectorStatus;
    expect(status.head).toBe(4);
    expect(status.checkpoint).toBe(4);
    expect(status.commitsBehind).toBe(0);
    expect(status.leaseHolder).toBe(status.instance);
    expect(status.loop.state).toBe('RUNNING');
    expect(status.follower.state).toBe('RUNNING');
    expect(status.gapsDetected).toBe(0);
    const byName = Object.fromEntries(
      (status.projections as { name: string }[]).map((p) => [p.name, p]),
    );
    expect(Object.keys(byName).sort()).toEqual([
      'boardPlacements',
      'boards',
      'cards',
      'columns',
      'sessions',
      'users',
    ]);
    expect(byName.cards).toMatchObject({
      checkpoint: 4,
      eventsProcessed: 1,
      activeGeneration: status.activeGeneration,
      leaseHolder: status.instance,
      errors: [],
    });
    expect(byName.users).toMatchObject({ eventsProcessed: 1 });
  });

  it('rebuilds the memory store while writers and readers go on: no read sees a partial view, the result equals a fold of the events', async () => {
    const s = await serve();
    const alice = await s.register('alice');
    const { boardId, columnId } = await createBoardAndColumn(s, alice.token);
    // One column per concurrent writer: writes to one column serialize on its stream.
    const columns = [columnId];
    for (let version = 2; columns.length < 10; version++) {
      const r = await s.gql(
        `mutation ($b: ID!, $v: Int!) { addColumn(input: { boardId: $b, name: "C", expectedVersion: $v }) {
          ... on AddColumnSuccess { column { id } } } }`,
        { b: boardId, v: version },
        alice.token,
      );
      columns.push(r.data!.addColumn.column.id as string);
    }
    // A history worth replaying: 300 cards, 10 at a time (one per column).
    for (let i = 0; i < 300; i += 10) {
      const added = await Promise.all(
        columns.map((c, j) => addCard(s, alice.token, c, `seed ${i + j}`)),
      );
      for (const r of added) {
        expect(r).toEqual({ data: { addCard: { __typename: 'AddCardSuccess' } } });
      }
    }
    const before = (await s.gql(STATUS, {}, s.app.admin.token)).data!.projectorStatus;
    const admin = subscribeWs(
      s,
      'subscription { projectorStatus { activeGeneration rebuild { id state processed total } } }',
      s.app.admin.token,
    );
    cleanups.push(admin.dispose);

    let writing = true;
    let confirmed = 300;
    const writers = columns.slice(0, 3).map((column, w) =>
      (async () => {
        for (let n = 0; writing; n++) {
          const r = await addCard(s, alice.token, column, `live ${w}-${n}`);
          expect(r.data?.addCard.__typename).toBe('AddCardSuccess');
          confirmed++;
        }
      })(),
    );
    // Every read must show at least the cards confirmed before it was sent.
    const shortfalls: string[] = [];
    let reads = 0;
    let reading = true;
    const readers = Array.from({ length: 2 }, () =>
      (async () => {
        while (reading) {
          const floor = confirmed;
          const r = await s.gql(`{ boards { columns { cardCount } } }`, {}, alice.token);
          const counts = (r.data?.boards[0]?.columns ?? []) as { cardCount: number }[];
          const count = counts.reduce((sum, c) => sum + c.cardCount, 0);
          reads++;
          if (counts.length !== 10 || count < floor) {
            shortfalls.push(`saw ${count} cards in ${counts.length} columns, ${floor} confirmed`);
          }
        }
      })(),
    );

    const started = await s.gql(REBUILD, {}, s.app.admin.token);
    expect(started.data!.rebuildReadModels.__typename).toBe('RebuildReadModelsSuccess');
    const id = started.data!.rebuildReadModels.rebuild.id as string;
    const second = await s.gql(REBUILD, {}, s.app.admin.token);
    // Unless the first finished in between, a second request is refused with a typed error.
    if (second.data!.rebuildReadModels.__typename !== 'RebuildReadModelsSuccess') {
      expect(second.data!.rebuildReadModels).toMatchObject({
        __typename: 'RebuildInProgressError',
        code: 'REBUILD_IN_PROGRESS',
        rebuild: { id },
      });
    }
    const rebuildOf = (r: (typeof admin.results)[number]) =>
      r.data?.projectorStatus?.rebuild as RebuildView | null | undefined;
    await until(() => admin.results.some((r) => rebuildOf(r)?.state === 'SUCCEEDED'), 30_000);
    // Keep writing a little after the switch, onto the new generation.
    await sleep(200);
    writing = false;
    await Promise.all(writers);
    reading = false;
    await Promise.all(readers);

    expect(shortfalls).toEqual([]);
    expect(reads).toBeGreaterThan(5);
    const done = admin.results.map(rebuildOf).find((r) => r?.id === id && r.state === 'SUCCEEDED');
    expect(done!.processed).toBe(done!.total);
    expect(done!.processed).toBeGreaterThanOrEqual(312);
    const after = (await s.gql(STATUS, {}, s.app.admin.token)).data!.projectorStatus;
    expect(after.activeGeneration).not.toBe(before.activeGeneration);
    expect(after.commitsBehind).toBe(0);

    // The read model equals a fold of the events: every CardCreated title, in its column, once.
    const commits = await s.storage.store.readAll({ limit: 100_000 });
    const folded = commits
      .flatMap((c) => c.events)
      .filter((e) => e.type === 'CardCreated')
      .map((e) => (e.data as { title: string }).title)
      .sort();
    expect(folded.length).toBe(confirmed);
    const read = await s.gql(
      `{ boards { columns { cards(first: 500) { edges { node { title } } } } } }`,
      {},
      alice.token,
    );
    const shown = (
      read.data!.boards[0].columns as { cards: { edges: { node: { title: string } }[] } }[]
    )
      .flatMap((c) => c.cards.edges.map((e) => e.node.title))
      .sort();
    expect(shown).toEqual(folded);
  }, 90_000);

  it('refuses a second rebuild while one runs, then cancels it: reads stay on the old generation', async () => {
    // A store whose history reads slowly, so the rebuild is surely running meanwhile.
    const storage = openMemoryStorage({});
    cleanups.push(() => storage.close());
    const inner = storage.store;
    const store: EventStore = {
      append: (r, o) => inner.append(r, o),
      readStream: (st, o) => inner.readStream(st, o),
      readStreamBackward: (st, o) => inner.readStreamBackward(st, o),
      streamVersion: (st, o) => inner.streamVersion(st, o),
      idempotentResult: (k, f, o) => inner.idempotentResult(k, f, o),
      readAll: async (o) => {
        await sleep(50);
        return inner.readAll(o);
      },
      headPosition: () => inner.headPosition(),
      subscribe: (o) => inner.subscribe(o),
      archiveStreams: (st, o) => inner.archiveStreams(st, o),
      restoreStreams: (st, o) => inner.restoreStreams(st, o),
      close: () => inner.close(),
    };
    const s = await serve({ storage: { ...storage, store } });
    const alice = await s.register('alice');
    const { columnId } = await createBoardAndColumn(s, alice.token);
    for (let i = 0; i < 20; i++) await addCard(s, alice.token, columnId, `c${i}`);
    const generation = (await s.storage.projector.readModels.active()).generation;
    const rebuild = s.app.projector.startRebuild({ batchSize: 1 });
    const outcome = new Promise<unknown>((resolve) => {
      const poll = setInterval(() => {
        void s.app.projector.lag().then((l) => {
          if (l.rebuild?.state !== 'running') {
            clearInterval(poll);
            resolve(l.rebuild);
          }
        });
      }, 5);
    });
    const second = await s.gql(REBUILD, {}, s.app.admin.token);
    expect(second.data!.rebuildReadModels).toMatchObject({
      __typename: 'RebuildInProgressError',
      code: 'REBUILD_IN_PROGRESS',
      rebuild: { id: rebuild.id },
    });
    const cancelled = await s.gql(CANCEL, {}, s.app.admin.token);
    expect(cancelled.data!.cancelRebuild).toMatchObject({
      __typename: 'CancelRebuildSuccess',
      cancelled: true,
      rebuild: { id: rebuild.id },
    });
    expect(await outcome).toMatchObject({ id: rebuild.id, state: 'cancelled' });
    expect((await s.storage.projector.readModels.active()).generation).toBe(generation);
    // A cancelled rebuild leaves nothing running: the next one starts and completes.
    await expect(s.app.projector.rebuild()).resolves.toMatchObject({ from: generation });
    const again = await s.gql(CANCEL, {}, s.app.admin.token);
    expect(again.data!.cancelRebuild.cancelled).toBe(false);
  });

  it('rejects a direct rebuild cancelled through its signal with RebuildCancelledError', async () => {
    const s = await serve();
    const alice = await s.register('alice');
    await createBoardAndColumn(s, alice.token);
    const abort = new AbortController();
    abort.abort();
    await expect(s.app.projector.rebuild({ signal: abort.signal })).rejects.toBeInstanceOf(
      RebuildCancelledError,
    );
  });

  it('/readyz answers 503 while the change-log follower is stopped or failing, and 200 once it recovers', async () => {
    let failTails = false;
    const storage: Storage = openMemoryStorage({});
    const inner = storage.projector.changeLog;
    const changeLog: ChangeLog = {
      record: (e) => inner.record(e),
      recordMany: (e) => inner.recordMany(e),
      read: (a, o) => inner.read(a, o),
      head: () => inner.head(),
      tail: (after) => {
        if (failTails) throw new Error('change log unreachable (test)');
        return inner.tail(after);
      },
    };
    const s = await serve({
      storage: { ...storage, projector: { ...storage.projector, changeLog } },
    });
    cleanups.push(() => storage.close());
    const probe = async (path: string) => {
      const response = await fetch(`${s.url}${path}`);
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    };
    expect(await probe('/livez')).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await probe('/readyz')).status).toBe(200);
    expect((await probe('/health')).body.status).toBe('ok');

    await s.app.follower.stop();
    const stopped = await probe('/readyz');
    expect(stopped.status).toBe(503);
    expect(stopped.body.reasons).toEqual([`${HealthReasonCode.LoopStopped}:change-log-follower`]);
    const health = await probe('/health');
    expect(health.status).toBe(503);
    // Public: the status word only; the detail is the admin API's.
    expect(health.body).toEqual({ status: 'down' });
    expect((await probe('/livez')).status).toBe(200);

    failTails = true;
    await s.app.follower.start();
    await until(() => s.app.follower.status().state === 'backoff');
    const failing = await probe('/readyz');
    expect(failing.status).toBe(503);
    // A stable code for anyone; the error's message only for the admin.
    expect(failing.body).toEqual({
      ready: false,
      status: 'degraded',
      reasons: [`${HealthReasonCode.LoopRestarting}:change-log-follower`],
    });
    expect(JSON.stringify(failing.body)).not.toContain('unreachable (test)');
    const detail = await s.gql(
      `{ projectorStatus { follower { state lastError } } }`,
      {},
      s.app.admin.token,
    );
    expect(detail.data!.projectorStatus.follower).toEqual({
      state: 'BACKOFF',
      lastError: 'change log unreachable (test)',
    });
    expect(await probe('/health')).toEqual({ status: 200, body: { status: 'degraded' } });

    failTails = false;
    await until(async () => (await probe('/readyz')).status === 200, 15_000);
    expect((await probe('/health')).body.status).toBe('ok');
    // And it delivers again: a mutation answers with its own write.
    const alice = await s.register('alice');
    expect(alice.token).toBeTruthy();
  }, 30_000);

  it('/metrics exposes commits, conflicts, append latency, lag, follower, live and request series with plausible values', async () => {
    const s = await serve();
    const alice = await s.register('alice');
    const { boardId } = await createBoardAndColumn(s, alice.token);
    const rename = (name: string) =>
      s.gql(
        `mutation ($b: ID!, $n: String!) { renameBoard(input: { boardId: $b, name: $n, expectedVersion: 2 }) { __typename } }`,
        { b: boardId, n: name },
        alice.token,
      );
    expect((await rename('First')).data!.renameBoard.__typename).toBe('RenameBoardSuccess');
    expect((await rename('Second')).data!.renameBoard.__typename).toBe('VersionConflictError');
    const live = subscribeWs(
      s,
      `subscription ($b: ID!) { boardChanges(boardId: $b) { cursor } }`,
      alice.token,
      { b: boardId },
    );
    cleanups.push(live.dispose);
    await until(() => s.app.live.stats().subscribers === 1);
    await s.gql(
      `mutation ($b: ID!) { addColumn(input: { boardId: $b, name: "Done", expectedVersion: 3 }) { __typename } }`,
      { b: boardId },
      alice.token,
    );
    await until(
      () => live.results.length === 1 || live.failure !== undefined || live.completed,
    ).catch(() => undefined);
    console.log(JSON.stringify(live.results), live.failure, live.completed);
    await until(() => live.results.length === 1);

    // Another app in the same process (same schema) counts its own mutations only.
    const other = await serve();
    await other.register('bob');
    await other.register('carol');
    const scrape = (server: TestServer) =>
      fetch(`${server.url}/metrics`, {
        headers: { authorization: `Bearer ${server.app.admin.token}` },
      });
    const otherText = await (await scrape(other)).text();
    expect(otherText).toContain('corkboard_commits_total{mutation="registerUser"} 2\n');

    const response = await scrape(s);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      if (!line) throw new Error(`no series ${series}`);
      return Number(line.slice(series.length + 1));
    };
    expect(value('corkboard_commits_total{mutation="registerUser"}')).toBe(1);
    expect(value('corkboard_commits_total{mutation="createBoard"}')).toBe(1);
    expect(value('corkboard_commits_total{mutation="addColumn"}')).toBe(2);
    expect(value('corkboard_commits_total{mutation="renameBoard"}')).toBe(1);
    expect(value('corkboard_conflicts_total{mutation="renameBoard"}')).toBe(1);
    expect(value('corkboard_mutations_total{mutation="renameBoard",outcome="conflict"}')).toBe(1);
    // Five commits; the conflicting rename was refused before any append.
    expect(value('corkboard_append_duration_seconds_count{outcome="ok"}')).toBe(5);
    expect(value('corkboard_append_duration_seconds_sum{outcome="ok"}')).toBeGreaterThan(0);
    expect(value('corkboard_store_head')).toBe(5);
    expect(value('corkboard_projector_checkpoint')).toBe(5);
    expect(value('corkboard_projector_commits_behind{projection="boards"}')).toBe(0);
    expect(value('corkboard_projector_seconds_behind{projection="cards"}')).toBe(0);
    expect(value('corkboard_projector_events_processed{projection="columns"}')).toBe(2);
    expect(value('corkboard_projector_active')).toBe(1);
    expect(value('corkboard_follower_position')).toBe(5);
    expect(value('corkboard_live_subscribers')).toBe(1);
    expect(value('corkboard_live_connections')).toBe(1);
    expect(value('corkboard_live_slow_consumers')).toBe(0);
    // One subscriber, one change since it subscribed: one group, executed once.
    expect(value('corkboard_live_groups')).toBe(1);
    expect(value('corkboard_live_group_executions')).toBe(1);
    expect(value('corkboard_live_fanout_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(value('corkboard_loop_up{loop="projector"}')).toBe(1);
    expect(value('corkboard_loop_up{loop="change-log-follower"}')).toBe(1);
    expect(text).toMatch(
      /^graphql_yoga_http_duration_count\{method="POST",statusCode="200",operationType="mutation",operationName="anonymous"\} \d+$/m,
    );
    expect(text).toMatch(
      /^graphql_envelop_phase_execute_count\{.*operationType="mutation".*\} \d+$/m,
    );
    expect(value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });
});
