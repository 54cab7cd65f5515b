import { builder } from '../../graphql/builder.js';
import { commandMutation } from '../../graphql/commandMutation.js';
import { rawIdOf } from '../../graphql/globalIds.js';
import { ColumnRef, UserRef, BoardRef, brandable } from '../../graphql/refs.js';
import { VersionedInterface } from '../../graphql/versioned.js';
import type { UserDoc } from '../readModel.js';
import { addColumn, addMember, createBoard, moveColumn, renameBoard } from './commands.js';

builder.node(BoardRef, {
  description: 'A planning board: ordered columns of ordered cards, shared by its members.',
  interfaces: [VersionedInterface],
  id: { resolve: (board) => board._id },
  loadMany: (ids, ctx) =>
    brandable(Promise.all(ids.map(async (id) => ctx.reads.board(id, ctx.viewer?._id ?? null)))),
  fields: (t) => ({
    version: t.exposeInt('version'),
    name: t.exposeString('name'),
    members: t.field({
      type: [UserRef],
      resolve: async (board, _args, ctx) =>
        (await ctx.reads.users.loadMany(board.members)).filter(
          (u): u is UserDoc => u !== null && !(u instanceof Error),
        ),
    }),
    columns: t.field({
      type: [ColumnRef],
      description: 'In board order.',
      resolve: (board, _args, ctx) => ctx.reads.columnsOf(board),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (board) => board.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (board) => board.updatedAt }),
  }),
});

builder.queryFields((t) => ({
  board: t.field({
    type: BoardRef,
    nullable: true,
    description: 'A board the caller is a member of; null otherwise (whether or not it exists).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => {
      const raw = rawIdOf(id, 'Board');
      return raw ? ctx.reads.board(raw, ctx.viewer?._id ?? null) : null;
    },
  }),
  boards: t.field({
    type: [BoardRef],
    description: 'Boards the caller is a member of, newest first. Empty when anonymous.',
    resolve: (_root, _args, ctx) => (ctx.viewer ? ctx.reads.boardsOf(ctx.viewer._id) : []),
  }),
}));

commandMutation(createBoard, { resources: { board: BoardRef } });
commandMutation(renameBoard, { resources: { board: BoardRef } });
commandMutation(addMember, { resources: { board: BoardRef } });
commandMutation(addColumn, { resources: { column: ColumnRef, board: BoardRef } });
commandMutation(moveColumn, { resources: { board: BoardRef } });
