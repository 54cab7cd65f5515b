import { encodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import { builder } from '../graphql/builder.js';
import type { GraphQLContext } from '../graphql/context.js';
import { rawIdOf, toGlobalId } from '../graphql/globalIds.js';
import { UserRef } from '../graphql/refs.js';
import type { BoardChangeMessage } from '../live/BoardChangeHub.js';
import { AccessRevokedError, SlowConsumerError } from '../live/errors.js';
import { LiveErrorCode } from '../live/limits.js';
import type { Invalidation } from '../projector/types.js';
import { ErrorCode, type ResourceType } from './errors.js';
import { BoardReads } from './reads.js';

/**
 * `Subscription.boardChanges`: one `BoardChange` per committed change of a board,
 * from the app's `BoardChangeHub`. Refusals are plain `GraphQLError`s with an
 * `extensions.code` (yoga lets exactly those through its error masking), raised
 * before any data.
 */

const resourceTypes: readonly string[] = [
  'User',
  'Board',
  'Column',
  'Card',
] satisfies ResourceType[];

const InvalidationRef = builder.objectRef<Invalidation>('Invalidation').implement({
  description: 'One resource whose cached copy is now stale.',
  fields: (t) => ({
    typename: t.exposeString('typename'),
    id: t.id({
      description: 'Global ID.',
      resolve: (i) =>
        resourceTypes.includes(i.typename)
          ? toGlobalId(i.typename as ResourceType, i.id)
          : encodeGlobalID(i.typename, i.id),
    }),
    fields: t.stringList({
      description:
        "Fields that changed, e.g. ['cards', 'cardCount'] on a Column when its order or membership changed.",
      resolve: (i) => i.fields,
    }),
    version: t.exposeInt('version', { description: "The resource's version after this change." }),
  }),
});

const BoardChangeRef = builder.objectRef<BoardChangeMessage>('BoardChange').implement({
  description: 'One committed change, pushed once to every member of the board.',
  fields: (t) => ({
    cursor: t.field({ type: 'Cursor', resolve: (c) => String(c.cursor) }),
    boardId: t.id({ resolve: (c) => toGlobalId('Board', c.boardId) }),
    operation: t.exposeString('operation', {
      description: "The mutation that caused it, e.g. 'moveCard'.",
    }),
    actor: t.field({
      type: UserRef,
      nullable: true,
      resolve: (c, _args, ctx) => (c.actor ? ctx.reads.users.load(c.actor) : null),
    }),
    at: t.field({ type: 'DateTime', resolve: (c) => c.at }),
    invalidated: t.field({ type: [InvalidationRef], resolve: (c) => c.invalidated }),
    resyncRequired: t.exposeBoolean('resyncRequired', {
      description:
        "True when the client's cursor is too old to replay from; the client must refetch what it shows, then continue from this message's cursor.",
    }),
  }),
});

const refusal = (message: string, code: string) =>
  new GraphQLError(message, { extensions: { code } });

/** A fresh read of the active generation: the membership of now, not of the subscribe. */
const freshReads = async (ctx: GraphQLContext) =>
  new BoardReads(await ctx.services.readModels.active({ signal: ctx.signal }), ctx.signal);

/**
 * What the hub's errors mean to the client; anything unexpected is logged and
 * masked like yoga masks it.
 */
function toClientError(error: unknown, ctx: GraphQLContext, boardId: string): GraphQLError {
  if (error instanceof GraphQLError) return error;
  if (error instanceof SlowConsumerError) return refusal(error.message, LiveErrorCode.SlowConsumer);
  if (error instanceof AccessRevokedError) {
    return refusal(`Board ${boardId} not found`, ErrorCode.NotFound);
  }
  if (ctx.signal.aborted) {
    // The client went away (e.g. mid-replay) and its reads were cancelled: routine.
    ctx.services.logger.debug({ boardId }, 'board subscription ended: the client disconnected');
    return refusal('The client disconnected.', 'CLIENT_DISCONNECTED');
  }
  ctx.services.logger.error({ err: error, boardId }, 'board subscription failed');
  return new GraphQLError('Unexpected error.');
}

/**
 * The hub's stream as the subscription's source: keeps `ctx.reads` (used to resolve
 * `actor`) on the active read model generation across a rebuild, and turns errors
 * into client errors. A plain iterator rather than an async generator, so that
 * `return()` ends a `next()` that waits for the next change instead of queueing
 * behind it.
 */
function boardChangeSource(
  ctx: GraphQLContext,
  boardId: string,
  stream: AsyncIterableIterator<BoardChangeMessage>,
): AsyncIterableIterator<BoardChangeMessage> {
  return {
    async next() {
      try {
        const result = await stream.next();
        if (!result.done) {
          const view = await ctx.services.readModels.active({ signal: ctx.signal });
          if (view.generation !== ctx.reads.generation)
            ctx.reads = new BoardReads(view, ctx.signal);
        }
        return result;
      } catch (error) {
        await stream.return?.();
        throw toClientError(error, ctx, boardId);
      }
    },
    return: async () => (await stream.return?.()) ?? { done: true, value: undefined },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

builder.subscriptionType({
  description: 'Live updates: graphql-ws over a websocket on the GraphQL path, or SSE.',
});

builder.subscriptionField('boardChanges', (t) =>
  t.field({
    type: BoardChangeRef,
    description:
      'Changes of one board, in commit order. With `after`, first replays every change after that cursor, then goes live, with no gap and no duplicate.',
    args: {
      boardId: t.arg.id({ required: true }),
      after: t.arg({ type: 'Cursor' }),
    },
    subscribe: async (_root, { boardId, after }, ctx) => {
      const viewer = ctx.viewer;
      if (!viewer) throw refusal('Sign in to subscribe', ErrorCode.Unauthenticated);
      const raw = rawIdOf(boardId, 'Board');
      // A board the caller is no member of reads as absent, as everywhere else.
      if (!raw || !(await ctx.reads.board(raw, viewer._id))) {
        throw refusal(`Board ${boardId} not found`, ErrorCode.NotFound);
      }
      const stream = ctx.services.live.subscribe({
        boardId: raw,
        after: after == null ? null : Number(after),
        authorize: async () => (await (await freshReads(ctx)).board(raw, viewer._id)) !== null,
        signal: ctx.signal,
        connection: ctx.connection,
      });
      return boardChangeSource(ctx, boardId, stream);
    },
    resolve: (change) => change,
  }),
);
