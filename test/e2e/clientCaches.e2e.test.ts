import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { Client, fetchExchange } from '@urql/core';
import { cacheExchange } from '@urql/exchange-graphcache';
import { WebSocket } from 'ws';
import { corkboardCacheConfig, liveBoard as liveApolloBoard } from '../../src/sdk/apollo.js';
import type { BoardChange } from '../../src/sdk/boardChanges.js';
import type { LiveBoardSource } from '../../src/sdk/liveChanges.js';
import {
  corkboardExchange,
  corkboardGraphcache,
  liveBoard as liveUrqlBoard,
} from '../../src/sdk/urql.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import {
  AddCardDocument,
  ArchiveCardDocument,
  BoardDocument,
  EditCardDocument,
  MoveCardDocument,
  MoveColumnDocument,
  RenameBoardDocument,
  SetWipLimitDocument,
} from '../../src/sdk/generated/graphql.js';
import {
  openLiveCacheClient,
  type CacheLibrary,
  type LiveCacheClient,
  type WatchedBoard,
  plain,
} from '../support/liveCaches.js';
import { expectSuccess } from '../support/expectSuccess.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { openMemoryStorage } from '../../src/storage.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';

async function until(condition: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Resolves once the server holds `n` boardChanges subscriptions. */
const subscribed = (s: TestServer, n: number) =>
  until(() => s.app.live.stats().subscribers >= n, `${n} subscribers`);

const columnNamed = (board: WatchedBoard, name: string) => {
  const column = board.columns.find((c) => c.name === name);
  if (!column) throw new Error(`no column ${name}`);
  return column;
};
const cardIds = (board: WatchedBoard, column: string) =>
  columnNamed(board, column).cards.edges.map((edge) => edge.node.id);
const cardOf = (board: WatchedBoard, id: string) =>
  board.columns.flatMap((c) => c.cards.edges.map((e) => e.node)).find((card) => card.id === id);

describe.each<CacheLibrary>(['apollo', 'urql'])('live caches with %s', (library) => {
  let s: TestServer;
  let proxy: TcpProxy;
  let alice: CorkboardClient;
  let aliceToken: string;
  let boardId: string;
  let todoId: string;
  let doneId: string;
  let cards: { id: string; version: number }[];
  /** Alice's cache client: the writer. */
  let a: LiveCacheClient;
  /** Bob's cache client: watches the board; its websocket goes through the proxy. */
  let b: LiveCacheClient;

  beforeAll(async () => {
    s = await startTestServer();
    proxy = await startTcpProxy(Number(new URL(s.url).port));
    const graphqlUrl = `${s.url}/graphql`;
    const aliceUser = await s.register('alice');
    const bobUser = await s.register('bob');
    aliceToken = aliceUser.token;
    alice = createCorkboardClient({ url: graphqlUrl, token: aliceToken });
    const board = expectSuccess(
      await alice.createBoard({ input: { name: 'Live caches' } }),
      'CreateBoardSuccess',
    ).board;
    boardId = board.id;
    const withBob = expectSuccess(
      await alice.addMember({
        input: { boardId, username: 'bob', expectedVersion: board.version },
      }),
      'AddMemberSuccess',
    ).board;
    const todo = expectSuccess(
      await alice.addColumn({ input: { boardId, name: 'Todo', expectedVersion: withBob.version } }),
      'AddColumnSuccess',
    );
    const done = expectSuccess(
      await alice.addColumn({
        input: { boardId, name: 'Done', expectedVersion: todo.board.version },
      }),
      'AddColumnSuccess',
    );
    todoId = todo.column.id;
    doneId = done.column.id;
    cards = [];
    for (const title of ['one', 'two', 'three']) {
      const { card } = expectSuccess(
        await alice.addCard({ input: { columnId: todoId, title } }),
        'AddCardSuccess',
      );
      cards.push({ id: card.id, version: card.version });
    }
    a = await openLiveCacheClient(library, { graphqlUrl, token: aliceUser.token, boardId });
    b = await openLiveCacheClient(library, {
      graphqlUrl,
      token: bobUser.token,
      boardId,
      webSocketUrl: `ws://127.0.0.1:${proxy.port}/graphql`,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    });
    await subscribed(s, 2);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await proxy?.close();
    await s?.close();
  });

  /**
   * Both caches equal a fresh query of the board made with their own user's token (the
   * board's `viewerRole` is each viewer's), once each has applied its changes.
   */
  async function expectCurrent() {
    for (const client of [a, b]) {
      const fresh = plain(await client.fresh());
      await client.waitForBoard((board) => JSON.stringify(plain(board)) === JSON.stringify(fresh));
      expect(plain(client.board())).toEqual(fresh);
    }
  }

  /**
   * Runs one mutation by `writer`, waits until both bindings applied its change and
   * both caches equal a fresh query, then a little longer (any stray request would be
   * sent by then), and returns the requests each client sent meanwhile.
   */
  async function observe(
    writer: LiveCacheClient,
    watcher: LiveCacheClient,
    run: () => Promise<unknown>,
  ) {
    const sent = { writer: writer.requests.length, watcher: watcher.requests.length };
    const applied = { writer: writer.applied.length, watcher: watcher.applied.length };
    await run();
    await until(
      () => writer.applied.length > applied.writer && watcher.applied.length > applied.watcher,
      'both bindings to apply the change',
    );
    await expectCurrent();
    await sleep(100);
    return {
      writer: writer.requests.slice(sent.writer),
      watcher: watcher.requests.slice(sent.watcher),
    };
  }

  it("rides the app's socket, asks the viewer once, and misses no change made between its first query and its subscription reaching the server", async () => {
    // Each binding rides its app's graphql-ws client: one socket per client.
    expect(s.app.websockets.connections).toBe(2);
    // A third client whose socket cannot connect yet: its queries go over HTTP.
    proxy.refusing = true;
    let c: LiveCacheClient | undefined;
    try {
      c = await openLiveCacheClient(library, {
        graphqlUrl: `${s.url}/graphql`,
        token: aliceToken,
        boardId,
        webSocketUrl: `ws://127.0.0.1:${proxy.port}/graphql`,
        reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
      });
      // Ready, and its first query answered, before its subscription reached the server.
      expect(s.app.live.stats().subscribers).toBe(2);
      const card = cardOf(c.board()!, cards[0]!.id)!;
      expect(card.labels).toEqual([]);
      expectSuccess(
        await alice.editCard({
          input: { cardId: card.id, expectedVersion: card.version, labels: ['between'] },
        }),
        'EditCardSuccess',
      );
      proxy.refusing = false;
      // The subscription starts from the cursor taken before the query: the change comes.
      await c.waitForBoard((board) => cardOf(board, card.id)?.labels[0] === 'between');
      await expectCurrent();
      expect(s.app.websockets.connections).toBe(3);
      // The server's change head, the viewer (for its role on pushed boards, asked once
      // beside it), then the board: no refetch.
      expect([...c.requests].sort()).toEqual(['Board', 'ChangeHead', 'Me']);
    } finally {
      proxy.refusing = false;
      await c?.close();
    }
  });

  it('subscribes again, from its cursor, while the server refuses replays (TOO_MANY_REPLAYS)', async () => {
    const c = await openLiveCacheClient(library, {
      graphqlUrl: `${s.url}/graphql`,
      token: aliceToken,
      boardId,
      refuseReplays: 2,
    });
    try {
      const card = cardOf(c.board()!, cards[0]!.id)!;
      expectSuccess(
        await alice.editCard({
          input: { cardId: card.id, expectedVersion: card.version, labels: ['after refusals'] },
        }),
        'EditCardSuccess',
      );
      await c.waitForBoard((board) => cardOf(board, card.id)?.labels[0] === 'after refusals');
      await expectCurrent();
      expect([...c.requests].sort()).toEqual(['Board', 'ChangeHead', 'Me']);
    } finally {
      await c.close();
    }
  });

  it('applies an edited card from the push alone: no refetch in either cache', async () => {
    const card = cardOf(b.board()!, cards[1]!.id)!;
    const requests = await observe(a, b, () =>
      a.mutate(EditCardDocument, {
        input: { cardId: card.id, expectedVersion: card.version, title: 'two (done)', done: true },
      }),
    );
    expect(cardOf(b.board()!, card.id)).toMatchObject({ title: 'two (done)', done: true });
    expect(requests).toEqual({ writer: ['EditCard'], watcher: [] });
  });

  it('applies a renamed board: no refetch', async () => {
    const version = b.board()!.version;
    const requests = await observe(a, b, () =>
      a.mutate(RenameBoardDocument, {
        input: { boardId, name: 'Renamed', expectedVersion: version },
      }),
    );
    expect(b.board()!).toMatchObject({ name: 'Renamed', version: version + 1 });
    expect(requests).toEqual({ writer: ['RenameBoard'], watcher: [] });
  });

  it('splices a card moved within its column into its new place: no refetch', async () => {
    const card = cardOf(b.board()!, cards[2]!.id)!;
    const requests = await observe(a, b, () =>
      a.mutate(MoveCardDocument, {
        input: {
          cardId: card.id,
          toColumnId: todoId,
          beforeCardId: cards[0]!.id,
          expectedVersion: card.version,
        },
      }),
    );
    expect(cardIds(b.board()!, 'Todo')).toEqual([cards[2]!.id, cards[0]!.id, cards[1]!.id]);
    expect(requests).toEqual({ writer: ['MoveCard'], watcher: [] });
  });

  it('splices a card moved across columns out of one page and into the other: no refetch', async () => {
    const card = cardOf(b.board()!, cards[0]!.id)!;
    const requests = await observe(a, b, () =>
      a.mutate(MoveCardDocument, {
        input: { cardId: card.id, toColumnId: doneId, expectedVersion: card.version },
      }),
    );
    expect(cardIds(b.board()!, 'Todo')).toEqual([cards[2]!.id, cards[1]!.id]);
    expect(cardIds(b.board()!, 'Done')).toEqual([card.id]);
    expect(columnNamed(b.board()!, 'Done').cardCount).toBe(1);
    expect(requests).toEqual({ writer: ['MoveCard'], watcher: [] });
  });

  it('adds a new card between two others: no refetch', async () => {
    let added = '';
    const requests = await observe(a, b, async () => {
      const { addCard } = await a.mutate(AddCardDocument, {
        input: { columnId: todoId, title: 'four', afterCardId: cards[2]!.id },
      });
      added = expectSuccess(addCard, 'AddCardSuccess').card.id;
    });
    expect(cardIds(b.board()!, 'Todo')).toEqual([cards[2]!.id, added, cards[1]!.id]);
    expect(requests).toEqual({ writer: ['AddCard'], watcher: [] });
  });

  it('drops an archived card: no refetch', async () => {
    const card = cardOf(b.board()!, cards[1]!.id)!;
    const requests = await observe(a, b, () =>
      a.mutate(ArchiveCardDocument, {
        input: { cardId: card.id, expectedVersion: card.version },
      }),
    );
    expect(cardIds(b.board()!, 'Todo')).not.toContain(card.id);
    expect(requests).toEqual({ writer: ['ArchiveCard'], watcher: [] });
  });

  it('reorders moved columns and applies a WIP limit: no refetch', async () => {
    const moved = await observe(a, b, () =>
      a.mutate(MoveColumnDocument, {
        input: { columnId: todoId, expectedVersion: b.board()!.version },
      }),
    );
    expect(b.board()!.columns.map((c) => c.name)).toEqual(['Done', 'Todo']);
    expect(moved).toEqual({ writer: ['MoveColumn'], watcher: [] });
    const wip = await observe(a, b, () =>
      a.mutate(SetWipLimitDocument, {
        input: {
          columnId: doneId,
          wipLimit: 7,
          expectedVersion: columnNamed(b.board()!, 'Done').version,
        },
      }),
    );
    expect(columnNamed(b.board()!, 'Done').wipLimit).toBe(7);
    expect(wip).toEqual({ writer: ['SetWipLimit'], watcher: [] });
  });

  it("takes the viewer's own change from its mutation result and the push alike, with no refetch and no regression", async () => {
    const card = cardOf(b.board()!, cards[2]!.id)!;
    const titles: string[] = [];
    const watching = setInterval(() => titles.push(cardOf(b.board()!, card.id)!.title), 1);
    try {
      const requests = await observe(b, a, () =>
        b.mutate(EditCardDocument, {
          input: { cardId: card.id, expectedVersion: card.version, title: 'three by bob' },
        }),
      );
      expect(requests).toEqual({ writer: ['EditCard'], watcher: [] });
    } finally {
      clearInterval(watching);
    }
    // Once shown, the new title never went back to the old one.
    const first = titles.indexOf('three by bob');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(titles.slice(first).every((title) => title === 'three by bob')).toBe(true);
  });

  it('takes two own changes made while its socket is down from their results; their late pushes change nothing and refetch nothing', async () => {
    const card = cardOf(b.board()!, cards[2]!.id)!;
    const appliedBefore = b.applied.length;
    const sentBefore = b.requests.length;
    // The viewer's socket is down: both pushes arrive after both mutation results.
    proxy.refusing = true;
    proxy.dropAll();
    const first = expectSuccess(
      (
        await b.mutate(EditCardDocument, {
          input: { cardId: card.id, expectedVersion: card.version, title: 'bob, first' },
        })
      ).editCard,
      'EditCardSuccess',
    ).card;
    await b.mutate(EditCardDocument, {
      input: { cardId: card.id, expectedVersion: first.version, title: 'bob, second' },
    });
    await b.waitForBoard((board) => cardOf(board, card.id)?.title === 'bob, second');
    const shown = b.history.length - 1;
    proxy.refusing = false;
    await until(() => b.applied.length >= appliedBefore + 2, 'both pushes');
    await expectCurrent();
    await sleep(100);
    // From the newer result on, the watched query never showed the older title again.
    const titles = b.history.slice(shown).map((entry) => cardOf(entry.board, card.id)?.title);
    expect(titles.every((title) => title === 'bob, second')).toBe(true);
    expect(cardOf(b.board()!, card.id)).toMatchObject({
      title: 'bob, second',
      version: first.version + 1,
    });
    expect(b.requests.slice(sentBefore)).toEqual(['EditCard', 'EditCard']);
  });

  it('resumes after a forced disconnect and 20 missed changes, applying the replayed data with no refetch', async () => {
    const card = cardOf(b.board()!, cards[2]!.id)!;
    const appliedBefore = b.applied.length;
    const sentBefore = b.requests.length;
    proxy.refusing = true;
    proxy.dropAll();
    let version = card.version;
    for (let i = 1; i <= 20; i++) {
      const { editCard } = await a.mutate(EditCardDocument, {
        input: { cardId: card.id, expectedVersion: version, labels: [`edit-${i}`] },
      });
      version = expectSuccess(editCard, 'EditCardSuccess').card.version;
    }
    // Offline, the watcher saw none of it.
    await sleep(100);
    expect(cardOf(b.board()!, card.id)!.labels).toEqual([]);
    expect(b.applied.length).toBe(appliedBefore);
    proxy.refusing = false;

    await b.waitForBoard((board) => cardOf(board, card.id)?.labels[0] === 'edit-20');
    await until(() => b.applied.length >= appliedBefore + 20, 'the 20 replayed changes');
    await sleep(100);
    const replayed = b.applied.slice(appliedBefore);
    // Every missed change once, in order: the card's versions with no gap and no repeat.
    expect(
      replayed.map((change) => change.invalidated.find((i) => i.id === card.id)?.version),
    ).toEqual(Array.from({ length: 20 }, (_, i) => card.version + 1 + i));
    expect(cardOf(b.board()!, card.id)).toMatchObject({ version, labels: ['edit-20'] });
    await expectCurrent();
    expect(b.requests.slice(sentBefore)).toEqual([]);
  });

  // Apollo's alone: Graphcache reads the schema it is given (corkboardGraphcache's).
  if (library === 'apollo')
    it("keeps an error result's fields in Apollo's cache (possibleTypes), which a default cache drops", async () => {
      // A rename the mutation below has not seen: its expectedVersion conflicts on `name`.
      const seen = (await alice.board({ id: boardId }))!.version;
      expectSuccess(
        await alice.renameBoard({ input: { boardId, name: 'first', expectedVersion: seen } }),
        'RenameBoardSuccess',
      );
      const stale = { boardId, name: 'stale', expectedVersion: seen };
      const warnings = vi.spyOn(console, 'warn').mockImplementation(() => {});
      try {
        const { renameBoard } = await a.mutate(RenameBoardDocument, { input: stale });
        const conflict = expectSuccess(renameBoard, 'VersionConflictError');
        expect(conflict).toMatchObject({ code: 'VERSION_CONFLICT', expectedVersion: seen });
        expect(conflict.message).not.toBe('');
        expect(conflict.conflicts.map((c) => c.fields)).toContainEqual(['name']);
        expect(warnings).not.toHaveBeenCalled();

        // The same mutation through a cache without possibleTypes loses the error's fields.
        const plain = new ApolloClient({
          link: new HttpLink({
            uri: `${s.url}/graphql`,
            headers: { authorization: `Bearer ${aliceToken}` },
          }),
          cache: new InMemoryCache(),
        });
        const lost = await plain.mutate({
          mutation: RenameBoardDocument,
          variables: { input: stale },
        });
        expect(lost.data).toEqual({ renameBoard: { __typename: 'VersionConflictError' } });
        expect(warnings.mock.calls.flat().join('\n')).toContain('possibleTypes');
        plain.stop();
      } finally {
        warnings.mockRestore();
      }
    });
});

describe.each<CacheLibrary>(['apollo', 'urql'])(
  'a live %s cache after missing changes for good',
  (library) => {
    let s: TestServer;
    let proxy: TcpProxy;
    beforeAll(async () => {
      s = await startTestServer({ storage: openMemoryStorage({ changeLogRetention: 5 }) });
      proxy = await startTcpProxy(Number(new URL(s.url).port));
    });
    afterAll(async () => {
      await proxy.close();
      await s.close();
      await s.storage.close();
    });

    it("refetches the board's queries once on resyncRequired, and ends current", async () => {
      const graphqlUrl = `${s.url}/graphql`;
      const carol = await s.register(`carol_${library}`);
      const writer = createCorkboardClient({ url: graphqlUrl, token: carol.token });
      let board = expectSuccess(
        await writer.createBoard({ input: { name: 'r0' } }),
        'CreateBoardSuccess',
      ).board;
      const watcher = await openLiveCacheClient(library, {
        graphqlUrl,
        token: carol.token,
        boardId: board.id,
        webSocketUrl: `ws://127.0.0.1:${proxy.port}/graphql`,
        reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
        viewerId: null,
      });
      try {
        await subscribed(s, 1);
        // One change it sees, so that it holds a cursor to resume from.
        board = expectSuccess(
          await writer.renameBoard({
            input: { boardId: board.id, name: 'r1', expectedVersion: board.version },
          }),
          'RenameBoardSuccess',
        ).board;
        await watcher.waitForBoard((watched) => watched.name === 'r1');
        await until(() => watcher.applied.length === 1, 'the first change');
        proxy.refusing = true;
        proxy.dropAll();
        // More changes than the change log keeps: the cursor falls out of it.
        for (let i = 2; i <= 12; i++) {
          board = expectSuccess(
            await writer.renameBoard({
              input: { boardId: board.id, name: `r${i}`, expectedVersion: board.version },
            }),
            'RenameBoardSuccess',
          ).board;
        }
        const sentBefore = watcher.requests.length;
        proxy.refusing = false;
        await watcher.waitForBoard((watched) => watched.name === 'r12');
        await sleep(100);
        expect(watcher.applied.slice(1).map((change) => change.resyncRequired)).toEqual([true]);
        expect(watcher.board()!.version).toBe(board.version);
        expect(watcher.requests.slice(sentBefore)).toEqual(['Board']);
      } finally {
        await watcher.close();
      }
    });
  },
);

/**
 * A source the test feeds by hand: the bindings' `source` form (Apollo) and
 * `corkboardExchange` (urql) read changes from it, in the order they are fed.
 */
function handFed() {
  const queue: BoardChange[] = [];
  let wake: (() => void) | null = null;
  const source: LiveBoardSource = {
    boardChanges: (_boardId, options = {}) => ({
      async *[Symbol.asyncIterator]() {
        while (!options.signal?.aborted) {
          const change = queue.shift();
          if (change) {
            yield change;
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            options.signal?.addEventListener('abort', () => resolve(), { once: true });
          });
          wake = null;
        }
      },
    }),
  };
  return {
    source,
    feed(change: BoardChange) {
      queue.push(change);
      wake?.();
    },
  };
}

describe.each<CacheLibrary>(['apollo', 'urql'])(
  'a live %s cache given an older change after a newer result',
  (library) => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer();
    });
    afterAll(async () => {
      await s.close();
    });

    it('keeps the newer version: no flicker back to the older data', async () => {
      const graphqlUrl = `${s.url}/graphql`;
      const dora = await s.register(`dora_${library}`);
      const writer = createCorkboardClient({
        url: graphqlUrl,
        token: dora.token,
        webSocketImpl: WebSocket,
      });
      const board = expectSuccess(
        await writer.createBoard({ input: { name: 'versions' } }),
        'CreateBoardSuccess',
      ).board;
      const column = expectSuccess(
        await writer.addColumn({
          input: { boardId: board.id, name: 'Todo', expectedVersion: board.version },
        }),
        'AddColumnSuccess',
      ).column;
      let card = expectSuccess(
        await writer.addCard({ input: { columnId: column.id, title: 'zero' } }),
        'AddCardSuccess',
      ).card;
      // Two edits, and the changes the server pushed for them.
      const pushed: BoardChange[] = [];
      const abort = new AbortController();
      const following = (async () => {
        for await (const change of writer.boardChanges(board.id, { signal: abort.signal })) {
          pushed.push(change);
        }
      })();
      await subscribed(s, 1);
      for (const title of ['first', 'second']) {
        card = expectSuccess(
          await writer.editCard({
            input: { cardId: card.id, expectedVersion: card.version, title },
          }),
          'EditCardSuccess',
        ).card;
      }
      await until(() => pushed.length === 2, 'both changes');
      abort.abort();
      await following;

      // A cache that holds the newer version (e.g. the viewer's own mutation result)...
      const fed = handFed();
      const applied: BoardChange[] = [];
      const headers = { authorization: `Bearer ${dora.token}` };
      let read: () => WatchedBoard | null | undefined;
      let stop: () => void;
      if (library === 'apollo') {
        const apollo = new ApolloClient({
          link: new HttpLink({ uri: graphqlUrl, headers }),
          cache: new InMemoryCache(corkboardCacheConfig),
        });
        await apollo.query({ query: BoardDocument, variables: { id: board.id } });
        const live = liveApolloBoard(apollo, fed.source, board.id, {
          onApplied: (batch) => applied.push(...batch.changes),
        });
        read = () => apollo.readQuery({ query: BoardDocument, variables: { id: board.id } })?.board;
        stop = () => {
          void live.stop();
          apollo.stop();
        };
      } else {
        const urql = new Client({
          url: graphqlUrl,
          fetchOptions: { headers },
          preferGetMethod: false,
          exchanges: [
            cacheExchange(corkboardGraphcache({ onInvalidated: (change) => applied.push(change) })),
            corkboardExchange(fed.source),
            fetchExchange,
          ],
        });
        await urql.query(BoardDocument, { id: board.id }).toPromise();
        const live = liveUrqlBoard(urql, board.id, { after: '0' });
        await live.ready;
        read = () => urql.readQuery(BoardDocument, { id: board.id })?.data?.board;
        stop = () => live.stop();
      }
      try {
        expect(cardOf(read()!, card.id)).toMatchObject({ title: 'second', version: card.version });
        // ...is given the older change alone: it keeps the newer data.
        fed.feed(pushed[0]!);
        await until(() => applied.length === 1, 'the older change applied');
        expect(cardOf(read()!, card.id)).toMatchObject({ title: 'second', version: card.version });
        // The change of the version it holds writes the same values again.
        fed.feed(pushed[1]!);
        await until(() => applied.length === 2, 'the newer change applied');
        expect(cardOf(read()!, card.id)).toMatchObject({ title: 'second', version: card.version });
      } finally {
        stop();
      }
    });
  },
);
