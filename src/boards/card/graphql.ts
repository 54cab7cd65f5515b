import { builder } from '../../graphql/builder.js';
import { commandPayload } from '../../graphql/commandMutation.js';
import {
  BoardRef,
  CardRef,
  ColumnRef,
  UserRef,
  boardResourceNode,
  readNode,
} from '../../graphql/refs.js';
import { readableHolder } from '../reads.js';
import { moveCard } from './commands.js';

builder.node(CardRef, {
  description: 'A card on a board, in exactly one column.',
  ...boardResourceNode('Card'),
  fields: (t) => ({
    // At once (no promise) when the request has read the board or column already, as a
    // board query has for every card it shows.
    board: t.field({
      type: BoardRef,
      resolve: (card, _args, ctx) =>
        readableHolder(
          readNode.Board(ctx, card.boardId),
          `board ${card.boardId} of card ${card._id}`,
        ),
    }),
    column: t.field({
      type: ColumnRef,
      resolve: (card, _args, ctx) =>
        readableHolder(
          readNode.Column(ctx, card.columnId),
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
