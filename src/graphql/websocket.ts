import { setMaxListeners } from 'node:events';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { Socket } from 'node:net';
import {
  getOperationAST,
  GraphQLError,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import type { OperationResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { maskError, type YogaServerInstance } from 'graphql-yoga';
import { WebSocket, WebSocketServer } from 'ws';
import type { LiveConnection } from '../live/BoardChangeHub.js';
import { messageOf, nextFrame } from '../live/frames.js';
import { SERIALIZED_BYTES, type SharedResult } from '../live/SubscriptionGroups.js';
import { LiveCloseCode, LiveErrorCode, type LiveLimits } from '../live/limits.js';
import type { Logger } from '../logger.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../http/requestBody.js';
import type { GraphQLContext } from './context.js';
import { jsonDepthRefusal } from './yoga.js';
import type { TrustedDocumentPolicy } from './trustedDocuments.js';

type Yoga = YogaServerInstance<object, GraphQLContext>;

/** yoga's envelope of one operation, with graphql-js's signatures (envelop says `any`). */
interface Envelope {
  schema: GraphQLSchema;
  parse: (source: string) => DocumentNode;
  validate: (schema: GraphQLSchema, document: DocumentNode) => readonly GraphQLError[];
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
  contextFactory: () => unknown;
}

/** Execution args carrying yoga's enveloped executors (the yoga graphql-ws recipe). */
interface EnvelopedExecutionArgs extends ExecutionArgs {
  envelopedExecute: Envelope['execute'];
  envelopedSubscribe: Envelope['subscribe'];
  /** Where the operation's shared results are written (see `sendingShared`). */
  socket: WebSocket;
  id: string;
  /** A subscription's slot in its connection's count; absent for queries and mutations. */
  subscription?: CountedSubscription;
}

const isAsyncIterable = (value: unknown): value is AsyncIterable<ExecutionResult> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

/**
 * A subscription's stream as graphql-ws iterates it: each result shared by a group
 * (`SharedResult`, serialised once for all its members) is written straight to the
 * socket as a graphql-ws `next` frame, this subscription's id spliced around the
 * shared JSON, without stringifying it again; graphql-ws sees only the rest (none, for
 * `boardChanges` once caught up, see `DirectDelivery`) and the end. Frames are written
 * in order, and never after graphql-ws returned the stream (the client completed it,
 * or the socket closed).
 */
class SendingShared implements AsyncIterableIterator<ExecutionResult> {
  readonly #iterator: AsyncIterator<ExecutionResult>;
  #returned = false;

  constructor(
    private readonly connection: WebSocketConnection,
    private readonly id: string,
    stream: AsyncIterable<ExecutionResult>,
    /** Its slot in the connection's count, freed when the stream ends, whichever way. */
    private readonly slot: CountedSubscription,
  ) {
    this.#iterator = stream[Symbol.asyncIterator]();
  }

  // Not an async function: a parked one would keep its frame (a generator) alive.
  next(): Promise<IteratorResult<ExecutionResult, undefined>> {
    return this.#iterator.next().then(
      (next) => this.#take(next),
      (error: unknown) => {
        this.slot.release();
        throw error;
      },
    );
  }

  #take(
    next: IteratorResult<ExecutionResult, unknown>,
  ):
    | IteratorResult<ExecutionResult, undefined>
    | Promise<IteratorResult<ExecutionResult, undefined>> {
    if (this.#returned || next.done) {
      this.slot.release();
      return { done: true, value: undefined };
    }
    const bytes = (next.value as Partial<SharedResult>)[SERIALIZED_BYTES];
    if (bytes === undefined) return next;
    // Refused: the socket is being closed as a slow consumer, and this stream ends.
    if (!this.connection.send(nextFrame(this.id, bytes))) return this.return();
    return this.next();
  }

  async return(): Promise<IteratorResult<ExecutionResult, undefined>> {
    this.#returned = true;
    this.slot.release();
    await this.#iterator.return?.();
    return { done: true, value: undefined };
  }

  async throw(error?: unknown): Promise<IteratorResult<ExecutionResult, undefined>> {
    this.#returned = true;
    this.slot.release();
    await this.#iterator.return?.();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export interface WebSocketServerOptions {
  logger: Logger;
  limits: Pick<
    LiveLimits,
    | 'maxSubscriptionsPerConnection'
    | 'maxBufferedBytes'
    | 'connectionInitTimeoutMs'
    | 'slowConsumerCloseGraceMs'
    | 'maxIncomingMessageBytes'
  >;
  /**
   * Deepest nesting of an operation's `variables` and `extensions` (`MAX_JSON_DEPTH`), as
   * over HTTP: past it the operation fails alone with `BAD_REQUEST`. @default 64
   */
  maxJsonDepth?: number;
  /**
   * Which documents run (`TRUSTED_DOCUMENTS`), as over HTTP: a manifest id (in
   * `extensions.persistedQuery`, or as `query` itself) runs its document; a document's
   * text is refused under `only` unless the operation carries the admin token.
   * @default documents only, no ids
   */
  trustedDocuments?: Pick<TrustedDocumentPolicy, 'resolve'>;
  /**
   * How long `close()` lets sockets finish their close handshake before destroying
   * them. @default 1_000
   */
  closeGraceMs?: number;
}

/** The websocket side of one HTTP server. */
export interface AttachedWebSocketServer {
  /** Sockets open now. */
  readonly connections: number;
  /**
   * Subscriptions of every socket, from their `subscribe` until their stream ended:
   * those being prepared and those running (what `maxSubscriptionsPerConnection` bounds).
   */
  readonly subscriptions: number;
  /**
   * Stops accepting websockets and closes every open one with `LiveCloseCode.GoingAway`
   * (destroying those that do not finish closing within `closeGraceMs`).
   */
  close(): Promise<void>;
}

/**
 * The value of header `name` in a record of headers, whatever the case of its key
 * (HTTP header names are case-insensitive; clients spell them either way).
 */
function headerIn(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name && typeof value === 'string') return value;
  }
  return undefined;
}

/**
 * One subscription of a socket, from its `subscribe` message until its stream has ended:
 * what `maxSubscriptionsPerConnection` counts. graphql-ws's own record of a socket's
 * operations cannot be the count: it forgets an id when the client completes it, even
 * while the operation is still being prepared, so a client that subscribes and
 * completes one id back to back would start stream after stream that no record holds.
 *
 * While the subscription is prepared it stands in graphql-ws's record for its id (an
 * async iterable with `return`, never iterated), so the client completing that id, or
 * the socket closing, cancels it: its stream is then ended as soon as it exists and
 * never delivers. Its slot is freed once, when its stream ends (or it never gets one).
 */
class CountedSubscription implements AsyncIterable<never> {
  #cancelled = false;
  #released = false;

  constructor(private readonly connection: WebSocketConnection) {
    connection.subscriptions += 1;
  }

  /** The client completed the id, or the socket closed, before the stream existed. */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  [Symbol.asyncIterator](): AsyncIterator<never> {
    throw new Error('a subscription being prepared is not iterable');
  }

  /** graphql-ws's `complete` (or the socket's close) while the subscription is prepared. */
  return(): Promise<IteratorReturnResult<undefined>> {
    this.#cancelled = true;
    return Promise.resolve({ done: true, value: undefined });
  }

  /** Frees the slot. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.connection.subscriptions -= 1;
  }
}

/** The stream of a subscription cancelled before it started: already over. */
const ENDED: AsyncIterableIterator<never> = Object.freeze({
  next: () => Promise.resolve({ done: true, value: undefined } as const),
  return: () => Promise.resolve({ done: true, value: undefined } as const),
  [Symbol.asyncIterator]() {
    return this;
  },
});

/** `ws` send options for a message given as bytes: a text message, as graphql-ws sends. */
const AS_TEXT = Object.freeze({ binary: false, compress: false, fin: true });

/** What of `ws`'s internals the direct write relies on (checked, never assumed). */
interface WsInternals {
  _socket?: unknown;
  _sender?: { _state?: unknown; _queue?: unknown; _firstFragment?: unknown };
}

/**
 * The TCP socket under `socket`, when a whole frame (`nextFrame`) may be written to it
 * as it is: no extension was negotiated (a frame is sent as built, uncompressed) and
 * `ws`'s sender looks as this code knows it. Null otherwise: then frames go through
 * `ws.send`, which is always correct, only slower (it frames each message again and
 * writes header and payload as two corked writes).
 */
function rawSocketOf(socket: WebSocket): Socket | null {
  const { _socket: raw, _sender: sender } = socket as unknown as WsInternals;
  if (socket.extensions !== '' || !(raw instanceof Socket) || !sender) return null;
  if (sender._state !== 0 || !Array.isArray(sender._queue)) return null;
  return raw;
}

/** Whether `ws` has nothing of its own under way on `socket` (a frame written now is next). */
function senderIdle(socket: WebSocket): boolean {
  const sender = (socket as unknown as WsInternals)._sender!;
  return (
    sender._state === 0 &&
    (sender._queue as unknown[]).length === 0 &&
    sender._firstFragment === true
  );
}

/**
 * How a whole frame reaches a socket: one write of the bytes built once per member
 * (the bench wraps it to time the sends, as it wraps `ws`'s `send`).
 */
export const frameWrites = {
  write(raw: Socket, frame: Buffer): void {
    raw.write(frame);
  },
};

/**
 * One websocket as the live side sees it: its abort signal (aborted when it closes),
 * the caller's credentials from `connection_init`, handshake `Request`s for yoga's
 * context function, and how frames reach its TCP socket.
 */
class WebSocketConnection implements LiveConnection {
  readonly #abort = new AbortController();
  /** From `connectionParams` (or the upgrade request); operations may bring their own. */
  authorization: string | null = null;
  /** The handshake request of the last authorization asked for (in practice the only one). */
  #request: HandshakeRequest | null = null;
  /** Where whole frames can be written as they are; null: through `ws`. Set at the first send. */
  #raw: Socket | null | undefined;
  /** Subscriptions being prepared or running (see `CountedSubscription`). */
  subscriptions = 0;

  constructor(
    private readonly socket: WebSocket,
    private readonly upgrade: IncomingMessage,
    private readonly limits: Pick<LiveLimits, 'maxBufferedBytes' | 'slowConsumerCloseGraceMs'>,
    /** How many listeners the signal may have before Node warns of a leak. */
    maxSignalListeners: number,
  ) {
    setMaxListeners(maxSignalListeners, this.#abort.signal);
  }

  /** The socket closed: every operation on it stops. */
  closed(): void {
    this.#abort.abort(new DOMException('The websocket closed', 'AbortError'));
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  /**
   * Writes `frame` unless that would leave more than `maxBufferedBytes` unsent on the
   * socket: then it closes the socket as a slow consumer instead, and says so (false).
   * Checked here, when the bytes are written, not when a change is handed out: one
   * change reaches every subscription of a socket before any of its frames is written.
   */
  send(frame: Buffer): boolean {
    const socket = this.socket;
    if (socket.readyState !== WebSocket.OPEN) return true;
    if (socket.bufferedAmount + frame.length > this.limits.maxBufferedBytes) {
      this.disconnect(LiveCloseCode.SlowConsumer, 'slow consumer');
      return false;
    }
    if (this.#raw === undefined) this.#raw = rawSocketOf(socket);
    const raw = this.#raw;
    if (raw && senderIdle(socket)) frameWrites.write(raw, frame);
    else socket.send(messageOf(frame), AS_TEXT);
    return true;
  }

  /**
   * Ends every operation of the socket (its abort signal fires) and starts the close
   * handshake with `code`; the close frame queues behind whatever is
   * unsent, so the socket is destroyed after `slowConsumerCloseGraceMs` if it has
   * not closed by then.
   */
  disconnect(code: LiveCloseCode, reason: string): void {
    // Every operation of the socket stops now, not when its close handshake ends.
    this.#abort.abort(new DOMException(`The websocket is closing: ${reason}`, 'AbortError'));
    if (this.socket.readyState === WebSocket.CLOSED) return;
    if (this.socket.readyState !== WebSocket.CLOSING) this.socket.close(code, reason);
    setTimeout(() => this.socket.terminate(), this.limits.slowConsumerCloseGraceMs).unref();
  }

  /**
   * The handshake as a request carrying `authorization` and the socket's abort signal:
   * what yoga's context function and its execution cancellation read, so an operation
   * over the websocket gets the same context as one over HTTP.
   */
  requestFor(authorization: string | null): Request {
    if (this.#request?.authorization !== authorization) {
      this.#request = new HandshakeRequest(this.upgrade, authorization, this.#abort.signal);
    }
    return this.#request as unknown as Request;
  }
}

/**
 * The part of a Fetch `Request` that yoga and our context read of a websocket
 * operation (`headers.get`, `signal`, `url`, `method`), over the upgrade request. A real
 * `Request` (with its URL, Headers and a signal of its own following the socket's)
 * cost about 2 KiB per connection, kept for as long as the connection lives.
 */
class HandshakeRequest {
  /**
   * What yoga checks to refuse mutations sent by `GET` (a link or a prefetch could
   * trigger them): a websocket operation is a message the client sent on purpose, like
   * a POST, so mutations over graphql-ws run, with the same context (auth), limits and
   * idempotency keys as over HTTP. graphql-ws allows any operation; urql
   * (`enableAllOperations`) and others send mutations this way.
   */
  readonly method = 'POST';

  constructor(
    private readonly upgrade: IncomingMessage,
    readonly authorization: string | null,
    readonly signal: AbortSignal,
  ) {}

  get url(): string {
    return new URL(this.upgrade.url ?? '/', 'http://localhost').href;
  }

  /** Its own `Headers`: `get(name)`, the upgrade's headers but for `authorization`. */
  get headers(): this {
    return this;
  }

  get(name: string): string | null {
    const key = name.toLowerCase();
    if (key === 'authorization') return this.authorization;
    const value = this.upgrade.headers[key];
    return Array.isArray(value) ? value.join(', ') : (value ?? null);
  }
}

/** What `check` returns, or the GraphQLError it throws (anything else propagates). */
function rejectedAs<T>(check: () => T): T | readonly GraphQLError[] {
  try {
    return check();
  } catch (error) {
    if (error instanceof GraphQLError) return [error];
    throw error;
  }
}

/** An error as a client sees it: without yoga's internal extensions (`http`, `unexpected`). */
function formatted(error: GraphQLError): GraphQLFormattedError {
  const json = error.toJSON();
  if (!json.extensions) return json;
  const { http: _http, unexpected: _unexpected, ...extensions } = json.extensions;
  const { extensions: _all, ...rest } = json;
  return Object.keys(extensions).length > 0 ? { ...rest, extensions } : rest;
}

/**
 * Serves graphql-ws (the `graphql-transport-ws` subprotocol) on `httpServer`'s
 * upgrades to the GraphQL path, through yoga's envelop as in yoga's graphql-ws
 * recipe: every operation is parsed, validated (with the same limits), given its
 * context by yoga's context function (`createContext`) and executed through yoga's
 * plugins, so HTTP, SSE and websocket share context, auth and error masking.
 *
 * Auth: the client sends `connectionParams: { authorization: "Bearer <token>" }` in
 * `connection_init` (the key in any case, or inside `connectionParams.headers`; a
 * non-browser client may send the header on the upgrade instead). An operation may
 * carry its own in `extensions.headers`, as yoga's GraphiQL sends the headers of its
 * editor. An anonymous connection is accepted; what it may do is decided per
 * operation, as over HTTP.
 */
export function attachWebSocketServer(
  httpServer: HttpServer,
  yoga: Yoga,
  options: WebSocketServerOptions,
): AttachedWebSocketServer {
  const { logger, limits } = options;
  const closeGraceMs = options.closeGraceMs ?? 1_000;
  const maxJsonDepth = options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const { trustedDocuments } = options;
  const wss = new WebSocketServer({
    server: httpServer,
    path: yoga.graphqlEndpoint,
    maxPayload: limits.maxIncomingMessageBytes,
  });
  const connections = new WeakMap<WebSocket, WebSocketConnection>();
  // One listener for every socket (`this` is the socket), not a closure per connection.
  function onSocketClose(this: WebSocket) {
    connections.get(this)?.closed();
  }
  // Registered before graphql-ws's own listener, so the state exists for its callbacks
  // (and the connection's operations are aborted before graphql-ws returns them).
  wss.on('connection', (socket, request) => {
    socket.on('close', onSocketClose);
    connections.set(
      socket,
      new WebSocketConnection(
        socket,
        request,
        limits,
        // Each operation listens to the connection's signal a few times (the hub, the
        // executor, reads in flight); the default of 10 would warn at a few subscriptions.
        limits.maxSubscriptionsPerConnection * 4 + 10,
      ),
    );
  });
  const connectionOf = (socket: WebSocket) => {
    const connection = connections.get(socket);
    if (!connection) throw new Error('websocket without connection state');
    return connection;
  };

  const server = useServer(
    {
      isProd: true,
      connectionInitWaitTimeout: limits.connectionInitTimeoutMs,
      execute: (args) => (args as EnvelopedExecutionArgs).envelopedExecute(args),
      subscribe: async (args) => {
        const { envelopedSubscribe, socket, id, subscription } = args as EnvelopedExecutionArgs;
        // Every subscription operation has its slot (taken in `onSubscribe`).
        const slot = subscription!;
        if (slot.cancelled) {
          slot.release();
          return ENDED;
        }
        let result: OperationResult;
        try {
          result = await envelopedSubscribe(args);
        } catch (error) {
          slot.release();
          throw error;
        }
        if (!isAsyncIterable(result)) {
          slot.release();
          return result;
        }
        const stream = new SendingShared(connectionOf(socket), id, result, slot);
        // Completed by the client meanwhile: end it before it delivers anything.
        if (slot.cancelled) await stream.return();
        return stream;
      },
      onConnect: (ctx) => {
        const params = ctx.connectionParams;
        connectionOf(ctx.extra.socket).authorization =
          headerIn(params, 'authorization') ??
          headerIn(params?.headers, 'authorization') ??
          ctx.extra.request.headers.authorization ??
          null;
        return true;
      },
      onSubscribe: async (ctx, id, payload) => {
        // The depth rule of every transport, before anything reads the variables.
        const tooDeep = jsonDepthRefusal(payload, maxJsonDepth);
        if (tooDeep) {
          logger.info({ operationName: payload.operationName }, 'websocket operation rejected');
          return [tooDeep];
        }
        const connection = connectionOf(ctx.extra.socket);
        // GraphiQL sends the headers of its editor with each operation, in `extensions`.
        const authorization =
          headerIn(payload.extensions?.headers, 'authorization') ?? connection.authorization;
        const envelope: Envelope = yoga.getEnveloped({
          request: connection.requestFor(authorization),
          params: payload,
          connection,
          operationId: id,
          // Who rate limits count when the caller is anonymous (src/graphql/clientLimits.ts).
          clientAddress: ctx.extra.request.socket.remoteAddress,
        });
        const { schema, execute, subscribe, contextFactory, parse, validate } = envelope;
        // Parsing and validation apply the query limits (tokens, depth, aliases, cost),
        // which throw their GraphQLError: it fails this operation only, as over HTTP.
        const source = trustedDocuments
          ? trustedDocuments.resolve(payload, authorization)
          : payload.query;
        if (source instanceof GraphQLError) {
          logger.info(
            { operationName: payload.operationName, code: source.extensions.code },
            'websocket operation refused',
          );
          return [source];
        }
        const checked = rejectedAs(() => {
          const document = typeof source === 'string' ? parse(source) : source;
          const errors = validate(schema, document);
          return errors.length > 0 ? errors : document;
        });
        if (!('kind' in checked)) {
          logger.info(
            { operationName: payload.operationName, errors: checked.map((e) => e.message) },
            'websocket operation rejected',
          );
          return checked;
        }
        const document = checked;
        const operation = getOperationAST(document, payload.operationName);
        const isSubscription = operation?.operation === OperationTypeNode.SUBSCRIPTION;
        let subscription: CountedSubscription | undefined;
        if (isSubscription) {
          // Checked and reserved in one step, before any await: subscribes sent back to
          // back cannot all pass the check before one of them is counted. The count is of
          // streams, from this subscribe until the stream ends (see CountedSubscription).
          if (connection.subscriptions >= limits.maxSubscriptionsPerConnection) {
            return [
              new GraphQLError(
                `At most ${limits.maxSubscriptionsPerConnection} subscriptions per connection`,
                { extensions: { code: LiveErrorCode.TooManySubscriptions } },
              ),
            ];
          }
          subscription = new CountedSubscription(connection);
          ctx.subscriptions[id] = subscription;
        }
        let contextValue: unknown;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          subscription?.release();
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const args: EnvelopedExecutionArgs = {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue,
          envelopedExecute: execute,
          envelopedSubscribe: subscribe,
          socket: ctx.extra.socket,
          id,
          ...(subscription ? { subscription } : {}),
        };
        return args;
      },
      // What graphql-ws writes itself (query and mutation results, other subscriptions)
      // is bounded like the shared frames: a socket already past its bound is closed.
      onNext: (ctx) => {
        const connection = connectionOf(ctx.extra.socket);
        if (connection.bufferedAmount > limits.maxBufferedBytes) {
          connection.disconnect(LiveCloseCode.SlowConsumer, 'slow consumer');
        }
      },
      // Errors a stream throws reach graphql-ws directly, past yoga's result masking:
      // mask them the same way here.
      onError: (_ctx, _id, _payload, errors): GraphQLFormattedError[] =>
        errors.map((error) => {
          const masked = maskError(error, 'Unexpected error.');
          if (masked === error) return formatted(error);
          logger.error({ err: error }, 'unexpected error in a websocket operation');
          return { message: masked.message };
        }),
    },
    wss,
  );

  return {
    get connections() {
      return wss.clients.size;
    },
    get subscriptions() {
      let count = 0;
      for (const socket of wss.clients) count += connections.get(socket)?.subscriptions ?? 0;
      return count;
    },
    async close() {
      const open = [...wss.clients];
      const closed = Promise.all(
        open.map(
          (socket) =>
            new Promise<void>((resolve) => {
              if (socket.readyState === WebSocket.CLOSED) return resolve();
              socket.once('close', () => resolve());
              socket.close(LiveCloseCode.GoingAway, 'Server shutting down');
            }),
        ),
      );
      const timer = setTimeout(() => {
        for (const socket of open) socket.terminate();
      }, closeGraceMs);
      await closed;
      clearTimeout(timer);
      await server.dispose();
    },
  };
}
