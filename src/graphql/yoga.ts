import { useEngine } from '@envelop/core';
import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { execute, GraphQLError, subscribe } from 'graphql';
import {
  createYoga,
  maskError,
  isAsyncIterable,
  useExecutionCancellation,
  type Plugin,
  type YogaServerInstance,
} from 'graphql-yoga';
import { ServerResponse } from 'node:http';
import { BoardReads } from '../boards/reads.js';
import { ResponseConnection } from '../live/ResponseConnection.js';
import { ProjectionTimeout } from '../projector/ChangeLogFollower.js';
import { isAdminAuthorization } from './auth.js';
import type { GraphQLContext, Services } from './context.js';
import { buildSchema } from './schema.js';
import { boundedLogText } from '../logger.js';
import { useSharedSubscriptions } from './sharedSubscriptions.js';
import { useCompiledQueries } from './compiledQueries.js';
import { useClientLimits, type ClientLimitName } from './clientLimits.js';
import type { TrustedDocumentPolicy } from './trustedDocuments.js';
import type { RateLimiter } from '../rateLimiter.js';
import { Attr, inSpan, SpanName } from '../telemetry/spans.js';
import { operationTraceOf } from '../telemetry/graphqlTracing.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../http/requestBody.js';
import { jsonDepthLimit, queryLimitPlugins } from './queryLimits.js';
import { withoutVariableValue } from './variableErrors.js';
import { usePageArgumentsBeforeWrites } from './pageArguments.js';
import { boundedMessage, MAX_ERROR_MESSAGE_LENGTH } from './messageLength.js';

const logLine = (args: unknown[]) => boundedLogText(args.map(String).join(' '));

/** Where GraphQL (and GraphiQL) is served. */
export const GRAPHQL_PATH = '/graphql';

/**
 * Builds the context of one operation: authenticates the bearer token and pins the
 * read model generation, so one operation never mixes two generations.
 */
export async function createContext(
  services: Services,
  authorization: string | null | undefined,
  signal: AbortSignal,
): Promise<GraphQLContext> {
  const reads = new BoardReads(await services.readModels.active({ signal }), signal, {
    access: services.access,
  });
  // The admin token is nobody's user token: it authenticates the admin, not a viewer.
  const isAdmin = isAdminAuthorization(services.adminToken, authorization);
  const caller = isAdmin ? null : await services.auth.authenticate(authorization, reads, signal);
  const context: GraphQLContext = {
    services,
    viewer: caller?.user ?? null,
    credential: caller?.credential ?? null,
    isAdmin,
    signal,
    reads,
    readModelBehind: null,
    wrote: false,
    async settle(position) {
      await inSpan(
        SpanName.ReadYourWrites,
        { attributes: { [Attr.Position]: position }, parent: operationTraceOf(this) },
        async (span) => {
          try {
            await services.follower.waitFor(position, {
              timeoutMs: services.readYourWritesTimeoutMs,
              signal,
            });
            span.setAttribute(Attr.WaitOutcome, 'projected');
            services.logger.debug({ position }, 'mutation answered: its commit is projected');
          } catch (error) {
            if (!(error instanceof ProjectionTimeout)) throw error;
            // Answer anyway: the write is committed; the payload may lag behind it.
            span.setAttribute(Attr.WaitOutcome, 'timed_out');
            services.logger.warn({ position }, 'mutation answered before its commit was projected');
            this.readModelBehind = Math.max(this.readModelBehind ?? 0, position);
          }
        },
      );
      // `this`, not `context`: yoga copies this object into the context resolvers see.
      // `fresh`: a cached pointer could still name the generation a rebuild just replaced,
      // which never receives the commit waited for.
      this.reads = new BoardReads(
        await services.readModels.active({ signal, fresh: true }),
        signal,
        { access: services.access },
      );
    },
  };
  return context;
}

/** How a GraphQL server faces the outside (README "Limits and security"). */
export interface GraphQLServerPosture {
  /** NODE_ENV=production: no field suggestions, no error details. @default false */
  production?: boolean;
  /** Answer introspection queries. @default true */
  introspection?: boolean;
  /** Require `x-graphql-yoga-csrf` on requests browsers send without preflight. @default false */
  csrfPrevention?: boolean;
  /** Browser origins allowed by CORS; empty: none but the same origin. @default [] */
  corsOrigins?: readonly string[];
  /**
   * Deepest nesting of arrays and objects in an operation's `variables` and `extensions`
   * (`MAX_JSON_DEPTH`), on every transport. @default 64
   */
  maxJsonDepth?: number;
  /**
   * Which documents run (`TRUSTED_DOCUMENTS`): the policy's persisted-operations plugin.
   * @default none: documents only, no ids
   */
  trustedDocuments?: TrustedDocumentPolicy;
  /** Per-client rate limits of registrations, mutations and subscribes. @default none */
  clientLimits?: RateLimiter<ClientLimitName>;
  /** Further envelop plugins (metrics), after ours. */
  plugins?: Plugin[];
  /**
   * How long an SSE slow consumer's final error may take to get through before its
   * socket is destroyed (`slowConsumerCloseGraceMs`). @default 2_000
   */
  sseCloseGraceMs?: number;
}

const SSE = 'text/event-stream';

export { MAX_ERROR_MESSAGE_LENGTH } from './messageLength.js';

/**
 * An error fit to send: its message bounded (graphql-js and plugins quote input values,
 * e.g. "Invalid global ID: <the whole id>"). With `coded` (an execution error), it gets
 * a `code` when it had none, and a variable's error (graphql-js reports its coercion with
 * no code) gets `BAD_USER_INPUT` and a message without the value it quoted. Without it
 * (parse and validation), the code is left as it is: yoga gives those theirs
 * (`GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`) after this plugin's hooks, only
 * to an error that has none.
 */
function boundedError(error: GraphQLError, coded = false): GraphQLError {
  const invalidId = isInvalidGlobalId(error);
  const uncoded = coded && isVariableError(error);
  const text = uncoded ? withoutVariableValue(error.message) : error.message;
  const long = text.length > MAX_ERROR_MESSAGE_LENGTH;
  if (!invalidId && !long && !uncoded) return error;
  const message = invalidId ? 'Invalid global ID.' : boundedMessage(text);
  return new GraphQLError(message, {
    nodes: error.nodes ?? null,
    source: error.source ?? null,
    positions: error.positions ?? null,
    path: error.path ?? null,
    extensions: coded
      ? { ...error.extensions, code: error.extensions.code ?? 'BAD_USER_INPUT' }
      : { ...error.extensions },
  });
}

/** A malformed global ID (Pothos's message, which quotes it). */
const isInvalidGlobalId = (error: Error) => error.message.startsWith('Invalid global ID');

/** graphql-js's coercion of a variable: an error of the request, with no code and no path. */
const isVariableError = (error: GraphQLError) =>
  error.extensions.code === undefined &&
  error.path === undefined &&
  error.message.startsWith('Variable "$');

/**
 * Whether `error`, which yoga logs as an error once `maskError` has replaced it, is the
 * client's mistake (a malformed global ID, a variable of the wrong type): logged at debug.
 */
function isClientMistake(error: unknown): boolean {
  return error instanceof GraphQLError && (isInvalidGlobalId(error) || isVariableError(error));
}

/** A variable's error as its message, without the value it quotes; anything else as it is. */
const withoutQuotedValue = (arg: unknown) =>
  arg instanceof GraphQLError && isVariableError(arg) ? withoutVariableValue(arg.message) : arg;

/**
 * Whether `error` is (or wraps) the abort of an operation whose client went away: the
 * request's signal reached a read or a wait, which stopped with an `AbortError`.
 */
export function isClientAbort(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth += 1) {
    if ((current as { name?: unknown }).name === 'AbortError') return true;
    current =
      current instanceof GraphQLError
        ? current.originalError
        : (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Bounds the errors of parsing and validation too (graphql-js quotes names and tokens in
 * full: a 20,000-character unknown field made a 20,037-character message). Parse and
 * validation run through envelop on every transport (HTTP, SSE and the websocket), so
 * this covers them all; execution errors pass `maskError`, which bounds them.
 */
function boundedParseAndValidationErrors(): Plugin {
  return {
    onParse() {
      return ({ result, replaceParseResult }) => {
        if (result instanceof GraphQLError) replaceParseResult(boundedError(result));
      };
    },
    onValidate() {
      return ({ result, setResult }) => {
        if (result.length > 0) {
          setResult(
            (result as readonly Error[]).map((e) =>
              e instanceof GraphQLError ? boundedError(e) : e,
            ),
          );
        }
      };
    },
  };
}

/**
 * Adds `extensions.readModelBehind: { position }` to the answer of an operation whose
 * write committed but was not projected within the read-your-writes timeout: the
 * payload's fields may then show the resource before that write (a resource the write
 * created is built from the committed events), and the caller's next query may too,
 * until the read model reaches `position`.
 */
function readModelBehindPlugin(): Plugin<GraphQLContext> {
  return {
    onExecute() {
      return {
        onExecuteDone({ args, result, setResult }) {
          const position = (args.contextValue as GraphQLContext).readModelBehind;
          if (position === null || isAsyncIterable(result)) return;
          setResult({
            ...result,
            extensions: { ...result.extensions, readModelBehind: { position } },
          });
        },
      };
    },
  };
}

/**
 * graphql-yoga over the Pothos schema: errors masked except the expected ones (which
 * are data), and query limits from graphql-armor (a maintained set of envelop plugins)
 * so one request cannot ask for unbounded work. GraphiQL is served by
 * `src/http/graphiqlAssets.ts` (rendered once, static and cached), not by yoga.
 */
export function createGraphQLServer(
  services: Services,
  posture: GraphQLServerPosture = {},
): YogaServerInstance<object, GraphQLContext> {
  const corsOrigins = posture.corsOrigins ?? [];
  const maskUnexpected = (error: unknown, message = 'Unexpected error.', isDev = false) => {
    const masked = maskError(error, message, isDev);
    // Only what yoga hides is unexpected; log it with its stack, server-side only. A
    // client that went away is no fault of the server's: one debug line.
    if (masked !== error && isClientAbort(error)) {
      services.logger.debug('client went away: its operation stopped');
    } else if (masked !== error) {
      services.logger.error({ err: error }, 'unexpected error in a GraphQL operation');
    }
    return masked instanceof GraphQLError ? boundedError(masked, true) : masked;
  };
  return createYoga<object, GraphQLContext>({
    schema: buildSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    context: async (initial) => {
      const { request } = initial;
      const context = await createContext(
        services,
        request.headers.get('authorization'),
        request.signal,
      );
      // An SSE subscription is watched through its response, as a websocket is.
      const { res } = initial as { res?: ServerResponse };
      if (res instanceof ServerResponse && request.headers.get('accept')?.includes(SSE)) {
        context.connection = new ResponseConnection(res, posture.sseCloseGraceMs ?? 2_000);
      }
      return context;
    },
    graphiql: false,
    // Bearer tokens, no cookies: nothing to send credentials for. No listed origin: no
    // CORS headers at all, so browsers keep pages of other origins out.
    cors:
      corsOrigins.length === 0
        ? false
        : {
            origin: [...corsOrigins],
            credentials: false,
            allowedHeaders: ['authorization', 'content-type', 'x-graphql-yoga-csrf'],
            maxAge: 600,
          },
    maskedErrors: {
      isDev: !posture.production && process.env.NODE_ENV === 'development',
      maskError: maskUnexpected,
    },
    // yoga's own log lines, cut (they may quote a request); a client's abort at debug.
    logging: {
      debug: (...args) => services.logger.debug(logLine(args)),
      info: (...args) => services.logger.info(logLine(args)),
      warn: (...args) => services.logger.warn(logLine(args)),
      error: (...args) =>
        args.some(isClientAbort)
          ? services.logger.debug(`client went away: ${logLine(args)}`)
          : args.some(isClientMistake)
            ? services.logger.debug(`client error: ${logLine(args.map(withoutQuotedValue))}`)
            : services.logger.error(logLine(args)),
    },
    plugins: [
      // Stops resolvers (and so store reads) once the client has gone away.
      useExecutionCancellation(),
      jsonDepthLimit(posture.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH),
      // Before parsing: a manifest id becomes its document; refused text is never parsed.
      ...(posture.trustedDocuments ? [posture.trustedDocuments.plugin] : []),
      boundedParseAndValidationErrors(),
      ...queryLimitPlugins(),
      ...(posture.production ? [blockFieldSuggestionsPlugin()] : []),
      ...(posture.introspection === false ? [useDisableIntrospection()] : []),
      ...(posture.csrfPrevention
        ? [
            useCSRFPrevention({
              requestHeaders: ['x-graphql-yoga-csrf', 'apollo-require-preflight'],
            }),
          ]
        : []),
      ...(posture.clientLimits ? [useClientLimits(posture.clientLimits)] : []),
      readModelBehindPlugin(),
      // A mutation's bad page argument is refused before any of its fields writes.
      usePageArgumentsBeforeWrites(),
      // graphql-js executes: it builds each result object in selection order, as the
      // spec asks. The @graphql-tools/executor yoga ships (pinned for Node 20) builds
      // them in resolve order, so `{ id version name }` came back as version, name, id.
      useEngine({ execute, subscribe }),
      // Repeated queries run compiled (after the engine, which it overrides for them).
      useCompiledQueries(services.logger),
      // Identical subscriptions of a board: one execution and one serialisation per change.
      useSharedSubscriptions({
        services,
        maskError: (error) => maskUnexpected(error) as GraphQLError,
      }),
      ...(posture.plugins ?? []),
    ],
  });
}
