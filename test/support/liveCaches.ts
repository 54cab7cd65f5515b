/**
 * An Apollo Client or an urql client (Graphcache) that watches one board through
 * the SDK's live binding, with every HTTP request it sends recorded by operation
 * name. Shared by the client e2e tests and scripts/bench/clients.ts.
 */
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { Client, fetchExchange } from '@urql/core';
import { cacheExchange } from '@urql/exchange-graphcache';
import { WebSocket } from 'ws';
import { corkboardCacheConfig, liveBoard as liveApolloBoard } from '../../src/sdk/apollo.js';
import type { BoardChange, ReconnectOptions } from '../../src/sdk/boardChanges.js';
import { createCorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import { BoardDocument, type BoardQuery } from '../../src/sdk/generated/graphql.js';
import type { AppliedChanges } from '../../src/sdk/liveChanges.js';
import {
  corkboardExchange,
  corkboardGraphcache,
  liveBoard as liveUrqlBoard,
} from '../../src/sdk/urql.js';

export type CacheLibrary = 'apollo' | 'urql';

export type WatchedBoard = NonNullable<BoardQuery['board']>;

export interface LiveCacheClient {
  library: CacheLibrary;
  /** Operation names of the HTTP requests sent so far, in order. */
  requests: string[];
  /** Changes the binding has applied to the cache, in order. */
  applied: BoardChange[];
  /** Stale invalidations per applied change (urql) or batch (Apollo), in order. */
  stale: AppliedChanges['stale'][];
  /** The latest result of the watched `Board` query. */
  board(): WatchedBoard | undefined;
  /** Resolves when `predicate` holds for the watched board (checked on every update). */
  waitForBoard(
    predicate: (board: WatchedBoard) => boolean,
    timeoutMs?: number,
  ): Promise<WatchedBoard>;
  /** Sends a mutation through the library (its result is written to the cache). */
  mutate<R, V extends Record<string, unknown>>(
    document: TypedDocumentNode<R, V>,
    variables: V,
  ): Promise<R>;
  /** The underlying library client. */
  client: ApolloClient | Client;
  close(): Promise<void>;
}

export interface LiveCacheClientOptions {
  graphqlUrl: string;
  /** The websocket endpoint; default: `graphqlUrl` with ws. */
  webSocketUrl?: string;
  token: string;
  boardId: string;
  reconnect?: ReconnectOptions;
  ownChangeGraceMs?: number;
  /** `null`: treat no change as the viewer's own (no grace period). */
  viewerId?: string | null;
}

/** A `fetch` that records each GraphQL operation's name (POST body or GET query string). */
function recordingFetch(requests: string[]): typeof fetch {
  return (input, init) => {
    const body =
      typeof init?.body === 'string' ? (JSON.parse(init.body) as Record<string, unknown>) : {};
    const url = new URL(
      typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
    );
    const name = body['operationName'] ?? url.searchParams.get('operationName');
    requests.push(typeof name === 'string' ? name : '?');
    return fetch(input, init);
  };
}

/** The SDK client whose `boardChanges` a binding follows (and whose `me` it asks). */
const corkboardOf = (options: LiveCacheClientOptions) =>
  createCorkboardClient({
    url: options.graphqlUrl,
    token: options.token,
    webSocketImpl: WebSocket,
    ...(options.webSocketUrl ? { webSocketUrl: options.webSocketUrl } : {}),
    ...(options.reconnect ? { reconnect: options.reconnect } : {}),
  });

/** The binding options the harness passes through. */
const bindingOptions = (options: LiveCacheClientOptions) => ({
  ...(options.ownChangeGraceMs !== undefined ? { ownChangeGraceMs: options.ownChangeGraceMs } : {}),
  ...(options.viewerId !== undefined ? { viewerId: options.viewerId } : {}),
});

function watcher() {
  let latest: WatchedBoard | undefined;
  const listeners = new Set<() => void>();
  return {
    board: () => latest,
    update(board: WatchedBoard | null | undefined) {
      if (!board) return;
      latest = board;
      listeners.forEach((listener) => listener());
    },
    waitForBoard(predicate: (board: WatchedBoard) => boolean, timeoutMs = 10_000) {
      return new Promise<WatchedBoard>((resolve, reject) => {
        const check = () => {
          if (latest && predicate(latest)) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(latest);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`the watched board did not get there: ${JSON.stringify(latest)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
  };
}

/** An Apollo Client watching the board, kept fresh by `liveBoard` from `@corkboard/client/apollo`. */
export async function openApolloClient(options: LiveCacheClientOptions): Promise<LiveCacheClient> {
  const requests: string[] = [];
  const applied: BoardChange[] = [];
  const stale: AppliedChanges['stale'][] = [];
  const corkboard = corkboardOf(options);
  const client = new ApolloClient({
    link: new HttpLink({
      uri: options.graphqlUrl,
      headers: { authorization: `Bearer ${options.token}` },
      fetch: recordingFetch(requests),
    }),
    cache: new InMemoryCache(corkboardCacheConfig),
  });
  // Following first, then reading: no change can fall between the read and the subscription.
  const live = liveApolloBoard(client, corkboard, options.boardId, {
    ...(options.ownChangeGraceMs !== undefined
      ? { ownChangeGraceMs: options.ownChangeGraceMs }
      : {}),
    onApplied: (batch) => {
      applied.push(...batch.changes);
      stale.push(batch.stale);
    },
  });
  const watched = watcher();
  const subscription = client
    .watchQuery({ query: BoardDocument, variables: { id: options.boardId } })
    .subscribe((result) => {
      if (result.dataState === 'complete') watched.update(result.data.board);
    });
  await watched.waitForBoard(() => true);
  return {
    library: 'apollo',
    requests,
    applied,
    stale,
    client,
    ...watched,
    async mutate(document, variables) {
      const result = await client.mutate({ mutation: document, variables: variables });
      if (!result.data) throw new Error(`no data: ${JSON.stringify(result)}`);
      return result.data;
    },
    async close() {
      subscription.unsubscribe();
      await live.stop();
      client.stop();
    },
  };
}

/** An urql client with Graphcache watching the board, kept fresh by `@corkboard/client/urql`. */
export async function openUrqlClient(options: LiveCacheClientOptions): Promise<LiveCacheClient> {
  const requests: string[] = [];
  const applied: BoardChange[] = [];
  const stale: AppliedChanges['stale'][] = [];
  const corkboard = corkboardOf(options);
  const client = new Client({
    url: options.graphqlUrl,
    fetch: recordingFetch(requests),
    fetchOptions: { headers: { authorization: `Bearer ${options.token}` } },
    preferGetMethod: false,
    exchanges: [
      cacheExchange(
        corkboardGraphcache({
          onInvalidated: (change, invalidated) => {
            applied.push(change);
            stale.push(invalidated);
          },
        }),
      ),
      corkboardExchange(corkboard, bindingOptions(options)),
      fetchExchange,
    ],
  });
  const live = liveUrqlBoard(client, options.boardId);
  const watched = watcher();
  const subscription = client
    .query(BoardDocument, { id: options.boardId })
    .subscribe((result) => watched.update(result.data?.board));
  await watched.waitForBoard(() => true);
  return {
    library: 'urql',
    requests,
    applied,
    stale,
    client,
    ...watched,
    async mutate(document, variables) {
      const result = await client.mutation(document, variables).toPromise();
      if (!result.data) throw new Error(`no data: ${result.error?.message ?? 'none'}`);
      return result.data;
    },
    async close() {
      live.stop();
      subscription.unsubscribe();
    },
  };
}

export const openLiveCacheClient = (library: CacheLibrary, options: LiveCacheClientOptions) =>
  library === 'apollo' ? openApolloClient(options) : openUrqlClient(options);
