import type { IncomingMessage } from 'node:http';
import {
  getOperationAST,
  GraphQLError,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionResult,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { KeyedQueueFull } from '../keyedQueue.js';
import { RateLimited, type RateLimiter } from '../rateLimiter.js';
import type { GraphQLContext } from './context.js';

/** The per-client limits a GraphQL server applies (README "Limits and security"). */
export type ClientLimitName = 'registrations' | 'mutations' | 'subscribes';

/** Codes of the request-level errors of this module (`extensions.code`). */
export const ClientLimitCode = {
  /** The client used its allowance; `extensions.retryAfterSeconds` says when to retry. */
  RateLimited: 'RATE_LIMITED',
  /** Too many commands wait on the resource; nothing was written, retry shortly. */
  Busy: 'BUSY',
} as const;

/** The mutation whose calls count against `registrations` (per address) too. */
const REGISTRATION_FIELD = 'registerUser';

/**
 * The answer to a refused request: code `RATE_LIMITED`, the limit, `retryAfterSeconds`,
 * and over HTTP a 429 with `Retry-After`. Nothing ran.
 */
export function rateLimitedError(refused: RateLimited): GraphQLError {
  const seconds = refused.retryAfterSeconds;
  return new GraphQLError(`Too many ${refused.limit}: retry in ${seconds} s.`, {
    extensions: {
      code: ClientLimitCode.RateLimited,
      limit: refused.limit,
      retryAfterSeconds: seconds,
      http: { status: 429, headers: { 'Retry-After': String(seconds) } },
    },
  });
}

/**
 * The answer to a command refused because its resource's queue is full (the commands
 * of one process on one stream run one at a time, and at most
 * `MAX_QUEUED_COMMANDS_PER_STREAM` wait): code `BUSY`, over HTTP a 503 with
 * `Retry-After: 1`. Nothing was written; a retry (with the same idempotency key) is safe.
 */
export function busyError(_full: KeyedQueueFull): GraphQLError {
  return new GraphQLError('Too many writes are waiting on this resource; retry shortly.', {
    extensions: {
      code: ClientLimitCode.Busy,
      retryAfterSeconds: 1,
      http: { status: 503, headers: { 'Retry-After': '1' } },
    },
  });
}

/** What yoga and the websocket put in an operation's context besides ours. */
interface ServerContext {
  /** HTTP (yoga's node adapter): the request. */
  req?: IncomingMessage;
  /** Websocket: the address the upgrade came from (set by the websocket server). */
  clientAddress?: string;
}

/** The network address of the operation's client; `unknown` when none is known. */
function addressOf(context: unknown): string {
  const server = context as ServerContext;
  return server.clientAddress ?? server.req?.socket.remoteAddress ?? 'unknown';
}

/** Who a limit counts: the signed-in user, or the address of an anonymous caller. */
function clientOf(context: unknown): string {
  const viewer = (context as Partial<GraphQLContext>).viewer;
  return viewer ? `user:${viewer._id}` : `address:${addressOf(context)}`;
}

/** How many root fields of the mutation are `registerUser`, and how many in all. */
function mutationFields(document: DocumentNode, operationName: string | null | undefined) {
  const operation = getOperationAST(document, operationName);
  let registrations = 0;
  let all = 0;
  for (const selection of operation?.selectionSet.selections ?? []) {
    // Fragments at the root are counted as one field each: they hold at least one.
    all += 1;
    if (selection.kind === Kind.FIELD && selection.name.value === REGISTRATION_FIELD) {
      registrations += 1;
    }
  }
  return { registrations, all };
}

/**
 * Per-client rate limits on every transport (the operations of HTTP, SSE and graphql-ws
 * all pass envelop's execute or subscribe): each root field of a mutation counts one
 * against `mutations` (per user, or per address when anonymous), each `registerUser`
 * also one against `registrations` (per address), each subscription one against
 * `subscribes`. Past a limit the operation runs nothing and answers `RATE_LIMITED`
 * (HTTP 429 with `Retry-After`). A command refused with `KeyedQueueFull` answers `BUSY`
 * (see {@link busyError}).
 */
export function useClientLimits(limiter: RateLimiter<ClientLimitName>): Plugin<GraphQLContext> {
  const refuse = async (
    take: () => Promise<void>,
    stop: (result: ExecutionResult) => void,
  ): Promise<void> => {
    try {
      await take();
    } catch (error) {
      if (!(error instanceof RateLimited)) throw error;
      stop({ errors: [rateLimitedError(error)] });
    }
  };
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const document = args.document as DocumentNode;
      const operationName = args.operationName as string | null | undefined;
      const operation = getOperationAST(document, operationName);
      if (operation?.operation !== OperationTypeNode.MUTATION) return;
      const { registrations, all } = mutationFields(document, operationName);
      await refuse(async () => {
        if (registrations > 0) {
          await limiter.consume('registrations', addressOf(args.contextValue), registrations);
        }
        await limiter.consume('mutations', clientOf(args.contextValue), all);
      }, setResultAndStopExecution);
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      await refuse(
        () => limiter.consume('subscribes', clientOf(args.contextValue)),
        setResultAndStopExecution,
      );
    },
  };
}
