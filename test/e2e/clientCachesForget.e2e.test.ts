/**
 * Losing access, as the live Apollo and urql caches see it: Alice (owner) removes Bob,
 * Carol leaves. Each live binding's `done` rejects with a typed reason, and the cache no
 * longer holds the board: `board(id)` and `node(id)` of the board, its column and its
 * card read null, the `boards` list lacks it (and, in Apollo's store, no entity of it
 * stays). The other members' caches keep it.
 */
import { ApolloClient } from '@apollo/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoardAccessEndedError } from '../../src/sdk/accessEnded.js';
import { AccessEndReason } from '../../src/sdk/liveErrorCodes.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import {
  BoardDocument,
  BoardsDocument,
  NodeDocument,
  RemoveMemberDocument,
} from '../../src/sdk/generated/graphql.js';
import { boardWithMembers } from '../support/boardWithMembers.js';
import { expectSuccess } from '../support/expectSuccess.js';
import {
  openLiveCacheClient,
  type CacheLibrary,
  type LiveCacheClient,
} from '../support/liveCaches.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { until } from '../support/until.js';

/** What a user's cache holds of the board, read from the cache alone (no request). */
interface Held {
  /** `board(id)` of the Board query: its name, or null. */
  board: string | null;
  /** The IDs among the board's, its column's and its card's whose `node(id)` reads non-null. */
  nodes: string[];
  /** The board IDs of the cached `boards` list. */
  boards: string[] | undefined;
  /** Apollo: the IDs among those whose entity is in the normalized store. */
  entities?: string[];
}

function heldOf(client: LiveCacheClient, ids: string[]): Held {
  const boardId = ids[0]!;
  if (client.client instanceof ApolloClient) {
    const apollo = client.client;
    const store = apollo.cache.extract() as Record<string, unknown>;
    const key = (id: string) =>
      ['Board', 'Column', 'Card'].map((__typename) => apollo.cache.identify({ __typename, id }));
    return {
      board:
        apollo.readQuery({ query: BoardDocument, variables: { id: boardId } })?.board?.name ?? null,
      nodes: ids.filter(
        (id) => apollo.readQuery({ query: NodeDocument, variables: { id } })?.node != null,
      ),
      boards: apollo.readQuery({ query: BoardsDocument })?.boards.map((board) => board.id),
      entities: ids.filter((id) => key(id).some((k) => k !== undefined && k in store)),
    };
  }
  const urql = client.client;
  return {
    board: urql.readQuery(BoardDocument, { id: boardId })?.data?.board?.name ?? null,
    nodes: ids.filter((id) => urql.readQuery(NodeDocument, { id })?.data?.node != null),
    boards: urql.readQuery(BoardsDocument, {})?.data?.boards.map((board) => board.id),
  };
}

/** Reads the board's, its column's and its card's `node(id)` and `boards` into the cache. */
async function warm(client: LiveCacheClient, ids: string[]) {
  if (client.client instanceof ApolloClient) {
    const apollo = client.client;
    await Promise.all([
      ...ids.map((id) => apollo.query({ query: NodeDocument, variables: { id } })),
      apollo.query({ query: BoardsDocument }),
    ]);
    return;
  }
  const urql = client.client;
  await Promise.all([
    ...ids.map((id) => urql.query(NodeDocument, { id }).toPromise()),
    urql.query(BoardsDocument, {}).toPromise(),
  ]);
}

describe.each<CacheLibrary>(['apollo', 'urql'])('losing access in live %s caches', (library) => {
  let s: TestServer;
  let alice: CorkboardClient;
  let ids: { bob: string; carol: string };
  let boardId: string;
  let entityIds: string[];
  let b: LiveCacheClient;
  let c: LiveCacheClient;

  beforeAll(async () => {
    s = await startTestServer();
    const graphqlUrl = `${s.url}/graphql`;
    const [aliceUser, bobUser, carolUser] = await Promise.all(
      ['alice', 'bob', 'carol'].map((name) => s.register(name)),
    );
    alice = createCorkboardClient({ url: graphqlUrl, token: aliceUser!.token });
    ids = { bob: bobUser!.id, carol: carolUser!.id };
    const shared = await boardWithMembers(alice, 'Removal', ['bob', 'carol']);
    boardId = shared.boardId;
    const column = expectSuccess(
      await alice.addColumn({
        input: { boardId, name: 'Todo', expectedVersion: shared.version },
      }),
      'AddColumnSuccess',
    ).column;
    const card = expectSuccess(
      await alice.addCard({ input: { columnId: column.id, title: 'secret' } }),
      'AddCardSuccess',
    ).card;
    entityIds = [boardId, column.id, card.id];
    const open = (token: string) =>
      openLiveCacheClient(library, { graphqlUrl, token, boardId, viewerId: null });
    [b, c] = await Promise.all([open(bobUser!.token), open(carolUser!.token)]);
    await Promise.all([warm(b, entityIds), warm(c, entityIds)]);
    // A change both bindings applied: their subscriptions are live on the server.
    const renamed = expectSuccess(
      await alice.renameBoard({
        input: {
          boardId,
          name: 'Removal, renamed',
          expectedVersion: (await alice.board({ id: boardId }))!.version,
        },
      }),
      'RenameBoardSuccess',
    );
    expect(renamed.board.name).toBe('Removal, renamed');
    await Promise.all(
      [b, c].map((client) => client.waitForBoard((w) => w.name === 'Removal, renamed')),
    );
  });
  afterAll(async () => {
    await Promise.all([b?.close(), c?.close()]);
    await s?.close();
  });

  it("clears the board from Bob's cache when Alice removes him (done rejects with REMOVED); Carol's keeps it", async () => {
    const before: Held = {
      board: 'Removal, renamed',
      nodes: entityIds,
      boards: [boardId],
      ...(library === 'apollo' ? { entities: entityIds } : {}),
    };
    expect(heldOf(b, entityIds)).toEqual(before);

    expectSuccess(
      await alice.removeMember({
        input: {
          boardId,
          userId: ids.bob,
          expectedVersion: (await alice.board({ id: boardId }))!.version,
        },
      }),
      'RemoveMemberSuccess',
    );
    const ended = await b.done.then(
      () => null,
      (error: unknown) => error,
    );
    expect(ended).toBeInstanceOf(BoardAccessEndedError);
    expect(ended).toMatchObject({ boardId, reason: AccessEndReason.Removed });
    if (library === 'apollo') {
      // Told first, while the board was still cached (a page can leave it before it reads null).
      expect(b.accessEnded).toEqual([{ reason: AccessEndReason.Removed, boardCached: true }]);
    }
    // urql hands an active query's last result to a new reader until Graphcache has
    // run that query again over the cleared cache: wait for it (it is never undone).
    await until(() => heldOf(b, entityIds).board === null, 10_000, 'the board to read null');
    expect(heldOf(b, entityIds)).toEqual({
      board: null,
      nodes: [],
      boards: [],
      ...(library === 'apollo' ? { entities: [] } : {}),
    });
    expect(heldOf(c, entityIds)).toEqual(before);
  });

  it("clears the board from Carol's cache when she leaves (done rejects with LEFT)", async () => {
    // Carol leaves from the version her cache shows: once it has applied Bob's removal.
    const current = (await alice.board({ id: boardId }))!.version;
    await c.waitForBoard((w) => w.version === current);
    const { removeMember } = await c.mutate(RemoveMemberDocument, {
      input: { boardId, userId: ids.carol, expectedVersion: c.board()!.version },
    });
    expect(expectSuccess(removeMember, 'RemoveMemberSuccess').board).toBeNull();
    const ended = await c.done.then(
      () => null,
      (error: unknown) => error,
    );
    expect(ended).toBeInstanceOf(BoardAccessEndedError);
    expect(ended).toMatchObject({ boardId, reason: AccessEndReason.Left });
    // urql hands an active query's last result to a new reader until Graphcache has
    // run that query again over the cleared cache: wait for it (it is never undone).
    await until(() => heldOf(c, entityIds).board === null, 10_000, 'the board to read null');
    expect(heldOf(c, entityIds)).toEqual({
      board: null,
      nodes: [],
      boards: [],
      ...(library === 'apollo' ? { entities: [] } : {}),
    });
  });
});
