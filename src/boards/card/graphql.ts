import { builder } from '../../graphql/builder.js';
import { commandPayload } from '../../graphql/commandMutation.js';
import { BoardRef, CardRef, ColumnRef, UserRef, brandable } from '../../graphql/refs.js';
import { VersionedInterface } from '../../graphql/versioned.js';
import { readableHolder } from '../reads.js';
import { moveCard } from './commands.js';

builder.node(CardRef, {
  description: 'A card on a board, in exactly one column.',
  interfaces: [VersionedInterface],
  id: { resolve: (card) => card._id },
  loadMany: (ids, ctx) =>
    brandable(Promise.all(ids.map(async (id) => ctx.reads.card(id, ctx.viewer?._id ?? null)))),
  fields: (t) => ({
    version: t.exposeInt('version'),
    // At once (no promise) when the request has read the board or column already, as a
    // board query has for every card it shows.
    board: t.field({
      type: BoardRef,
      resolve: (card, _args, ctx) =>
        readableHolder(
          ctx.reads.board(card.boardId, ctx.viewer?._id ?? null),
          `board ${card.boardId} of card ${card._id}`,
        ),
    }),
    column: t.field({
      type: ColumnRef,
      resolve: (card, _args, ctx) =>
        readableHolder(
          ctx.reads.column(card.columnId, ctx.viewer?._id ?? null),
          `column ${card.columnId} of card ${card._id}`,
        ),
    }),
    title: t.exposeString('title'),
    description: t.exposeString('description'),
    assignee: t.field({
      type: UserRef,
      nullable: true,
      resolve: (card, _args, ctx) => (card.assigneeId ? ctx.reads.user(card.assigneeId) : null),
    }),
    labels: t.exposeStringList('labels'),
    done: t.exposeBoolean('done'),
    archived: t.exposeBoolean('archived'),
    rank: t.exposeString('rank', {
      description: 'Sort key among siblings; compares as a plain string.',
    }),
  }),
});

commandPayload(moveCard, { resources: { card: 'card', from: 'column', to: 'column' } });
