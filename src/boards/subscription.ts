import { brandWithType } from '@pothos/core';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import { builder } from '../graphql/builder.js';
import type { GraphQLContext, Services } from '../graphql/context.js';
import { rawIdOf, toGlobalId } from '../graphql/globalIds.js';
import { BoardRef, CardRef, ColumnRef, UserRef } from '../graphql/refs.js';
import { VIEWER_DEPENDENT } from '../graphql/sharedSubscriptions.js';
import type { BoardChangeMessage, BoardSubscriptionOptions } from '../live/BoardChangeHub.js';
import { AccessRevokedError, ReplayLimitError, SlowConsumerError } from '../live/errors.js';
import { LiveCloseCode } from '../live/limits.js';
import { LiveErrorCode } from '../sdk/liveErrorCodes.js';
import type { CarriedDoc, Invalidation } from '../projector/types.js';
import { CardEdgeRef, encodeCardCursor } from './column/graphql.js';
import { Collections, type BoardDoc, type CardDoc, type ColumnDoc } from './readModel.js';
import { ErrorCode, type ResourceType } from './errors.js';
import { BoardAction, mayTake } from './board/access.js';

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

/** A resource the commit changed, as it left it, with its GraphQL type. */
type ChangedResource =
  | { kind: 'Board'; doc: BoardDoc }
  | { kind: 'Column'; doc: ColumnDoc }
  | { kind: 'Card'; doc: CardDoc };

const typeRefs = { Board: BoardRef, Column: ColumnRef, Card: CardRef } as const;

/**
 * The change's documents that belong to its board, typed. Every subscriber is a member
 * of that board, so it may read each of them whole (as a query of theirs could).
 */
function changedOf(change: BoardChangeMessage): ChangedResource[] {
  const resources: ChangedResource[] = [];
  for (const carried of change.changed) resources.push(...resourceOf(carried, change.boardId));
  return resources;
}

function resourceOf({ collection, doc }: CarriedDoc, boardId: string): ChangedResource[] {
  switch (collection) {
    case Collections.Boards:
      return doc._id === boardId ? [{ kind: 'Board', doc: doc as BoardDoc }] : [];
    case Collections.Columns:
      return (doc as ColumnDoc).boardId === boardId
        ? [{ kind: 'Column', doc: doc as ColumnDoc }]
        : [];
    case Collections.Cards:
      return (doc as CardDoc).boardId === boardId ? [{ kind: 'Card', doc: doc as CardDoc }] : [];
    default:
      return [];
  }
}

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
    changed: t.field({
      type: [builder.nodeInterfaceRef()],
      description:
        'The boards, columns and cards this commit changed, as the commit left them (not as they are when the message is sent): select them with the fragments your queries use and write them into your cache. Resources a commit changed in bulk past a size bound are left out (their invalidations stay): read those afresh. Empty on a resync.',
      resolve: (c) =>
        changedOf(c).map(({ kind, doc }) => {
          // A copy: the change's documents are shared by every group of the board.
          const node = { ...doc };
          brandWithType(node, typeRefs[kind]);
          return node;
        }),
    }),
    cardEdges: t.field({
      type: [CardEdgeRef],
      description:
        "Where each live card of `changed` now sits: its edge in its column's `cards` connection (cursor and card), so a cache can splice it into a cached page by `rank` and out of any other column's. Archived cards have no edge.",
      resolve: (c) =>
        changedOf(c).flatMap((resource) =>
          resource.kind === 'Card' && !resource.doc.archived
            ? [{ cursor: encodeCardCursor(resource.doc), node: resource.doc }]
            : [],
        ),
    }),
    byViewer: t.boolean({
      description:
        'True when the subscriber made this change itself (a client may skip refetching what its own mutation already returned).',
      // Resolved per subscriber: a selection with it is executed for its subscriber alone.
      extensions: { [VIEWER_DEPENDENT]: true },
      resolve: (c, _args, ctx) => c.actor !== null && c.actor === ctx.viewer?._id,
    }),
    resyncRequired: t.exposeBoolean('resyncRequired', {
      description:
        "True when the client's cursor is too old to replay from; the client must refetch what it shows, then continue from this message's cursor.",
    }),
  }),
});

const refusal = (message: string, code: string) =>
  new GraphQLError(message, { extensions: { code } });

/** Whether `error` is a cancellation: the request's signal aborted its reads. */
const isAbort = (error: unknown) =>
  error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');

/**
 * What the hub's errors mean to the client; anything unexpected is logged and
 * masked like yoga masks it. One function per app (not a closure per subscription).
 */
const clientErrors = new WeakMap<Services, (error: unknown, boardId: string) => GraphQLError>();
function clientErrorOf(services: Services) {
  let toClientError = clientErrors.get(services);
  if (!toClientError) {
    toClientError = (error, boardId) => {
      if (error instanceof GraphQLError) return error;
      if (error instanceof SlowConsumerError) {
        return refusal(error.message, LiveErrorCode.SlowConsumer);
      }
      if (error instanceof AccessRevokedError) {
        return new GraphQLError(`Board ${toGlobalId('Board', boardId)} not found`, {
          extensions: { code: ErrorCode.NotFound, reason: error.reason },
        });
      }
      if (isAbort(error)) {
        // The client went away (e.g. mid-replay) and its reads were cancelled: routine.
        services.logger.debug({ boardId }, 'board subscription ended: the client disconnected');
        return refusal('The client disconnected.', 'CLIENT_DISCONNECTED');
      }
      services.logger.error({ err: error, boardId }, 'board subscription failed');
      return new GraphQLError('Unexpected error.', {
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      });
    };
    clientErrors.set(services, toClientError);
  }
  return toClientError;
}

/**
 * Whether a viewer may (still) see a board: asked of the app's `BoardAccessView`, which
 * decides on the event store (not on the read model, which may lag behind a removal): the
 * membership of now, not of the subscribe. One function per app, given what it needs,
 * so a waiting subscription holds no closure of its own.
 */
const accessChecks = new WeakMap<Services, BoardSubscriptionOptions['authorize']>();
function accessCheckOf(services: Services): BoardSubscriptionOptions['authorize'] {
  let check = accessChecks.get(services);
  if (!check) {
    check = async (boardId, viewerId, signal) => {
      if (viewerId === undefined) return false;
      const role = await services.access.roleOf(boardId, viewerId, signal);
      return role !== null && mayTake(role, BoardAction.Read);
    };
    accessChecks.set(services, check);
  }
  return check;
}

/**
 * The subscription's signal, ended also when the caller's credential ends (its token
 * expires, its session is revoked): a websocket is then closed with
 * `LiveCloseCode.CredentialEnded` (4403), every subscription on it with it; an SSE
 * stream completes.
 */
function endsWithCredential(ctx: GraphQLContext): AbortSignal {
  const { credential, connection, signal, services } = ctx;
  if (!credential || (credential.expiresAt === null && credential.sessionId === null)) {
    return signal;
  }
  const ended = new AbortController();
  const stop = services.credentials.watch(credential, () => {
    connection?.disconnect(LiveCloseCode.CredentialEnded, 'The token expired or its session ended');
    ended.abort(new DOMException('The credential ended', 'AbortError'));
  });
  signal.addEventListener('abort', stop, { once: true });
  return AbortSignal.any([signal, ended.signal]);
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
      // Only what the subscription needs later is kept, not the context: the board is
      // read through reads of its own (no loader is left on the context).
      const { services, signal } = ctx;
      const authorize = accessCheckOf(services);
      // A board the caller is no member of reads as absent, as everywhere else. One who was
      // a member is told how that ended (`extensions.reason`), as an open subscription is.
      if (!raw || !(await authorize(raw, viewer._id, signal))) {
        const reason = raw ? await services.access.endedHow(raw, viewer._id, signal) : null;
        throw new GraphQLError(`Board ${boardId} not found`, {
          extensions: { code: ErrorCode.NotFound, ...(reason && { reason }) },
        });
      }
      // The hub's stream is the source as is: it keeps nothing of this context (no read
      // model view, no loaders, no closure); each change is resolved by a fresh execution
      // shared by the subscription's group (see src/graphql/sharedSubscriptions.ts).
      try {
        return services.live.subscribe({
          boardId: raw,
          after: after == null ? null : Number(after),
          authorize,
          viewerId: viewer._id,
          signal: endsWithCredential(ctx),
          connection: ctx.connection,
          clientError: clientErrorOf(services),
        });
      } catch (error) {
        if (error instanceof ReplayLimitError) {
          throw refusal(error.message, LiveErrorCode.TooManyReplays);
        }
        throw error;
      }
    },
    resolve: (change) => change,
  }),
);

builder.queryField('changeHead', (t) =>
  t.field({
    type: 'Cursor',
    nullable: true,
    description:
      'The newest change this server has delivered to its subscribers (null when anonymous). Subscribe to `boardChanges` with `after` it, then query: the queries see every change up to it (a change is delivered only once its documents are written), and the subscription replays every change after it, so nothing falls between them.',
    resolve: (_root, _args, ctx) => (ctx.viewer ? String(ctx.services.follower.seen) : null),
  }),
);
