import { builder } from '../../graphql/builder.js';
import { toGlobalId } from '../../graphql/globalIds.js';
import { BoardRef, CardRef, ColumnRef, UserRef, detachedFromBoard } from '../../graphql/refs.js';
import type { GraphQLContext } from '../../graphql/context.js';
import { pageExtensions } from '../../graphql/queryCost.js';
import { CARD_PAGE } from '../column/graphql.js';
import { badPageArgument, pageArgumentsCheck, type PageArgs } from '../../graphql/pageArguments.js';
import { historySpecs, type HistoryRef, type HistorySpec, type HistoryValue } from './changes.js';
import { readHistory, type HistoryEntryData } from './readHistory.js';

/** Page size of `history` when `first` is omitted, and the most one page holds. */
export const HISTORY_PAGE = CARD_PAGE;

const CURSOR_PREFIX = 'history:';

/** The cursor of an entry: its stream version, so pages stay stable while events arrive. */
export const encodeHistoryCursor = (version: number): string =>
  Buffer.from(`${CURSOR_PREFIX}${version}`).toString('base64url');

/** The version inside a history cursor, or null when it is not one. */
export function decodeHistoryCursor(cursor: string): number | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(CURSOR_PREFIX)) return null;
  const digits = text.slice(CURSOR_PREFIX.length);
  if (!/^[1-9][0-9]{0,14}$/.test(digits)) return null;
  const version = Number(digits);
  return Number.isSafeInteger(version) && encodeHistoryCursor(version) === cursor ? version : null;
}

/** `first` not negative, `after` one of `history`'s cursors; its version, if any. */
function historyPageArguments(kind: string, args: PageArgs): number | undefined {
  const { first, after } = args;
  if (typeof first === 'number' && first < 0)
    throw badPageArgument('first', 'must not be negative');
  if (after == null) return undefined;
  const version = typeof after === 'string' ? decodeHistoryCursor(after) : null;
  if (version === null) throw badPageArgument('after', `not a cursor of ${kind}.history`);
  return version;
}

for (const kind of Object.keys(historySpecs)) {
  pageArgumentsCheck([`${kind}.history`], (args) => historyPageArguments(kind, args));
}

const isRef = (value: unknown): value is HistoryRef =>
  typeof value === 'object' &&
  value !== null &&
  'ref' in value &&
  'id' in value &&
  Object.keys(value).length === 2;

/** A history value as JSON text; resources as their global IDs. */
function toJsonText(value: HistoryValue): string {
  return JSON.stringify(value, (_key, v: unknown) => (isRef(v) ? toGlobalId(v.ref, v.id) : v));
}

const FieldChangeRef = builder.objectRef<HistoryEntryData['changes'][number]>('FieldChange');
FieldChangeRef.implement({
  description: 'One field an event changed; values are JSON text (resources as their IDs).',
  fields: (t) => ({
    field: t.exposeString('field'),
    from: t.string({
      nullable: true,
      description: 'The value before, as JSON text; null when the field had none.',
      resolve: (change) => (change.from === null ? null : toJsonText(change.from)),
    }),
    to: t.string({
      nullable: true,
      description: 'The value after, as JSON text; null when the field has none.',
      resolve: (change) => (change.to === null ? null : toJsonText(change.to)),
    }),
  }),
});

const HistoryEntryRef = builder.objectRef<HistoryEntryData>('HistoryEntry');
HistoryEntryRef.implement({
  description: 'One event of a resource: who changed which fields, when.',
  fields: (t) => ({
    at: t.field({ type: 'DateTime', resolve: (entry) => entry.at }),
    actor: t.field({
      type: UserRef,
      nullable: true,
      description: 'Who made the change; null for the system.',
      resolve: (entry, _args, ctx) => (entry.actor ? ctx.reads.user(entry.actor) : null),
    }),
    operation: t.exposeString('operation', {
      description: 'What happened, e.g. `CardEdited`, `CardMoved`, or on a column `CardAdded`.',
    }),
    version: t.exposeInt('version', { description: "The resource's version after the change." }),
    changes: t.field({ type: [FieldChangeRef], resolve: (entry) => entry.changes }),
  }),
});

const HistoryEdgeRef = builder.edgeObject({ type: HistoryEntryRef, name: 'HistoryEdge' });
const HistoryConnectionRef = builder.connectionObject(
  { type: HistoryEntryRef, name: 'HistoryConnection' },
  HistoryEdgeRef,
);

async function resolveHistory(
  spec: HistorySpec,
  id: string,
  args: { first?: number | null; after?: string | null },
  ctx: GraphQLContext,
  /** The newest version shown (a payload's resource for a caller who lost access). */
  upToVersion?: number,
) {
  const beforeVersion = historyPageArguments(spec.kind, args);
  const first = Math.min(args.first ?? HISTORY_PAGE.default, HISTORY_PAGE.max);
  const page = await readHistory(ctx.services.store, spec, {
    id,
    first,
    beforeVersion:
      upToVersion === undefined
        ? beforeVersion
        : Math.min(beforeVersion ?? Infinity, upToVersion + 1),
    signal: ctx.signal,
  });
  const edges = page.entries.map((node) => ({ cursor: encodeHistoryCursor(node.version), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: beforeVersion !== undefined,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

const description = `Who changed what, newest first, from the first event on (Relay connection; at most ${HISTORY_PAGE.max} per page). Members only, as the resource itself.`;

for (const [ref, spec] of [
  [CardRef, historySpecs.Card],
  [ColumnRef, historySpecs.Column],
  [BoardRef, historySpecs.Board],
] as const) {
  builder.objectField(ref, 'history', (t) =>
    t.field({
      type: HistoryConnectionRef,
      description,
      args: {
        first: t.arg.int({
          description: `At most this many entries (default ${HISTORY_PAGE.default}, at most ${HISTORY_PAGE.max}).`,
        }),
        after: t.arg.string({ description: "An entry's cursor: the entries older than it." }),
      },
      ...pageExtensions(HISTORY_PAGE),
      resolve: async (resource: { _id: string; version: number; boardId?: string }, args, ctx) => {
        // For a caller who lost access, a payload's resource as its write left it, no newer.
        const detached = await detachedFromBoard(ctx, resource, resource.boardId ?? resource._id);
        return resolveHistory(
          spec,
          resource._id,
          args,
          ctx,
          detached ? resource.version : undefined,
        );
      },
    }),
  );
}
