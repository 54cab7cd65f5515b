import { builder } from '../../graphql/builder.js';
import { commandPayload } from '../../graphql/commandMutation.js';
import { pageExtensions } from '../../graphql/queryCost.js';
import { ErrorCodeEnum } from '../../graphql/errors.js';
import { badPageArgument, pageArgumentsCheck } from '../../graphql/pageArguments.js';
import {
  CardRef,
  ColumnRef,
  boardResourceNode,
  detachedFromBoard,
  holderField,
} from '../../graphql/refs.js';
import type { CardDoc, ColumnDoc } from '../readModel.js';
import { ARCHIVED_CARDS_PAGE, cardReadModel } from '../card/readModel.js';
import { archiveDoneCards } from './commands.js';

/** Page size of `Column.cards` when `first`/`last` are omitted, and the most one page holds. */
export const CARD_PAGE = { default: 100, max: 500 } as const;

/** Cursors of `Column.cards`: the card's rank and id, so pages stay stable under inserts. */
export const encodeCardCursor = (card: CardDoc): string =>
  Buffer.from(JSON.stringify([card.rank, card._id])).toString('base64url');

function decodeCardCursor(cursor: string): [rank: string, id: string] | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'string')
      ? [value[0] as string, value[1] as string]
      : null;
  } catch {
    return null;
  }
}

function cursorArgument(field: 'after' | 'before', cursor: unknown) {
  if (cursor == null) return null;
  const decoded = typeof cursor === 'string' ? decodeCardCursor(cursor) : null;
  if (!decoded) throw badPageArgument(field, 'not a cursor of Column.cards');
  return decoded;
}

const checkCardsArguments = pageArgumentsCheck(['Column.cards'], (args) => {
  for (const field of ['first', 'last'] as const) {
    const n = args[field];
    if (typeof n === 'number' && n < 0) throw badPageArgument(field, 'must not be negative');
  }
  cursorArgument('after', args['after']);
  cursorArgument('before', args['before']);
});

const checkArchivedCardsArguments = pageArgumentsCheck(['Column.archivedCards'], (args) => {
  const n = args['first'];
  if (typeof n === 'number' && n < 0) throw badPageArgument('first', 'must not be negative');
});

const isAfter = (card: CardDoc, [rank, id]: [string, string]) =>
  card.rank > rank || (card.rank === rank && card._id > id);

/** An edge of `Column.cards`; `BoardChange.cardEdges` hands out the same edges. */
export const CardEdgeRef = builder.edgeObject({ type: CardRef, name: 'CardEdge' });

builder.node(ColumnRef, {
  description: 'A column of a board: an ordered list of cards, with an optional WIP limit.',
  ...boardResourceNode('Column'),
  fields: (t) => ({
    board: t.field(holderField('Board', (column: ColumnDoc) => column.boardId)),
    name: t.exposeString('name'),
    wipLimit: t.exposeInt('wipLimit', { nullable: true, description: 'null = no limit.' }),
    archived: t.boolean({
      description:
        "An archived column is out of its board's `columns` and takes no write; it holds no live card.",
      resolve: (column) => column.archived === true,
    }),
    cardCount: t.exposeInt('cardCount', {
      description: 'Live (not archived) cards in this column.',
    }),
    archivedCards: t.field({
      type: [CardRef],
      description: `Archived cards of this column, the last archived first (default ${ARCHIVED_CARDS_PAGE.default}, at most ${ARCHIVED_CARDS_PAGE.max}): what restoreCard can bring back.`,
      args: { first: t.arg.int() },
      ...pageExtensions(ARCHIVED_CARDS_PAGE),
      resolve: async (column, args, ctx) => {
        checkArchivedCardsArguments(args);
        if (await detachedFromBoard(ctx, column, column.boardId)) return [];
        const { archivedOfColumn } = cardReadModel.queries;
        const cards = await ctx.reads.query(cardReadModel, archivedOfColumn, column._id);
        return cards.slice(
          0,
          Math.min(args.first ?? ARCHIVED_CARDS_PAGE.default, ARCHIVED_CARDS_PAGE.max),
        );
      },
    }),
    cards: t.connection(
      {
        type: CardRef,
        description: `Live cards in column order (Relay connection; at most ${CARD_PAGE.max} per page).`,
        ...pageExtensions(CARD_PAGE),
        resolve: async (column, args, ctx) => {
          checkCardsArguments(args);
          const after = cursorArgument('after', args.after);
          const before = cursorArgument('before', args.before);
          const all = (await detachedFromBoard(ctx, column, column.boardId))
            ? []
            : await ctx.reads.cardsOf(column);
          let window = all.filter(
            (c) =>
              (!after || isAfter(c, after)) &&
              (!before || isAfter({ ...c, rank: before[0], _id: before[1] }, [c.rank, c._id])),
          );
          const size = (n: number | null | undefined) =>
            Math.max(0, Math.min(n ?? CARD_PAGE.default, CARD_PAGE.max));
          let hasNextPage = false;
          let hasPreviousPage = after !== null && window.length < all.length;
          if (args.last != null && args.first == null) {
            const n = size(args.last);
            hasPreviousPage = window.length > n;
            window = window.slice(Math.max(0, window.length - n));
          } else {
            const n = size(args.first);
            hasNextPage = window.length > n;
            window = window.slice(0, n);
          }
          const edges = window.map((node) => ({ cursor: encodeCardCursor(node), node }));
          return {
            edges,
            pageInfo: {
              hasNextPage,
              hasPreviousPage,
              startCursor: edges[0]?.cursor ?? null,
              endCursor: edges.at(-1)?.cursor ?? null,
            },
          };
        },
      },
      { name: 'CardConnection' },
      CardEdgeRef,
    ),
  }),
});

commandPayload(archiveDoneCards, {
  resources: { column: 'column' },
  fields: (t) => ({
    archivedCount: t.exposeInt('archivedCount'),
    complete: t.exposeBoolean('complete', {
      description:
        'False when the run stopped between two of its commits (the board was archived, or the caller lost access, meanwhile): the cards counted are archived all the same, and `stoppedBy` says why the rest are not.',
    }),
    stoppedBy: t.field({
      type: ErrorCodeEnum,
      nullable: true,
      description:
        'What stopped the run before every done card was archived; null when `complete`.',
      resolve: (result) => result.stoppedBy,
    }),
  }),
});
