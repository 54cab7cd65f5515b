import type { GraphQLFormattedError } from 'graphql';
import { CloseCode, createClient, type Client } from 'graphql-ws/client';
import { accessEndedOf } from './accessEnded.js';
import { CorkboardRequestError } from './CorkboardRequestError.js';
import { isReplayLimit, replayRetryDelayMs } from './liveChanges.js';
import type {
  BoardChangesSubscription,
  BoardChangesSubscriptionVariables,
} from './generated/graphql.js';

/** One message of `boardChanges`: a committed change, or a request to resync. */
export type BoardChange = BoardChangesSubscription['boardChanges'];

/** How `boardChanges` reconnects after its socket dropped. */
export interface ReconnectOptions {
  /** Pause before the first reconnect; doubles per failed one, with jitter. @default 250 */
  initialDelayMs?: number;
  /** Longest pause between two reconnects. @default 10_000 */
  maxDelayMs?: number;
  /**
   * Reconnects in a row that may fail (drop before the server acknowledged the
   * connection) before the iterator gives up and throws. @default Infinity
   */
  maxAttempts?: number;
}

/** Where a `boardChanges` iteration starts, and what ends it. */
export interface BoardChangesOptions {
  /**
   * Resume after this cursor (a `BoardChange.cursor` the app kept): the server
   * replays every change after it first. Absent: only changes from now on.
   */
  after?: string | null;
  /** Aborting it ends the iteration (the loop just finishes) and closes the socket. */
  signal?: AbortSignal;
}

/** What `followBoardChanges` needs from the client that owns it. */
export interface BoardChangesTransport {
  /** The websocket URL of the GraphQL endpoint. */
  url: string;
  /** A WebSocket constructor; `undefined` uses `globalThis.WebSocket`. */
  webSocketImpl: unknown;
  /**
   * The bearer token for each new connection, if any; `expired` is true when the
   * server closed the last one because its token expired or its session ended.
   */
  token: (expired: boolean) => Promise<string | null | undefined>;
  /** The printed `BoardChanges` subscription, or `''` when `extensions` names it by id. */
  query: string;
  /** Sent with each subscribe: the document id, when the client sends ids. */
  extensions?: Record<string, unknown>;
  reconnect: ReconnectOptions;
}

/**
 * Close codes after which reconnecting cannot help, as graphql-ws's own client
 * judges them: a protocol violation on either side, a refused or duplicate
 * handshake, and the websocket codes 1002-1011 (protocol error, message too big,
 * policy violation...). Any other close (the server going away, 1001; a slow
 * consumer, 4008; a dropped network, 1006) is a drop, and the iterator resumes.
 * 4403 (Forbidden) is what the server closes with when the connection's token
 * expired or its session ended: the iterator reconnects at once with a token asked
 * of the provider again (`expired: true`); when that one is refused too, it throws.
 */
export const CREDENTIAL_ENDED_CLOSE_CODE: number = CloseCode.Forbidden;
const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.InternalServerError,
  CloseCode.InternalClientError,
  CloseCode.BadRequest,
  CloseCode.BadResponse,
  CloseCode.Unauthorized,
  CloseCode.SubprotocolNotAcceptable,
  CloseCode.SubscriberAlreadyExists,
  CloseCode.TooManyInitialisationRequests,
]);
const RETRYABLE_WEBSOCKET_CODES: ReadonlySet<number> = new Set([
  1000, 1001, 1005, 1006, 1012, 1013, 1014,
]);
const isFatalClose = (code: number) =>
  FATAL_CLOSE_CODES.has(code) ||
  (code >= 1000 && code < 2000 && !RETRYABLE_WEBSOCKET_CODES.has(code));

const isCloseEvent = (value: unknown): value is { code: number; reason: string } =>
  typeof value === 'object' && value !== null && 'code' in value && 'reason' in value;

const isGraphQLErrors = (value: unknown): value is GraphQLFormattedError[] =>
  Array.isArray(value) && value.every((e) => typeof e === 'object' && e !== null && 'message' in e);

/** Resolves after `ms`, or at once when `signal` aborts. */
const pause = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/** Disposes a graphql-ws client; a socket that never opened is no error here. */
const disposeQuietly = (client: Client): Promise<void> =>
  Promise.resolve(client.dispose()).catch(() => {});

/**
 * One connection's worth of the subscription: a graphql-ws client of its own, so
 * that a drop ends exactly this attempt. graphql-ws would otherwise resubscribe by
 * itself with the variables of the first subscribe, i.e. with a stale `after`, and
 * deliver again what this iterator already yielded.
 */
function openAttempt(
  transport: BoardChangesTransport,
  variables: BoardChangesSubscriptionVariables,
  onConnected: () => void,
  expired: boolean,
) {
  let dropped: { code: number; reason: string } | undefined;
  const client = createClient({
    url: transport.url,
    webSocketImpl: transport.webSocketImpl,
    lazy: true,
    retryAttempts: 0,
    connectionParams: async () => {
      const token = await transport.token(expired);
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    on: {
      connected: onConnected,
      closed: (event) => {
        dropped ??= isCloseEvent(event) ? event : { code: 1006, reason: 'closed' };
        // Disposed now (not in a later tick), the client ends the subscription
        // instead of resubscribing.
        void disposeQuietly(client);
      },
    },
  });
  const results = client.iterate<BoardChangesSubscription>({
    query: transport.query,
    operationName: 'BoardChanges',
    variables,
    ...(transport.extensions ? { extensions: transport.extensions } : {}),
  });
  return {
    results,
    /** Set once the socket closed: the attempt ended by a drop, not by the server. */
    get dropped() {
      return dropped;
    },
    async close() {
      await results.return?.();
      await disposeQuietly(client);
    },
  };
}

/**
 * `boardChanges(boardId)` as an async iterator that survives dropped connections.
 * It remembers the cursor of the last message it yielded; after a drop it waits
 * (exponential backoff with jitter) and subscribes again with `after` that cursor,
 * so the server replays exactly what was missed: every change arrives once, in
 * commit order. A subscribe refused because too many replays run on the server
 * (`TOO_MANY_REPLAYS`) is sent again the same way, after `replayRetryDelayMs`.
 *
 * A message with `resyncRequired: true` means the cursor was too old to replay
 * from: changes were missed for good. It is yielded like any other; the app must
 * then refetch whatever it shows. The iterator continues after that message's
 * cursor by itself.
 *
 * Ends when `signal` aborts, when the consumer stops (`break`), or when the server
 * completes the subscription. Throws `BoardAccessEndedError` (a `CorkboardRequestError`)
 * when the viewer cannot see the board, or no longer can: its `reason` says whether an
 * owner removed them (`REMOVED`), they left (`LEFT`), or the server said only
 * `NOT_FOUND`; it is thrown the same whether the subscription was open when access
 * ended or resumed after it (a replay from an old cursor is refused). Throws
 * `CorkboardRequestError` when the server refuses it otherwise (e.g. `UNAUTHENTICATED`),
 * closes the socket with a fatal code, or after `reconnect.maxAttempts` failed
 * reconnects.
 */
export async function* followBoardChanges(
  transport: BoardChangesTransport,
  boardId: string,
  options: BoardChangesOptions = {},
): AsyncGenerator<BoardChange, void, undefined> {
  const { signal } = options;
  const initialDelayMs = transport.reconnect.initialDelayMs ?? 250;
  const maxDelayMs = transport.reconnect.maxDelayMs ?? 10_000;
  const maxAttempts = transport.reconnect.maxAttempts ?? Infinity;
  let cursor = options.after ?? null;
  let failures = 0;
  let refused = 0;
  let expired = false;

  while (!signal?.aborted) {
    const attempt = openAttempt(
      transport,
      cursor === null ? { boardId } : { boardId, after: cursor },
      () => (failures = 0),
      expired,
    );
    expired = false;
    const stop = () => void attempt.close();
    signal?.addEventListener('abort', stop, { once: true });
    let drop: unknown;
    try {
      for await (const result of attempt.results) {
        const change = result.data?.boardChanges;
        if (result.errors?.length || !change) {
          throw (
            (result.errors && accessEndedOf(result.errors, boardId)) ??
            new CorkboardRequestError(
              result.errors?.map((e) => e.message).join('; ') ?? 'a message without data',
              { operationName: 'BoardChanges', errors: result.errors ?? [] },
            )
          );
        }
        cursor = change.cursor;
        refused = 0;
        yield change;
      }
      if (signal?.aborted || !attempt.dropped) return;
      drop = attempt.dropped;
    } catch (error) {
      if (signal?.aborted) return;
      if (isReplayLimit(error)) {
        // Too many replays run at once on the server: again shortly, from the cursor.
        await attempt.close();
        await pause(replayRetryDelayMs(++refused), signal);
        continue;
      }
      if (error instanceof CorkboardRequestError) throw error;
      if (isGraphQLErrors(error)) {
        throw (
          accessEndedOf(error, boardId) ??
          new CorkboardRequestError(error.map((e) => e.message).join('; '), {
            operationName: 'BoardChanges',
            errors: error,
          })
        );
      }
      if (isCloseEvent(error) && isFatalClose(error.code)) {
        throw new CorkboardRequestError(`socket closed: ${error.code} ${error.reason}`, {
          operationName: 'BoardChanges',
          closeCode: error.code,
        });
      }
      drop = error;
    } finally {
      signal?.removeEventListener('abort', stop);
      await attempt.close();
    }

    if (isCloseEvent(drop) && drop.code === CREDENTIAL_ENDED_CLOSE_CODE) {
      // A new token, at once: the server replays what was missed from the cursor.
      expired = true;
      continue;
    }
    failures++;
    if (failures > maxAttempts) {
      throw new CorkboardRequestError(`gave up after ${maxAttempts} failed reconnects`, {
        operationName: 'BoardChanges',
        closeCode: isCloseEvent(drop) ? drop.code : undefined,
        cause: drop,
      });
    }
    const backoff = Math.min(maxDelayMs, initialDelayMs * 2 ** (failures - 1));
    await pause(backoff * (0.5 + Math.random() / 2), signal);
  }
}
