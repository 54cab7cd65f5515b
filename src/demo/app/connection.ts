import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { isSubscriptionOperation } from '@apollo/client/utilities';
import { corkboardCacheConfig } from '@corkboard/client/apollo';
import { createClient, type Client } from 'graphql-ws';

/**
 * What the page shows of its websocket:
 * - `connecting`: before the first connection;
 * - `live`: connected, and the board shown is up to date with every change received;
 * - `reconnecting`: the socket dropped (or the browser went offline); retrying;
 * - `resyncing`: connected again, catching up with what changed meanwhile.
 */
export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'resyncing';

/** The page's one Apollo Client and websocket, signed in with one token. */
export interface Connection {
  apollo: ApolloClient;
  state(): ConnectionState;
  /** Calls `listener` on every state change; answers the unsubscribe. */
  onState(listener: (state: ConnectionState) => void): () => void;
  /** Calls `listener` each time the socket is connected again after a drop. */
  onReconnected(listener: () => void): () => void;
  /** Marks the catch-up after a reconnect as done. */
  caughtUp(): void;
  close(): void;
}

const GRAPHQL_PATH = '/graphql';

/** Resolves once the browser says it is online (at once when it is). */
const online = () =>
  new Promise<void>((resolve) => {
    if (navigator.onLine) return resolve();
    window.addEventListener('online', () => resolve(), { once: true });
  });

/**
 * Apollo Client over HTTP for queries and mutations and over graphql-ws for
 * subscriptions (one socket), with the Corkboard cache config. The socket retries
 * for ever with backoff; while the browser is offline it waits for `online` instead,
 * and going offline drops it at once (a socket may otherwise linger half-open).
 */
export function connect(token: string): Connection {
  const listeners = new Set<(state: ConnectionState) => void>();
  const reconnectListeners = new Set<() => void>();
  let state: ConnectionState = 'connecting';
  let everConnected = false;
  let closing = false;
  const set = (next: ConnectionState) => {
    if (next === state) return;
    state = next;
    listeners.forEach((listener) => listener(next));
  };
  const authorization = `Bearer ${token}`;
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${GRAPHQL_PATH}`;
  const ws: Client = createClient({
    url: wsUrl,
    connectionParams: { authorization },
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => !closing,
    retryWait: async (retries) => {
      await online();
      const delay = Math.min(250 * 2 ** retries, 5_000) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, delay));
    },
    on: {
      connected: () => {
        if (everConnected) {
          set('resyncing');
          reconnectListeners.forEach((listener) => listener());
        } else {
          everConnected = true;
          set('live');
        }
      },
      closed: () => {
        if (!closing && everConnected) set('reconnecting');
      },
    },
  });
  const dropWhenOffline = () => ws.terminate();
  window.addEventListener('offline', dropWhenOffline);
  const apollo = new ApolloClient({
    link: ApolloLink.split(
      ({ query }) => isSubscriptionOperation(query),
      new GraphQLWsLink(ws),
      new HttpLink({ uri: GRAPHQL_PATH, headers: { authorization } }),
    ),
    cache: new InMemoryCache(corkboardCacheConfig),
  });
  return {
    apollo,
    state: () => state,
    onState(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onReconnected(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
    caughtUp: () => {
      if (state === 'resyncing') set('live');
    },
    close() {
      closing = true;
      window.removeEventListener('offline', dropWhenOffline);
      void ws.dispose();
      apollo.stop();
    },
  };
}
