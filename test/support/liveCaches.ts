/**
 * An Apollo Client or an urql client (Graphcache) that watches one board through
 * the SDK's live binding, with every HTTP request it sends recorded by operation
 * name. Shared by the client e2e tests and scripts/bench/clients.ts.
 */
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { isSubscriptionOperation } from '@apollo/client/utilities';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { Client, fetchExchange, subscriptionExchange } from '@urql/core';
import { cacheExchange } from '@urql/exchange-graphcache';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { Observable } from 'rxjs';
import { WebSocket } from 'ws';
import { LiveErrorCode } from '../../src/sdk/liveErrorCodes.js';
import { corkboardCacheConfig, liveBoard as liveApolloBoard } from '../../src/sdk/apollo.js';
import type { BoardChange, ReconnectOptions } from '../../src/sdk/boardChanges.js';
import { createCorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import { BoardDocument, type BoardQuery } from '../../src/sdk/generated/graphql.js';
import type { AppliedChanges, LiveMode } from '../../src/sdk/liveChanges.js';
import { corkboardGraphcache, liveBoard as liveUrqlBoard } from '../../src/sdk/urql.js';

// Apollo's GraphQLWsLink reads the global `WebSocket` when it is handed a subscription's
// GraphQL errors (to tell them from a socket's error event); Node 20 has none, so without
// it the link throws, graphql-ws closes the socket (4004) and the errors never arrive.
// An app on Node 20 does the same (Apollo Client issue 11761).
globalThis.WebSocket ??= WebSocket as unknown as typeof globalThis.WebSocket;

/** A value without the `__typename`s the caches add, for comparing with a plain fetch. */
export const plain = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(plain)
    : value && typeof value === 'object'
      ? Object.fromEntries(
          Object.entries(value)
            .filter(([key]) => key !== '__typename')
            .map(([key, v]) => [key, plain(v)]),
        )
      : value;

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
  /** Every result the watched `Board` query emitted, in order, and when (`performance.now()`). */
  history: { board: WatchedBoard; at: number }[];
  /** When that result arrived (`performance.now()`). */
  updatedAt(): number;
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
  /**
   * The board as a fresh query made with this client's own token reads it now (not
   * through the cache, not counted in `requests`): what the cache must come to equal.
   * `viewerRole` is per viewer, so each cache is compared with its own viewer's query.
   */
  fresh(): Promise<WatchedBoard | null>;
  /** The binding's `done`: rejects with `BoardAccessEndedError` when the viewer lost access. */
  done: Promise<void>;
  /**
   * Apollo: each `onAccessEnded` call, with its reason and whether the cache still held
   * the board then (it is told before the board is cleared). urql: empty.
   */
  accessEnded: { reason: string; boardCached: boolean }[];
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
  /** What the binding does with a change. @default 'data' */
  mode?: LiveMode;
  /**
   * The app's subscription transport answers the first `n` subscribes as the server
   * does while too many replays run (`TOO_MANY_REPLAYS`), then lets them through.
   */
  refuseReplays?: number;
  /**
   * Awaited after an HTTP answer arrived and before the library gets it, with the
   * operation's name: a test holds an answer back this way while pushes go on.
   */
  holdAnswer?: (operationName: string) => Promise<void>;
}

/** The server's refusal of a replay while too many run, as a subscription result. */
const replayRefusal = () => ({
  errors: [
    {
      message: 'At most 64 replays run at once on this server: retry shortly',
      extensions: { code: LiveErrorCode.TooManyReplays },
    },
  ],
});

/**
 * The app's own graphql-ws client, as an Apollo or urql app configures it: the live
 * binding rides it. It resubscribes by itself after a drop (with the variables of the
 * first subscribe; the binding skips what it already applied).
 */
function appWebSocket(options: LiveCacheClientOptions): WsClient {
  const url = options.webSocketUrl ?? `${options.graphqlUrl.replace(/^http/, 'ws')}`;
  const delay = options.reconnect?.initialDelayMs ?? 250;
  return createWsClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${options.token}` },
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: () => new Promise((resolve) => setTimeout(resolve, delay)),
  });
}

/** A link that answers the first `n` subscriptions with `replayRefusal`, then forwards. */
function refusing(n: number): ApolloLink {
  let refused = 0;
  return new ApolloLink((operation, forward) => {
    if (refused >= n) return forward(operation);
    refused++;
    return new Observable((observer) => {
      observer.next(replayRefusal());
      observer.complete();
    });
  });
}

/** A `fetch` that records each GraphQL operation's name (POST body or GET query string). */
function recordingFetch(
  requests: string[],
  holdAnswer?: (operationName: string) => Promise<void>,
): typeof fetch {
  return async (input, init) => {
    const body =
      typeof init?.body === 'string' ? (JSON.parse(init.body) as Record<string, unknown>) : {};
    const url = new URL(
      typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
    );
    const name = body['operationName'] ?? url.searchParams.get('operationName');
    requests.push(typeof name === 'string' ? name : '?');
    const answer = await fetch(input, init);
    await holdAnswer?.(typeof name === 'string' ? name : '?');
    return answer;
  };
}

/** `LiveCacheClient.fresh` for the client's token. */
function freshQuery(options: LiveCacheClientOptions) {
  const sdk = createCorkboardClient({ url: options.graphqlUrl, token: options.token });
  return () => sdk.board({ id: options.boardId });
}

function watcher() {
  let latest: WatchedBoard | undefined;
  let updatedAt = 0;
  const listeners = new Set<() => void>();
  const history: { board: WatchedBoard; at: number }[] = [];
  return {
    board: () => latest,
    history,
    updatedAt: () => updatedAt,
    update(board: WatchedBoard | null | undefined) {
      if (!board) return;
      latest = board;
      updatedAt = performance.now();
      history.push({ board, at: updatedAt });
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
  const ws = appWebSocket(options);
  const client = new ApolloClient({
    // The app's links: subscriptions over its graphql-ws socket, the rest over HTTP.
    link: ApolloLink.split(
      ({ query }) => isSubscriptionOperation(query),
      ApolloLink.from([refusing(options.refuseReplays ?? 0), new GraphQLWsLink(ws)]),
      new HttpLink({
        uri: options.graphqlUrl,
        headers: { authorization: `Bearer ${options.token}` },
        fetch: recordingFetch(requests, options.holdAnswer),
      }),
    ),
    cache: new InMemoryCache(corkboardCacheConfig),
  });
  const accessEnded: LiveCacheClient['accessEnded'] = [];
  const live = liveApolloBoard(client, options.boardId, {
    onAccessEnded: (error) =>
      accessEnded.push({
        reason: error.reason,
        boardCached:
          client.readQuery({ query: BoardDocument, variables: { id: options.boardId } })?.board !=
          null,
      }),
    ...(options.mode ? { mode: options.mode } : {}),
    ...(options.ownChangeGraceMs !== undefined
      ? { ownChangeGraceMs: options.ownChangeGraceMs }
      : {}),
    ...(options.viewerId !== undefined ? { viewerId: options.viewerId } : {}),
    onApplied: (batch) => {
      applied.push(...batch.changes);
      stale.push(batch.stale);
    },
  });
  // Subscribed from the server's change head first, then reading: nothing falls between.
  await live.ready;
  const watched = watcher();
  const subscription = client
    .watchQuery({ query: BoardDocument, variables: { id: options.boardId } })
    .subscribe((result) => {
      if (result.dataState === 'complete') watched.update(result.data.board);
    });
  await watched.waitForBoard(() => true);
  return {
    library: 'apollo',
    accessEnded,
    requests,
    applied,
    stale,
    client,
    fresh: freshQuery(options),
    done: live.done,
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
      await ws.dispose();
    },
  };
}

/** An urql client with Graphcache watching the board, kept fresh by `@corkboard/client/urql`. */
export async function openUrqlClient(options: LiveCacheClientOptions): Promise<LiveCacheClient> {
  const requests: string[] = [];
  const applied: BoardChange[] = [];
  const stale: AppliedChanges['stale'][] = [];
  const ws = appWebSocket(options);
  let refused = 0;
  const client = new Client({
    url: options.graphqlUrl,
    fetch: recordingFetch(requests, options.holdAnswer),
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
      fetchExchange,
      // The app's own subscription transport: its graphql-ws socket.
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => {
            if (refused < (options.refuseReplays ?? 0)) {
              refused++;
              sink.next(replayRefusal());
              sink.complete();
              return { unsubscribe: () => {} };
            }
            return {
              unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink),
            };
          },
        }),
      }),
    ],
  });
  const live = liveUrqlBoard(client, options.boardId, options.mode ? { mode: options.mode } : {});
  await live.ready;
  const watched = watcher();
  const subscription = client
    .query(BoardDocument, { id: options.boardId })
    .subscribe((result) => watched.update(result.data?.board));
  await watched.waitForBoard(() => true);
  return {
    library: 'urql',
    accessEnded: [],
    requests,
    applied,
    stale,
    client,
    fresh: freshQuery(options),
    done: live.done,
    ...watched,
    async mutate(document, variables) {
      const result = await client.mutation(document, variables).toPromise();
      if (!result.data) throw new Error(`no data: ${result.error?.message ?? 'none'}`);
      return result.data;
    },
    async close() {
      live.stop();
      subscription.unsubscribe();
      await ws.dispose();
    },
  };
}

export const openLiveCacheClient = (library: CacheLibrary, options: LiveCacheClientOptions) =>
  library === 'apollo' ? openApolloClient(options) : openUrqlClient(options);
