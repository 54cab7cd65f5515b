import type { Server as HttpServer } from 'node:http';
import {
  getOperationAST,
  GraphQLError,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import type { OperationResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { maskError, type YogaServerInstance } from 'graphql-yoga';
import { WebSocket, WebSocketServer } from 'ws';
import { LiveCloseCode, type LiveLimits } from '../live/limits.js';
import { LiveErrorCode } from '../sdk/liveErrorCodes.js';
import type { Logger } from '../logger.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../http/requestBody.js';
import type { GraphQLContext } from './context.js';
import { WebSocketConnection } from './wsConnection.js';
import {
  CountedSubscription,
  ENDED,
  RefusedBeforeStart,
  SendingShared,
  isAsyncIterable,
  refusalOf,
  refusedStream,
} from './wsSubscriptions.js';
import { jsonDepthRefusal } from './queryLimits.js';
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
  /** Where the operation's shared results are written (see `SendingShared`). */
  socket: WebSocket;
  id: string;
  /** A subscription's slot in its connection's count; absent for queries and mutations. */
  subscription?: CountedSubscription;
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
    if (key.toLowerCase() !== name || value === null || value === undefined) continue;
    // Sent but not a string (a number, an object): a malformed credential, refused as
    // one, never taken for no credential at all.
    return typeof value === 'string' ? value : JSON.stringify(value);
  }
  return undefined;
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
          // Refused before any event (by the subscribe resolver, or its variables): an
          // `error` message, as every refusal in `onSubscribe` is, not `next` + `complete`.
          const refusal = refusalOf(result);
          return refusal ? refusedStream(refusal) : result;
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
        errors
          .flatMap((e) =>
            e.originalError instanceof RefusedBeforeStart ? e.originalError.errors : [e],
          )
          .map((error) => {
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
